package storetest

import (
	"bytes"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/keyserver/keyserver/store"
)

// newRecoveryKey returns a recovery key of uid with a random id and data.
func newRecoveryKey(uid []byte) *store.RecoveryKey {
	return &store.RecoveryKey{UID: uid, ID: rnd(16), Data: rnd(60), CreatedAt: t0}
}

// mustRecoveryKey stores k and fails unless replaced is as wanted.
func mustRecoveryKey(t *testing.T, q store.Queries, k *store.RecoveryKey, replaced bool) *store.RecoveryKey {
	t.Helper()
	got, err := q.PutRecoveryKey(t.Context(), k)
	if err != nil {
		t.Fatalf("PutRecoveryKey: %v", err)
	}
	if got != replaced {
		t.Errorf("PutRecoveryKey: replaced = %v, want %v", got, replaced)
	}
	return k
}

// wantRecoveryKey fails unless q reads want as uid's recovery key, or,
// with want nil, reads none.
func wantRecoveryKey(t *testing.T, what string, q store.Queries, uid []byte, want *store.RecoveryKey) {
	t.Helper()
	got, err := q.RecoveryKey(t.Context(), uid)
	if want == nil {
		if got != nil || !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s: RecoveryKey found a key: %v, error %v; want none (ErrNotFound)", what, got != nil, err)
		}
		return
	}
	if err != nil {
		t.Fatalf("%s: RecoveryKey: %v", what, err)
	}
	sameRecord(t, got, want)
}

func testRecoveryKey(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := mustAccount(t, s, "alice@example.org")

	wantRecoveryKey(t, "before any", s, a.UID, nil)
	wantErr(t, "DeleteRecoveryKey(none)", s.DeleteRecoveryKey(ctx, a.UID), store.ErrNotFound)

	// CreatedAt comes back in UTC, truncated to the millisecond.
	k := newRecoveryKey(a.UID)
	k.CreatedAt = time.Date(2024, 5, 6, 9, 8, 9, 123_456_789, time.FixedZone("UTC+2", 2*3600))
	mustRecoveryKey(t, s, k, false)
	want := *k
	want.CreatedAt = time.Date(2024, 5, 6, 7, 8, 9, 123_000_000, time.UTC)
	wantRecoveryKey(t, "stored", s, a.UID, &want)

	// Replaced: the new values win, all of them.
	k2 := newRecoveryKey(a.UID)
	k2.CreatedAt = t0.Add(time.Hour)
	mustRecoveryKey(t, s, k2, true)
	wantRecoveryKey(t, "replaced", s, a.UID, k2)
	mustRecoveryKey(t, s, k2, true) // the same values again
	wantRecoveryKey(t, "replaced by itself", s, a.UID, k2)

	if err := s.DeleteRecoveryKey(ctx, a.UID); err != nil {
		t.Fatalf("DeleteRecoveryKey: %v", err)
	}
	wantRecoveryKey(t, "deleted", s, a.UID, nil)
	wantErr(t, "DeleteRecoveryKey(deleted)", s.DeleteRecoveryKey(ctx, a.UID), store.ErrNotFound)
	mustRecoveryKey(t, s, newRecoveryKey(a.UID), false) // a new one after the delete

	// An unknown account has none and gets none.
	unknown := rnd(16)
	replaced, err := s.PutRecoveryKey(ctx, newRecoveryKey(unknown))
	if replaced || !errors.Is(err, store.ErrNotFound) {
		t.Errorf("PutRecoveryKey(unknown account) = %v, %v; want false, ErrNotFound", replaced, err)
	}
	wantRecoveryKey(t, "unknown account", s, unknown, nil)
	wantErr(t, "DeleteRecoveryKey(unknown account)", s.DeleteRecoveryKey(ctx, unknown), store.ErrNotFound)
}

