package storetest

import (
	"bytes"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyserver/keyserver/protocol"
	"github.com/keyserver/keyserver/store"
)

// tokenOfEachType returns one token of every type for uid, with the fields
// that type uses; the keyFetchToken refers to the sessionToken.
func tokenOfEachType(uid []byte) []*store.Token {
	srp := newToken(protocol.SRPToken, uid)
	srp.SRPB = rnd(256)
	srp.ExpiresAt = t0.Add(time.Minute)
	session := newToken(protocol.SessionToken, uid)
	keyFetch := newToken(protocol.KeyFetchToken, uid)
	keyFetch.SessionID = session.ID
	forgot := newToken(protocol.ForgotPasswordToken, uid)
	forgot.Seed, forgot.Code, forgot.Tries = rnd(32), "01234567", 3
	forgot.ExpiresAt = t0.Add(15 * time.Minute)
	return []*store.Token{srp, newToken(protocol.AuthToken, uid), session, keyFetch,
		newToken(protocol.AccountResetToken, uid), forgot}
}

func testTokens(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := mustAccount(t, s, "alice@example.org")
	toks := tokenOfEachType(a.UID)
	for _, tok := range toks {
		mustToken(t, s, tok)
	}
	for i, tok := range toks {
		got, err := s.Token(ctx, tok.Type, tok.ID)
		if err != nil {
			t.Fatalf("Token(%s): %v", tok.Type, err)
		}
		sameRecord(t, got, tok)
		// Looked up among the tokens of one type only.
		other := toks[(i+1)%len(toks)].Type
		_, err = s.Token(ctx, other, tok.ID)
		wantErr(t, "Token("+string(other)+", id of a "+string(tok.Type)+")", err, store.ErrNotFound)
		if n := countTokens(t, s, a.UID, tok.Type); n != 1 {
			t.Errorf("CountTokens(%s) = %d, want 1", tok.Type, n)
		}
	}
	mustToken(t, s, newToken(protocol.SessionToken, a.UID))
	if n := countTokens(t, s, a.UID, protocol.SessionToken); n != 2 {
		t.Errorf("CountTokens(sessionToken) = %d, want 2", n)
	}
	if n := countTokens(t, s, rnd(16), protocol.SessionToken); n != 0 {
		t.Errorf("CountTokens(unknown uid) = %d, want 0", n)
	}
	_, err := s.Token(ctx, protocol.SessionToken, rnd(32))
	wantErr(t, "Token(unknown)", err, store.ErrNotFound)
}

func testConsumeToken(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := mustAccount(t, s, "alice@example.org")
	forgot := tokenOfEachType(a.UID)[5]
	mustToken(t, s, forgot)

	_, err := s.ConsumeToken(ctx, protocol.AuthToken, forgot.ID)
	wantErr(t, "ConsumeToken(wrong type)", err, store.ErrNotFound)
	got, err := s.ConsumeToken(ctx, protocol.ForgotPasswordToken, forgot.ID)
	if err != nil {
		t.Fatalf("ConsumeToken: %v", err)
	}
	sameRecord(t, got, forgot)
	_, err = s.Token(ctx, protocol.ForgotPasswordToken, forgot.ID)
	wantErr(t, "Token(consumed)", err, store.ErrNotFound)
	_, err = s.ConsumeToken(ctx, protocol.ForgotPasswordToken, forgot.ID)
	wantErr(t, "ConsumeToken(consumed)", err, store.ErrNotFound)
}

func testConsumeTokenConcurrent(t *testing.T, s store.Store) {
	const n = 16
	a := mustAccount(t, s, "alice@example.org")
	for range 3 {
		tok := mustToken(t, s, newToken(protocol.AuthToken, a.UID))
		var wins atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range n {
			wg.Go(func() {
				<-start
				got, err := s.ConsumeToken(t.Context(), protocol.AuthToken, tok.ID)
				switch {
				case err == nil && bytes.Equal(got.ID, tok.ID):
					wins.Add(1)
				case !errors.Is(err, store.ErrNotFound):
					t.Errorf("concurrent ConsumeToken: %v, %v; want the token or ErrNotFound", got, err)
				}
			})
		}
		close(start)
		wg.Wait()
		if w := wins.Load(); w != 1 {
			t.Fatalf("%d of %d concurrent consumers got the token, want exactly 1", w, n)
		}
	}
}

