// Package storetest is the conformance suite every store.Store implementation
// must pass. An implementation's tests call Run with a function that opens a
// fresh, empty, migrated store (and closes it in t.Cleanup).
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyserver/keyserver/protocol"
	"github.com/keyserver/keyserver/store"
)

// Run runs the suite, one subtest per behaviour, each on a store from open.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Account", testAccount},
		{"AccountConflict", testAccountConflict},
		{"AccountUpdates", testAccountUpdates},
		{"DeleteAccountCascades", testDeleteAccountCascades},
		{"Tokens", testTokens},
		{"ConsumeToken", testConsumeToken},
		{"ConsumeTokenConcurrent", testConsumeTokenConcurrent},
		{"DeleteSessionCascades", testDeleteSessionCascades},
		{"DeleteAccountTokens", testDeleteAccountTokens},
		{"DecrementTries", testDecrementTries},
		{"Devices", testDevices},
		{"TouchDevice", testTouchDevice},
		{"ReplayRecords", testReplayRecords},
		{"ReplayConflictInTx", testReplayConflictInTx},
		{"TxCommit", testTxCommit},
		{"TxRollbackOnError", testTxRollbackOnError},
		{"TxRollbackOnPanic", testTxRollbackOnPanic},
		{"TxConcurrentWriters", testTxConcurrentWriters},
		{"TimeRoundTrip", testTimeRoundTrip},
		{"Events", testEvents},
		{"Purge", testPurge},
		{"Throttle", testThrottle},
		{"ThrottleConcurrent", testThrottleConcurrent},
		{"ThrottlePurge", testThrottlePurge},
		{"Ping", testPing},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

// t0 is a time with millisecond precision, as the store keeps.
var t0 = time.Date(2024, 5, 6, 7, 8, 9, 123_000_000, time.UTC)

func rnd(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return b
}

func newAccount(email string) *store.Account {
	return &store.Account{
		UID:             rnd(16),
		Email:           email,
		NormalizedEmail: strings.ToLower(email),
		SRPType:         "SRP-6a/SHA256/2048/v1",
		SRPVerifier:     rnd(256),
		SRPSalt:         rnd(32),
		Stretching: store.Stretching{
			Type: "PBKDF2/scrypt/PBKDF2/v1", PBKDF2Rounds1: 20000,
			ScryptN: 65536, ScryptR: 8, ScryptP: 1, PBKDF2Rounds2: 20000, Salt: rnd(32),
		},
		KA:         rnd(32),
		WrapKb:     rnd(32),
		EmailCode:  rnd(16),
		CreatedAt:  t0,
		Generation: t0,
	}
}

func newToken(typ protocol.TokenType, uid []byte) *store.Token {
	return &store.Token{ID: rnd(32), Type: typ, UID: uid, AuthKey: rnd(32), BundleKey: rnd(32), CreatedAt: t0}
}

func newDevice(uid, sessionID []byte) *store.Device {
	return &store.Device{ID: rnd(16), UID: uid, SessionID: sessionID, Name: "My Laptop", Type: "desktop", CreatedAt: t0, LastAccessAt: t0}
}

func newEvent(uid []byte, at time.Time) *store.Event {
	return &store.Event{ID: rnd(16), Time: at, Actor: store.ActorUser, Action: "login", Outcome: store.OutcomeSuccess,
		UID: uid, IP: "192.0.2.1", Details: "{}"}
}

func mustAccount(t *testing.T, q store.Queries, email string) *store.Account {
	t.Helper()
	a := newAccount(email)
	if err := q.CreateAccount(t.Context(), a); err != nil {
		t.Fatalf("CreateAccount: %v", err)
	}
	return a
}

func mustToken(t *testing.T, q store.Queries, tok *store.Token) *store.Token {
	t.Helper()
	if err := q.CreateToken(t.Context(), tok); err != nil {
		t.Fatalf("CreateToken(%s): %v", tok.Type, err)
	}
	return tok
}