// The recovery keys of two accounts are independent.
func testRecoveryKeyAccounts(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := mustAccount(t, s, "alice@example.org")
	b := mustAccount(t, s, "bob@example.org")
	ka := mustRecoveryKey(t, s, newRecoveryKey(a.UID), false)
	kb := mustRecoveryKey(t, s, newRecoveryKey(b.UID), false) // not a replacement of alice's
	wantRecoveryKey(t, "alice", s, a.UID, ka)
	wantRecoveryKey(t, "bob", s, b.UID, kb)

	ka2 := mustRecoveryKey(t, s, newRecoveryKey(a.UID), true)
	wantRecoveryKey(t, "alice replaced", s, a.UID, ka2)
	wantRecoveryKey(t, "bob after alice's replacement", s, b.UID, kb)

	if err := s.DeleteRecoveryKey(ctx, b.UID); err != nil {
		t.Fatalf("DeleteRecoveryKey(bob): %v", err)
	}
	wantRecoveryKey(t, "bob deleted", s, b.UID, nil)
	wantRecoveryKey(t, "alice after bob's delete", s, a.UID, ka2)
}

// DeleteAccount and DeleteUnverifiedAccount delete the account's recovery
// key with it (a new account with the same uid has none), and no other's.
func testDeleteAccountDeletesRecoveryKey(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := mustAccount(t, s, "alice@example.org")
	b := mustAccount(t, s, "bob@example.org")
	mustRecoveryKey(t, s, newRecoveryKey(a.UID), false)
	kb := mustRecoveryKey(t, s, newRecoveryKey(b.UID), false)

	if err := s.DeleteAccount(ctx, a.UID); err != nil {
		t.Fatalf("DeleteAccount: %v", err)
	}
	wantRecoveryKey(t, "deleted account", s, a.UID, nil)
	wantErr(t, "DeleteRecoveryKey(deleted account)", s.DeleteRecoveryKey(ctx, a.UID), store.ErrNotFound)
	again := newAccount("alice@example.org")
	again.UID = a.UID
	if err := s.CreateAccount(ctx, again); err != nil {
		t.Fatalf("CreateAccount(same uid again): %v", err)
	}
	wantRecoveryKey(t, "account created again with the uid", s, a.UID, nil)
	wantRecoveryKey(t, "the other account", s, b.UID, kb)

	// The purge of accounts never verified.
	u := newAccount("carol@example.org")
	if err := s.CreateAccount(ctx, u); err != nil {
		t.Fatal(err)
	}
	mustRecoveryKey(t, s, newRecoveryKey(u.UID), false)
	if err := s.DeleteUnverifiedAccount(ctx, u.UID, t0.Add(time.Hour)); err != nil {
		t.Fatalf("DeleteUnverifiedAccount: %v", err)
	}
	wantRecoveryKey(t, "deleted unverified account", s, u.UID, nil)
	wantRecoveryKey(t, "the other account after the purge", s, b.UID, kb)
}

