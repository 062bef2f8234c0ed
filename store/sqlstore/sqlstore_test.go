package sqlstore

import (
	"context"
	"crypto/rand"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/lib/pq/pqerror"

	"github.com/keyserver/keyserver/migrations"
	"github.com/keyserver/keyserver/protocol"
	"github.com/keyserver/keyserver/store"
	"github.com/keyserver/keyserver/store/sqlstore/pgtest"
	"github.com/keyserver/keyserver/store/storetest"
)

func sqliteDSN(t testing.TB) string {
	return "sqlite:" + filepath.Join(t.TempDir(), "keyserver.db")
}

// dialects lists a fresh-database DSN maker per dialect.
var dialects = []struct {
	name string
	dsn  func(testing.TB) string
}{
	{migrations.SQLite, sqliteDSN},
	{migrations.Postgres, pgtest.DSN},
}

func mustOpen(t testing.TB, dsn string, opts Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), dsn, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) store.Store {
				s := mustOpen(t, d.dsn(t), Options{Migrate: true})
				if s.Dialect() != d.name {
					t.Fatalf("Dialect() = %q, want %q", s.Dialect(), d.name)
				}
				return s
			})
		})
	}
}

func TestMigrateAndSchemaChecks(t *testing.T) {
	ctx := context.Background()
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			dsn := d.dsn(t)
			_, err := Open(ctx, dsn, Options{})
			if err == nil || !strings.Contains(err.Error(), "run `keyserver migrate` or pass --migrate") {
				t.Fatalf("Open(empty database, no Migrate) = %v; want an error telling to migrate", err)
			}

			applied, err := MigrateDSN(ctx, dsn)
			if err != nil || len(applied) == 0 || applied[0] != 1 {
				t.Fatalf("MigrateDSN = %v, %v; want versions from 1", applied, err)
			}
			if again, err := MigrateDSN(ctx, dsn); err != nil || len(again) != 0 {
				t.Fatalf("second MigrateDSN = %v, %v; want nothing applied", again, err)
			}
			s := mustOpen(t, dsn, Options{}) // up to date: no Migrate needed

			// A newer keyserver migrated this database.
			if _, err := s.db.ExecContext(ctx, s.db.Rebind("INSERT INTO schema_migrations (version, applied_at) VALUES (?, 0)"), 9999); err != nil {
				t.Fatal(err)
			}
			for _, migrate := range []bool{false, true} {
				_, err = Open(ctx, dsn, Options{Migrate: migrate})
				var tooNew *migrations.SchemaTooNewError
				if !errors.As(err, &tooNew) || tooNew.Current != 9999 ||
					!strings.Contains(err.Error(), "database schema version 9999 is newer than this keyserver") {
					t.Errorf("Open(newer schema, Migrate %v) = %v; want SchemaTooNewError", migrate, err)
				}
			}
			if _, err := MigrateDSN(ctx, dsn); !errors.As(err, new(*migrations.SchemaTooNewError)) {
				t.Errorf("MigrateDSN(newer schema) = %v; want SchemaTooNewError", err)
			}
		})
	}
}

func TestOpenRejectsBadDSN(t *testing.T) {
	ctx := context.Background()
	for _, dsn := range []string{"", "sqlite:", "sqlite:/tmp/x.db?mode=ro", "mysql://user:s3cret@host/db", "/tmp/x.db"} {
		if _, err := Open(ctx, dsn, Options{Migrate: true}); err == nil || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("Open(%q) = %v; want an error not repeating the DSN", dsn, err)
		}
	}
	// Nothing listens on port 1; the password must not appear in the error.
	_, err := Open(ctx, "postgres://user:s3cret@127.0.0.1:1/db?sslmode=disable&connect_timeout=5", Options{})
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("Open(unreachable postgres) = %v; want an error without the password", err)
	}
	// A missing directory is an error; a missing file is created.
	if _, err := Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "no", "such", "dir.db"), Options{Migrate: true}); err == nil {
		t.Error("Open(sqlite file in a missing directory) succeeded")
	}
}