func mustDevice(t *testing.T, q store.Queries, d *store.Device) *store.Device {
	t.Helper()
	if err := q.CreateDevice(t.Context(), d); err != nil {
		t.Fatalf("CreateDevice: %v", err)
	}
	return d
}

func mustEvent(t *testing.T, q store.Queries, e *store.Event) *store.Event {
	t.Helper()
	if err := q.AppendEvent(t.Context(), e); err != nil {
		t.Fatalf("AppendEvent: %v", err)
	}
	return e
}

// wantErr fails unless err is target (errors.Is).
func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: error %v, want %v", what, err, target)
	}
}

// sameRecord compares two records field by field: time.Time fields with
// Equal and required to be in UTC, the others with reflect.DeepEqual.
func sameRecord[T any](t *testing.T, got, want *T) {
	t.Helper()
	if got == nil {
		t.Fatalf("got nil %T", want)
	}
	g, w := reflect.ValueOf(got).Elem(), reflect.ValueOf(want).Elem()
	for i := range g.NumField() {
		name := g.Type().Name() + "." + g.Type().Field(i).Name
		gf, wf := g.Field(i).Interface(), w.Field(i).Interface()
		if gt, ok := gf.(time.Time); ok {
			if wt := wf.(time.Time); !gt.Equal(wt) || gt.Location() != time.UTC {
				t.Errorf("%s = %v, want %v in UTC", name, gt, wt)
			}
		} else if !reflect.DeepEqual(gf, wf) {
			t.Errorf("%s = %#v, want %#v", name, gf, wf)
		}
	}
}

func countTokens(t *testing.T, q store.Queries, uid []byte, typ protocol.TokenType) int {
	t.Helper()
	n, err := q.CountTokens(t.Context(), uid, typ)
	if err != nil {
		t.Fatalf("CountTokens(%s): %v", typ, err)
	}
	return n
}

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