// In a transaction the recovery key is read back, and it is committed or
// rolled back with the transaction. A recovery key not found leaves the
// transaction usable (a reset deletes the key if there is one, 6.4 and
// RK.6, and goes on).
func testRecoveryKeyInTx(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := mustAccount(t, s, "alice@example.org")
	errRollback := errors.New("roll back")

	// Put, rolled back: none.
	err := s.WithTx(ctx, func(q store.Queries) error {
		k := mustRecoveryKey(t, q, newRecoveryKey(a.UID), false)
		wantRecoveryKey(t, "put in the transaction", q, a.UID, k)
		return errRollback
	})
	if !errors.Is(err, errRollback) {
		t.Fatalf("WithTx = %v, want fn's error", err)
	}
	wantRecoveryKey(t, "put rolled back", s, a.UID, nil)

	// Put, committed, after the misses of a reset.
	var k *store.RecoveryKey
	err = s.WithTx(ctx, func(q store.Queries) error {
		wantErr(t, "DeleteRecoveryKey(none) in a transaction", q.DeleteRecoveryKey(ctx, a.UID), store.ErrNotFound)
		if _, err := q.PutRecoveryKey(ctx, newRecoveryKey(rnd(16))); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("PutRecoveryKey(unknown account) in a transaction: %v, want ErrNotFound", err)
		}
		wantRecoveryKey(t, "none in the transaction", q, a.UID, nil)
		k = mustRecoveryKey(t, q, newRecoveryKey(a.UID), false)
		return nil
	})
	if err != nil {
		t.Fatalf("WithTx: %v", err)
	}
	wantRecoveryKey(t, "put committed", s, a.UID, k)

	// Replaced, and deleted, rolled back: the first one stays.
	err = s.WithTx(ctx, func(q store.Queries) error {
		k2 := mustRecoveryKey(t, q, newRecoveryKey(a.UID), true)
		wantRecoveryKey(t, "replaced in the transaction", q, a.UID, k2)
		return errRollback
	})
	if !errors.Is(err, errRollback) {
		t.Fatalf("WithTx = %v, want fn's error", err)
	}
	wantRecoveryKey(t, "replacement rolled back", s, a.UID, k)
	err = s.WithTx(ctx, func(q store.Queries) error {
		if err := q.DeleteRecoveryKey(ctx, a.UID); err != nil {
			t.Errorf("DeleteRecoveryKey in a transaction: %v", err)
		}
		wantRecoveryKey(t, "deleted in the transaction", q, a.UID, nil)
		return errRollback
	})
	if !errors.Is(err, errRollback) {
		t.Fatalf("WithTx = %v, want fn's error", err)
	}
	wantRecoveryKey(t, "delete rolled back", s, a.UID, k)

	// Deleted with the account in a transaction, committed.
	err = s.WithTx(ctx, func(q store.Queries) error {
		if err := q.DeleteAccount(ctx, a.UID); err != nil {
			return err
		}
		wantRecoveryKey(t, "account deleted in the transaction", q, a.UID, nil)
		return nil
	})
	if err != nil {
		t.Fatalf("WithTx(DeleteAccount): %v", err)
	}
	wantRecoveryKey(t, "account deleted", s, a.UID, nil)
}

// Concurrent Puts of one account, on the store and in transactions, all
// succeed: exactly one finds none to replace, and the key left is one of
// theirs; beside concurrent Deletes they succeed too.
func testRecoveryKeyConcurrent(t *testing.T, s store.Store) {
	ctx := t.Context()
	for round := range 3 {
		a := mustAccount(t, s, "alice"+string(rune('a'+round))+"@example.org")
		const n = 8
		keys := make([]*store.RecoveryKey, n)
		replaced := make([]bool, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			keys[i] = newRecoveryKey(a.UID)
			wg.Go(func() {
				<-start
				var err error
				if i%2 == 0 {
					replaced[i], err = s.PutRecoveryKey(ctx, keys[i])
				} else {
					err = s.WithTx(ctx, func(q store.Queries) error {
						var err error
						replaced[i], err = q.PutRecoveryKey(ctx, keys[i])
						return err
					})
				}
				if err != nil {
					t.Errorf("concurrent PutRecoveryKey: %v", err)
				}
			})
		}
		close(start)
		wg.Wait()
		fresh := 0
		for _, r := range replaced {
			if !r {
				fresh++
			}
		}
		if fresh != 1 {
			t.Errorf("%d of %d concurrent Puts found no key to replace, want 1", fresh, n)
		}
		got, err := s.RecoveryKey(ctx, a.UID)
		if err != nil {
			t.Fatalf("RecoveryKey: %v", err)
		}
		found := false
		for _, k := range keys {
			if bytes.Equal(got.ID, k.ID) {
				sameRecord(t, got, k)
				found = true
			}
		}
		if !found {
			t.Error("the recovery key left is none of those put")
		}
	}

	// Puts beside Deletes: every Put succeeds (a Delete between its
	// statements does not make it fail), every Delete finds a key or none.
	a := mustAccount(t, s, "bob@example.org")
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for range 25 {
				if w%2 == 0 {
					if _, err := s.PutRecoveryKey(ctx, newRecoveryKey(a.UID)); err != nil {
						t.Errorf("PutRecoveryKey beside deletes: %v", err)
						return
					}
				} else if err := s.DeleteRecoveryKey(ctx, a.UID); err != nil && !errors.Is(err, store.ErrNotFound) {
					t.Errorf("DeleteRecoveryKey beside puts: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	if _, err := s.RecoveryKey(ctx, a.UID); err != nil && !errors.Is(err, store.ErrNotFound) {
		t.Errorf("RecoveryKey after puts and deletes: %v", err)
	}
}
