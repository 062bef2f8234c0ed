package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/keyserver/keyserver/protocol"
	"github.com/keyserver/keyserver/store"
)

func testPing(t *testing.T, s store.Store) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := s.Ping(ctx); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

// pathErr is the error of one kind of operation.
type pathErr struct {
	path string
	err  error
}

// everyPath runs one operation of each kind with ctx: a read, a read of
// several rows, a write and a write returning a row outside a transaction,
// a transaction and Throttle, each of both durability classes, Purge and
// Ping.
func everyPath(ctx context.Context, s store.Store) []pathErr {
	_, errRead := s.AccountByUID(ctx, rnd(16))
	_, errRows := s.Events(ctx, store.EventQuery{})
	errTx := s.WithTx(ctx, func(q store.Queries) error {
		if _, err := q.AccountByEmail(ctx, "tx@example.org"); !errors.Is(err, store.ErrNotFound) {
			return err
		}
		return q.CreateAccount(ctx, newAccount("tx@example.org"))
	})
	errEphemeralTx := s.WithTx(store.Ephemeral(ctx), func(q store.Queries) error {
		return q.UseNonce(ctx, rnd(32), 1, "n", t0)
	})
	_, errThrottle := s.Throttle(ctx, "path", t0, time.Minute, 1)
	_, errEphemeralThrottle := s.Throttle(store.Ephemeral(ctx), "ephemeral path", t0, time.Minute, 1)
	_, errPurge := s.Purge(ctx, t0, t0)
	_, errConsume := s.ConsumeToken(store.Ephemeral(ctx), protocol.AuthToken, rnd(32))
	return []pathErr{
		{"AccountByUID", errRead},
		{"Events", errRows},
		{"UseNonce", s.UseNonce(ctx, rnd(32), 1, "n", t0)},
		{"UseNonce(Ephemeral)", s.UseNonce(store.Ephemeral(ctx), rnd(32), 1, "n", t0)},
		{"ConsumeToken(Ephemeral)", errConsume},
		{"WithTx", errTx},
		{"WithTx(Ephemeral)", errEphemeralTx},
		{"Throttle", errThrottle},
		{"Throttle(Ephemeral)", errEphemeralThrottle},
		{"Purge", errPurge},
		{"Ping", s.Ping(ctx)},
	}
}

// wantUnavailable fails unless every error is ErrUnavailable (and also
// target, when not nil).
func wantUnavailable(t *testing.T, what string, errs []pathErr, target error) {
	t.Helper()
	for _, e := range errs {
		if !errors.Is(e.err, store.ErrUnavailable) {
			t.Errorf("%s (%s): error %v, want ErrUnavailable", e.path, what, e.err)
		}
		if target != nil && !errors.Is(e.err, target) {
			t.Errorf("%s (%s): error %v, want %v in it", e.path, what, e.err, target)
		}
	}
}

// A closed store is unavailable, also for statements it ran before, and
// closing again does nothing.
func testClosedStore(t *testing.T, s store.Store) {
	for _, e := range everyPath(t.Context(), s) {
		if e.err != nil && !errors.Is(e.err, store.ErrNotFound) {
			t.Fatalf("%s before Close: %v", e.path, e.err)
		}
	}
	for range 2 {
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	wantUnavailable(t, "closed store", everyPath(t.Context(), s), nil)
}

// A deadline that has passed is ErrUnavailable, still context.DeadlineExceeded.
func testExpiredDeadline(t *testing.T, s store.Store) {
	ctx, cancel := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
	defer cancel()
	wantUnavailable(t, "expired deadline", everyPath(ctx, s), context.DeadlineExceeded)
}

// A caller that gave up (a client hung up) is context.Canceled, not an
// outage.
func testCanceledContext(t *testing.T, s store.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for _, e := range everyPath(ctx, s) {
		if !errors.Is(e.err, context.Canceled) || errors.Is(e.err, store.ErrUnavailable) {
			t.Errorf("%s (canceled context): error %v, want context.Canceled and not ErrUnavailable", e.path, e.err)
		}
	}
}

// A transaction of either class whose context ends before fn returns is
// not committed: a cancellation gives context.Canceled, a deadline
// ErrUnavailable.
func testContextEndsInTx(t *testing.T, s store.Store) {
	for _, c := range classes {
		t.Run(c.name, func(t *testing.T) { contextEndsInTx(t, s, c.c) })
	}
}

func contextEndsInTx(t *testing.T, s store.Store, c class) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	a := newAccount("alice@example.org")
	err := s.WithTx(c(ctx), func(q store.Queries) error {
		if err := q.CreateAccount(ctx, a); err != nil {
			return err
		}
		cancel()
		return nil
	})
	if !errors.Is(err, context.Canceled) || errors.Is(err, store.ErrUnavailable) {
		t.Errorf("WithTx canceled in fn: error %v, want context.Canceled and not ErrUnavailable", err)
	}
	_, err = s.AccountByUID(t.Context(), a.UID)
	wantErr(t, "AccountByUID(written in the canceled transaction)", err, store.ErrNotFound)

	ctx, cancel = context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	b := newAccount("bob@example.org")
	err = s.WithTx(c(ctx), func(q store.Queries) error {
		if err := q.CreateAccount(ctx, b); err != nil {
			return err
		}
		<-ctx.Done()
		return nil
	})
	wantUnavailable(t, "deadline passed in fn", []pathErr{{"WithTx", err}}, context.DeadlineExceeded)
	_, err = s.AccountByUID(t.Context(), b.UID)
	wantErr(t, "AccountByUID(written in the expired transaction)", err, store.ErrNotFound)
}