func testDevices(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := mustAccount(t, s, "alice@example.org")
	b := mustAccount(t, s, "bob@example.org")
	sessions := make([]*store.Token, 4)
	for i := range sessions {
		sessions[i] = mustToken(t, s, newToken(protocol.SessionToken, a.UID))
	}

	d := newDevice(a.UID, sessions[0].ID)
	d.PushCallback, d.PushPublicKey, d.PushAuthKey = "https://push.example.org/x", "BPub", "auth"
	mustDevice(t, s, d)
	got, err := s.Device(ctx, a.UID, d.ID)
	if err != nil {
		t.Fatalf("Device: %v", err)
	}
	sameRecord(t, got, d)
	got, err = s.DeviceBySession(ctx, sessions[0].ID)
	if err != nil {
		t.Fatalf("DeviceBySession: %v", err)
	}
	sameRecord(t, got, d)
	_, err = s.Device(ctx, b.UID, d.ID)
	wantErr(t, "Device(other account's uid)", err, store.ErrNotFound)
	_, err = s.Device(ctx, a.UID, rnd(16))
	wantErr(t, "Device(unknown)", err, store.ErrNotFound)
	_, err = s.DeviceBySession(ctx, sessions[1].ID)
	wantErr(t, "DeviceBySession(session without device)", err, store.ErrNotFound)

	wantErr(t, "CreateDevice(second for one session)", s.CreateDevice(ctx, newDevice(a.UID, sessions[0].ID)), store.ErrConflict)
	dup := newDevice(a.UID, sessions[1].ID)
	dup.ID = d.ID
	wantErr(t, "CreateDevice(id taken)", s.CreateDevice(ctx, dup), store.ErrConflict)

	// UpdateDevice replaces name, type and push fields; "" clears.
	d.Name, d.Type, d.PushCallback, d.PushPublicKey, d.PushAuthKey = "Phone ✓", "mobile", "", "", ""
	if err := s.UpdateDevice(ctx, d); err != nil {
		t.Fatalf("UpdateDevice: %v", err)
	}
	got, err = s.Device(ctx, a.UID, d.ID)
	if err != nil {
		t.Fatalf("Device: %v", err)
	}
	sameRecord(t, got, d)
	wantErr(t, "UpdateDevice(unknown)", s.UpdateDevice(ctx, newDevice(a.UID, sessions[1].ID)), store.ErrNotFound)

	// Devices are ordered by CreatedAt, then ID.
	later, early1, early2 := newDevice(a.UID, sessions[1].ID), newDevice(a.UID, sessions[2].ID), newDevice(a.UID, sessions[3].ID)
	later.CreatedAt = t0.Add(time.Hour)
	early1.CreatedAt, early2.CreatedAt = t0.Add(-time.Hour), t0.Add(-time.Hour)
	early1.ID[0], early2.ID[0] = 0xff, 0x00
	for _, dev := range []*store.Device{later, early1, early2} {
		mustDevice(t, s, dev)
	}
	ds, err := s.Devices(ctx, a.UID)
	if err != nil {
		t.Fatalf("Devices: %v", err)
	}
	want := []*store.Device{early2, early1, d, later}
	if len(ds) != len(want) {
		t.Fatalf("Devices returned %d, want %d", len(ds), len(want))
	}
	for i := range want {
		sameRecord(t, &ds[i], want[i])
	}
	if ds, err := s.Devices(ctx, b.UID); err != nil || len(ds) != 0 {
		t.Errorf("Devices(account without devices) = %d, %v; want none", len(ds), err)
	}

	if err := s.DeleteDevices(ctx, a.UID); err != nil {
		t.Fatalf("DeleteDevices: %v", err)
	}
	if ds, err := s.Devices(ctx, a.UID); err != nil || len(ds) != 0 {
		t.Errorf("Devices after DeleteDevices = %d, %v; want none", len(ds), err)
	}
	if n := countTokens(t, s, a.UID, protocol.SessionToken); n != len(sessions) {
		t.Errorf("DeleteDevices deleted sessions: %d left, want %d", n, len(sessions))
	}
}

func testTouchDevice(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := mustAccount(t, s, "alice@example.org")
	d := mustDevice(t, s, newDevice(a.UID, mustToken(t, s, newToken(protocol.SessionToken, a.UID)).ID))
	lastAccess := func() time.Time {
		t.Helper()
		got, err := s.Device(ctx, a.UID, d.ID)
		if err != nil {
			t.Fatalf("Device: %v", err)
		}
		return got.LastAccessAt
	}

	wrote, err := s.TouchDevice(ctx, d.ID, t0.Add(30*time.Second), time.Minute)
	if err != nil || wrote {
		t.Errorf("TouchDevice(30s later, minAge 1m) = %v, %v; want false", wrote, err)
	}
	if got := lastAccess(); !got.Equal(t0) {
		t.Errorf("LastAccessAt = %v after a no-op touch, want %v", got, t0)
	}
	at := t0.Add(61 * time.Second)
	wrote, err = s.TouchDevice(ctx, d.ID, at, time.Minute)
	if err != nil || !wrote {
		t.Errorf("TouchDevice(61s later, minAge 1m) = %v, %v; want true", wrote, err)
	}
	if got := lastAccess(); !got.Equal(at) {
		t.Errorf("LastAccessAt = %v, want %v", got, at)
	}
	wrote, err = s.TouchDevice(ctx, d.ID, at.Add(time.Second), 0)
	if err != nil || !wrote {
		t.Errorf("TouchDevice(1s later, minAge 0) = %v, %v; want true", wrote, err)
	}
}

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

func testTxCommit(t *testing.T, s store.Store) {
	var r *txRows
	err := s.WithTx(t.Context(), func(q store.Queries) error {
		r = writeTxRows(t, q)
		return nil
	})
	if err != nil {
		t.Fatalf("WithTx: %v", err)
	}
	checkTxRows(t, s, r, true)
}