// TestSQLitePragmas checks the settings on several distinct connections of
// each pool held at once (the pools differ in synchronous only), and that
// transactions of either class take the write lock at BEGIN, against
// connections of either pool.
func TestSQLitePragmas(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t, sqliteDSN(t), Options{Migrate: true})
	pools := []struct {
		name  string
		db    *sqlx.DB
		class func(context.Context) context.Context
		sync  string
	}{
		{"durable", s.db, func(ctx context.Context) context.Context { return ctx }, "2"}, // FULL
		{"ephemeral", s.ephemeral.db, store.Ephemeral, "1"},                              // NORMAL
	}
	if s.ephemeral.db == s.db {
		t.Fatal("SQLite store has a single pool")
	}
	for _, p := range pools {
		want := map[string]string{"foreign_keys": "1", "journal_mode": "wal", "synchronous": p.sync, "busy_timeout": "10000",
			"wal_autocheckpoint": fmt.Sprint(walCheckpointPages)}
		const n = 4
		for i := range n {
			c, err := p.db.Connx(ctx)
			if err != nil {
				t.Fatalf("%s conn %d: %v", p.name, i, err)
			}
			defer c.Close() // held until the end: each iteration gets a new connection
			for pragma, v := range want {
				var got string
				if err := c.QueryRowxContext(ctx, "PRAGMA "+pragma).Scan(&got); err != nil {
					t.Fatalf("%s conn %d: PRAGMA %s: %v", p.name, i, pragma, err)
				}
				if got != v {
					t.Errorf("%s conn %d: PRAGMA %s = %s, want %s", p.name, i, pragma, got, v)
				}
			}
		}
		if open := p.db.Stats().OpenConnections; open < n {
			t.Fatalf("%s pool: %d connections open, want at least %d distinct ones", p.name, open, n)
		}
	}

	// While a WithTx of either class holds its transaction, before it has
	// written anything, no connection of either pool can take the write
	// lock.
	for _, tx := range pools {
		for _, p := range pools {
			probe, err := p.db.Connx(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := probe.ExecContext(ctx, "PRAGMA busy_timeout = 0"); err != nil {
				t.Fatal(err)
			}
			err = s.WithTx(tx.class(ctx), func(store.Queries) error {
				_, err := probe.ExecContext(ctx, "BEGIN IMMEDIATE")
				if err == nil {
					_, _ = probe.ExecContext(ctx, "ROLLBACK")
					return errors.New("a second BEGIN IMMEDIATE got the lock: WithTx did not begin IMMEDIATE")
				}
				return nil
			})
			if err != nil {
				t.Errorf("%s WithTx, probe on the %s pool: %v", tx.name, p.name, err)
			}
			_ = probe.Raw(func(any) error { return driver.ErrBadConn }) // discard: its busy_timeout changed
		}
	}
}

// TestTxDurabilitySettings checks, inside transactions and for statements
// outside one, the setting that decides whether a commit is flushed:
// SQLite's synchronous (FULL = 2 for durable work, NORMAL = 1 for
// ephemeral work), PostgreSQL's synchronous_commit (off only for ephemeral
// work, and never on a durable pool's connection).
func TestTxDurabilitySettings(t *testing.T) {
	ctx := context.Background()
	setting := map[string]string{migrations.SQLite: "PRAGMA synchronous", migrations.Postgres: "SHOW synchronous_commit"}
	want := map[string][2]string{ // durable, ephemeral
		migrations.SQLite:   {"2", "1"},
		migrations.Postgres: {"on", "off"},
	}
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			s := mustOpen(t, d.dsn(t), Options{Migrate: true})
			// One connection per pool: an ephemeral setting left on it
			// would show in the next durable transaction.
			s.db.SetMaxOpenConns(1)
			s.ephemeral.db.SetMaxOpenConns(1)
			inTx := func(ctx context.Context) (got string) {
				t.Helper()
				err := s.WithTx(ctx, func(q store.Queries) error {
					return q.(*queries).tx.QueryRowxContext(ctx, setting[d.name]).Scan(&got)
				})
				if err != nil {
					t.Fatal(err)
				}
				return got
			}
			for range 2 {
				if got := inTx(store.Ephemeral(ctx)); got != want[d.name][1] {
					t.Errorf("ephemeral transaction: %s = %s, want %s", setting[d.name], got, want[d.name][1])
				}
				if got := inTx(ctx); got != want[d.name][0] {
					t.Errorf("durable transaction: %s = %s, want %s", setting[d.name], got, want[d.name][0])
				}
				var got string
				if err := s.db.QueryRowxContext(ctx, setting[d.name]).Scan(&got); err != nil || got != want[d.name][0] {
					t.Errorf("outside a transaction: %s = %s, %v; want %s", setting[d.name], got, err, want[d.name][0])
				}
				// A statement a Store runs outside a transaction: of ctx's class.
				for i, c := range []context.Context{ctx, store.Ephemeral(ctx)} {
					if err := s.row(c, setting[d.name]).Scan(&got); err != nil || got != want[d.name][i] {
						t.Errorf("Store statement, class %d: %s = %s, %v; want %s", i, setting[d.name], got, err, want[d.name][i])
					}
				}
			}
		})
	}
}

