package storetest

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/keyserver/keyserver/protocol"
	"github.com/keyserver/keyserver/store"
)

// Abuse-protection data (store.CustomsQueries, spec 14).

func mustAddCounts(t *testing.T, q store.Queries, cs ...store.Count) {
	t.Helper()
	if err := q.AddCounts(t.Context(), cs...); err != nil {
		t.Fatalf("AddCounts: %v", err)
	}
}

// NthCounts finds the N-th most recent count of each probe after Since,
// keyed exactly by counter, fold and ip.
func testCounts(t *testing.T, s store.Store) {
	ctx := t.Context()
	k := store.CountKey{Fold: "alice@example.org", IP: "192.0.2.1"}
	for i := range 5 {
		at := t0.Add(time.Duration(i) * time.Minute)
		mustAddCounts(t, s, store.Count{Counter: "R1", Key: k, At: at, ExpiresAt: at.Add(time.Hour)})
	}
	mustAddCounts(t, s,
		store.Count{Counter: "R2", Key: store.CountKey{Fold: k.Fold}, At: t0, ExpiresAt: t0.Add(time.Hour)},
		store.Count{Counter: "R3", Key: store.CountKey{IP: k.IP}, At: t0, ExpiresAt: t0.Add(time.Hour)},
	)
	probes := []store.CountProbe{
		{Counter: "R1", Key: k, Since: t0.Add(-time.Hour), N: 5},                     // the oldest of 5
		{Counter: "R1", Key: k, Since: t0.Add(-time.Hour), N: 2},                     // the 4th minute
		{Counter: "R1", Key: k, Since: t0, N: 5},                                     // t0 is not after t0: 4 left
		{Counter: "R1", Key: store.CountKey{Fold: k.Fold}, Since: time.Time{}, N: 1}, // another key
		{Counter: "R2", Key: store.CountKey{Fold: k.Fold}, Since: time.Time{}, N: 1},
		{Counter: "R3", Key: store.CountKey{IP: k.IP}, Since: time.Time{}, N: 2},
	}
	got, err := s.NthCounts(ctx, probes)
	if err != nil {
		t.Fatalf("NthCounts: %v", err)
	}
	want := []time.Time{t0, t0.Add(3 * time.Minute), {}, {}, t0, {}}
	if len(got) != len(want) {
		t.Fatalf("NthCounts: %d answers, want %d", len(got), len(want))
	}
	for i := range want {
		if !got[i].Equal(want[i]) {
			t.Errorf("probe %d: %v, want %v", i, got[i], want[i])
		}
	}
	if got, err := s.NthCounts(ctx, nil); err != nil || len(got) != 0 {
		t.Errorf("NthCounts(none) = %v, %v", got, err)
	}
	// In a transaction too.
	err = s.WithTx(store.Ephemeral(ctx), func(q store.Queries) error {
		got, err := q.NthCounts(ctx, probes[:1])
		if err == nil && !got[0].Equal(t0) {
			t.Errorf("NthCounts in tx = %v", got)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	cs, err := s.Counts(ctx, store.CountFilter{Fold: k.Fold})
	if err != nil || len(cs) != 6 {
		t.Fatalf("Counts(fold) = %d, %v; want 6", len(cs), err)
	}
	if cs[0].Counter != "R1" || !cs[0].At.Equal(t0.Add(4*time.Minute)) || !cs[0].ExpiresAt.Equal(t0.Add(64*time.Minute)) {
		t.Errorf("Counts order: first %+v, want R1 newest", cs[0])
	}
	cs, err = s.Counts(ctx, store.CountFilter{Counters: []string{"R1"}, Since: t0.Add(2 * time.Minute)})
	if err != nil || len(cs) != 2 {
		t.Errorf("Counts(R1 since) = %d, %v; want 2", len(cs), err)
	}
	cs, err = s.Counts(ctx, store.CountFilter{IP: k.IP, Counters: []string{"R1", "R3"}})
	if err != nil || len(cs) != 6 {
		t.Errorf("Counts(ip) = %d, %v; want 6", len(cs), err)
	}
	n, err := s.DeleteCounts(ctx, store.CountFilter{Counters: []string{"R1"}, Fold: k.Fold, IP: "198.51.100.1"})
	if err != nil || n != 0 {
		t.Errorf("DeleteCounts(other ip) = %d, %v", n, err)
	}
	n, err = s.DeleteCounts(ctx, store.CountFilter{Counters: []string{"R1", "R2"}, Fold: k.Fold})
	if err != nil || n != 6 {
		t.Errorf("DeleteCounts(R1, R2 of fold) = %d, %v; want 6", n, err)
	}
	if cs, err := s.Counts(ctx, store.CountFilter{}); err != nil || len(cs) != 1 || cs[0].Counter != "R3" {
		t.Errorf("Counts after delete = %+v, %v; want R3 alone", cs, err)
	}
	// Purge drops what expired.
	if _, err := s.Purge(ctx, t0.Add(2*time.Hour), t0.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if cs, err := s.Counts(ctx, store.CountFilter{}); err != nil || len(cs) != 0 {
		t.Errorf("Counts after Purge = %d, %v", len(cs), err)
	}
}

// LockCounts makes check-then-count exact under concurrency: of many
// concurrent transactions that each count only while fewer than limit
// counts exist, exactly limit count.
func testLockCountsConcurrent(t *testing.T, s store.Store) {
	ctx := t.Context()
	const limit, workers = 5, 16
	k := store.CountKey{Fold: "race@example.org"}
	var wg sync.WaitGroup
	var mu sync.Mutex
	counted := 0
	for i := range workers {
		wg.Go(func() {
			err := s.WithTx(store.Ephemeral(ctx), func(q store.Queries) error {
				if err := q.LockCounts(ctx, k, store.CountKey{IP: "192.0.2.9"}); err != nil {
					return err
				}
				at, err := q.NthCounts(ctx, []store.CountProbe{{Counter: "c", Key: k, N: limit}})
				if err != nil || !at[0].IsZero() {
					return err
				}
				now := t0.Add(time.Duration(i) * time.Millisecond)
				if err := q.AddCounts(ctx, store.Count{Counter: "c", Key: k, At: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
					return err
				}
				mu.Lock()
				counted++
				mu.Unlock()
				return nil
			})
			if err != nil {
				t.Errorf("worker: %v", err)
			}
		})
	}
	wg.Wait()
	cs, err := s.Counts(ctx, store.CountFilter{Counters: []string{"c"}})
	if err != nil || len(cs) != limit || counted != limit {
		t.Errorf("counted %d (%d rows, %v), want exactly %d", counted, len(cs), err, limit)
	}
	// Outside a transaction it does nothing (and does not fail).
	if err := s.LockCounts(ctx, k); err != nil {
		t.Errorf("LockCounts outside a transaction: %v", err)
	}
}

// A block is marked once per window: the first refusal is audited.
func testMarkBlocked(t *testing.T, s store.Store) {
	ctx := t.Context()
	k := store.CountKey{IP: "192.0.2.1"}
	mark := func(rule string, now, until time.Time) bool {
		t.Helper()
		first, err := s.MarkBlocked(ctx, rule, k, now, until)
		if err != nil {
			t.Fatalf("MarkBlocked: %v", err)
		}
		return first
	}
	if !mark("R3", t0, t0.Add(time.Minute)) {
		t.Error("first mark not first")
	}
	if mark("R3", t0.Add(time.Second), t0.Add(2*time.Minute)) {
		t.Error("second mark in the window is first")
	}
	if !mark("R4", t0.Add(time.Second), t0.Add(time.Minute)) {
		t.Error("another rule's mark not first")
	}
	if !mark("R3", t0.Add(time.Minute), t0.Add(2*time.Minute)) {
		t.Error("mark after the window not first")
	}
	if err := s.DeleteBlocks(ctx, store.CountFilter{Counters: []string{"R3"}, IP: k.IP}); err != nil {
		t.Fatal(err)
	}
	if !mark("R3", t0.Add(time.Minute), t0.Add(3*time.Minute)) {
		t.Error("mark after DeleteBlocks not first")
	}
	if mark("R4", t0.Add(2*time.Second), t0.Add(time.Minute)) {
		t.Error("DeleteBlocks of R3 removed R4's mark")
	}
	// Purge removes ended marks.
	if _, err := s.Purge(ctx, t0.Add(time.Hour), t0); err != nil {
		t.Fatal(err)
	}
	if !mark("R4", t0.Add(time.Hour), t0.Add(2*time.Hour)) {
		t.Error("mark after Purge not first")
	}
}

// Known ips belong to the uid: they expire, and go with the account.
func testKnownIPs(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := mustAccount(t, s, "known@example.org")
	known := func(ip string, now time.Time) bool {
		t.Helper()
		ok, err := s.KnownIP(ctx, a.UID, ip, now)
		if err != nil {
			t.Fatalf("KnownIP: %v", err)
		}
		return ok
	}
	if known("192.0.2.1", t0) {
		t.Error("unknown ip known")
	}
	if err := s.AddKnownIP(ctx, a.UID, "192.0.2.1", t0.Add(time.Hour), t0); err != nil {
		t.Fatal(err)
	}
	if !known("192.0.2.1", t0) || known("192.0.2.2", t0) || known("192.0.2.1", t0.Add(time.Hour)) {
		t.Error("KnownIP after AddKnownIP wrong")
	}
	if err := s.AddKnownIP(ctx, a.UID, "192.0.2.1", t0.Add(3*time.Hour), t0.Add(30*time.Minute)); err != nil { // still long enough
		t.Fatal(err)
	}
	if known("192.0.2.1", t0.Add(time.Hour)) {
		t.Error("AddKnownIP extended an expiry after renewBefore")
	}
	if err := s.AddKnownIP(ctx, a.UID, "192.0.2.1", t0.Add(2*time.Hour), t0.Add(90*time.Minute)); err != nil { // extends
		t.Fatal(err)
	}
	if !known("192.0.2.1", t0.Add(time.Hour)) {
		t.Error("AddKnownIP did not extend")
	}
	wantErr(t, "AddKnownIP(unknown account)", s.AddKnownIP(ctx, rnd(16), "192.0.2.1", t0, t0), store.ErrNotFound)
	if err := s.DeleteAccount(ctx, a.UID); err != nil {
		t.Fatal(err)
	}
	b := newAccount("known@example.org")
	b.UID = a.UID // the same uid again: nothing survived
	if err := s.CreateAccount(ctx, b); err != nil {
		t.Fatal(err)
	}
	if known("192.0.2.1", t0) {
		t.Error("known ip survived the account")
	}
	if err := s.AddKnownIP(ctx, b.UID, "198.51.100.7", t0.Add(time.Minute), t0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Purge(ctx, t0.Add(time.Hour), t0); err != nil {
		t.Fatal(err)
	}
	if known("198.51.100.7", t0) {
		t.Error("expired known ip not purged")
	}
}

// Token origins go with their token; TokenOrigins lists the account's
// tokens of one type with them.
func testTokenOrigins(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := mustAccount(t, s, "origin@example.org")
	one := newToken(protocol.ForgotPasswordToken, a.UID)
	one.ExpiresAt = t0.Add(15 * time.Minute)
	two := newToken(protocol.ForgotPasswordToken, a.UID)
	two.CreatedAt = t0.Add(time.Second)
	two.ExpiresAt = t0.Add(16 * time.Minute)
	srpTok := newToken(protocol.SRPToken, a.UID)
	for _, tok := range []*store.Token{one, two, srpTok} {
		mustToken(t, s, tok)
	}
	err := s.WithTx(ctx, func(q store.Queries) error {
		if err := q.SetTokenOrigin(ctx, &store.TokenOrigin{TokenID: one.ID, IP: "192.0.2.1"}); err != nil {
			return err
		}
		return q.SetTokenOrigin(ctx, &store.TokenOrigin{TokenID: srpTok.ID, IP: "2001:db8::/64", Unblocked: true})
	})
	if err != nil {
		t.Fatal(err)
	}
	wantErr(t, "SetTokenOrigin(unknown token)", s.SetTokenOrigin(ctx, &store.TokenOrigin{TokenID: rnd(32), IP: "x"}), store.ErrNotFound)
	o, err := s.TokenOrigin(ctx, srpTok.ID)
	if err != nil || o.IP != "2001:db8::/64" || !o.Unblocked {
		t.Errorf("TokenOrigin(srp) = %+v, %v", o, err)
	}
	_, err = s.TokenOrigin(ctx, two.ID)
	wantErr(t, "TokenOrigin(none recorded)", err, store.ErrNotFound)
	origins, err := s.TokenOrigins(ctx, a.UID, protocol.ForgotPasswordToken)
	if err != nil || len(origins) != 2 {
		t.Fatalf("TokenOrigins = %+v, %v", origins, err)
	}
	if !slices.Equal(origins[0].TokenID, one.ID) || origins[0].IP != "192.0.2.1" || origins[0].Unblocked || !origins[0].ExpiresAt.Equal(one.ExpiresAt) ||
		!slices.Equal(origins[1].TokenID, two.ID) || origins[1].IP != "" || !origins[1].ExpiresAt.Equal(two.ExpiresAt) {
		t.Errorf("TokenOrigins = %+v", origins)
	}
	if _, err := s.ConsumeToken(ctx, protocol.SRPToken, srpTok.ID); err != nil {
		t.Fatal(err)
	}
	_, err = s.TokenOrigin(ctx, srpTok.ID)
	wantErr(t, "TokenOrigin(consumed token)", err, store.ErrNotFound)
	// A token with the same id later has no origin left over.
	mustToken(t, s, srpTok)
	_, err = s.TokenOrigin(ctx, srpTok.ID)
	wantErr(t, "TokenOrigin(new token, old id)", err, store.ErrNotFound)
}

// SetTokensExpiry gives tokens without a lifetime one, and only them.
func testSetTokensExpiry(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := mustAccount(t, s, "expiry@example.org")
	open := mustToken(t, s, newToken(protocol.KeyFetchToken, a.UID))
	timed := newToken(protocol.KeyFetchToken, a.UID)
	timed.ExpiresAt = t0.Add(time.Minute)
	mustToken(t, s, timed)
	sess := mustToken(t, s, newToken(protocol.SessionToken, a.UID))
	if err := s.SetTokensExpiry(ctx, a.UID, protocol.KeyFetchToken, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		tok  *store.Token
		want time.Time
	}{{open, t0.Add(time.Hour)}, {timed, t0.Add(time.Minute)}, {sess, time.Time{}}} {
		got, err := s.Token(ctx, c.tok.Type, c.tok.ID)
		if err != nil || !got.ExpiresAt.Equal(c.want) {
			t.Errorf("%s expiry = %v, %v; want %v", c.tok.Type, got.ExpiresAt, err, c.want)
		}
	}
}

// Unblock codes: listed while live, deleted once, gone with the account.
func testUnblockCodes(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := mustAccount(t, s, "unblock@example.org")
	c1 := &store.UnblockCode{ID: rnd(16), UID: a.UID, Code: "12345678", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	c2 := &store.UnblockCode{ID: rnd(16), UID: a.UID, Code: "87654321", CreatedAt: t0.Add(time.Minute), ExpiresAt: t0.Add(61 * time.Minute)}
	for _, c := range []*store.UnblockCode{c2, c1} {
		if err := s.CreateUnblockCode(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	wantErr(t, "CreateUnblockCode(unknown account)",
		s.CreateUnblockCode(ctx, &store.UnblockCode{ID: rnd(16), UID: rnd(16), Code: "1", CreatedAt: t0, ExpiresAt: t0}), store.ErrNotFound)
	cs, err := s.UnblockCodes(ctx, a.UID, t0.Add(30*time.Minute))
	if err != nil || len(cs) != 2 {
		t.Fatalf("UnblockCodes = %d, %v", len(cs), err)
	}
	sameRecord(t, &cs[0], c1)
	sameRecord(t, &cs[1], c2)
	if cs, err := s.UnblockCodes(ctx, a.UID, t0.Add(time.Hour)); err != nil || len(cs) != 1 {
		t.Errorf("UnblockCodes after the first expired = %d, %v", len(cs), err)
	}
	if err := s.DeleteUnblockCode(ctx, c1.ID); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "DeleteUnblockCode(again)", s.DeleteUnblockCode(ctx, c1.ID), store.ErrNotFound)
	if _, err := s.Purge(ctx, t0.Add(2*time.Hour), t0); err != nil {
		t.Fatal(err)
	}
	if cs, err := s.UnblockCodes(ctx, a.UID, t0); err != nil || len(cs) != 0 {
		t.Errorf("UnblockCodes after Purge = %d, %v", len(cs), err)
	}
	c3 := &store.UnblockCode{ID: rnd(16), UID: a.UID, Code: "11112222", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	if err := s.CreateUnblockCode(ctx, c3); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteAccount(ctx, a.UID); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "DeleteUnblockCode(account gone)", s.DeleteUnblockCode(ctx, c3.ID), store.ErrNotFound)
}

// Unverified accounts are found and deleted only while unverified, not
// disabled and old enough.
func testUnverifiedAccounts(t *testing.T, s store.Store) {
	ctx := t.Context()
	old := mustAccount(t, s, "old@example.org")
	verified := newAccount("verified@example.org")
	verified.Verified = true
	disabled := newAccount("disabled@example.org")
	disabled.Disabled = true
	young := newAccount("young@example.org")
	young.CreatedAt = t0.Add(time.Hour)
	for _, a := range []*store.Account{verified, disabled, young} {
		if err := s.CreateAccount(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	before := t0.Add(time.Minute)
	uids, err := s.UnverifiedAccounts(ctx, before, 10)
	if err != nil || len(uids) != 1 || !slices.Equal(uids[0], old.UID) {
		t.Fatalf("UnverifiedAccounts = %x, %v; want the old one", uids, err)
	}
	for _, a := range []*store.Account{verified, disabled, young} {
		wantErr(t, "DeleteUnverifiedAccount("+a.Email+")", s.DeleteUnverifiedAccount(ctx, a.UID, before), store.ErrNotFound)
	}
	if err := s.DeleteUnverifiedAccount(ctx, old.UID, before); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AccountByUID(ctx, old.UID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleted account still there: %v", err)
	}
	if uids, err := s.UnverifiedAccounts(ctx, t0.Add(2*time.Hour), 10); err != nil || len(uids) != 1 {
		t.Errorf("UnverifiedAccounts(later) = %d, %v; want the young one", len(uids), err)
	}
}
