package keyserver_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"

	"github.com/keyserver/keyserver/client"
	"github.com/keyserver/keyserver/keyserver"
	"github.com/keyserver/keyserver/protocol"
	"github.com/keyserver/keyserver/store"
	"github.com/keyserver/keyserver/store/sqlstore"
	"github.com/keyserver/keyserver/store/sqlstore/pgtest"
)

var errCrash = errors.New("injected crash")

// crashStore makes the failAt-th write inside a transaction fail (with an
// error, or a panic as a crashing process would unwind), once armed.
type crashStore struct {
	store.Store
	mu     sync.Mutex
	armed  bool
	panics bool
	failAt int
	writes int
}

func (s *crashStore) arm(failAt int, panics bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.armed, s.failAt, s.panics, s.writes = true, failAt, panics, 0
}

func (s *crashStore) disarm() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.armed = false
	return s.writes
}

// write counts one write and crashes at the chosen one.
func (s *crashStore) write() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.armed {
		return nil
	}
	s.writes++
	if s.writes != s.failAt {
		return nil
	}
	if s.panics {
		panic(errCrash)
	}
	return errCrash
}

func (s *crashStore) WithTx(ctx context.Context, fn func(q store.Queries) error) error {
	return s.Store.WithTx(ctx, func(q store.Queries) error { return fn(crashQueries{q, s}) })
}

// crashQueries intercepts every write of store.Queries.
type crashQueries struct {
	store.Queries
	s *crashStore
}

func (q crashQueries) SetCredentials(ctx context.Context, uid []byte, c *store.Credentials) error {
	if err := q.s.write(); err != nil {
		return err
	}
	return q.Queries.SetCredentials(ctx, uid, c)
}

func (q crashQueries) ConsumeToken(ctx context.Context, typ protocol.TokenType, id []byte) (*store.Token, error) {
	if err := q.s.write(); err != nil {
		return nil, err
	}
	return q.Queries.ConsumeToken(ctx, typ, id)
}

func (q crashQueries) CreateToken(ctx context.Context, t *store.Token) error {
	if err := q.s.write(); err != nil {
		return err
	}
	return q.Queries.CreateToken(ctx, t)
}

func (q crashQueries) DeleteToken(ctx context.Context, typ protocol.TokenType, id []byte) error {
	if err := q.s.write(); err != nil {
		return err
	}
	return q.Queries.DeleteToken(ctx, typ, id)
}

func (q crashQueries) DeleteAccountTokens(ctx context.Context, uid []byte, types ...protocol.TokenType) error {
	if err := q.s.write(); err != nil {
		return err
	}
	return q.Queries.DeleteAccountTokens(ctx, uid, types...)
}

func (q crashQueries) DeleteDevices(ctx context.Context, uid []byte) error {
	if err := q.s.write(); err != nil {
		return err
	}
	return q.Queries.DeleteDevices(ctx, uid)
}

func (q crashQueries) PutRecoveryKey(ctx context.Context, k *store.RecoveryKey) (bool, error) {
	if err := q.s.write(); err != nil {
		return false, err
	}
	return q.Queries.PutRecoveryKey(ctx, k)
}

func (q crashQueries) DeleteRecoveryKey(ctx context.Context, uid []byte) error {
	if err := q.s.write(); err != nil {
		return err
	}
	return q.Queries.DeleteRecoveryKey(ctx, uid)
}

func (q crashQueries) AppendEvent(ctx context.Context, e *store.Event) error {
	if err := q.s.write(); err != nil {
		return err
	}
	return q.Queries.AppendEvent(ctx, e)
}

// resetState is everything a reset changes.
type resetState struct {
	account *store.Account
	tokens  map[protocol.TokenType]int
	devices int
	events  int
}

func readResetState(t *testing.T, st store.Store, uid []byte) resetState {
	t.Helper()
	ctx := t.Context()
	a, err := st.AccountByUID(ctx, uid)
	if err != nil {
		t.Fatal(err)
	}
	s := resetState{account: a, tokens: map[protocol.TokenType]int{}}
	for _, typ := range protocol.TokenTypes {
		if s.tokens[typ], err = st.CountTokens(ctx, uid, typ); err != nil {
			t.Fatal(err)
		}
	}
	ds, err := st.Devices(ctx, uid)
	if err != nil {
		t.Fatal(err)
	}
	evs, err := st.Events(ctx, store.EventQuery{UID: uid})
	if err != nil {
		t.Fatal(err)
	}
	s.devices, s.events = len(ds), len(evs)
	return s
}

// A reset that crashes at any write leaves the old account whole (and its
// accountResetToken usable); one that completes leaves the new one whole.
func TestResetCrashAtomicity(t *testing.T) {
	backends := map[string]func(testing.TB) string{
		"sqlite":   func(t testing.TB) string { return "sqlite:" + filepath.Join(t.TempDir(), "ks.db") },
		"postgres": pgtest.DSN,
	}
	for name, dsn := range backends {
		t.Run(name, func(t *testing.T) {
			crashes := 0
			for failAt := 1; failAt < 20; failAt++ {
				db := dsn(t) // a fresh database each time (skips the backend if absent)
				var done bool
				t.Run(fmt.Sprintf("write %d", failAt), func(t *testing.T) {
					done = resetWithCrash(t, db, failAt, failAt%2 == 0)
				})
				if t.Failed() || done {
					break
				}
				crashes++
			}
			if crashes < 4 {
				t.Fatalf("a reset has %d writes; the test expects at least 4", crashes)
			}
		})
	}
}