func TestErrorMapping(t *testing.T) {
	ctx := context.Background()
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			s := mustOpen(t, d.dsn(t), Options{Migrate: true})
			a := &store.Account{UID: rnd(16), Email: "alice@example.org", NormalizedEmail: "alice@example.org",
				SRPVerifier: rnd(256), SRPSalt: rnd(32), KA: rnd(32), WrapKb: rnd(32), EmailCode: rnd(16),
				Stretching: store.Stretching{Salt: rnd(32)}}
			if err := s.CreateAccount(ctx, a); err != nil {
				t.Fatal(err)
			}
			dup := *a
			dup.UID = rnd(16)
			err := s.CreateAccount(ctx, &dup)
			if !errors.Is(err, store.ErrConflict) || strings.Contains(err.Error(), "alice") {
				t.Errorf("unique violation: %v; want ErrConflict naming no value", err)
			}

			tok := &store.Token{ID: rnd(32), Type: protocol.AuthToken, UID: a.UID, AuthKey: rnd(32), BundleKey: rnd(32)}
			if err := s.CreateToken(ctx, tok); err != nil {
				t.Fatal(err)
			}
			same := *tok
			same.Type = protocol.SessionToken
			if err := s.CreateToken(ctx, &same); !errors.Is(err, store.ErrConflict) {
				t.Errorf("primary-key violation: %v; want ErrConflict", err)
			}

			orphan := *tok
			orphan.ID, orphan.UID = rnd(32), rnd(16)
			if err := s.CreateToken(ctx, &orphan); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("token of an unknown account (foreign key): %v; want ErrNotFound", err)
			}
			dev := &store.Device{ID: rnd(16), UID: a.UID, SessionID: rnd(32), Name: "x", Type: "cli"}
			if err := s.CreateDevice(ctx, dev); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("device of an unknown session (foreign key): %v; want ErrNotFound", err)
			}

			bogus := *tok
			bogus.ID, bogus.Type = rnd(32), "bogusToken"
			err = s.CreateToken(ctx, &bogus)
			if err == nil || errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
				t.Errorf("check violation: %v; want an error that is no sentinel", err)
			}
		})
	}
}

func rnd(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return b
}

// TestPostgresDownAndUp cuts the connection to PostgreSQL with a TCP proxy
// and restores it: Ping fails while it is down and succeeds afterwards, on
// the same Store.
func TestPostgresDownAndUp(t *testing.T) {
	ctx := context.Background()
	u, err := url.Parse(pgtest.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{target: u.Host}
	p.start(t, "127.0.0.1:0")
	u.Host = p.addr
	s := mustOpen(t, u.String(), Options{Migrate: true})

	// Fill the pool with several connections.
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() {
			if _, err := s.AccountByUID(ctx, rnd(16)); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("AccountByUID: %v", err)
			}
		})
	}
	wg.Wait()

	p.stop()
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.Ping(pingCtx); err == nil {
		t.Fatal("Ping succeeded while the database was unreachable")
	} else if !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Ping while down: %v; want ErrUnavailable", err)
	}
	if _, err := s.AccountByUID(pingCtx, rnd(16)); err == nil || errors.Is(err, store.ErrNotFound) {
		t.Errorf("AccountByUID while down: %v; want a connection error", err)
	} else if !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("AccountByUID while down: %v; want ErrUnavailable", err)
	}
	// Token has never been prepared: preparing it fails the same way.
	if _, err := s.Token(pingCtx, protocol.AuthToken, rnd(32)); !errors.As(err, new(*net.OpError)) {
		t.Errorf("Token while down: %v; want a connection error", err)
	} else if !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Token while down: %v; want ErrUnavailable", err)
	}
	if err := s.WithTx(pingCtx, func(store.Queries) error { return nil }); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("WithTx while down: %v; want ErrUnavailable", err)
	}

	p.start(t, p.addr)
	if err := s.Ping(pingCtx); err != nil {
		t.Fatalf("Ping after the database came back: %v", err)
	}
	if _, err := s.AccountByUID(pingCtx, rnd(16)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("AccountByUID after the database came back: %v", err)
	}
	// Close now: the cleanup of the restarted proxy, registered after
	// mustOpen's, would cut the connection first, and closing its prepared
	// statements would then fail.
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// proxy forwards TCP connections to target until stopped.
type proxy struct {
	target string
	addr   string
	mu     sync.Mutex
	ln     net.Listener
	conns  []net.Conn
}