func testDeleteSessionCascades(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := mustAccount(t, s, "alice@example.org")
	s1 := mustToken(t, s, newToken(protocol.SessionToken, a.UID))
	s2 := mustToken(t, s, newToken(protocol.SessionToken, a.UID))
	k1 := newToken(protocol.KeyFetchToken, a.UID)
	k1.SessionID = s1.ID
	mustToken(t, s, k1)
	k2 := newToken(protocol.KeyFetchToken, a.UID)
	k2.SessionID = s2.ID
	mustToken(t, s, k2)
	k3 := mustToken(t, s, newToken(protocol.KeyFetchToken, a.UID)) // no session
	d1 := mustDevice(t, s, newDevice(a.UID, s1.ID))
	d2 := mustDevice(t, s, newDevice(a.UID, s2.ID))

	wantErr(t, "DeleteToken(unknown)", s.DeleteToken(ctx, protocol.SessionToken, rnd(32)), store.ErrNotFound)
	wantErr(t, "DeleteToken(wrong type)", s.DeleteToken(ctx, protocol.AuthToken, s1.ID), store.ErrNotFound)
	if err := s.DeleteToken(ctx, protocol.SessionToken, s1.ID); err != nil {
		t.Fatalf("DeleteToken(session): %v", err)
	}
	for _, tok := range []*store.Token{s1, k1} {
		_, err := s.Token(ctx, tok.Type, tok.ID)
		wantErr(t, "Token("+string(tok.Type)+" of deleted session)", err, store.ErrNotFound)
	}
	_, err := s.DeviceBySession(ctx, s1.ID)
	wantErr(t, "DeviceBySession(deleted session)", err, store.ErrNotFound)
	_, err = s.Device(ctx, a.UID, d1.ID)
	wantErr(t, "Device(of deleted session)", err, store.ErrNotFound)

	for _, tok := range []*store.Token{s2, k2, k3} {
		if _, err := s.Token(ctx, tok.Type, tok.ID); err != nil {
			t.Errorf("Token(%s not of the deleted session): %v", tok.Type, err)
		}
	}
	ds, err := s.Devices(ctx, a.UID)
	if err != nil || len(ds) != 1 || !bytes.Equal(ds[0].ID, d2.ID) {
		t.Errorf("Devices after deleting a session = %v, %v; want only the other session's", ds, err)
	}
}

func testDeleteAccountTokens(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := mustAccount(t, s, "alice@example.org")
	b := mustAccount(t, s, "bob@example.org")
	for _, acct := range []*store.Account{a, b} {
		for _, tok := range tokenOfEachType(acct.UID) {
			mustToken(t, s, tok)
			if tok.Type == protocol.SessionToken {
				mustDevice(t, s, newDevice(acct.UID, tok.ID))
			}
		}
	}

	if err := s.DeleteAccountTokens(ctx, a.UID, protocol.AccountResetToken, protocol.ForgotPasswordToken); err != nil {
		t.Fatalf("DeleteAccountTokens(some types): %v", err)
	}
	for _, typ := range protocol.TokenTypes {
		want := 1
		if typ == protocol.AccountResetToken || typ == protocol.ForgotPasswordToken {
			want = 0
		}
		if n := countTokens(t, s, a.UID, typ); n != want {
			t.Errorf("after deleting some types, CountTokens(%s) = %d, want %d", typ, n, want)
		}
	}

	if err := s.DeleteAccountTokens(ctx, a.UID); err != nil {
		t.Fatalf("DeleteAccountTokens(all): %v", err)
	}
	for _, typ := range protocol.TokenTypes {
		if n := countTokens(t, s, a.UID, typ); n != 0 {
			t.Errorf("after deleting all, CountTokens(%s) = %d, want 0", typ, n)
		}
		if n := countTokens(t, s, b.UID, typ); n != 1 {
			t.Errorf("other account's CountTokens(%s) = %d, want 1", typ, n)
		}
	}
	if ds, err := s.Devices(ctx, a.UID); err != nil || len(ds) != 0 {
		t.Errorf("Devices after deleting the sessions = %d, %v; want none", len(ds), err)
	}
	if ds, err := s.Devices(ctx, b.UID); err != nil || len(ds) != 1 {
		t.Errorf("other account's Devices = %d, %v; want 1", len(ds), err)
	}
}

