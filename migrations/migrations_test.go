package migrations

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/keyserver/keyserver/store/sqlstore/pgtest"
)

// openers open a fresh empty database per dialect; each call to the
// returned function opens another handle on the same database, as a second
// process would.
var openers = []struct {
	dialect string
	open    func(t *testing.T) func() *sql.DB
}{
	{SQLite, func(t *testing.T) func() *sql.DB {
		// Only a busy_timeout, so that concurrent runners wait for each
		// other: the runner itself must take care of BEGIN IMMEDIATE.
		dsn := filepath.Join(t.TempDir(), "m.db") + "?_pragma=busy_timeout(10000)"
		return func() *sql.DB { return openDB(t, "sqlite", dsn) }
	}},
	{Postgres, func(t *testing.T) func() *sql.DB {
		dsn := pgtest.DSN(t)
		return func() *sql.DB { return openDB(t, "postgres", dsn) }
	}},
}

func openDB(t *testing.T, driver, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func versions(t *testing.T, dialect string) []int {
	t.Helper()
	ms, _, err := load(dialect)
	if err != nil {
		t.Fatal(err)
	}
	var vs []int
	for _, m := range ms {
		vs = append(vs, m.version)
	}
	return vs
}

func TestDialectsHaveSameVersions(t *testing.T) {
	sqlite, postgres := versions(t, SQLite), versions(t, Postgres)
	if len(sqlite) == 0 {
		t.Fatal("no migrations found")
	}
	if !slices.Equal(sqlite, postgres) {
		t.Errorf("sqlite versions %v, postgres versions %v; want the same", sqlite, postgres)
	}
	if _, _, err := load("mysql"); err == nil {
		t.Error("load(unknown dialect) succeeded")
	}
}

func TestApply(t *testing.T) {
	ctx := context.Background()
	for _, o := range openers {
		t.Run(o.dialect, func(t *testing.T) {
			db := o.open(t)()
			want := versions(t, o.dialect)
			latest := want[len(want)-1]

			if cur, l, err := Status(ctx, db, o.dialect); err != nil || cur != 0 || l != latest {
				t.Fatalf("Status(empty) = %d, %d, %v; want 0, %d", cur, l, err, latest)
			}
			applied, err := Apply(ctx, db, o.dialect)
			if err != nil || !slices.Equal(applied, want) {
				t.Fatalf("Apply = %v, %v; want %v", applied, err, want)
			}
			if applied, err := Apply(ctx, db, o.dialect); err != nil || len(applied) != 0 {
				t.Fatalf("second Apply = %v, %v; want nothing", applied, err)
			}
			if cur, l, err := Status(ctx, db, o.dialect); err != nil || cur != latest || l != latest {
				t.Fatalf("Status(migrated) = %d, %d, %v; want %d, %d", cur, l, err, latest, latest)
			}
			for _, table := range []string{"accounts", "tokens", "devices", "hawk_nonces", "assertion_hashes", "audit_events", "recovery_keys"} {
				var n int
				if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+table).Scan(&n); err != nil {
					t.Errorf("table %s: %v", table, err)
				}
			}
		})
	}
}

// TestApplyConcurrent runs Apply from several handles at once: each
// migration is applied exactly once and no runner fails.
func TestApplyConcurrent(t *testing.T) {
	ctx := context.Background()
	for _, o := range openers {
		t.Run(o.dialect, func(t *testing.T) {
			open := o.open(t)
			const runners = 6
			dbs := make([]*sql.DB, runners)
			for i := range dbs {
				dbs[i] = open()
			}
			var mu sync.Mutex
			var all []int
			var wg sync.WaitGroup
			start := make(chan struct{})
			for _, db := range dbs {
				wg.Go(func() {
					<-start
					applied, err := Apply(ctx, db, o.dialect)
					if err != nil {
						t.Errorf("concurrent Apply: %v", err)
					}
					mu.Lock()
					all = append(all, applied...)
					mu.Unlock()
				})
			}
			close(start)
			wg.Wait()
			slices.Sort(all)
			if want := versions(t, o.dialect); !slices.Equal(all, want) {
				t.Errorf("concurrent runners applied %v in total, want each of %v once", all, want)
			}
		})
	}
}

// TestFailedMigrationRollsBack applies a migration that fails halfway: its
// first statement and its version row must not remain.
func TestFailedMigrationRollsBack(t *testing.T) {
	ctx := context.Background()
	for _, o := range openers {
		t.Run(o.dialect, func(t *testing.T) {
			db := o.open(t)()
			if _, err := Apply(ctx, db, o.dialect); err != nil {
				t.Fatal(err)
			}
			latest := len(versions(t, o.dialect))
			d := dialects[o.dialect]
			bad := migration{version: latest + 1, name: "bad.sql",
				sql: "CREATE TABLE half_done (x INTEGER); SELECT no_such_column FROM accounts;"}
			if ok, err := applyOne(ctx, db, d, bad, latest+1); ok || err == nil {
				t.Fatalf("applyOne(failing migration) = %v, %v; want an error", ok, err)
			}
			if cur, _, err := Status(ctx, db, o.dialect); err != nil || cur != latest {
				t.Errorf("version after a failed migration = %d, %v; want %d", cur, err, latest)
			}
			if _, err := db.ExecContext(ctx, "SELECT x FROM half_done"); err == nil {
				t.Error("a failed migration left its first table behind")
			}
			// The pool is still usable (no connection left inside the
			// transaction holding a lock).
			if applied, err := Apply(ctx, db, o.dialect); err != nil || len(applied) != 0 {
				t.Errorf("Apply after a failed migration = %v, %v", applied, err)
			}
		})
	}
}

func TestApplyRefusesNewerSchema(t *testing.T) {
	ctx := context.Background()
	for _, o := range openers {
		t.Run(o.dialect, func(t *testing.T) {
			db := o.open(t)()
			if _, err := Apply(ctx, db, o.dialect); err != nil {
				t.Fatal(err)
			}
			if _, err := db.ExecContext(ctx, dialects[o.dialect].insert, 500, 0); err != nil {
				t.Fatal(err)
			}
			// Even a migration this binary has not applied yet is refused.
			next := len(versions(t, o.dialect)) + 1
			_, err := applyOne(ctx, db, dialects[o.dialect], migration{version: next, name: "next.sql", sql: "SELECT 1"}, next)
			var tooNew *SchemaTooNewError
			if !errors.As(err, &tooNew) || tooNew.Current != 500 || tooNew.Latest != next {
				t.Errorf("applyOne on a newer schema = %v; want SchemaTooNewError{500, %d}", err, next)
			}
			if _, err := Apply(ctx, db, o.dialect); !errors.As(err, &tooNew) {
				t.Errorf("Apply on a newer schema = %v; want SchemaTooNewError", err)
			}
		})
	}
}
