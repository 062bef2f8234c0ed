package storetest

import (
	"testing"
	"time"

	"github.com/keyserver/keyserver/store"
)

func testReplayRecords(t *testing.T, s store.Store) {
	ctx := t.Context()
	tok, exp := rnd(32), t0.Add(time.Minute)
	if err := s.UseNonce(ctx, tok, 1000, "abc", exp); err != nil {
		t.Fatalf("UseNonce: %v", err)
	}
	wantErr(t, "UseNonce(reused)", s.UseNonce(ctx, tok, 1000, "abc", exp), store.ErrConflict)
	for _, c := range []struct {
		tok   []byte
		ts    int64
		nonce string
	}{{tok, 1001, "abc"}, {tok, 1000, "abd"}, {rnd(32), 1000, "abc"}} {
		if err := s.UseNonce(ctx, c.tok, c.ts, c.nonce, exp); err != nil {
			t.Errorf("UseNonce(differing in one part): %v", err)
		}
	}

	h := rnd(32)
	if err := s.UseAssertion(ctx, h, exp); err != nil {
		t.Fatalf("UseAssertion: %v", err)
	}
	wantErr(t, "UseAssertion(reused)", s.UseAssertion(ctx, h, exp), store.ErrConflict)
	if err := s.UseAssertion(ctx, rnd(32), exp); err != nil {
		t.Errorf("UseAssertion(other hash): %v", err)
	}
}

// testReplayConflictInTx checks that a replay conflict leaves the
// transaction usable (it must not be a failed statement that aborts it).
func testReplayConflictInTx(t *testing.T, s store.Store) {
	ctx := t.Context()
	tok, h, exp := rnd(32), rnd(32), t0.Add(time.Minute)
	var a *store.Account
	err := s.WithTx(ctx, func(q store.Queries) error {
		if err := q.UseNonce(ctx, tok, 1, "n", exp); err != nil {
			return err
		}
		wantErr(t, "UseNonce(reused, in tx)", q.UseNonce(ctx, tok, 1, "n", exp), store.ErrConflict)
		if err := q.UseAssertion(ctx, h, exp); err != nil {
			return err
		}
		wantErr(t, "UseAssertion(reused, in tx)", q.UseAssertion(ctx, h, exp), store.ErrConflict)
		a = mustAccount(t, q, "alice@example.org")
		return nil
	})
	if err != nil {
		t.Fatalf("WithTx: %v", err)
	}
	if _, err := s.AccountByUID(ctx, a.UID); err != nil {
		t.Errorf("AccountByUID after commit: %v", err)
	}
	wantErr(t, "UseNonce(committed)", s.UseNonce(ctx, tok, 1, "n", exp), store.ErrConflict)
	wantErr(t, "UseAssertion(committed)", s.UseAssertion(ctx, h, exp), store.ErrConflict)
}
