package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/keyserver/keyserver/store"
)

// queries implements store.Queries on the pool or, with tx set, in a
// transaction.
type queries struct {
	stmts *stmtCache
	// ephemeral, set only on a Store's own queries, is the cache of the
	// ephemeral pool (on PostgreSQL the same as stmts), where statements
	// outside a transaction run under a context from store.Ephemeral.
	ephemeral *stmtCache
	tx        *sqlx.Tx
	// missed lists the queries a transaction ran before they were cached,
	// for WithTx to prepare on the pool once the transaction is over. A
	// transaction's queries run one at a time.
	missed []string
	d      *dialect
	// seal seals and opens the secret columns (nil only for MigrateDSN's
	// Store, which reads none).
	seal *sealer
}

var _ store.Queries = (*queries)(nil)

// stmt returns the statement for query. A transaction only uses a cached
// statement: preparing on the pool would wait for a second connection while
// holding one, which deadlocks once every connection does the same. It
// prepares a miss on its own connection, for this use only, and leaves it
// to WithTx to cache.
func (q *queries) stmt(ctx context.Context, query string) (*sqlx.Stmt, error) {
	if q.tx == nil {
		if q.ephemeral != nil && store.IsEphemeral(ctx) {
			return q.ephemeral.get(ctx, query)
		}
		return q.stmts.get(ctx, query)
	}
	if st, ok := q.stmts.m.Load(query); ok {
		return q.tx.StmtxContext(ctx, st.(*sqlx.Stmt)), nil
	}
	q.missed = append(q.missed, query)
	return q.tx.PreparexContext(ctx, q.tx.Rebind(query)) // closed with the transaction
}

// ownTx reports whether a statement under ctx must run in a transaction
// of its own: an ephemeral one outside a transaction, on a dialect whose
// ephemeral class is a setting of the transaction (PostgreSQL). rows, for
// reads of several rows, needs none: a read commits nothing.
func (q *queries) ownTx(ctx context.Context) bool {
	return q.tx == nil && q.ephemeral != nil && q.d.beginEphemeral != "" && store.IsEphemeral(ctx)
}

func (q *queries) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if q.ownTx(ctx) {
		var res sql.Result
		err := q.withTx(ctx, func(tq store.Queries) (err error) {
			res, err = tq.(*queries).exec(ctx, query, args...)
			return err
		})
		return res, err
	}
	st, err := q.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

func (q *queries) row(ctx context.Context, query string, args ...any) scanner {
	if q.ownTx(ctx) {
		return ownTxRow{q, ctx, query, args}
	}
	st, err := q.stmt(ctx, query)
	if err != nil {
		return errRow{err}
	}
	return st.QueryRowxContext(ctx, args...)
}

func (q *queries) rows(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := q.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// ownTxRow is a row whose statement runs, and is scanned, in an ephemeral
// transaction of its own (queries.ownTx) when Scan is called.
type ownTxRow struct {
	q     *queries
	ctx   context.Context
	query string
	args  []any
}

func (r ownTxRow) Scan(dest ...any) error {
	return r.q.withTx(r.ctx, func(tq store.Queries) error {
		return tq.(*queries).row(r.ctx, r.query, r.args...).Scan(dest...)
	})
}

// errRow is a row whose statement could not be prepared.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// affected returns the rows affected by an exec.
func affected(res sql.Result, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// mustAffect runs an exec that must change a row: none is ErrNotFound.
func (q *queries) mustAffect(ctx context.Context, op, query string, args ...any) error {
	n, err := affected(q.exec(ctx, query, args...))
	if err != nil {
		return q.fail(ctx, op, err)
	}
	if n == 0 {
		return fmt.Errorf("sqlstore: %s: %w", op, store.ErrNotFound)
	}
	return nil
}

// insertOnce runs an INSERT ... ON CONFLICT DO NOTHING: a row already there
// is ErrConflict. Unlike a unique-violation error, this leaves a PostgreSQL
// transaction usable.
func (q *queries) insertOnce(ctx context.Context, op, query string, args ...any) error {
	n, err := affected(q.exec(ctx, query, args...))
	if err != nil {
		return q.fail(ctx, op, err)
	}
	if n == 0 {
		return fmt.Errorf("sqlstore: %s: %w", op, store.ErrConflict)
	}
	return nil
}

// scanner is *sql.Row, *sqlx.Row or *sql.Rows.
type scanner interface {
	Scan(dest ...any) error
}

// insertSQL returns an INSERT of the comma-separated cols into table.
func insertSQL(table, cols string) string {
	return "INSERT INTO " + table + " (" + cols + ") VALUES (" + marks(strings.Count(cols, ",")+1) + ")"
}

// marks returns n comma-separated ? placeholders.
func marks(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// Conversions at the database boundary.

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

// nullMS stores a zero time as NULL.
func nullMS(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return ms(t)
}

func fromNullMS(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return fromMS(v.Int64)
}

// nullBytes stores a nil slice as NULL.
func nullBytes(b []byte) any {
	if b == nil {
		return nil
	}
	return b
}

// nullString stores "" as NULL.
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// collect scans every row with scan and closes rows.
func collect[T any](rows *sql.Rows, scan func(scanner) (*T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *v)
	}
	return out, rows.Err()
}
