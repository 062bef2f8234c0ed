package storetest

import (
	"testing"
	"time"

	"github.com/keyserver/keyserver/protocol"
	"github.com/keyserver/keyserver/store"
)

func testPurge(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := t0.Add(time.Hour)
	expired, live := now.Add(-time.Millisecond), now.Add(time.Minute)
	a := mustAccount(t, s, "alice@example.org")

	oldNonce, newNonce := rnd(32), rnd(32)
	for _, err := range []error{
		s.UseNonce(ctx, oldNonce, 1, "n", expired),
		s.UseNonce(ctx, newNonce, 1, "n", live),
	} {
		if err != nil {
			t.Fatalf("UseNonce: %v", err)
		}
	}
	oldHash, newHash := rnd(32), rnd(32)
	for _, err := range []error{s.UseAssertion(ctx, oldHash, expired), s.UseAssertion(ctx, newHash, live)} {
		if err != nil {
			t.Fatalf("UseAssertion: %v", err)
		}
	}
	oldSRP := newToken(protocol.SRPToken, a.UID)
	oldSRP.ExpiresAt = expired
	liveSRP := newToken(protocol.SRPToken, a.UID)
	liveSRP.ExpiresAt = live
	session := newToken(protocol.SessionToken, a.UID) // no lifetime
	for _, tok := range []*store.Token{oldSRP, liveSRP, session} {
		mustToken(t, s, tok)
	}
	eventsBefore := now.Add(-24 * time.Hour)
	mustEvent(t, s, newEvent(a.UID, eventsBefore.Add(-time.Millisecond)))
	kept := mustEvent(t, s, newEvent(a.UID, eventsBefore))

	n, err := s.Purge(ctx, now, eventsBefore)
	if err != nil || n != 4 {
		t.Fatalf("Purge = %d, %v; want 4 rows", n, err)
	}

	if err := s.UseNonce(ctx, oldNonce, 1, "n", live); err != nil {
		t.Errorf("UseNonce(purged nonce): %v", err)
	}
	wantErr(t, "UseNonce(live nonce)", s.UseNonce(ctx, newNonce, 1, "n", live), store.ErrConflict)
	if err := s.UseAssertion(ctx, oldHash, live); err != nil {
		t.Errorf("UseAssertion(purged hash): %v", err)
	}
	wantErr(t, "UseAssertion(live hash)", s.UseAssertion(ctx, newHash, live), store.ErrConflict)
	_, err = s.Token(ctx, protocol.SRPToken, oldSRP.ID)
	wantErr(t, "Token(expired)", err, store.ErrNotFound)
	for _, tok := range []*store.Token{liveSRP, session} {
		if _, err := s.Token(ctx, tok.Type, tok.ID); err != nil {
			t.Errorf("Token(%s, live) after Purge: %v", tok.Type, err)
		}
	}
	evs, err := s.Events(ctx, store.EventQuery{})
	if err != nil || len(evs) != 1 {
		t.Fatalf("Events after Purge = %d, %v; want 1", len(evs), err)
	}
	sameRecord(t, &evs[0], kept)

	if n, err := s.Purge(ctx, now, eventsBefore); err != nil || n != 0 {
		t.Errorf("second Purge = %d, %v; want 0", n, err)
	}
}
