// Package sqlstore implements store.Store with sqlx over SQLite
// (modernc.org/sqlite) and PostgreSQL (lib/pq).
//
// Queries are written once with ? placeholders, rebound for PostgreSQL, and
// shared between the connection pool and transactions. Times are stored as
// BIGINT milliseconds since the Unix epoch and read back in UTC; a zero
// optional time is NULL. Driver errors are mapped to the store sentinels in
// one function per dialect.
//
// SQLite connections all get foreign_keys, busy_timeout, journal_mode=WAL and
// synchronous=FULL through DSN pragmas, and transactions begin IMMEDIATE: a
// writer waits for the lock up front instead of failing with SQLITE_BUSY when
// upgrading a read lock.
package sqlstore

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/lib/pq/pqerror"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/keyserver/keyserver/migrations"
	"github.com/keyserver/keyserver/store"
)

func init() {
	sqlx.BindDriver("sqlite", sqlx.QUESTION)
}

// Options control Open.
type Options struct {
	// Migrate applies pending migrations; without it Open refuses a
	// database whose schema is older than this binary.
	Migrate bool
}

// Store is a store.Store on SQLite or PostgreSQL.
type Store struct {
	queries
	db *sqlx.DB
}

var _ store.Store = (*Store)(nil)

// dialect is what differs between the databases.
type dialect struct {
	name   string // migrations.SQLite or migrations.Postgres
	driver string
	// classify returns store.ErrConflict for a unique violation,
	// store.ErrNotFound for a foreign-key violation (the referenced account
	// or session does not exist), store.ErrUnavailable for a database that
	// cannot serve right now, else nil.
	classify func(error) error
	pool     func(*sqlx.DB)
}

var sqliteDialect = &dialect{
	name:   migrations.SQLite,
	driver: "sqlite",
	classify: func(err error) error {
		if e, ok := errors.AsType[*sqlite.Error](err); ok {
			switch e.Code() {
			case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
				return store.ErrConflict
			case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
				return store.ErrNotFound
			}
			// Still locked after busy_timeout (extended codes keep the
			// primary code in the low byte).
			if c := e.Code() & 0xff; c == sqlite3.SQLITE_BUSY || c == sqlite3.SQLITE_LOCKED {
				return store.ErrUnavailable
			}
		}
		return nil
	},
	// WAL lets readers run beside the one writer; more connections than
	// this would only queue on the write lock.
	pool: func(db *sqlx.DB) {
		db.SetMaxOpenConns(8)
		db.SetMaxIdleConns(8)
	},
}

var postgresDialect = &dialect{
	name:   migrations.Postgres,
	driver: "postgres",
	classify: func(err error) error {
		if e, ok := errors.AsType[*pq.Error](err); ok {
			switch e.Code {
			case pqerror.UniqueViolation:
				return store.ErrConflict
			case pqerror.ForeignKeyViolation:
				return store.ErrNotFound
			}
			// Classes 08 (connection exception), 53 (insufficient
			// resources: too many connections) and 57 (operator
			// intervention: shutting down, starting up).
			if len(e.Code) == 5 {
				switch e.Code.Class() {
				case "08", "53", "57":
					return store.ErrUnavailable
				}
			}
		}
		return nil
	},
	// Idle connections are recycled so that the pool recovers soon after
	// the server restarts.
	pool: func(db *sqlx.DB) {
		db.SetMaxOpenConns(20)
		db.SetMaxIdleConns(10)
		db.SetConnMaxIdleTime(5 * time.Minute)
		db.SetConnMaxLifetime(time.Hour)
	},
}

// sqlitePragmas are applied by modernc.org/sqlite on every new connection
// (busy_timeout first); _txlock=immediate makes BeginTx send BEGIN IMMEDIATE.
var sqlitePragmas = url.Values{
	"_pragma": {"busy_timeout(10000)", "foreign_keys(1)", "journal_mode(WAL)", "synchronous(FULL)"},
	"_txlock": {"immediate"},
}.Encode()

// connect opens and pings the database named by dsn. Error messages never
// repeat the DSN, which may hold a password.
func connect(ctx context.Context, dsn string) (*Store, error) {
	var d *dialect
	var driverDSN string
	switch {
	case strings.HasPrefix(dsn, "sqlite:"):
		path := strings.TrimPrefix(dsn, "sqlite:")
		if path == "" || strings.ContainsRune(path, '?') {
			return nil, errors.New("sqlstore: sqlite DSN must be sqlite:PATH with a PATH without '?'")
		}
		d, driverDSN = sqliteDialect, path+"?"+sqlitePragmas
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		d, driverDSN = postgresDialect, dsn
	default:
		return nil, errors.New("sqlstore: unsupported database DSN: want sqlite:PATH or a postgres:// URL")
	}
	db, err := sqlx.Open(d.driver, driverDSN)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: opening %s database: %w", d.name, err)
	}
	d.pool(db)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlstore: connecting to %s database: %w", d.name, err)
	}
	return &Store{queries: queries{stmts: &stmtCache{db: db}, d: d}, db: db}, nil
}