func (p *proxy) start(t *testing.T, addr string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("proxy: %v", err)
	}
	p.mu.Lock()
	p.ln, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	t.Cleanup(p.stop)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
}

// stop closes the listener and every forwarded connection.
func (p *proxy) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ln.Close()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// Transient PostgreSQL states are ErrUnavailable (503 at the edge), other
// failures are not.
func TestPostgresUnavailableCodes(t *testing.T) {
	for code, want := range map[string]error{
		"57P01": store.ErrUnavailable, // admin shutdown
		"57P03": store.ErrUnavailable, // cannot connect now (starting up)
		"53300": store.ErrUnavailable, // too many connections
		"08006": store.ErrUnavailable, // connection failure
		"23505": store.ErrConflict,
		"23503": store.ErrNotFound,
		"42P01": nil, // undefined table: a bug, not an outage
		"":      nil,
	} {
		if got := postgresDialect.classify(&pq.Error{Code: pqerror.Code(code)}); got != want {
			t.Errorf("code %q: %v, want %v", code, got, want)
		}
	}
}

// TestStmtCache checks that a query is prepared on the pool once, whether it
// first runs on the pool or in a transaction, and then reused.
func TestStmtCache(t *testing.T) {
	ctx := context.Background()
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			s := mustOpen(t, d.dsn(t), Options{Migrate: true})
			prepared := func(want int64) {
				t.Helper()
				if got := s.stmts.prepared.Load(); got != want {
					t.Fatalf("%d statements prepared, want %d", got, want)
				}
			}
			prepared(0)
			for range 3 {
				if _, err := s.AccountByUID(ctx, rnd(16)); !errors.Is(err, store.ErrNotFound) {
					t.Fatal(err)
				}
				prepared(1)
			}
			for range 2 {
				before := s.stmts.prepared.Load()
				err := s.WithTx(ctx, func(q store.Queries) error {
					for range 2 {
						if _, err := q.AccountByUID(ctx, rnd(16)); !errors.Is(err, store.ErrNotFound) {
							return err
						}
						if _, err := q.Token(ctx, protocol.AuthToken, rnd(32)); !errors.Is(err, store.ErrNotFound) {
							return err
						}
					}
					prepared(before) // Token was prepared on the transaction's connection
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				prepared(2) // and cached after it
			}
			if _, err := s.Token(ctx, protocol.AuthToken, rnd(32)); !errors.Is(err, store.ErrNotFound) {
				t.Fatal(err)
			}
			prepared(2)

			// An ephemeral transaction caches in the ephemeral pool's cache
			// (on PostgreSQL the same one).
			before, eBefore := s.stmts.prepared.Load(), s.ephemeral.prepared.Load()
			for range 2 {
				err := s.WithTx(store.Ephemeral(ctx), func(q store.Queries) error {
					_, err := q.DeviceBySession(ctx, rnd(32))
					if !errors.Is(err, store.ErrNotFound) {
						return err
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			if got := s.ephemeral.prepared.Load(); got != eBefore+1 {
				t.Errorf("ephemeral cache: %d statements prepared, want %d", got, eBefore+1)
			}
			if s.ephemeral != s.stmts && s.stmts.prepared.Load() != before {
				t.Errorf("an ephemeral transaction prepared on the durable pool")
			}
		})
	}
}
