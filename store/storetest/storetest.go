// Package storetest is the conformance suite every store.Store implementation
// must pass. An implementation's tests call Run with a function that opens a
// fresh, empty, migrated store (and closes it in t.Cleanup; the suite may
// have closed it already). The suite has one file per capability; this one
// holds Run and the shared helpers.
package storetest

import (
	"crypto/rand"
	"errors"
	"reflect"
	"strings"
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
		{"TokenWithAccount", testTokenWithAccount},
		{"ConsumeToken", testConsumeToken},
		{"ConsumeTokenConcurrent", testConsumeTokenConcurrent},
		{"DeleteSessionCascades", testDeleteSessionCascades},
		{"DeleteAccountTokens", testDeleteAccountTokens},
		{"DecrementTries", testDecrementTries},
		{"Devices", testDevices},
		{"TouchDevice", testTouchDevice},
		{"RecoveryKey", testRecoveryKey},
		{"RecoveryKeyAccounts", testRecoveryKeyAccounts},
		{"DeleteAccountDeletesRecoveryKey", testDeleteAccountDeletesRecoveryKey},
		{"RecoveryKeyInTx", testRecoveryKeyInTx},
		{"RecoveryKeyConcurrent", testRecoveryKeyConcurrent},
		{"ReplayRecords", testReplayRecords},
		{"ReplayConflictInTx", testReplayConflictInTx},
		{"TxCommit", testTxCommit},
		{"TxRollbackOnError", testTxRollbackOnError},
		{"TxRollbackOnPanic", testTxRollbackOnPanic},
		{"TxConcurrentWriters", testTxConcurrentWriters},
		{"EphemeralTxCommit", testEphemeralTxCommit},
		{"EphemeralTxRollbackOnError", testEphemeralTxRollbackOnError},
		{"EphemeralTxRollbackOnPanic", testEphemeralTxRollbackOnPanic},
		{"MixedConcurrentWriters", testMixedConcurrentWriters},
		{"CommitVisibleAcrossClasses", testCommitVisibleAcrossClasses},
		{"EphemeralStatements", testEphemeralStatements},
		{"DurableAfterEphemeral", testDurableAfterEphemeral},
		{"EphemeralErrors", testEphemeralErrors},
		{"EphemeralThrottle", testEphemeralThrottle},
		{"TimeRoundTrip", testTimeRoundTrip},
		{"Events", testEvents},
		{"Purge", testPurge},
		{"Throttle", testThrottle},
		{"ThrottleConcurrent", testThrottleConcurrent},
		{"ThrottlePurge", testThrottlePurge},
		{"Counts", testCounts},
		{"LockCountsConcurrent", testLockCountsConcurrent},
		{"MarkBlocked", testMarkBlocked},
		{"KnownIPs", testKnownIPs},
		{"TokenOrigins", testTokenOrigins},
		{"SetTokensExpiry", testSetTokensExpiry},
		{"UnblockCodes", testUnblockCodes},
		{"UnverifiedAccounts", testUnverifiedAccounts},
		{"Ping", testPing},
		{"ClosedStore", testClosedStore},
		{"ExpiredDeadline", testExpiredDeadline},
		{"CanceledContext", testCanceledContext},
		{"ContextEndsInTx", testContextEndsInTx},
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
