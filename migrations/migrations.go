// Package migrations holds the database schema of keyserver as embedded SQL
// files, one directory per dialect (sqlite/, postgres/), and the runner that
// applies them.
//
// Files are named NNNN_name.sql; both dialects have the same version numbers.
// Each file is applied in its own transaction together with the insert of its
// row into schema_migrations(version, applied_at), so a failed migration
// leaves the database at the previous version. A shipped file is never
// edited: a schema change is a new file.
package migrations

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strconv"
	"time"
)

// Dialect names.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

//go:embed sqlite/*.sql postgres/*.sql
var files embed.FS

// SchemaTooNewError reports a database migrated by a newer keyserver.
type SchemaTooNewError struct {
	Current, Latest int
}

func (e *SchemaTooNewError) Error() string {
	return fmt.Sprintf("database schema version %d is newer than this keyserver (%d)", e.Current, e.Latest)
}

// dialect holds the statements that differ between databases.
type dialect struct {
	// begin opens a migration transaction. SQLite's BEGIN IMMEDIATE takes
	// the write lock at once (waiting on busy_timeout), so the transaction
	// can never fail with SQLITE_BUSY when upgrading a read lock, and it
	// serializes concurrent runners.
	begin string
	// lock, if set, runs first in the transaction to serialize concurrent
	// runners on the same schema.
	lock string
	// hasTable answers one boolean row: whether schema_migrations exists.
	hasTable string
	insert   string
}

var dialects = map[string]dialect{
	SQLite: {
		begin:    "BEGIN IMMEDIATE",
		hasTable: "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations')",
		insert:   "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
	},
	Postgres: {
		begin: "BEGIN",
		// A transaction-scoped advisory lock keyed by the current schema:
		// a second runner waits here, then re-reads the version.
		lock:     "SELECT pg_advisory_xact_lock(7410, hashtext(current_schema()))",
		hasTable: "SELECT to_regclass('schema_migrations') IS NOT NULL",
		insert:   "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
	},
}

const createTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER NOT NULL PRIMARY KEY,
    applied_at BIGINT  NOT NULL
)`

// migration is one embedded file.
type migration struct {
	version int
	name    string // file name, for error messages
	sql     string
}

var fileName = regexp.MustCompile(`^([0-9]{4})_[a-z0-9_]+\.sql$`)

// load returns the dialect's migrations in version order; versions must run
// 1, 2, 3, ... so that the latest version is their count.
func load(dialectName string) ([]migration, dialect, error) {
	d, ok := dialects[dialectName]
	if !ok {
		return nil, dialect{}, fmt.Errorf("migrations: unknown dialect %q", dialectName)
	}
	entries, err := fs.ReadDir(files, dialectName)
	if err != nil {
		return nil, dialect{}, fmt.Errorf("migrations: %w", err)
	}
	var ms []migration
	for _, e := range entries {
		m := fileName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, dialect{}, fmt.Errorf("migrations: %s/%s: name is not NNNN_name.sql", dialectName, e.Name())
		}
		v, _ := strconv.Atoi(m[1])
		body, err := fs.ReadFile(files, path.Join(dialectName, e.Name()))
		if err != nil {
			return nil, dialect{}, fmt.Errorf("migrations: %w", err)
		}
		ms = append(ms, migration{version: v, name: e.Name(), sql: string(body)})
	}
	// ReadDir sorts by name, which is version order.
	for i := range ms {
		if ms[i].version != i+1 {
			return nil, dialect{}, fmt.Errorf("migrations: %s: versions must be 1, 2, 3, ... without gaps or duplicates; found %s", dialectName, ms[i].name)
		}
	}
	return ms, d, nil
}

// querier is what *sql.DB and *sql.Conn have in common.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// readVersion reads the schema version: 0 when schema_migrations is absent.
func readVersion(ctx context.Context, q querier, d dialect) (int, error) {
	var exists bool
	if err := q.QueryRowContext(ctx, d.hasTable).Scan(&exists); err != nil {
		return 0, fmt.Errorf("migrations: reading schema version: %w", err)
	}
	if !exists {
		return 0, nil
	}
	var v int
	if err := q.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations").Scan(&v); err != nil {
		return 0, fmt.Errorf("migrations: reading schema version: %w", err)
	}
	return v, nil
}

// Status returns the database's schema version (0 for an empty database) and
// the latest version this binary knows for the dialect.
func Status(ctx context.Context, db *sql.DB, dialectName string) (current, latest int, err error) {
	ms, d, err := load(dialectName)
	if err != nil {
		return 0, 0, err
	}
	current, err = readVersion(ctx, db, d)
	return current, len(ms), err
}

// Apply applies the pending migrations in version order and returns the
// versions it applied (none when the database is up to date). It is safe to
// run concurrently from several processes on one database (for SQLite, give
// db a busy_timeout so that a runner waits for the other's lock). A database
// newer than this binary gives a *SchemaTooNewError.
func Apply(ctx context.Context, db *sql.DB, dialectName string) (applied []int, err error) {
	ms, d, err := load(dialectName)
	if err != nil {
		return nil, err
	}
	for _, m := range ms {
		ok, err := applyOne(ctx, db, d, m, len(ms))
		if err != nil {
			return applied, err
		}
		if ok {
			applied = append(applied, m.version)
		}
	}
	return applied, nil
}

// applyOne applies m unless the database already has it, and reports whether
// it did. The transaction is driven by explicit statements on one
// connection so that SQLite's BEGIN IMMEDIATE does not depend on how the
// caller opened db.
func applyOne(ctx context.Context, db *sql.DB, d dialect, m migration, latest int) (ok bool, err error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return false, fmt.Errorf("migrations: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, d.begin); err != nil {
		return false, fmt.Errorf("migrations: begin: %w", err)
	}
	committed := false
	defer func() {
		if committed {
			return
		}
		// A connection that cannot roll back may still be inside the
		// transaction: discard it rather than return it to the pool.
		if _, rbErr := conn.ExecContext(context.Background(), "ROLLBACK"); rbErr != nil {
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
	}()

	if d.lock != "" {
		if _, err := conn.ExecContext(ctx, d.lock); err != nil {
			return false, fmt.Errorf("migrations: lock: %w", err)
		}
	}
	if _, err := conn.ExecContext(ctx, createTable); err != nil {
		return false, fmt.Errorf("migrations: creating schema_migrations: %w", err)
	}
	cur, err := readVersion(ctx, conn, d)
	if err != nil {
		return false, err
	}
	if cur > latest {
		return false, &SchemaTooNewError{Current: cur, Latest: latest}
	}
	if cur >= m.version {
		return false, nil
	}
	if _, err := conn.ExecContext(ctx, m.sql); err != nil {
		return false, fmt.Errorf("migrations: %s: %w", m.name, err)
	}
	if _, err := conn.ExecContext(ctx, d.insert, m.version, time.Now().UnixMilli()); err != nil {
		return false, fmt.Errorf("migrations: %s: recording version: %w", m.name, err)
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return false, fmt.Errorf("migrations: %s: commit: %w", m.name, err)
	}
	committed = true
	return true, nil
}
