package storetest

import (
	"testing"
	"time"

	"github.com/keyserver/keyserver/protocol"
	"github.com/keyserver/keyserver/store"
)

func testAccount(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := mustAccount(t, s, "Alice@Example.org")
	got, err := s.AccountByUID(ctx, a.UID)
	if err != nil {
		t.Fatalf("AccountByUID: %v", err)
	}
	sameRecord(t, got, a)
	got, err = s.AccountByEmail(ctx, "alice@example.org")
	if err != nil {
		t.Fatalf("AccountByEmail: %v", err)
	}
	sameRecord(t, got, a)

	_, err = s.AccountByUID(ctx, rnd(16))
	wantErr(t, "AccountByUID(unknown)", err, store.ErrNotFound)
	_, err = s.AccountByEmail(ctx, "bob@example.org")
	wantErr(t, "AccountByEmail(unknown)", err, store.ErrNotFound)
	_, err = s.AccountByEmail(ctx, "Alice@Example.org")
	wantErr(t, "AccountByEmail(unfolded email)", err, store.ErrNotFound)
}

func testAccountConflict(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := mustAccount(t, s, "alice@example.org")

	b := newAccount("ALICE@example.org") // other bytes, same fold
	wantErr(t, "CreateAccount(same fold)", s.CreateAccount(ctx, b), store.ErrConflict)
	c := newAccount("carol@example.org")
	c.UID = a.UID
	wantErr(t, "CreateAccount(same uid)", s.CreateAccount(ctx, c), store.ErrConflict)

	got, err := s.AccountByEmail(ctx, "alice@example.org")
	if err != nil {
		t.Fatalf("AccountByEmail: %v", err)
	}
	sameRecord(t, got, a)
	_, err = s.AccountByUID(ctx, b.UID)
	wantErr(t, "AccountByUID(rejected account)", err, store.ErrNotFound)
}

func testAccountUpdates(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := mustAccount(t, s, "alice@example.org")
	other := mustAccount(t, s, "bob@example.org")
	reread := func() *store.Account {
		t.Helper()
		got, err := s.AccountByUID(ctx, a.UID)
		if err != nil {
			t.Fatalf("AccountByUID: %v", err)
		}
		return got
	}

	for range 2 { // idempotent
		if err := s.SetVerified(ctx, a.UID); err != nil {
			t.Fatalf("SetVerified: %v", err)
		}
	}
	a.Verified = true
	sameRecord(t, reread(), a)

	for _, disabled := range []bool{true, true, false} {
		if err := s.SetDisabled(ctx, a.UID, disabled); err != nil {
			t.Fatalf("SetDisabled(%v): %v", disabled, err)
		}
		a.Disabled = disabled
		sameRecord(t, reread(), a)
	}

	c := &store.Credentials{
		SRPType:     "SRP-6a/SHA256/2048/v1",
		SRPVerifier: rnd(256),
		SRPSalt:     rnd(32),
		Stretching: store.Stretching{
			Type: "PBKDF2/scrypt/PBKDF2/v1", PBKDF2Rounds1: 20001,
			ScryptN: 32768, ScryptR: 9, ScryptP: 2, PBKDF2Rounds2: 20002, Salt: rnd(32),
		},
		WrapKb:     rnd(32),
		Generation: t0.Add(time.Hour),
	}
	if err := s.SetCredentials(ctx, a.UID, c); err != nil {
		t.Fatalf("SetCredentials: %v", err)
	}
	a.SRPType, a.SRPVerifier, a.SRPSalt, a.Stretching, a.WrapKb, a.Generation =
		c.SRPType, c.SRPVerifier, c.SRPSalt, c.Stretching, c.WrapKb, c.Generation
	sameRecord(t, reread(), a) // uid, email, kA, verified, emailCode kept

	got, err := s.AccountByUID(ctx, other.UID)
	if err != nil {
		t.Fatalf("AccountByUID(other): %v", err)
	}
	sameRecord(t, got, other)

	unknown := rnd(16)
	wantErr(t, "SetVerified(unknown)", s.SetVerified(ctx, unknown), store.ErrNotFound)
	wantErr(t, "SetDisabled(unknown)", s.SetDisabled(ctx, unknown, true), store.ErrNotFound)
	wantErr(t, "SetCredentials(unknown)", s.SetCredentials(ctx, unknown, c), store.ErrNotFound)
	wantErr(t, "DeleteAccount(unknown)", s.DeleteAccount(ctx, unknown), store.ErrNotFound)
}

func testDeleteAccountCascades(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := mustAccount(t, s, "alice@example.org")
	b := mustAccount(t, s, "bob@example.org")
	type owned struct {
		session, keyFetch, auth *store.Token
		device                  *store.Device
		event                   *store.Event
	}
	populate := func(acct *store.Account) owned {
		var o owned
		o.session = mustToken(t, s, newToken(protocol.SessionToken, acct.UID))
		o.keyFetch = newToken(protocol.KeyFetchToken, acct.UID)
		o.keyFetch.SessionID = o.session.ID
		mustToken(t, s, o.keyFetch)
		o.auth = mustToken(t, s, newToken(protocol.AuthToken, acct.UID))
		o.device = mustDevice(t, s, newDevice(acct.UID, o.session.ID))
		o.event = mustEvent(t, s, newEvent(acct.UID, t0))
		return o
	}
	oa, ob := populate(a), populate(b)

	if err := s.DeleteAccount(ctx, a.UID); err != nil {
		t.Fatalf("DeleteAccount: %v", err)
	}
	_, err := s.AccountByUID(ctx, a.UID)
	wantErr(t, "AccountByUID(deleted)", err, store.ErrNotFound)
	for _, tok := range []*store.Token{oa.session, oa.keyFetch, oa.auth} {
		_, err := s.Token(ctx, tok.Type, tok.ID)
		wantErr(t, "Token("+string(tok.Type)+" of deleted account)", err, store.ErrNotFound)
	}
	_, err = s.Device(ctx, a.UID, oa.device.ID)
	wantErr(t, "Device(of deleted account)", err, store.ErrNotFound)
	if ds, err := s.Devices(ctx, a.UID); err != nil || len(ds) != 0 {
		t.Errorf("Devices(deleted account) = %d devices, %v; want none", len(ds), err)
	}
	evs, err := s.Events(ctx, store.EventQuery{UID: a.UID})
	if err != nil || len(evs) != 1 {
		t.Fatalf("Events(deleted account) = %d events, %v; want the 1 kept", len(evs), err)
	}
	sameRecord(t, &evs[0], oa.event)

	// b is untouched.
	got, err := s.AccountByUID(ctx, b.UID)
	if err != nil {
		t.Fatalf("AccountByUID(other): %v", err)
	}
	sameRecord(t, got, b)
	for _, tok := range []*store.Token{ob.session, ob.keyFetch, ob.auth} {
		got, err := s.Token(ctx, tok.Type, tok.ID)
		if err != nil {
			t.Fatalf("Token(%s of other account): %v", tok.Type, err)
		}
		sameRecord(t, got, tok)
	}
	gotDev, err := s.Device(ctx, b.UID, ob.device.ID)
	if err != nil {
		t.Fatalf("Device(other account): %v", err)
	}
	sameRecord(t, gotDev, ob.device)

	// The email is free again.
	mustAccount(t, s, "alice@example.org")
}
