package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyserver/keyserver/protocol"
	"github.com/keyserver/keyserver/sealing"
	"github.com/keyserver/keyserver/store"
)

// SealingHarness is what the sealing suite (RunSealing) needs of an SQL
// implementation beyond a Store: databases it can open again with other key
// rings, and a plain connection that reads and writes them behind the
// store's back. The suite reads and writes the tables of the migrations
// (accounts, tokens, unblock_codes, recovery_keys) through that connection.
type SealingHarness struct {
	// NewDatabase creates a fresh, empty database and returns its name,
	// which Open and Raw take.
	NewDatabase func(t *testing.T) string
	// Open opens a migrated store on database db whose secrets are sealed
	// under ring, and closes it in t.Cleanup.
	Open func(t *testing.T, db string, ring *sealing.Ring) store.Store
	// Raw returns a plain connection to database db (no store involved),
	// closed in t.Cleanup.
	Raw func(t *testing.T, db string) *sql.DB
	// Dialect is "sqlite" or "postgres": how Raw's connection lists the
	// tables and writes placeholders.
	Dialect string
}

// RunSealing runs the sealing suite (issue 13: secrets at rest): no secret
// of an account, token, unblock code or recovery key appears in any column
// of any table, raw, in hex or in base64; a sealed value moved to another row or column fails to
// open with an error that is no sentinel and names the table, the column
// and the uid; a store opened with the wrong key-encryption key fails every
// read of a sealed column; a ring with the old key retired opens the old
// values.
func RunSealing(t *testing.T, h SealingHarness) {
	tests := []struct {
		name string
		fn   func(t *testing.T, h SealingHarness)
	}{
		{"NoSecretInClear", testNoSecretInClear},
		{"MovedValue", testMovedValue},
		{"WrongKEK", testWrongKEK},
		{"RetiredKEK", testRetiredKEK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, h) })
	}
}

// NewTestRing returns a ring with one random key and the given retired
// ones.
func NewTestRing(t testing.TB, retired ...[]byte) (*sealing.Ring, []byte) {
	t.Helper()
	key := make([]byte, sealing.KeySize)
	_, _ = rand.Read(key)
	ring, err := sealing.NewRing(key, retired...)
	if err != nil {
		t.Fatal(err)
	}
	return ring, key
}

// secret is one value that must never be found in clear.
type secret struct {
	name  string
	value []byte
}

// accountSecrets lists the secrets of a.
func accountSecrets(a *store.Account) []secret {
	return []secret{{"kA", a.KA}, {"wrapKb", a.WrapKb}, {"verifier", a.SRPVerifier}, {"email code", a.EmailCode}}
}

// tokenSecrets lists the secrets of t.
func tokenSecrets(t *store.Token) []secret {
	out := []secret{{string(t.Type) + " authKey", t.AuthKey}, {string(t.Type) + " bundleKey", t.BundleKey}}
	if t.Seed != nil {
		out = append(out, secret{string(t.Type) + " seed", t.Seed})
	}
	if t.Code != "" {
		out = append(out, secret{string(t.Type) + " code", []byte(t.Code)})
	}
	return out
}

// encodings are the forms a secret is searched in.
var encodings = []struct {
	name string
	enc  func([]byte) []byte
}{
	{"raw", func(b []byte) []byte { return b }},
	{"hex", func(b []byte) []byte { return []byte(hex.EncodeToString(b)) }},
	{"HEX", func(b []byte) []byte { return []byte(strings.ToUpper(hex.EncodeToString(b))) }},
	{"base64", func(b []byte) []byte { return []byte(base64.RawStdEncoding.EncodeToString(b)) }},
	{"base64url", func(b []byte) []byte { return []byte(base64.RawURLEncoding.EncodeToString(b)) }},
}

// cell is one value of a raw scan.
type cell struct {
	table, column string
	value         []byte
}