func testDecrementTries(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := mustAccount(t, s, "alice@example.org")
	forgot := tokenOfEachType(a.UID)[5]
	mustToken(t, s, forgot)
	auth := mustToken(t, s, newToken(protocol.AuthToken, a.UID))

	for want := 2; want >= 0; want-- {
		got, err := s.DecrementTries(ctx, forgot.ID)
		if err != nil || got != want {
			t.Fatalf("DecrementTries = %d, %v; want %d", got, err, want)
		}
	}
	_, err := s.DecrementTries(ctx, forgot.ID)
	wantErr(t, "DecrementTries(no tries left)", err, store.ErrNotFound)
	got, err := s.Token(ctx, protocol.ForgotPasswordToken, forgot.ID)
	if err != nil || got.Tries != 0 {
		t.Errorf("Token after the last try = %+v, %v; want 0 tries", got, err)
	}
	_, err = s.DecrementTries(ctx, rnd(32))
	wantErr(t, "DecrementTries(unknown)", err, store.ErrNotFound)
	_, err = s.DecrementTries(ctx, auth.ID)
	wantErr(t, "DecrementTries(not a forgotPasswordToken)", err, store.ErrNotFound)
}

// TokenWithAccount reads every type of token with its account, inside a
// transaction too, in the one type looked up only; the account comes back
// as AccountByUID has it, with its later changes.
func testTokenWithAccount(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := mustAccount(t, s, "alice@example.org")
	b := mustAccount(t, s, "bob@example.org")
	toks := tokenOfEachType(a.UID)
	for _, tok := range toks {
		mustToken(t, s, tok)
	}
	bt := mustToken(t, s, newToken(protocol.SessionToken, b.UID))
	for i, tok := range toks {
		got, acct, err := s.TokenWithAccount(ctx, tok.Type, tok.ID)
		if err != nil {
			t.Fatalf("TokenWithAccount(%s): %v", tok.Type, err)
		}
		sameRecord(t, got, tok)
		sameRecord(t, acct, a)
		other := toks[(i+1)%len(toks)].Type
		_, _, err = s.TokenWithAccount(ctx, other, tok.ID)
		wantErr(t, "TokenWithAccount("+string(other)+", id of a "+string(tok.Type)+")", err, store.ErrNotFound)
	}
	_, acct, err := s.TokenWithAccount(ctx, protocol.SessionToken, bt.ID)
	if err != nil {
		t.Fatal(err)
	}
	sameRecord(t, acct, b)
	_, _, err = s.TokenWithAccount(ctx, protocol.SessionToken, rnd(32))
	wantErr(t, "TokenWithAccount(unknown)", err, store.ErrNotFound)

	if err := s.SetDisabled(ctx, a.UID, true); err != nil {
		t.Fatal(err)
	}
	err = s.WithTx(ctx, func(q store.Queries) error {
		got, acct, err := q.TokenWithAccount(ctx, toks[2].Type, toks[2].ID)
		if err != nil {
			return err
		}
		sameRecord(t, got, toks[2])
		want, err := q.AccountByUID(ctx, a.UID)
		if err != nil {
			return err
		}
		if !want.Disabled {
			t.Error("AccountByUID: not disabled")
		}
		sameRecord(t, acct, want)
		return nil
	})
	if err != nil {
		t.Fatalf("WithTx: %v", err)
	}
	if err := s.DeleteAccount(ctx, a.UID); err != nil {
		t.Fatal(err)
	}
	_, _, err = s.TokenWithAccount(ctx, toks[2].Type, toks[2].ID)
	wantErr(t, "TokenWithAccount(token of a deleted account)", err, store.ErrNotFound)
}
