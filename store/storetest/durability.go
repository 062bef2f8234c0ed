package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/keyserver/keyserver/protocol"
	"github.com/keyserver/keyserver/store"
)

// The durability classes (package store): an ephemeral transaction behaves
// as a durable one in every way a running store shows; only its flush
// differs, which sqlstore's own tests check through the database settings.
// The ephemeral cases of the ErrUnavailable and context paths are in
// availability.go.

// classes names both classes.
var classes = []struct {
	name string
	c    class
}{{"durable", durable}, {"ephemeral", store.Ephemeral}}

func testEphemeralTxCommit(t *testing.T, s store.Store) { txCommit(t, s, store.Ephemeral) }

func testEphemeralTxRollbackOnError(t *testing.T, s store.Store) {
	txRollbackOnError(t, s, store.Ephemeral)
}

func testEphemeralTxRollbackOnPanic(t *testing.T, s store.Store) {
	txRollbackOnPanic(t, s, store.Ephemeral)
}

// Ephemeral and durable writers, each reading before it writes, interleave
// without lock errors.
func testMixedConcurrentWriters(t *testing.T, s store.Store) {
	txConcurrentWriters(t, s, func(w, i int) class {
		if (w+i)%2 == 0 {
			return store.Ephemeral
		}
		return durable
	})
}

// A commit of either class is seen at once by the Store's own reads and by
// the next transaction of either class: a token created in one is consumed
// in the next.
func testCommitVisibleAcrossClasses(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := mustAccount(t, s, "alice@example.org")
	for range 5 {
		for _, w := range classes {
			for _, r := range classes {
				tok := newToken(protocol.AuthToken, a.UID)
				if err := s.WithTx(w.c(ctx), func(q store.Queries) error { return q.CreateToken(ctx, tok) }); err != nil {
					t.Fatalf("CreateToken in a %s transaction: %v", w.name, err)
				}
				if _, err := s.Token(ctx, protocol.AuthToken, tok.ID); err != nil {
					t.Fatalf("Token after a %s commit: %v", w.name, err)
				}
				err := s.WithTx(r.c(ctx), func(q store.Queries) error {
					_, err := q.ConsumeToken(ctx, protocol.AuthToken, tok.ID)
					return err
				})
				if err != nil {
					t.Fatalf("ConsumeToken in a %s transaction after a %s commit: %v", r.name, w.name, err)
				}
			}
		}
	}
	if n := countTokens(t, s, a.UID, protocol.AuthToken); n != 0 {
		t.Errorf("%d authTokens left, want 0", n)
	}
}

// Statements run on the Store outside a transaction under a context from
// store.Ephemeral (single-statement sign-in writes) are seen at once by
// reads and transactions of either class, and the other way round.
func testEphemeralStatements(t *testing.T, s store.Store) {
	ctx, ectx := t.Context(), store.Ephemeral(t.Context())
	a := mustAccount(t, s, "alice@example.org")
	for range 3 {
		tok := newToken(protocol.SRPToken, a.UID)
		if err := s.CreateToken(ectx, tok); err != nil {
			t.Fatalf("CreateToken(ephemeral): %v", err)
		}
		if _, err := s.Token(ctx, protocol.SRPToken, tok.ID); err != nil {
			t.Fatalf("Token after an ephemeral CreateToken: %v", err)
		}
		err := s.WithTx(ctx, func(q store.Queries) error {
			_, err := q.ConsumeToken(ctx, protocol.SRPToken, tok.ID)
			return err
		})
		if err != nil {
			t.Fatalf("durable ConsumeToken after an ephemeral CreateToken: %v", err)
		}
		durable := newToken(protocol.AuthToken, a.UID)
		if err := s.CreateToken(ctx, durable); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ConsumeToken(ectx, protocol.AuthToken, durable.ID); err != nil {
			t.Fatalf("ConsumeToken(ephemeral) of a durable token: %v", err)
		}
		_, err = s.ConsumeToken(ctx, protocol.AuthToken, durable.ID)
		wantErr(t, "ConsumeToken again", err, store.ErrNotFound)

		id := rnd(32)
		if err := s.UseNonce(ectx, id, 1, "n", t0.Add(time.Minute)); err != nil {
			t.Fatalf("UseNonce(ephemeral): %v", err)
		}
		wantErr(t, "UseNonce replayed durably", s.UseNonce(ctx, id, 1, "n", t0.Add(time.Minute)), store.ErrConflict)
		err = s.WithTx(ectx, func(q store.Queries) error { return q.UseNonce(ctx, id, 1, "n", t0.Add(time.Minute)) })
		wantErr(t, "UseNonce replayed in an ephemeral transaction", err, store.ErrConflict)
	}
	if n := countTokens(t, s, a.UID, protocol.SRPToken) + countTokens(t, s, a.UID, protocol.AuthToken); n != 0 {
		t.Errorf("%d tokens left, want 0", n)
	}
}