func testTxRollbackOnError(t *testing.T, s store.Store) {
	errFn := errors.New("fn failed")
	var r *txRows
	err := s.WithTx(t.Context(), func(q store.Queries) error {
		r = writeTxRows(t, q)
		return errFn
	})
	if !errors.Is(err, errFn) {
		t.Fatalf("WithTx = %v, want fn's error", err)
	}
	checkTxRows(t, s, r, false)
	// The store is still usable for writes.
	mustAccount(t, s, "alice@example.org")
}

func testTxRollbackOnPanic(t *testing.T, s store.Store) {
	var r *txRows
	func() {
		defer func() {
			if p := recover(); p != "boom" {
				t.Errorf("recovered %v, want the panic of fn", p)
			}
		}()
		_ = s.WithTx(t.Context(), func(q store.Queries) error {
			r = writeTxRows(t, q)
			panic("boom")
		})
		t.Error("WithTx returned although fn panicked")
	}()
	checkTxRows(t, s, r, false)
	// The transaction's connection was released: writes still work.
	mustAccount(t, s, "alice@example.org")
}

// testTxConcurrentWriters runs transactions that read before they write,
// the pattern that fails with SQLITE_BUSY unless write transactions take the
// lock up front.
func testTxConcurrentWriters(t *testing.T, s store.Store) {
	const writers, rounds = 8, 4
	var wg sync.WaitGroup
	start := make(chan struct{})
	uids := make([][][]byte, writers)
	for w := range writers {
		wg.Go(func() {
			<-start
			for i := range rounds {
				email := "user" + string(rune('a'+w)) + string(rune('a'+i)) + "@example.org"
				err := s.WithTx(t.Context(), func(q store.Queries) error {
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

func testTimeRoundTrip(t *testing.T, s store.Store) {
	ctx := t.Context()
	msTime := time.Date(2023, 1, 2, 3, 4, 5, 678_000_000, time.UTC)
	nsTime := time.Date(2023, 1, 2, 3, 4, 5, 678_901_234, time.UTC)
	zoned := time.Date(2023, 1, 2, 8, 4, 5, 678_000_000, time.FixedZone("UTC+5", 5*3600))

	a := newAccount("alice@example.org")
	a.CreatedAt, a.Generation = msTime, nsTime
	if err := s.CreateAccount(ctx, a); err != nil {
		t.Fatalf("CreateAccount: %v", err)
	}
	got, err := s.AccountByUID(ctx, a.UID)
	if err != nil {
		t.Fatalf("AccountByUID: %v", err)
	}
	if !got.CreatedAt.Equal(msTime) || got.CreatedAt.Location() != time.UTC {
		t.Errorf("ms-precision time came back as %v, want %v", got.CreatedAt, msTime)
	}
	if want := nsTime.Truncate(time.Millisecond); !got.Generation.Equal(want) || got.Generation.Location() != time.UTC {
		t.Errorf("ns-precision time came back as %v, want %v (truncated to ms)", got.Generation, want)
	}

	withExpiry := newToken(protocol.SRPToken, a.UID)
	withExpiry.ExpiresAt = zoned
	noExpiry := newToken(protocol.AuthToken, a.UID)
	for _, tok := range []*store.Token{withExpiry, noExpiry} {
		mustToken(t, s, tok)
		got, err := s.Token(ctx, tok.Type, tok.ID)
		if err != nil {
			t.Fatalf("Token: %v", err)
		}
		if !got.ExpiresAt.Equal(tok.ExpiresAt) || got.ExpiresAt.IsZero() != tok.ExpiresAt.IsZero() || got.ExpiresAt.Location() != time.UTC {
			t.Errorf("ExpiresAt %v came back as %v, want an equal time in UTC", tok.ExpiresAt, got.ExpiresAt)
		}
	}
}

func testEvents(t *testing.T, s store.Store) {
	ctx := t.Context()
	u1, u2 := rnd(16), rnd(16)
	tA, tB, tC := t0, t0.Add(time.Millisecond), t0.Add(time.Hour)
	var all []*store.Event
	add := func(uid []byte, at time.Time, mutate func(*store.Event)) {
		e := newEvent(uid, at)
		if mutate != nil {
			mutate(e)
		}
		all = append(all, mustEvent(t, s, e))
	}
	add(u1, tA, nil)
	add(u2, tA, func(e *store.Event) {
		e.Actor, e.Action, e.Outcome, e.Details = store.ActorAdmin, "admin.account.disable", store.OutcomeSuccess, `{"x":1}`
	})
	add(nil, tA, func(e *store.Event) { e.Outcome, e.Details = store.OutcomeFailure, `{"errno":102}` })
	add(u1, tB, func(e *store.Event) { e.DeviceID, e.SessionID = rnd(16), rnd(8) })
	add(u1, tB, nil)
	add(u2, tC, nil)
	add(u1, tC, nil)
	slices.SortFunc(all, func(a, b *store.Event) int {
		if c := a.Time.Compare(b.Time); c != 0 {
			return c
		}
		return bytes.Compare(a.ID, b.ID)
	})
	filter := func(keep func(*store.Event) bool) []*store.Event {
		var out []*store.Event
		for _, e := range all {
			if keep(e) {
				out = append(out, e)
			}
		}
		return out
	}
	check := func(what string, q store.EventQuery, want []*store.Event) {
		t.Helper()
		got, err := s.Events(ctx, q)
		if err != nil {
			t.Fatalf("Events(%s): %v", what, err)
		}
		if len(got) != len(want) {
			t.Fatalf("Events(%s) returned %d events, want %d", what, len(got), len(want))
		}
		for i := range want {
			sameRecord(t, &got[i], want[i])
		}
	}

	check("all", store.EventQuery{}, all)
	check("since tB", store.EventQuery{Since: tB}, filter(func(e *store.Event) bool { return !e.Time.Before(tB) }))
	check("uid", store.EventQuery{UID: u1}, filter(func(e *store.Event) bool { return bytes.Equal(e.UID, u1) }))
	check("limit", store.EventQuery{Limit: 2}, all[:2])
	check("after the 2nd", store.EventQuery{Since: all[1].Time, After: all[1].ID}, all[2:])
	check("newest", store.EventQuery{Newest: true, Limit: 3}, []*store.Event{all[6], all[5], all[4]})
	check("newest of uid since tB", store.EventQuery{UID: u2, Since: tB, Newest: true},
		filter(func(e *store.Event) bool { return bytes.Equal(e.UID, u2) && !e.Time.Before(tB) }))

	// Paging with the cursor of spec 10.4 walks every event once, in order,
	// also across pages that end inside a run of equal times.
	for _, uid := range [][]byte{nil, u1} {
		for limit := 1; limit <= 3; limit++ {
			var got []store.Event
			q := store.EventQuery{UID: uid, Limit: limit}
			for pages := 0; ; pages++ {
				if pages > len(all) {
					t.Fatalf("paging with limit %d does not end", limit)
				}
				page, err := s.Events(ctx, q)
				if err != nil {
					t.Fatalf("Events(page): %v", err)
				}
				got = append(got, page...)
				if len(page) < limit {
					break
				}
				last := page[len(page)-1]
				q.Since, q.After = last.Time, last.ID
			}
			want := filter(func(e *store.Event) bool { return uid == nil || bytes.Equal(e.UID, uid) })
			if len(got) != len(want) {
				t.Fatalf("paging (uid %x, limit %d) returned %d events, want %d", uid, limit, len(got), len(want))
			}
			for i := range want {
				sameRecord(t, &got[i], want[i])
			}
		}
	}
}

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

func testPing(t *testing.T, s store.Store) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := s.Ping(ctx); err != nil {
		t.Errorf("Ping: %v", err)
	}
}