// rawScan reads every column of every row of every table of db through
// its plain connection, each value as bytes.
func rawScan(t *testing.T, h SealingHarness, db *sql.DB) []cell {
	t.Helper()
	ctx := t.Context()
	catalog := map[string]string{
		"sqlite":   "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name",
		"postgres": "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY table_name",
	}[h.Dialect]
	if catalog == "" {
		t.Fatalf("SealingHarness.Dialect %q: want sqlite or postgres", h.Dialect)
	}
	rows, err := db.QueryContext(ctx, catalog)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	for _, want := range []string{"accounts", "tokens", "devices", "audit_events"} {
		if !strings.Contains(" "+strings.Join(tables, " ")+" ", " "+want+" ") {
			t.Fatalf("the catalog lists tables %v, not %s", tables, want)
		}
	}
	var cells []cell
	for _, table := range tables {
		rows, err := db.QueryContext(ctx, "SELECT * FROM "+table)
		if err != nil {
			t.Fatalf("SELECT * FROM %s: %v", table, err)
		}
		cols, err := rows.Columns()
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatalf("scanning %s: %v", table, err)
			}
			for i, v := range vals {
				var b []byte
				switch v := v.(type) {
				case nil:
					continue
				case []byte:
					b = bytes.Clone(v)
				case string:
					b = []byte(v)
				default:
					b = fmt.Append(nil, v)
				}
				cells = append(cells, cell{table, cols[i], b})
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
	}
	return cells
}

// findings returns where the raw scan finds the secret, in any encoding.
func findings(cells []cell, s secret) []string {
	var out []string
	for _, e := range encodings {
		needle := e.enc(s.value)
		for _, c := range cells {
			if bytes.Contains(c.value, needle) {
				out = append(out, fmt.Sprintf("%s %s in %s.%s", e.name, s.name, c.table, c.column))
			}
		}
	}
	return out
}

// FindInClear scans every column of every table of db, a plain connection
// to a database of dialect ("sqlite" or "postgres"), and returns where it
// finds any of secrets (by name) as a substring, raw, in hex (either case)
// or in base64 (standard or URL alphabet, unpadded): nil when none is. For
// end-to-end tests, which know the secrets from the client's side.
func FindInClear(t *testing.T, db *sql.DB, dialect string, secrets map[string][]byte) []string {
	t.Helper()
	cells := rawScan(t, SealingHarness{Dialect: dialect}, db)
	var out []string
	for name, v := range secrets {
		out = append(out, findings(cells, secret{name, v})...)
	}
	return out
}

