package sqlstore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyserver/keyserver/store"
	"github.com/keyserver/keyserver/store/sqlstore/pgtest"
)

func newAccount() *store.Account {
	email := strings.ToLower(filepathSafe(rnd(6))) + "@example.org"
	return &store.Account{UID: rnd(16), Email: email, NormalizedEmail: email,
		SRPVerifier: rnd(256), SRPSalt: rnd(32), KA: rnd(32), WrapKb: rnd(32), EmailCode: rnd(16),
		Stretching: store.Stretching{Salt: rnd(32)}}
}

func filepathSafe(b []byte) string {
	const hexdigits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, hexdigits[c>>4], hexdigits[c&15])
	}
	return string(out)
}

func createInTx(ctx context.Context, s *Store) error {
	return s.WithTx(ctx, func(q store.Queries) error { return q.CreateAccount(ctx, newAccount()) })
}

// TestSQLiteFileMode: a new database file, its WAL and its SHM are 0600,
// and Created tells a new file from an existing one.
func TestSQLiteFileMode(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "keyserver.db")
	s := mustOpen(t, "sqlite:"+path, Options{Migrate: true})
	if !s.Created() || s.Path() != path {
		t.Errorf("Created() = %v, Path() = %q; want true, %q", s.Created(), s.Path(), path)
	}
	if err := createInTx(ctx, s); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm != 0o600 {
			t.Errorf("%s: mode %#o, want 0600", filepath.Base(f), perm)
		}
	}
	again := mustOpen(t, "sqlite:"+path, Options{})
	if again.Created() {
		t.Error("Created() on an existing file")
	}
}

// TestSQLiteFileReplaced: once the file is deleted or replaced under the
// Store, writes and Ping fail with ErrUnavailable, naming the path.
func TestSQLiteFileReplaced(t *testing.T) {
	ctx := context.Background()
	for _, how := range []string{"deleted", "replaced"} {
		t.Run(how, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "keyserver.db")
			s := mustOpen(t, "sqlite:"+path, Options{Migrate: true})
			if err := createInTx(ctx, s); err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			if how == "replaced" {
				if err := os.WriteFile(path, nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			err := createInTx(ctx, s)
			if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), path) {
				t.Errorf("write after the file was %s: %v; want ErrUnavailable naming %s", how, err, path)
			}
			if err := s.Ping(ctx); !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "deleted or replaced") {
				t.Errorf("Ping after the file was %s: %v; want ErrUnavailable", how, err)
			}
		})
	}
}

// TestSQLiteWriteFailure: a write refused as read-only (SQLITE_READONLY,
// here from PRAGMA query_only) is ErrUnavailable and fails Ping until a
// write succeeds again.
func TestSQLiteWriteFailure(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t, sqliteDSN(t), Options{Migrate: true})
	s.db.SetMaxOpenConns(1) // the pragma is per connection
	if _, err := s.db.ExecContext(ctx, "PRAGMA query_only = 1"); err != nil {
		t.Fatal(err)
	}
	err := createInTx(ctx, s)
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("read-only write: %v; want ErrUnavailable", err)
	}
	if err := s.Ping(ctx); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Ping after a failed write: %v; want ErrUnavailable", err)
	}
	s.d.health.probeEvery = 0 // Ping tries a write at once
	if err := s.Ping(ctx); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Ping trying a write while writes fail: %v; want ErrUnavailable", err)
	}
	if _, err := s.db.ExecContext(ctx, "PRAGMA query_only = 0"); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Errorf("Ping once writes work again: %v", err)
	}
	if err := createInTx(ctx, s); err != nil {
		t.Errorf("write once writes work again: %v", err)
	}
}

func TestDurabilityWarning(t *testing.T) {
	for _, c := range []struct{ setting, value, want string }{
		{"fsync", "on", ""},
		{"fsync", "off", "fsync = off"},
		{"synchronous_commit", "local", ""},
		{"synchronous_commit", "off", "synchronous_commit = off"},
	} {
		got := durabilityWarning(c.setting, c.value)
		if c.want == "" && got != "" || !strings.Contains(got, c.want) {
			t.Errorf("%s = %s: %q; want %q", c.setting, c.value, got, c.want)
		}
	}
}

// TestDurabilityWarnings runs the settings query: nil on SQLite; on
// PostgreSQL (when one is at hand) one warning per setting that is off.
func TestDurabilityWarnings(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			s := mustOpen(t, d.dsn(t), Options{Migrate: true})
			w, err := s.DurabilityWarnings(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if d.name == "sqlite" && w != nil {
				t.Errorf("SQLite: %q", w)
			}
			t.Logf("%s: %q", d.name, w)
		})
	}
}

// TestDurabilityWarningsPostgresOff: a session with synchronous_commit off
// (lib/pq sends URL parameters as run-time parameters) is warned about.
func TestDurabilityWarningsPostgresOff(t *testing.T) {
	s := mustOpen(t, pgtest.DSN(t)+"&synchronous_commit=off", Options{Migrate: true})
	w, err := s.DurabilityWarnings(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(w) != 1 || !strings.Contains(w[0], "synchronous_commit = off") {
		t.Errorf("warnings %q; want one for synchronous_commit", w)
	}
}