// Open connects to dsn, "sqlite:PATH" (the file is created if absent) or a
// postgres:// (postgresql://) URL, and checks the schema version: a schema
// newer than this binary is always an error (*migrations.SchemaTooNewError);
// an older or empty one is migrated when opts.Migrate is set and an error
// otherwise.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	s, err := connect(ctx, dsn)
	if err != nil {
		return nil, err
	}
	if err := s.checkSchema(ctx, opts.Migrate); err != nil {
		s.db.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) checkSchema(ctx context.Context, migrate bool) error {
	cur, latest, err := migrations.Status(ctx, s.db.DB, s.d.name)
	if err != nil {
		return fmt.Errorf("sqlstore: %w", err)
	}
	switch {
	case cur > latest:
		return &migrations.SchemaTooNewError{Current: cur, Latest: latest}
	case cur == latest:
		return nil
	case !migrate:
		return fmt.Errorf("sqlstore: database schema version %d is older than this keyserver (%d): run `keyserver migrate` or pass --migrate", cur, latest)
	}
	if _, err := migrations.Apply(ctx, s.db.DB, s.d.name); err != nil {
		return fmt.Errorf("sqlstore: %w", err)
	}
	return nil
}

// MigrateDSN applies the pending migrations to the database named by dsn
// (as for Open) and returns the versions applied.
func MigrateDSN(ctx context.Context, dsn string) (applied []int, err error) {
	s, err := connect(ctx, dsn)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	applied, err = migrations.Apply(ctx, s.db.DB, s.d.name)
	if err != nil {
		return applied, fmt.Errorf("sqlstore: %w", err)
	}
	return applied, nil
}

// Dialect returns "sqlite" or "postgres".
func (s *Store) Dialect() string { return s.d.name }

// WithTx implements store.Store. fn's error is returned as is.
func (s *Store) WithTx(ctx context.Context, fn func(q store.Queries) error) error {
	tq := &queries{stmts: s.stmts, d: s.d}
	err := s.inTx(ctx, tq, fn)
	// With the transaction's connection back in the pool, cache what it
	// missed. A failure here only means preparing again next time.
	for _, query := range tq.missed {
		_, _ = s.stmts.get(ctx, query)
	}
	return err
}

func (s *Store) inTx(ctx context.Context, tq *queries, fn func(q store.Queries) error) error {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return s.fail("begin", err)
	}
	committed := false
	defer func() {
		// Also runs while a panic in fn unwinds; the panic then goes on.
		if !committed {
			_ = tx.Rollback()
		}
	}()
	tq.tx = tx
	if err := fn(tq); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return s.fail("commit", err)
	}
	committed = true
	return nil
}

// Purge implements store.Store.
func (s *Store) Purge(ctx context.Context, now, eventsBefore time.Time) (int64, error) {
	steps := []struct {
		query  string
		before time.Time
	}{
		{"DELETE FROM hawk_nonces WHERE expires_at < ?", now},
		{"DELETE FROM assertion_hashes WHERE expires_at < ?", now},
		{"DELETE FROM tokens WHERE expires_at < ?", now},
		{"DELETE FROM throttle_hits WHERE expires_at < ?", now},
		{"DELETE FROM throttle_keys WHERE expires_at < ?", now},
		{"DELETE FROM audit_events WHERE time < ?", eventsBefore},
	}
	var total int64
	for _, st := range steps {
		n, err := affected(s.exec(ctx, st.query, ms(st.before)))
		if err != nil {
			return total, s.fail("purge", err)
		}
		total += n
	}
	return total, nil
}

// Ping implements store.Store. A pooled connection that broke while the
// database was down answers driver.ErrBadConn once and is discarded, so Ping
// moves on to the next one until a fresh connection answers or fails to
// connect.
func (s *Store) Ping(ctx context.Context) error {
	var err error
	for range s.db.Stats().MaxOpenConnections + 1 {
		if err = s.db.PingContext(ctx); !errors.Is(err, driver.ErrBadConn) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("sqlstore: ping: %w", err)
	}
	return nil
}

// Close closes the prepared statements and the connection pool.
func (s *Store) Close() error {
	s.stmts.close()
	return s.db.Close()
}