// resetWithCrash runs one reset that crashes at write failAt and checks the
// outcome; it reports whether the reset completed.
func resetWithCrash(t *testing.T, dsn string, failAt int, panics bool) (completed bool) {
	ctx := t.Context()
	st, err := sqlstore.Open(ctx, dsn, sqlstore.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cs := &crashStore{Store: st}
	mb := &mailbox{}
	ts := httptest.NewUnstartedServer(nil)
	url := "http://" + ts.Listener.Addr().String()
	srv, err := keyserver.New(keyserver.Config{PublicURL: url, Dev: true, Mailer: mb}, cs)
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = srv.Handler()
	ts.Start()
	t.Cleanup(ts.Close)
	c, err := client.New(url, client.WithStretching(cheap))
	if err != nil {
		t.Fatal(err)
	}

	const email = "crash@example.org"
	uid, err := c.CreateAccount(ctx, email, password, client.CreateOptions{PreVerified: true})
	if err != nil {
		t.Fatal(err)
	}
	var sessions []*client.Session
	for _, name := range []string{"laptop", "phone"} {
		s, err := c.Login(ctx, email, password)
		if err != nil {
			t.Fatal(err)
		}
		typ := "mobile"
		if _, err := c.RegisterDevice(ctx, s.SessionToken, client.DeviceFields{Name: &name, Type: &typ}); err != nil {
			t.Fatal(err)
		}
		sessions = append(sessions, s)
	}
	ft, err := c.ForgotSendCode(ctx, email)
	if err != nil {
		t.Fatal(err)
	}
	resetToken, err := c.ForgotVerifyCode(ctx, ft, mb.last(t, email).Headers["X-Recovery-Code"])
	if err != nil {
		t.Fatal(err)
	}
	old := readResetState(t, st, uid)

	cs.arm(failAt, panics)
	err = c.ResetAccount(ctx, resetToken, email, "new password", nil)
	writes := cs.disarm()
	now := readResetState(t, st, uid)

	if err == nil {
		// The new account, complete.
		a, b := old.account, now.account
		if bytes.Equal(a.SRPVerifier, b.SRPVerifier) || bytes.Equal(a.SRPSalt, b.SRPSalt) || bytes.Equal(a.Stretching.Salt, b.Stretching.Salt) ||
			bytes.Equal(a.WrapKb, b.WrapKb) || !b.Generation.After(a.Generation) || !bytes.Equal(a.KA, b.KA) {
			t.Fatal("completed reset: credentials not all replaced, or kA changed")
		}
		for typ, n := range now.tokens {
			if n != 0 {
				t.Fatalf("completed reset: %d %s left", n, typ)
			}
		}
		if now.devices != 0 || now.events != old.events+1 {
			t.Fatalf("completed reset: %d devices, %d new events", now.devices, now.events-old.events)
		}
		if _, err := c.Login(ctx, email, "new password"); err != nil {
			t.Fatal(err)
		}
		t.Logf("completed after %d writes", writes)
		return true
	}

	// The old account, intact: same record, tokens, devices and events.
	if ce := (*client.Error)(nil); !errors.As(err, &ce) || ce.Status != 500 {
		t.Fatalf("crashed reset: %v, want 500", err)
	}
	a, b := old.account, now.account
	if !bytes.Equal(a.SRPVerifier, b.SRPVerifier) || !bytes.Equal(a.SRPSalt, b.SRPSalt) || !bytes.Equal(a.Stretching.Salt, b.Stretching.Salt) ||
		!bytes.Equal(a.WrapKb, b.WrapKb) || !b.Generation.Equal(a.Generation) {
		t.Fatal("crashed reset changed the credentials")
	}
	for typ, n := range old.tokens {
		// The crashed request's own Hawk nonce is no token; every token
		// stays, the accountResetToken included.
		if now.tokens[typ] != n {
			t.Fatalf("crashed reset: %d %s, want %d", now.tokens[typ], typ, n)
		}
	}
	if now.devices != old.devices || now.events != old.events {
		t.Fatalf("crashed reset: %d devices (want %d), %d events (want %d)", now.devices, old.devices, now.events, old.events)
	}
	for _, s := range sessions {
		if _, _, err := c.RecoveryEmailStatus(ctx, s.SessionToken); err != nil {
			t.Fatalf("session after a crashed reset: %v", err)
		}
	}
	// The accountResetToken still works once the crash is gone.
	if err := c.ResetAccount(ctx, resetToken, email, "new password", nil); err != nil {
		t.Fatalf("retrying the reset: %v", err)
	}
	return false
}