// rebind rewrites ? placeholders for the dialect.
func rebind(dialect, query string) string {
	if dialect != "postgres" {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// signedIn creates an account with the tokens of a sign-in and of a
// password reset on s: every kind of secret the store keeps. The password
// is then changed, so the account's secrets come from both CreateAccount
// and SetCredentials.
func signedIn(t *testing.T, s store.Store, email string) (*store.Account, []*store.Token) {
	t.Helper()
	ctx := t.Context()
	a := mustAccount(t, s, email)
	toks := tokenOfEachType(a.UID)
	for _, tok := range toks {
		mustToken(t, s, tok)
	}
	c := &store.Credentials{SRPType: a.SRPType, SRPVerifier: rnd(256), SRPSalt: rnd(32),
		Stretching: a.Stretching, WrapKb: rnd(32), Generation: t0.Add(time.Second)}
	c.Stretching.Salt = rnd(32)
	if err := s.SetCredentials(ctx, a.UID, c); err != nil {
		t.Fatalf("SetCredentials: %v", err)
	}
	old := *a
	a.SRPVerifier, a.SRPSalt, a.Stretching, a.WrapKb, a.Generation = c.SRPVerifier, c.SRPSalt, c.Stretching, c.WrapKb, c.Generation
	got, err := s.AccountByUID(ctx, a.UID)
	if err != nil {
		t.Fatalf("AccountByUID: %v", err)
	}
	sameRecord(t, got, a)
	// The secrets before the change must not be found either.
	toks = append(toks, &store.Token{Type: "previous", AuthKey: old.SRPVerifier, BundleKey: old.WrapKb})
	return a, toks
}

// newUnblockCode returns an unblock code of uid with a random code.
func newUnblockCode(uid []byte) *store.UnblockCode {
	n := 0
	for _, b := range rnd(4) {
		n = n<<8 | int(b)
	}
	return &store.UnblockCode{ID: rnd(16), UID: uid, Code: fmt.Sprintf("%08d", 10000000+n%90000000),
		CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
}

func testNoSecretInClear(t *testing.T, h SealingHarness) {
	ctx := t.Context()
	db := h.NewDatabase(t)
	ring, _ := NewTestRing(t)
	s := h.Open(t, db, ring)
	var secrets, controls []secret
	for _, email := range []string{"alice@example.org", "bob@example.org"} {
		a, toks := signedIn(t, s, email)
		secrets = append(secrets, accountSecrets(a)...)
		for _, tok := range toks {
			secrets = append(secrets, tokenSecrets(tok)...)
			if tok.Type == "previous" {
				continue
			}
			got, err := s.Token(ctx, tok.Type, tok.ID)
			if err != nil {
				t.Fatalf("Token(%s): %v", tok.Type, err)
			}
			sameRecord(t, got, tok)
			controls = append(controls, secret{string(tok.Type) + " id", tok.ID})
			if tok.SRPB != nil {
				controls = append(controls, secret{"B", tok.SRPB})
			}
		}
		controls = append(controls, secret{"uid", a.UID}, secret{"salt", a.SRPSalt}, secret{"stretching salt", a.Stretching.Salt},
			secret{"email", []byte(a.Email)})
		uc := newUnblockCode(a.UID)
		if err := s.CreateUnblockCode(ctx, uc); err != nil {
			t.Fatalf("CreateUnblockCode: %v", err)
		}
		cs, err := s.UnblockCodes(ctx, a.UID, t0)
		if err != nil || len(cs) != 1 {
			t.Fatalf("UnblockCodes = %d, %v", len(cs), err)
		}
		sameRecord(t, &cs[0], uc)
		secrets = append(secrets, secret{"unblock code", []byte(uc.Code)})
		controls = append(controls, secret{"unblock code id", uc.ID})
		// A recovery key, then its replacement: neither is found.
		for i, replaced := range []bool{false, true} {
			rk := mustRecoveryKey(t, s, newRecoveryKey(a.UID), replaced)
			wantRecoveryKey(t, "recovery key", s, a.UID, rk)
			n := strconv.Itoa(i)
			secrets = append(secrets, secret{"recovery key id " + n, rk.ID}, secret{"recovery key data " + n, rk.Data})
		}
	}
	// A sign-in of alice: the srpToken is consumed, an authToken made.
	a, err := s.AccountByEmail(ctx, "alice@example.org")
	if err != nil {
		t.Fatal(err)
	}
	srp := newToken(protocol.SRPToken, a.UID)
	srp.SRPB = rnd(256)
	mustToken(t, s, srp)
	if _, err := s.ConsumeToken(ctx, protocol.SRPToken, srp.ID); err != nil {
		t.Fatal(err)
	}
	auth := mustToken(t, s, newToken(protocol.AuthToken, a.UID))
	secrets = append(secrets, tokenSecrets(auth)...)

	cells := rawScan(t, h, h.Raw(t, db))
	for _, c := range controls {
		// The scan reads what it should: the values in clear are found.
		if findings(cells, c) == nil {
			t.Errorf("the raw scan does not find the %s, which is stored in clear: it reads nothing?", c.name)
		}
	}
	for _, sec := range secrets {
		for _, f := range findings(cells, sec) {
			t.Errorf("found %s", f)
		}
	}
}

// nonSentinel fails unless err is an error that is none of the store's
// sentinels and names table, column and the uid in hex, and none of the
// values in hex or raw.
func nonSentinel(t *testing.T, what string, err error, table, column string, uid []byte, values ...[]byte) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error", what)
		return
	}
	for _, sentinel := range []error{store.ErrNotFound, store.ErrConflict, store.ErrUnavailable, context.Canceled} {
		if errors.Is(err, sentinel) {
			t.Errorf("%s: %v; want an error that is no sentinel (500), not %v", what, err, sentinel)
		}
	}
	msg := err.Error()
	for _, want := range []string{table, column, hex.EncodeToString(uid)} {
		if !strings.Contains(msg, want) {
			t.Errorf("%s: %q does not name %q", what, msg, want)
		}
	}
	for _, v := range values {
		for _, e := range encodings {
			if bytes.Contains([]byte(msg), e.enc(v)) {
				t.Errorf("%s: the error quotes a value (%s)", what, e.name)
			}
		}
	}
}

func testMovedValue(t *testing.T, h SealingHarness) {
	ctx := t.Context()
	db := h.NewDatabase(t)
	ring, _ := NewTestRing(t)
	s := h.Open(t, db, ring)
	raw := h.Raw(t, db)
	alice := mustAccount(t, s, "alice@example.org")
	aliceTok := mustToken(t, s, newToken(protocol.SessionToken, alice.UID))
	read := func(query string, args ...any) []byte {
		t.Helper()
		var v []byte
		if err := raw.QueryRowContext(ctx, rebind(h.Dialect, query), args...).Scan(&v); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		return v
	}
	write := func(query string, args ...any) {
		t.Helper()
		if _, err := raw.ExecContext(ctx, rebind(h.Dialect, query), args...); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
	}

	for _, col := range []string{"ka", "wrap_kb", "srp_verifier", "email_code"} {
		// alice's value in bob's row.
		bob := mustAccount(t, s, "bob-"+col+"@example.org")
		v := read("SELECT "+col+" FROM accounts WHERE uid = ?", alice.UID)
		write("UPDATE accounts SET "+col+" = ? WHERE uid = ?", v, bob.UID)
		got, err := s.AccountByUID(ctx, bob.UID)
		if got != nil {
			t.Errorf("alice's %s in bob's row: AccountByUID returned an account", col)
		}
		nonSentinel(t, "alice's "+col+" in bob's row: AccountByUID", err, "accounts", col, bob.UID, v, alice.KA, alice.WrapKb, alice.EmailCode)
		_, err = s.AccountByEmail(ctx, bob.NormalizedEmail)
		nonSentinel(t, "alice's "+col+" in bob's row: AccountByEmail", err, "accounts", col, bob.UID, v)
		err = s.WithTx(ctx, func(q store.Queries) error {
			_, err := q.AccountByUID(ctx, bob.UID)
			return err
		})
		nonSentinel(t, "alice's "+col+" in bob's row: AccountByUID in a transaction", err, "accounts", col, bob.UID, v)
	}
	// Moved to another column of the same row.
	carol := mustAccount(t, s, "carol@example.org")
	write("UPDATE accounts SET wrap_kb = ka WHERE uid = ?", carol.UID)
	_, err := s.AccountByUID(ctx, carol.UID)
	nonSentinel(t, "carol's ka in her wrap_kb", err, "accounts", "wrap_kb", carol.UID, carol.KA)

	// Tokens: bound to the account and the token id.
	for _, col := range []string{"auth_key", "bundle_key"} {
		v := read("SELECT "+col+" FROM tokens WHERE token_id = ?", aliceTok.ID)
		other := mustToken(t, s, newToken(protocol.SessionToken, alice.UID)) // same account, another token
		dave := mustAccount(t, s, "dave-"+col+"@example.org")
		daves := mustToken(t, s, newToken(protocol.SessionToken, dave.UID))
		for _, tok := range []*store.Token{other, daves} {
			write("UPDATE tokens SET "+col+" = ? WHERE token_id = ?", v, tok.ID)
			_, err := s.Token(ctx, protocol.SessionToken, tok.ID)
			nonSentinel(t, "moved tokens."+col+": Token", err, "tokens", col, tok.UID, v, aliceTok.AuthKey, aliceTok.BundleKey)
			// Consumed in a transaction that fails: the token stays.
			err = s.WithTx(ctx, func(q store.Queries) error {
				_, err := q.ConsumeToken(ctx, protocol.SessionToken, tok.ID)
				return err
			})
			nonSentinel(t, "moved tokens."+col+": ConsumeToken", err, "tokens", col, tok.UID, v)
			if n := countTokens(t, s, tok.UID, protocol.SessionToken); n == 0 {
				t.Errorf("a failed consumption of a token whose %s does not open deleted it", col)
			}
		}
	}
	forgot := tokenOfEachType(alice.UID)[5]
	mustToken(t, s, forgot)
	forgot2 := tokenOfEachType(alice.UID)[5]
	mustToken(t, s, forgot2)
	for _, col := range []string{"seed", "code"} {
		v := read("SELECT "+col+" FROM tokens WHERE token_id = ?", forgot.ID)
		orig := read("SELECT "+col+" FROM tokens WHERE token_id = ?", forgot2.ID)
		write("UPDATE tokens SET "+col+" = ? WHERE token_id = ?", v, forgot2.ID)
		_, err := s.Token(ctx, protocol.ForgotPasswordToken, forgot2.ID)
		nonSentinel(t, "moved tokens."+col, err, "tokens", col, alice.UID, v, forgot.Seed, []byte(forgot.Code))
		write("UPDATE tokens SET "+col+" = ? WHERE token_id = ?", orig, forgot2.ID)
		if got, err := s.Token(ctx, protocol.ForgotPasswordToken, forgot2.ID); err != nil {
			t.Errorf("tokens.%s put back: %v", col, err)
		} else {
			sameRecord(t, got, forgot2)
		}
	}

	// Unblock codes: bound to the account and the code's id.
	uc := newUnblockCode(alice.UID)
	if err := s.CreateUnblockCode(ctx, uc); err != nil {
		t.Fatal(err)
	}
	erin := mustAccount(t, s, "erin@example.org")
	erins := newUnblockCode(erin.UID)
	if err := s.CreateUnblockCode(ctx, erins); err != nil {
		t.Fatal(err)
	}
	v := read("SELECT code FROM unblock_codes WHERE id = ?", uc.ID)
	write("UPDATE unblock_codes SET code = ? WHERE id = ?", v, erins.ID)
	_, err = s.UnblockCodes(ctx, erin.UID, t0)
	nonSentinel(t, "alice's unblock code in erin's row", err, "unblock_codes", "code", erin.UID, v, []byte(uc.Code))

	// Recovery keys: bound to the account and the column.
	aliceKey := mustRecoveryKey(t, s, newRecoveryKey(alice.UID), false)
	for _, col := range []string{"key_id", "data"} {
		frank := mustAccount(t, s, "frank-"+col+"@example.org")
		franks := mustRecoveryKey(t, s, newRecoveryKey(frank.UID), false)
		v := read("SELECT "+col+" FROM recovery_keys WHERE uid = ?", alice.UID)
		orig := read("SELECT "+col+" FROM recovery_keys WHERE uid = ?", frank.UID)
		write("UPDATE recovery_keys SET "+col+" = ? WHERE uid = ?", v, frank.UID)
		got, err := s.RecoveryKey(ctx, frank.UID)
		if got != nil {
			t.Errorf("alice's recovery_keys.%s in frank's row: RecoveryKey returned a key", col)
		}
		nonSentinel(t, "alice's recovery_keys."+col+" in frank's row", err, "recovery_keys", col, frank.UID, v, aliceKey.ID, aliceKey.Data)
		err = s.WithTx(ctx, func(q store.Queries) error {
			_, err := q.RecoveryKey(ctx, frank.UID)
			return err
		})
		nonSentinel(t, "alice's recovery_keys."+col+" in frank's row, in a transaction", err, "recovery_keys", col, frank.UID, v)
		write("UPDATE recovery_keys SET "+col+" = ? WHERE uid = ?", orig, frank.UID)
		wantRecoveryKey(t, "frank's recovery_keys."+col+" put back", s, frank.UID, franks)
	}
	// Moved to the other column of the same row.
	write("UPDATE recovery_keys SET data = key_id WHERE uid = ?", alice.UID)
	_, err = s.RecoveryKey(ctx, alice.UID)
	nonSentinel(t, "alice's recovery key id in its data", err, "recovery_keys", "data", alice.UID, aliceKey.ID)
	aliceKey = mustRecoveryKey(t, s, newRecoveryKey(alice.UID), true)

	// alice's own rows still open.
	got, err := s.AccountByUID(ctx, alice.UID)
	if err != nil {
		t.Fatalf("alice: %v", err)
	}
	sameRecord(t, got, alice)
	gotTok, err := s.Token(ctx, protocol.SessionToken, aliceTok.ID)
	if err != nil {
		t.Fatalf("alice's token: %v", err)
	}
	sameRecord(t, gotTok, aliceTok)
	if cs, err := s.UnblockCodes(ctx, alice.UID, t0); err != nil || len(cs) != 1 {
		t.Errorf("alice's unblock code: %d, %v", len(cs), err)
	} else {
		sameRecord(t, &cs[0], uc)
	}
	wantRecoveryKey(t, "alice's recovery key", s, alice.UID, aliceKey)
}

func testWrongKEK(t *testing.T, h SealingHarness) {
	ctx := t.Context()
	db := h.NewDatabase(t)
	right, _ := NewTestRing(t)
	s := h.Open(t, db, right)
	alice, toks := signedIn(t, s, "alice@example.org")
	toks = toks[:len(toks)-1] // without "previous"
	uc := newUnblockCode(alice.UID)
	if err := s.CreateUnblockCode(ctx, uc); err != nil {
		t.Fatal(err)
	}
	rk := mustRecoveryKey(t, s, newRecoveryKey(alice.UID), false)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	wrong, _ := NewTestRing(t)
	w := h.Open(t, db, wrong)
	_, err := w.AccountByUID(ctx, alice.UID)
	nonSentinel(t, "wrong KEK: AccountByUID", err, "accounts", "", alice.UID, alice.KA, alice.WrapKb, alice.SRPVerifier)
	if !errors.Is(err, sealing.ErrUnknownKey) {
		t.Errorf("wrong KEK: AccountByUID: %v; want sealing.ErrUnknownKey", err)
	}
	_, err = w.AccountByEmail(ctx, alice.NormalizedEmail)
	nonSentinel(t, "wrong KEK: AccountByEmail", err, "accounts", "", alice.UID)
	err = w.SetCredentials(ctx, alice.UID, &store.Credentials{SRPType: alice.SRPType, SRPVerifier: rnd(256), SRPSalt: rnd(32),
		Stretching: alice.Stretching, WrapKb: rnd(32), Generation: t0})
	nonSentinel(t, "wrong KEK: SetCredentials", err, "accounts", "", alice.UID)
	for _, tok := range toks {
		_, err := w.Token(ctx, tok.Type, tok.ID)
		nonSentinel(t, "wrong KEK: Token("+string(tok.Type)+")", err, "tokens", "", alice.UID, tok.AuthKey, tok.BundleKey)
		err = w.WithTx(store.Ephemeral(ctx), func(q store.Queries) error {
			_, err := q.ConsumeToken(ctx, tok.Type, tok.ID)
			return err
		})
		nonSentinel(t, "wrong KEK: ConsumeToken("+string(tok.Type)+")", err, "tokens", "", alice.UID)
	}
	_, err = w.UnblockCodes(ctx, alice.UID, t0)
	nonSentinel(t, "wrong KEK: UnblockCodes", err, "unblock_codes", "code", alice.UID)
	_, err = w.RecoveryKey(ctx, alice.UID)
	nonSentinel(t, "wrong KEK: RecoveryKey", err, "recovery_keys", "key_id", alice.UID, rk.ID, rk.Data)
	if !errors.Is(err, sealing.ErrUnknownKey) {
		t.Errorf("wrong KEK: RecoveryKey: %v; want sealing.ErrUnknownKey", err)
	}
	// What holds no secret still works.
	if n := countTokens(t, w, alice.UID, protocol.SessionToken); n != 1 {
		t.Errorf("wrong KEK: CountTokens = %d, want 1", n)
	}

	// The right key still opens everything: nothing was changed.
	r := h.Open(t, db, right)
	got, err := r.AccountByUID(ctx, alice.UID)
	if err != nil {
		t.Fatalf("right KEK again: %v", err)
	}
	sameRecord(t, got, alice)
	for _, tok := range toks {
		got, err := r.Token(ctx, tok.Type, tok.ID)
		if err != nil {
			t.Fatalf("right KEK again: Token(%s): %v", tok.Type, err)
		}
		sameRecord(t, got, tok)
	}
	if cs, err := r.UnblockCodes(ctx, alice.UID, t0); err != nil || len(cs) != 1 {
		t.Errorf("right KEK again: UnblockCodes: %d, %v", len(cs), err)
	} else {
		sameRecord(t, &cs[0], uc)
	}
	wantRecoveryKey(t, "right KEK again", r, alice.UID, rk)
}

func testRetiredKEK(t *testing.T, h SealingHarness) {
	ctx := t.Context()
	db := h.NewDatabase(t)
	oldRing, oldKey := NewTestRing(t)
	s := h.Open(t, db, oldRing)
	alice, toks := signedIn(t, s, "alice@example.org")
	toks = toks[:len(toks)-1]
	aliceKey := mustRecoveryKey(t, s, newRecoveryKey(alice.UID), false)

	// The new key seals, the old one still opens.
	newRing, newKey := NewTestRing(t, oldKey)
	n := h.Open(t, db, newRing)
	got, err := n.AccountByUID(ctx, alice.UID)
	if err != nil {
		t.Fatalf("retired key: AccountByUID: %v", err)
	}
	sameRecord(t, got, alice)
	for _, tok := range toks {
		got, err := n.Token(ctx, tok.Type, tok.ID)
		if err != nil {
			t.Fatalf("retired key: Token(%s): %v", tok.Type, err)
		}
		sameRecord(t, got, tok)
	}
	wantRecoveryKey(t, "retired key", n, alice.UID, aliceKey)
	bob := mustAccount(t, n, "bob@example.org")
	bobTok := mustToken(t, n, newToken(protocol.SessionToken, bob.UID))
	bobKey := mustRecoveryKey(t, n, newRecoveryKey(bob.UID), false)

	// A store with the new key alone opens bob's rows, not alice's.
	onlyNew, err := sealing.NewRing(newKey)
	if err != nil {
		t.Fatal(err)
	}
	o := h.Open(t, db, onlyNew)
	if got, err := o.AccountByUID(ctx, bob.UID); err != nil {
		t.Errorf("new key: bob: %v", err)
	} else {
		sameRecord(t, got, bob)
	}
	if _, err := o.Token(ctx, protocol.SessionToken, bobTok.ID); err != nil {
		t.Errorf("new key: bob's token: %v", err)
	}
	wantRecoveryKey(t, "new key: bob's recovery key", o, bob.UID, bobKey)
	_, err = o.RecoveryKey(ctx, alice.UID)
	nonSentinel(t, "new key alone: alice's recovery key", err, "recovery_keys", "", alice.UID)
	_, err = o.AccountByUID(ctx, alice.UID)
	nonSentinel(t, "new key alone: alice (sealed under the old one)", err, "accounts", "", alice.UID)
	// And the old key alone not bob's.
	_, err = s.AccountByUID(ctx, bob.UID)
	nonSentinel(t, "old key alone: bob (sealed under the new one)", err, "accounts", "", bob.UID)
}