// A sign-in's ephemeral rows, then durable writes that depend on them (a
// device of the new session), then ephemeral writes on those, then a
// durable revocation: each step sees the ones before.
func testDurableAfterEphemeral(t *testing.T, s store.Store) {
	ctx, ectx := t.Context(), store.Ephemeral(t.Context())
	a := mustAccount(t, s, "alice@example.org")
	sess := newToken(protocol.SessionToken, a.UID)
	kf := newToken(protocol.KeyFetchToken, a.UID)
	kf.SessionID = sess.ID
	err := s.WithTx(ectx, func(q store.Queries) error {
		if err := q.UseNonce(ctx, sess.ID, 1, "n1", t0.Add(time.Minute)); err != nil {
			return err
		}
		if err := q.CreateToken(ctx, sess); err != nil {
			return err
		}
		if err := q.CreateToken(ctx, kf); err != nil {
			return err
		}
		return q.AppendEvent(ctx, newEvent(a.UID, t0))
	})
	if err != nil {
		t.Fatalf("ephemeral session/create: %v", err)
	}

	d := newDevice(a.UID, sess.ID)
	err = s.WithTx(ctx, func(q store.Queries) error {
		if err := q.CreateDevice(ctx, d); err != nil {
			return err
		}
		return q.AppendEvent(ctx, newEvent(a.UID, t0.Add(time.Millisecond)))
	})
	if err != nil {
		t.Fatalf("durable device registration on an ephemeral session: %v", err)
	}

	later := t0.Add(time.Hour)
	err = s.WithTx(ectx, func(q store.Queries) error {
		if err := q.UseNonce(ctx, sess.ID, 2, "n2", later); err != nil {
			return err
		}
		if touched, err := q.TouchDevice(ctx, d.ID, later, time.Minute); err != nil || !touched {
			return errors.Join(err, errors.New("TouchDevice wrote nothing"))
		}
		_, err := q.ConsumeToken(ctx, protocol.KeyFetchToken, kf.ID)
		return err
	})
	if err != nil {
		t.Fatalf("ephemeral writes on the durable device: %v", err)
	}
	got, err := s.DeviceBySession(ctx, sess.ID)
	if err != nil || !got.LastAccessAt.Equal(later) {
		t.Fatalf("DeviceBySession = %v, %v; want last access %v", got, err, later)
	}

	if err := s.WithTx(ctx, func(q store.Queries) error {
		return q.DeleteToken(ctx, protocol.SessionToken, sess.ID)
	}); err != nil {
		t.Fatalf("durable revocation of the session: %v", err)
	}
	_, err = s.DeviceBySession(ctx, sess.ID)
	wantErr(t, "DeviceBySession after the revocation", err, store.ErrNotFound)
	wantErr(t, "UseNonce replayed", s.UseNonce(ctx, sess.ID, 2, "n2", later), store.ErrConflict)
	if evs, err := s.Events(ctx, store.EventQuery{UID: a.UID}); err != nil || len(evs) != 2 {
		t.Errorf("Events = %d, %v; want 2", len(evs), err)
	}
}

// Errors map to the same sentinels in both classes.
func testEphemeralErrors(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := mustAccount(t, s, "alice@example.org")
	sess := mustToken(t, s, newToken(protocol.SessionToken, a.UID))
	mustDevice(t, s, newDevice(a.UID, sess.ID))
	if err := s.UseNonce(ctx, sess.ID, 1, "n", t0); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		fn   func(q store.Queries) error
		want error
	}{
		{"CreateAccount(email taken)", func(q store.Queries) error {
			return q.CreateAccount(ctx, newAccount("ALICE@example.org"))
		}, store.ErrConflict},
		{"UseNonce(recorded)", func(q store.Queries) error {
			return q.UseNonce(ctx, sess.ID, 1, "n", t0)
		}, store.ErrConflict},
		{"CreateDevice(session has one)", func(q store.Queries) error {
			return q.CreateDevice(ctx, newDevice(a.UID, sess.ID))
		}, store.ErrConflict},
		{"ConsumeToken(unknown)", func(q store.Queries) error {
			_, err := q.ConsumeToken(ctx, protocol.AuthToken, rnd(32))
			return err
		}, store.ErrNotFound},
		{"CreateToken(unknown account)", func(q store.Queries) error {
			return q.CreateToken(ctx, newToken(protocol.AuthToken, rnd(16)))
		}, store.ErrNotFound},
		{"DeleteToken(unknown)", func(q store.Queries) error {
			return q.DeleteToken(ctx, protocol.SessionToken, rnd(32))
		}, store.ErrNotFound},
	}
	for _, c := range classes {
		for _, tc := range cases {
			wantErr(t, tc.name+" in a "+c.name+" transaction", s.WithTx(c.c(ctx), tc.fn), tc.want)
		}
	}
	// The refused writes changed nothing; the store still takes both.
	if n := countTokens(t, s, a.UID, protocol.SessionToken); n != 1 {
		t.Errorf("%d sessions, want 1", n)
	}
	mustTxAccount(t, s, store.Ephemeral, "bob@example.org")
	mustTxAccount(t, s, durable, "carol@example.org")
}

// Throttle counts of both classes add up under one name.
func testEphemeralThrottle(t *testing.T, s store.Store) {
	ctx := t.Context()
	for i, c := range []class{store.Ephemeral, durable} {
		if retry, err := s.Throttle(c(ctx), "mixed", t0.Add(time.Duration(i)*time.Second), time.Minute, 2); err != nil || retry != 0 {
			t.Fatalf("Throttle #%d = %v, %v; want counted", i+1, retry, err)
		}
	}
	for _, c := range []class{store.Ephemeral, durable} {
		if retry, err := s.Throttle(c(ctx), "mixed", t0.Add(2*time.Second), time.Minute, 2); err != nil || retry != 58*time.Second {
			t.Errorf("Throttle over the limit = %v, %v; want 58s", retry, err)
		}
	}
}
