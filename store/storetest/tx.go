package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/keyserver/keyserver/protocol"
	"github.com/keyserver/keyserver/store"
)

// txRows writes an account, two tokens, a device and an event in q.
type txRows struct {
	account  *store.Account
	auth     *store.Token
	session  *store.Token
	device   *store.Device
	event    *store.Event
	readBack error // reading the account inside the transaction
}

func writeTxRows(t *testing.T, q store.Queries) *txRows {
	r := &txRows{account: mustAccount(t, q, "alice@example.org")}
	r.auth = mustToken(t, q, newToken(protocol.AuthToken, r.account.UID))
	r.session = mustToken(t, q, newToken(protocol.SessionToken, r.account.UID))
	r.device = mustDevice(t, q, newDevice(r.account.UID, r.session.ID))
	r.event = mustEvent(t, q, newEvent(r.account.UID, t0))
	_, r.readBack = q.AccountByUID(t.Context(), r.account.UID)
	return r
}

// checkTxRows checks that every row of r exists (committed) or none does.
func checkTxRows(t *testing.T, s store.Store, r *txRows, committed bool) {
	t.Helper()
	ctx := t.Context()
	if r.readBack != nil {
		t.Errorf("reading an account written in the same transaction: %v", r.readBack)
	}
	check := func(what string, err error) {
		t.Helper()
		if committed && err != nil {
			t.Errorf("%s after commit: %v", what, err)
		}
		if !committed {
			wantErr(t, what+" after rollback", err, store.ErrNotFound)
		}
	}
	_, err := s.AccountByUID(ctx, r.account.UID)
	check("AccountByUID", err)
	_, err = s.AccountByEmail(ctx, r.account.NormalizedEmail)
	check("AccountByEmail", err)
	_, err = s.Token(ctx, protocol.AuthToken, r.auth.ID)
	check("Token(auth)", err)
	_, err = s.Token(ctx, protocol.SessionToken, r.session.ID)
	check("Token(session)", err)
	_, err = s.DeviceBySession(ctx, r.session.ID)
	check("DeviceBySession", err)
	evs, err := s.Events(ctx, store.EventQuery{UID: r.account.UID})
	if err != nil {
		t.Fatalf("Events: %v", err)
	}
	want := 0
	if committed {
		want = 1
	}
	if len(evs) != want {
		t.Errorf("%d events, want %d", len(evs), want)
	}
}

// class is a durability class as the context transformation that selects
// it: durable or store.Ephemeral.
type class func(context.Context) context.Context

func durable(ctx context.Context) context.Context { return ctx }

// The tests of this file run durable transactions; durability.go runs them
// on ephemeral ones too.

func testTxCommit(t *testing.T, s store.Store) { txCommit(t, s, durable) }

func testTxRollbackOnError(t *testing.T, s store.Store) { txRollbackOnError(t, s, durable) }

func testTxRollbackOnPanic(t *testing.T, s store.Store) { txRollbackOnPanic(t, s, durable) }

func testTxConcurrentWriters(t *testing.T, s store.Store) {
	txConcurrentWriters(t, s, func(int, int) class { return durable })
}

func txCommit(t *testing.T, s store.Store, c class) {
	var r *txRows
	err := s.WithTx(c(t.Context()), func(q store.Queries) error {
		r = writeTxRows(t, q)
		return nil
	})
	if err != nil {
		t.Fatalf("WithTx: %v", err)
	}
	checkTxRows(t, s, r, true)
}

func txRollbackOnError(t *testing.T, s store.Store, c class) {
	errFn := errors.New("fn failed")
	var r *txRows
	err := s.WithTx(c(t.Context()), func(q store.Queries) error {
		r = writeTxRows(t, q)
		return errFn
	})
	if !errors.Is(err, errFn) {
		t.Fatalf("WithTx = %v, want fn's error", err)
	}
	checkTxRows(t, s, r, false)
	// The store is still usable for writes, also in a transaction of c.
	mustAccount(t, s, "alice@example.org")
	mustTxAccount(t, s, c, "bob@example.org")
}

func txRollbackOnPanic(t *testing.T, s store.Store, c class) {
	var r *txRows
	func() {
		defer func() {
			if p := recover(); p != "boom" {
				t.Errorf("recovered %v, want the panic of fn", p)
			}
		}()
		_ = s.WithTx(c(t.Context()), func(q store.Queries) error {
			r = writeTxRows(t, q)
			panic("boom")
		})
		t.Error("WithTx returned although fn panicked")
	}()
	checkTxRows(t, s, r, false)
	// The transaction's connection was released: writes still work.
	mustAccount(t, s, "alice@example.org")
	mustTxAccount(t, s, c, "bob@example.org")
}

// mustTxAccount creates an account in a transaction of class c.
func mustTxAccount(t *testing.T, s store.Store, c class, email string) *store.Account {
	t.Helper()
	a := newAccount(email)
	if err := s.WithTx(c(t.Context()), func(q store.Queries) error { return q.CreateAccount(t.Context(), a) }); err != nil {
		t.Fatalf("CreateAccount in a transaction: %v", err)
	}
	return a
}

// txConcurrentWriters runs transactions that read before they write, the
// pattern that fails with SQLITE_BUSY unless write transactions take the
// lock up front; writer w's transaction i is of class classOf(w, i).
func txConcurrentWriters(t *testing.T, s store.Store, classOf func(w, i int) class) {
	const writers, rounds = 8, 4
	var wg sync.WaitGroup
	start := make(chan struct{})
	uids := make([][][]byte, writers)
	for w := range writers {
		wg.Go(func() {
			<-start
			for i := range rounds {
				email := "user" + string(rune('a'+w)) + string(rune('a'+i)) + "@example.org"
				err := s.WithTx(classOf(w, i)(t.Context()), func(q store.Queries) error {
					if _, err := q.AccountByEmail(t.Context(), email); !errors.Is(err, store.ErrNotFound) {
						return err
					}
					a := newAccount(email)
					if err := q.CreateAccount(t.Context(), a); err != nil {
						return err
					}
					for _, typ := range []protocol.TokenType{protocol.AuthToken, protocol.SessionToken, protocol.KeyFetchToken} {
						if err := q.CreateToken(t.Context(), newToken(typ, a.UID)); err != nil {
							return err
						}
					}
					if err := q.AppendEvent(t.Context(), newEvent(a.UID, t0)); err != nil {
						return err
					}
					uids[w] = append(uids[w], a.UID)
					return nil
				})
				if err != nil {
					t.Errorf("writer %d, tx %d: %v", w, i, err)
					return
				}
			}
		})
	}
	close(start)
	wg.Wait()
	for _, us := range uids {
		for _, uid := range us {
			if n := countTokens(t, s, uid, protocol.KeyFetchToken); n != 1 {
				t.Errorf("account written concurrently has %d keyFetchTokens, want 1", n)
			}
		}
	}
	evs, err := s.Events(t.Context(), store.EventQuery{})
	if err != nil || len(evs) != writers*rounds {
		t.Errorf("Events = %d, %v; want %d", len(evs), err, writers*rounds)
	}
}
