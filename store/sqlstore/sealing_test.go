package sqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/keyserver/keyserver/migrations"
	"github.com/keyserver/keyserver/protocol"
	"github.com/keyserver/keyserver/sealing"
	"github.com/keyserver/keyserver/store"
	"github.com/keyserver/keyserver/store/storetest"
)

// rawDB is a plain connection to the database of dsn, not through a Store.
func rawDB(t testing.TB, dsn string) *sqlx.DB {
	t.Helper()
	var db *sqlx.DB
	var err error
	if path, ok := strings.CutPrefix(dsn, "sqlite:"); ok {
		db, err = sqlx.Open("sqlite", sqliteDriverDSN(path, "FULL"))
	} else {
		db, err = sqlx.Open("postgres", dsn)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func newRing(t testing.TB, retired ...[]byte) (*sealing.Ring, []byte) {
	t.Helper()
	return storetest.NewTestRing(t, retired...)
}

func TestSealingConformance(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			storetest.RunSealing(t, storetest.SealingHarness{
				NewDatabase: func(t *testing.T) string { return d.dsn(t) },
				Open: func(t *testing.T, dsn string, ring *sealing.Ring) store.Store {
					return mustOpen(t, dsn, Options{Migrate: true, KEK: ring})
				},
				Raw:     func(t *testing.T, dsn string) *sql.DB { return rawDB(t, dsn).DB },
				Dialect: d.name,
			})
		})
	}
}

// Open refuses a Store without a KEK outside a test binary; in one, every
// Store without one shares the process's random ring.
func TestOpenWithoutKEK(t *testing.T) {
	_, err := ringOf(Options{}, false)
	if err == nil || !strings.Contains(err.Error(), "--kek-file") {
		t.Errorf("no KEK outside tests: %v; want an error naming --kek-file", err)
	}
	r1, err1 := ringOf(Options{}, true)
	r2, err2 := ringOf(Options{}, true)
	if err1 != nil || err2 != nil || r1 != r2 {
		t.Errorf("no KEK in tests: %v, %v, the same ring: %v", err1, err2, r1 == r2)
	}
	ring, _ := newRing(t)
	if r, err := ringOf(Options{KEK: ring}, false); r != ring || err != nil {
		t.Errorf("a KEK: %v", err)
	}
	// The test ring is the ring of a Store opened without one: a database
	// written that way reopens.
	dsn := sqliteDSN(t)
	s := mustOpen(t, dsn, Options{Migrate: true})
	a := testAccount("alice@example.org")
	if err := s.CreateAccount(t.Context(), a); err != nil {
		t.Fatal(err)
	}
	if s.KEKID() != r1.KeyID() {
		t.Errorf("KEKID %s, want the test ring's %s", s.KEKID(), r1.KeyID())
	}
	if _, err := mustOpen(t, dsn, Options{}).AccountByUID(t.Context(), a.UID); err != nil {
		t.Errorf("reopened without a KEK: %v", err)
	}
}

func testAccount(email string) *store.Account {
	return &store.Account{UID: rnd(16), Email: email, NormalizedEmail: email, SRPType: "SRP-6a/SHA256/2048/v1",
		SRPVerifier: rnd(256), SRPSalt: rnd(32), KA: rnd(32), WrapKb: rnd(32), EmailCode: rnd(16),
		Stretching: store.Stretching{Type: "PBKDF2/scrypt/PBKDF2/v1", PBKDF2Rounds1: 20000, ScryptN: 65536, ScryptR: 8, ScryptP: 1,
			PBKDF2Rounds2: 20000, Salt: rnd(32)},
		CreatedAt: time.UnixMilli(1715000000123).UTC(), Generation: time.UnixMilli(1715000000123).UTC()}
}

// testTokens returns one token of each type for uid.
func testTokens(uid []byte) []*store.Token {
	at := time.UnixMilli(1715000000456).UTC()
	var out []*store.Token
	for _, typ := range []protocol.TokenType{protocol.SRPToken, protocol.AuthToken, protocol.SessionToken,
		protocol.KeyFetchToken, protocol.AccountResetToken, protocol.ForgotPasswordToken} {
		tok := &store.Token{ID: rnd(32), Type: typ, UID: uid, AuthKey: rnd(32), BundleKey: rnd(32), CreatedAt: at}
		switch typ {
		case protocol.SRPToken:
			tok.SRPB = rnd(256)
		case protocol.ForgotPasswordToken:
			tok.Seed, tok.Code, tok.Tries = rnd(32), "87654321", 3
		}
		out = append(out, tok)
	}
	return out
}

// insertLegacy writes a and its tokens as a keyserver before sealing did:
// in clear, kek_id NULL (or no such column yet), the code as TEXT; on
// PostgreSQL after 0004 (codeBytes), where the column is BYTEA, as its
// UTF-8 bytes.
func insertLegacy(t *testing.T, db *sqlx.DB, codeBytes bool, a *store.Account, toks []*store.Token) {
	t.Helper()
	ctx := t.Context()
	cols := strings.ReplaceAll(accountCols, ", kek_id", "")
	st := &a.Stretching
	_, err := db.ExecContext(ctx, db.Rebind(insertSQL("accounts", cols)), a.UID, a.Email, a.NormalizedEmail, a.SRPType, a.SRPVerifier, a.SRPSalt,
		st.Type, st.PBKDF2Rounds1, st.ScryptN, st.ScryptR, st.ScryptP, st.PBKDF2Rounds2, st.Salt,
		a.KA, a.WrapKb, a.Verified, a.EmailCode, a.Disabled, ms(a.CreatedAt), ms(a.Generation))
	if err != nil {
		t.Fatalf("legacy account: %v", err)
	}
	tcols := strings.ReplaceAll(tokenCols, ", kek_id", "")
	for _, tok := range toks {
		var code any = nullString(tok.Code)
		if db.DriverName() == "postgres" && codeBytes && tok.Code != "" {
			code = []byte(tok.Code)
		}
		_, err := db.ExecContext(ctx, db.Rebind(insertSQL("tokens", tcols)), tok.ID, string(tok.Type), tok.UID, tok.AuthKey, tok.BundleKey,
			ms(tok.CreatedAt), nullMS(tok.ExpiresAt), nullBytes(tok.SRPB), nullBytes(tok.SessionID), nullBytes(tok.Seed), code, tok.Tries)
		if err != nil {
			t.Fatalf("legacy %s: %v", tok.Type, err)
		}
	}
}

// insertLegacyUnblockCode writes an unblock code in clear, as a keyserver
// before sealing did (see insertLegacy for codeBytes).
func insertLegacyUnblockCode(t *testing.T, db *sqlx.DB, codeBytes bool, c *store.UnblockCode) {
	t.Helper()
	var code any = c.Code
	if db.DriverName() == "postgres" && codeBytes {
		code = []byte(c.Code)
	}
	_, err := db.ExecContext(t.Context(), db.Rebind("INSERT INTO unblock_codes (id, uid, code, created_at, expires_at) VALUES (?, ?, ?, ?, ?)"),
		c.ID, c.UID, code, ms(c.CreatedAt), ms(c.ExpiresAt))
	if err != nil {
		t.Fatalf("legacy unblock code: %v", err)
	}
}

// insertLegacyRecoveryKey writes a recovery key in clear, kek_id NULL: the
// format a row in clear would have.
func insertLegacyRecoveryKey(t *testing.T, db *sqlx.DB, k *store.RecoveryKey) {
	t.Helper()
	_, err := db.ExecContext(t.Context(), db.Rebind("INSERT INTO recovery_keys (uid, key_id, data, created_at) VALUES (?, ?, ?, ?)"),
		k.UID, k.ID, k.Data, ms(k.CreatedAt))
	if err != nil {
		t.Fatalf("legacy recovery key: %v", err)
	}
}

func testRecoveryKey(uid []byte) *store.RecoveryKey {
	return &store.RecoveryKey{UID: uid, ID: rnd(16), Data: rnd(60), CreatedAt: time.UnixMilli(1715000000321).UTC()}
}

// recoveryKeySecrets lists the secret values of recovery keys.
func recoveryKeySecrets(ks ...*store.RecoveryKey) [][]byte {
	var out [][]byte
	for _, k := range ks {
		out = append(out, k.ID, k.Data)
	}
	return out
}

// mustReadRecoveryKeys checks that s opens each recovery key as written.
func mustReadRecoveryKeys(t *testing.T, what string, s *Store, ks ...*store.RecoveryKey) {
	t.Helper()
	for _, k := range ks {
		got, err := s.RecoveryKey(t.Context(), k.UID)
		if err != nil {
			t.Fatalf("%s: RecoveryKey: %v", what, err)
		}
		if !bytes.Equal(got.ID, k.ID) || !bytes.Equal(got.Data, k.Data) || !got.CreatedAt.Equal(k.CreatedAt) {
			t.Errorf("%s: recovery key of %x read back differently", what, k.UID)
		}
	}
}

func testUnblockCode(uid []byte) *store.UnblockCode {
	return &store.UnblockCode{ID: rnd(16), UID: uid, Code: fmt.Sprintf("%08d", 10000000+int(rnd(1)[0])*12345),
		CreatedAt: time.UnixMilli(1715000000789).UTC(), ExpiresAt: time.UnixMilli(4102444800000).UTC()}
}

// mustReadCodes checks that s opens the account's unblock codes as written.
func mustReadCodes(t *testing.T, what string, s *Store, uid []byte, want ...*store.UnblockCode) {
	t.Helper()
	got, err := s.UnblockCodes(t.Context(), uid, time.UnixMilli(1715000000000))
	if err != nil {
		t.Fatalf("%s: UnblockCodes: %v", what, err)
	}
	if len(got) != len(want) {
		t.Fatalf("%s: %d unblock codes, want %d", what, len(got), len(want))
	}
	for _, w := range want {
		if !slices.ContainsFunc(got, func(g store.UnblockCode) bool { return bytes.Equal(g.ID, w.ID) && g.Code == w.Code }) {
			t.Errorf("%s: unblock code read back differently", what)
		}
	}
}

// secretsOf lists the secret values of accounts and tokens.
func secretsOf(as []*store.Account, toks []*store.Token) [][]byte {
	var out [][]byte
	for _, a := range as {
		out = append(out, a.KA, a.WrapKb, a.SRPVerifier, a.EmailCode)
	}
	for _, tok := range toks {
		out = append(out, tok.AuthKey, tok.BundleKey)
		if tok.Seed != nil {
			out = append(out, tok.Seed)
		}
	}
	return out
}

// inClear reports how many of secrets the raw tables with secret columns
// hold as they are.
func inClear(t *testing.T, db *sqlx.DB, secrets [][]byte) int {
	t.Helper()
	var cells [][]byte
	for _, q := range []string{"SELECT ka, wrap_kb, srp_verifier, email_code FROM accounts",
		"SELECT auth_key, bundle_key, COALESCE(seed, auth_key), COALESCE(code, auth_key) FROM tokens",
		"SELECT code FROM unblock_codes", "SELECT key_id, data FROM recovery_keys"} {
		rows, err := db.QueryContext(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([][]byte, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			cells = append(cells, vals...)
		}
		rows.Close()
	}
	n := 0
	for _, s := range secrets {
		if slices.ContainsFunc(cells, func(c []byte) bool { return bytes.Contains(c, s) }) {
			n++
		}
	}
	return n
}

// mustRead checks that s opens every account and token as written.
func mustRead(t *testing.T, what string, s *Store, as []*store.Account, toks []*store.Token) {
	t.Helper()
	ctx := t.Context()
	for _, a := range as {
		got, err := s.AccountByUID(ctx, a.UID)
		if err != nil {
			t.Fatalf("%s: AccountByUID: %v", what, err)
		}
		if !bytes.Equal(got.KA, a.KA) || !bytes.Equal(got.WrapKb, a.WrapKb) || !bytes.Equal(got.SRPVerifier, a.SRPVerifier) ||
			!bytes.Equal(got.EmailCode, a.EmailCode) || !bytes.Equal(got.SRPSalt, a.SRPSalt) || got.Email != a.Email {
			t.Errorf("%s: account %x read back differently", what, a.UID)
		}
	}
	for _, tok := range toks {
		got, err := s.Token(ctx, tok.Type, tok.ID)
		if err != nil {
			t.Fatalf("%s: Token(%s): %v", what, tok.Type, err)
		}
		if !bytes.Equal(got.AuthKey, tok.AuthKey) || !bytes.Equal(got.BundleKey, tok.BundleKey) || !bytes.Equal(got.Seed, tok.Seed) ||
			got.Code != tok.Code || !bytes.Equal(got.SRPB, tok.SRPB) || got.Tries != tok.Tries {
			t.Errorf("%s: %s read back differently", what, tok.Type)
		}
	}
}

// status returns SealStatus as "table key rows" lines, "clear" for "".
func status(t *testing.T, s *Store) []string {
	t.Helper()
	counts, err := s.SealStatus(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range counts {
		id := c.KEKID
		if id == "" {
			id = "clear"
		}
		out = append(out, fmt.Sprintf("%s %s %d", c.Table, id, c.Rows))
	}
	return out
}

// Rows in clear from before sealing are read as they are and sealed by
// Reseal; a rotation moves every row to the new key, after which the new
// key alone opens everything.
func TestLegacyRowsAndRotation(t *testing.T) {
	ctx := context.Background()
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			dsn := d.dsn(t)
			ring1, key1 := newRing(t)
			s1 := mustOpen(t, dsn, Options{Migrate: true, KEK: ring1})
			raw := rawDB(t, dsn)

			legacy, legacy2 := testAccount("legacy@example.org"), testAccount("legacy2@example.org")
			legacyToks := testTokens(legacy.UID)
			insertLegacy(t, raw, true, legacy, legacyToks)
			insertLegacy(t, raw, true, legacy2, nil)
			sealed := testAccount("sealed@example.org")
			if err := s1.CreateAccount(ctx, sealed); err != nil {
				t.Fatal(err)
			}
			sealedToks := testTokens(sealed.UID)
			for _, tok := range sealedToks {
				if err := s1.CreateToken(ctx, tok); err != nil {
					t.Fatal(err)
				}
			}
			// A password change of a clear row seals all of it.
			c := &store.Credentials{SRPType: legacy2.SRPType, SRPVerifier: rnd(256), SRPSalt: rnd(32), Stretching: legacy2.Stretching,
				WrapKb: rnd(32), Generation: legacy2.Generation}
			if err := s1.SetCredentials(ctx, legacy2.UID, c); err != nil {
				t.Fatal(err)
			}
			legacy2.SRPVerifier, legacy2.SRPSalt, legacy2.WrapKb = c.SRPVerifier, c.SRPSalt, c.WrapKb

			legacyCode, sealedCode := testUnblockCode(legacy.UID), testUnblockCode(legacy.UID)
			insertLegacyUnblockCode(t, raw, true, legacyCode)
			if err := s1.CreateUnblockCode(ctx, sealedCode); err != nil {
				t.Fatal(err)
			}
			readCodes := func(what string, s *Store) {
				t.Helper()
				mustReadCodes(t, what, s, legacy.UID, legacyCode, sealedCode)
			}
			legacyKey, sealedKey := testRecoveryKey(legacy.UID), testRecoveryKey(sealed.UID)
			insertLegacyRecoveryKey(t, raw, legacyKey)
			if _, err := s1.PutRecoveryKey(ctx, sealedKey); err != nil {
				t.Fatal(err)
			}
			readKeys := func(what string, s *Store) {
				t.Helper()
				mustReadRecoveryKeys(t, what, s, legacyKey, sealedKey)
			}

			all := []*store.Account{legacy, legacy2, sealed}
			allToks := slices.Concat(legacyToks, sealedToks)
			mustRead(t, "before seal-existing", s1, all, allToks)
			readCodes("before seal-existing", s1)
			readKeys("before seal-existing", s1)
			id1 := ring1.KeyID()
			want := []string{"accounts clear 1", "accounts " + id1 + " 2", "tokens clear 6", "tokens " + id1 + " 6",
				"unblock_codes clear 1", "unblock_codes " + id1 + " 1", "recovery_keys clear 1", "recovery_keys " + id1 + " 1"}
			if got := status(t, s1); !slices.Equal(got, want) {
				t.Errorf("status %q, want %q", got, want)
			}
			if n := inClear(t, raw, secretsOf([]*store.Account{legacy}, legacyToks)); n != 4+6*2+1 {
				t.Errorf("%d legacy secrets in clear, want all %d", n, 4+6*2+1)
			}
			if n := inClear(t, raw, recoveryKeySecrets(legacyKey, sealedKey)); n != 2 {
				t.Errorf("%d recovery key secrets in clear, want the legacy key's 2", n)
			}

			// seal-existing: Reseal with the one key.
			var progress []ResealProgress
			res, err := s1.Reseal(ctx, ResealOptions{Batch: 2, Progress: func(p ResealProgress) { progress = append(progress, p) }})
			if err != nil {
				t.Fatal(err)
			}
			wantRes := []ResealProgress{{Table: "accounts", Todo: 1, Resealed: 1}, {Table: "tokens", Todo: 6, Resealed: 6},
				{Table: "unblock_codes", Todo: 1, Resealed: 1}, {Table: "recovery_keys", Todo: 1, Resealed: 1}}
			if !slices.Equal(res, wantRes) {
				t.Errorf("Reseal = %+v, want %+v", res, wantRes)
			}
			if len(progress) < 5 || progress[len(progress)-1] != wantRes[3] {
				t.Errorf("progress %+v", progress)
			}
			if n := inClear(t, raw, secretsOf(all, allToks)); n != 0 {
				t.Errorf("%d secrets in clear after seal-existing", n)
			}
			mustRead(t, "after seal-existing", s1, all, allToks)
			readCodes("after seal-existing", s1)
			if n := inClear(t, raw, [][]byte{[]byte(legacyCode.Code), []byte(sealedCode.Code)}); n != 0 {
				t.Errorf("%d unblock codes in clear after seal-existing", n)
			}
			if n := inClear(t, raw, recoveryKeySecrets(legacyKey, sealedKey)); n != 0 {
				t.Errorf("%d recovery key secrets in clear after seal-existing", n)
			}
			readKeys("after seal-existing", s1)
			want = []string{"accounts " + id1 + " 3", "tokens " + id1 + " 12", "unblock_codes " + id1 + " 2", "recovery_keys " + id1 + " 2"}
			if got := status(t, s1); !slices.Equal(got, want) {
				t.Errorf("status %q, want %q", got, want)
			}

			// Rotation: the new key seals, the old one is retired.
			ring2, key2 := newRing(t, key1)
			s2 := mustOpen(t, dsn, Options{KEK: ring2})
			mustRead(t, "new key, old retired", s2, all, allToks)
			res, err = s2.Reseal(ctx, ResealOptions{})
			if err != nil {
				t.Fatal(err)
			}
			wantRes = []ResealProgress{{Table: "accounts", Todo: 3, Resealed: 3}, {Table: "tokens", Todo: 12, Resealed: 12},
				{Table: "unblock_codes", Todo: 2, Resealed: 2}, {Table: "recovery_keys", Todo: 2, Resealed: 2}}
			if !slices.Equal(res, wantRes) {
				t.Errorf("rotation: Reseal = %+v, want %+v", res, wantRes)
			}
			want = []string{"accounts " + ring2.KeyID() + " 3", "tokens " + ring2.KeyID() + " 12", "unblock_codes " + ring2.KeyID() + " 2",
				"recovery_keys " + ring2.KeyID() + " 2"}
			if got := status(t, s2); !slices.Equal(got, want) {
				t.Errorf("status %q, want %q", got, want)
			}
			only2, err := sealing.NewRing(key2)
			if err != nil {
				t.Fatal(err)
			}
			alone := mustOpen(t, dsn, Options{KEK: only2})
			mustRead(t, "new key alone", alone, all, allToks)
			readCodes("new key alone", alone)
			readKeys("new key alone", alone)
			if _, err := s1.RecoveryKey(ctx, sealed.UID); !errors.Is(err, sealing.ErrUnknownKey) {
				t.Errorf("old key alone after the rotation: RecoveryKey: %v; want ErrUnknownKey", err)
			}
			if _, err := s1.AccountByUID(ctx, legacy.UID); !errors.Is(err, sealing.ErrUnknownKey) {
				t.Errorf("old key alone after the rotation: %v; want ErrUnknownKey", err)
			}
			// Done: another run has nothing to do.
			res, err = s2.Reseal(ctx, ResealOptions{})
			if err != nil || res[0].Todo+res[1].Todo+res[2].Todo+res[3].Todo != 0 || res[0].Resealed+res[1].Resealed+res[2].Resealed+res[3].Resealed != 0 {
				t.Errorf("Reseal again = %+v, %v; want nothing to do", res, err)
			}
		})
	}
}

// A row that does not open is left as it is and named; Reseal does the
// others all the same.
func TestResealFailure(t *testing.T) {
	ctx := context.Background()
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			dsn := d.dsn(t)
			ring1, key1 := newRing(t)
			s1 := mustOpen(t, dsn, Options{Migrate: true, KEK: ring1})
			var as []*store.Account
			for i := range 5 {
				a := testAccount(fmt.Sprintf("a%d@example.org", i))
				if err := s1.CreateAccount(ctx, a); err != nil {
					t.Fatal(err)
				}
				as = append(as, a)
			}
			raw := rawDB(t, dsn)
			if _, err := raw.ExecContext(ctx, raw.Rebind("UPDATE accounts SET ka = (SELECT ka FROM accounts WHERE uid = ?) WHERE uid = ?"), as[0].UID, as[3].UID); err != nil {
				t.Fatal(err)
			}
			ring2, _ := newRing(t, key1)
			s2 := mustOpen(t, dsn, Options{KEK: ring2})
			res, err := s2.Reseal(ctx, ResealOptions{Batch: 2})
			var ue *UnsealError
			if !errors.As(err, &ue) || !bytes.Equal(ue.UID, as[3].UID) || ue.Table != "accounts" || ue.Column != "ka" ||
				!strings.Contains(err.Error(), fmt.Sprintf("%x", as[3].UID)) || !errors.Is(err, sealing.ErrTampered) {
				t.Fatalf("Reseal = %v; want an UnsealError of accounts.ka of the moved row", err)
			}
			if res[0].Resealed != 4 || res[0].Failed != 1 || res[0].Left != 1 {
				t.Errorf("Reseal = %+v; want 4 resealed, 1 failed, 1 left", res[0])
			}
		})
	}
}

// Reseal runs beside writers without undoing their writes or failing them,
// and ends with every row under the new key.
func TestResealConcurrent(t *testing.T) {
	ctx := context.Background()
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			dsn := d.dsn(t)
			ring1, key1 := newRing(t)
			s1 := mustOpen(t, dsn, Options{Migrate: true, KEK: ring1})
			const n = 60
			as := make([]*store.Account, n)
			keys := make([]*store.RecoveryKey, n) // the latest of each account
			for i := range as {
				as[i] = testAccount(fmt.Sprintf("a%d@example.org", i))
				if err := s1.CreateAccount(ctx, as[i]); err != nil {
					t.Fatal(err)
				}
				for _, tok := range testTokens(as[i].UID)[1:3] {
					if err := s1.CreateToken(ctx, tok); err != nil {
						t.Fatal(err)
					}
				}
				keys[i] = testRecoveryKey(as[i].UID)
				if _, err := s1.PutRecoveryKey(ctx, keys[i]); err != nil {
					t.Fatal(err)
				}
			}
			ring2, key2 := newRing(t, key1)
			server := mustOpen(t, dsn, Options{KEK: ring2})  // the server, restarted with the new key
			rotator := mustOpen(t, dsn, Options{KEK: ring2}) // keyserver kek rotate

			var mu sync.Mutex
			latest := map[int]*store.Credentials{}
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for w := range 3 {
				wg.Go(func() {
					for i := w; ; i += 3 {
						select {
						case <-stop:
							return
						default:
						}
						k := i % n
						a := as[k]
						c := &store.Credentials{SRPType: a.SRPType, SRPVerifier: rnd(256), SRPSalt: rnd(32), Stretching: a.Stretching, WrapKb: rnd(32), Generation: a.Generation}
						rk := testRecoveryKey(a.UID)
						mu.Lock() // one writer per account at a time, so that latest is the last write
						err := server.SetCredentials(ctx, a.UID, c)
						if err == nil {
							latest[k] = c
							if _, err = server.PutRecoveryKey(ctx, rk); err == nil {
								keys[k] = rk
							}
						}
						mu.Unlock()
						if err != nil {
							t.Errorf("SetCredentials or PutRecoveryKey during the rotation: %v", err)
							return
						}
						if _, err := server.AccountByUID(ctx, a.UID); err != nil {
							t.Errorf("AccountByUID during the rotation: %v", err)
							return
						}
						tok := testTokens(a.UID)[1]
						if err := server.WithTx(store.Ephemeral(ctx), func(q store.Queries) error { return q.CreateToken(ctx, tok) }); err != nil {
							t.Errorf("CreateToken during the rotation: %v", err)
							return
						}
						if _, err := server.ConsumeToken(ctx, tok.Type, tok.ID); err != nil {
							t.Errorf("ConsumeToken during the rotation: %v", err)
							return
						}
					}
				})
			}
			time.Sleep(20 * time.Millisecond)
			res, err := rotator.Reseal(ctx, ResealOptions{Batch: 7})
			close(stop)
			wg.Wait()
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range res {
				if p.Left != 0 || p.Failed != 0 {
					t.Errorf("Reseal: %+v; want nothing left", p)
				}
			}
			t.Logf("Reseal beside writers: %+v", res)
			only2, err := sealing.NewRing(key2)
			if err != nil {
				t.Fatal(err)
			}
			after := mustOpen(t, dsn, Options{KEK: only2})
			for k, a := range as {
				got, err := after.AccountByUID(ctx, a.UID)
				if err != nil {
					t.Fatalf("new key alone: %v", err)
				}
				want := a.SRPVerifier
				wantKb := a.WrapKb
				if c := latest[k]; c != nil {
					want, wantKb = c.SRPVerifier, c.WrapKb
				}
				if !bytes.Equal(got.SRPVerifier, want) || !bytes.Equal(got.WrapKb, wantKb) || !bytes.Equal(got.KA, a.KA) {
					t.Errorf("account %d: a write was undone by the rotation", k)
				}
			}
			mustReadRecoveryKeys(t, "new key alone", after, keys...)
		})
	}
}

// A database migrated to version 3 and holding clear rows (code TEXT on
// PostgreSQL too) is migrated to 4, read, and sealed.
func TestUpgradeWithLegacyData(t *testing.T) {
	ctx := context.Background()
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			dsn := d.dsn(t)
			raw := rawDB(t, dsn)
			files, err := filepath.Glob(filepath.Join("..", "..", "migrations", d.name, "*.sql"))
			if err != nil || len(files) == 0 {
				t.Fatalf("migration files: %v, %v", files, err)
			}
			if _, err := raw.ExecContext(ctx, "CREATE TABLE schema_migrations (version INTEGER NOT NULL PRIMARY KEY, applied_at BIGINT NOT NULL)"); err != nil {
				t.Fatal(err)
			}
			name := regexp.MustCompile(`^([0-9]{4})_`)
			for _, f := range files {
				v, _ := strconv.Atoi(name.FindStringSubmatch(filepath.Base(f))[1])
				if v >= 4 {
					continue
				}
				body, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := raw.ExecContext(ctx, string(body)); err != nil {
					t.Fatalf("%s: %v", f, err)
				}
				if _, err := raw.ExecContext(ctx, raw.Rebind("INSERT INTO schema_migrations VALUES (?, 0)"), v); err != nil {
					t.Fatal(err)
				}
			}
			a := testAccount("legacy@example.org")
			toks := testTokens(a.UID)
			insertLegacy(t, raw, false, a, toks)
			ucode := testUnblockCode(a.UID)
			insertLegacyUnblockCode(t, raw, false, ucode)

			ring, _ := newRing(t)
			if _, err := Open(ctx, dsn, Options{KEK: ring}); err == nil {
				t.Fatal("Open of an old schema without Migrate succeeded")
			}
			s := mustOpen(t, dsn, Options{Migrate: true, KEK: ring})
			if cur, latest, err := migrations.Status(ctx, s.db.DB, d.name); err != nil || cur != latest || cur < 4 {
				t.Fatalf("schema %d of %d, %v", cur, latest, err)
			}
			mustRead(t, "legacy rows after 0004", s, []*store.Account{a}, toks)
			mustReadCodes(t, "legacy unblock code after 0004", s, a.UID, ucode)
			if _, err := s.Reseal(ctx, ResealOptions{}); err != nil {
				t.Fatal(err)
			}
			if n := inClear(t, raw, secretsOf([]*store.Account{a}, toks)); n != 0 {
				t.Errorf("%d secrets in clear after seal-existing", n)
			}
			mustRead(t, "legacy rows sealed", s, []*store.Account{a}, toks)
			mustReadCodes(t, "legacy unblock code sealed", s, a.UID, ucode)
			var sealedCode []byte
			if err := raw.QueryRowContext(ctx, raw.Rebind("SELECT code FROM unblock_codes WHERE id = ?"), ucode.ID).Scan(&sealedCode); err != nil ||
				len(sealedCode) != len(ucode.Code)+sealing.Overhead || bytes.Contains(sealedCode, []byte(ucode.Code)) {
				t.Errorf("sealed unblock code: %d bytes, %v", len(sealedCode), err)
			}
			var code []byte
			if err := raw.QueryRowContext(ctx, raw.Rebind("SELECT code FROM tokens WHERE token_id = ?"), toks[5].ID).Scan(&code); err != nil ||
				len(code) != len(toks[5].Code)+sealing.Overhead || bytes.Contains(code, []byte(toks[5].Code)) {
				t.Errorf("sealed code: %d bytes, %v", len(code), err)
			}
		})
	}
}

// The SQLite files themselves (database and write-ahead log), not just what
// SQL reads, hold no secret.
func TestSQLiteFilesHoldNoSecret(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(ctx, "sqlite:"+filepath.Join(dir, "ks.db"), Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	a := testAccount("alice@example.org")
	toks := testTokens(a.UID)
	if err := s.CreateAccount(ctx, a); err != nil {
		t.Fatal(err)
	}
	for _, tok := range toks {
		if err := s.CreateToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	k := testRecoveryKey(a.UID)
	if _, err := s.PutRecoveryKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	secrets := secretsOf([]*store.Account{a}, toks)
	secrets = append(secrets, []byte(toks[5].Code))
	secrets = append(secrets, recoveryKeySecrets(k)...)
	scan := func(when string) {
		files, _ := filepath.Glob(filepath.Join(dir, "ks.db*"))
		if len(files) == 0 {
			t.Fatal("no database file")
		}
		foundUID := false
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			foundUID = foundUID || bytes.Contains(data, a.UID)
			for i, sec := range secrets {
				if bytes.Contains(data, sec) {
					t.Errorf("%s: secret %d in %s", when, i, filepath.Base(f))
				}
			}
		}
		if !foundUID {
			t.Errorf("%s: the uid is in no file: the scan reads nothing?", when)
		}
	}
	scan("open")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	scan("closed")
}

// Reseal's update of a row that changed since it was read (a password
// change, a consumed token) affects nothing: the change stands.
func TestResealCompareAndSet(t *testing.T) {
	ctx := context.Background()
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			dsn := d.dsn(t)
			ring1, key1 := newRing(t)
			s1 := mustOpen(t, dsn, Options{Migrate: true, KEK: ring1})
			raw := rawDB(t, dsn)
			a, legacy := testAccount("alice@example.org"), testAccount("legacy@example.org")
			if err := s1.CreateAccount(ctx, a); err != nil {
				t.Fatal(err)
			}
			tok := testTokens(a.UID)[2]
			if err := s1.CreateToken(ctx, tok); err != nil {
				t.Fatal(err)
			}
			insertLegacy(t, raw, true, legacy, nil)
			ring2, _ := newRing(t, key1)
			s2 := mustOpen(t, dsn, Options{KEK: ring2})

			// The update of each row as Reseal prepares it, from a read
			// before the change.
			stale := func(rt *resealTable, pk []byte) []any {
				t.Helper()
				rows, err := s2.db.QueryContext(ctx, s2.db.Rebind(rt.selectSQL), s2.seal.id, []byte{}, 100)
				if err != nil {
					t.Fatal(err)
				}
				defer rows.Close()
				for rows.Next() {
					got, _, args, err := rt.reseal(s2.seal, rows)
					if err != nil {
						t.Fatal(err)
					}
					if bytes.Equal(got, pk) {
						return args
					}
				}
				t.Fatalf("%s: row not read", rt.table)
				return nil
			}
			update := func(rt *resealTable, args []any) int64 {
				t.Helper()
				n, err := affected(s2.db.ExecContext(ctx, s2.db.Rebind(rt.updateSQL), args...))
				if err != nil {
					t.Fatal(err)
				}
				return n
			}
			for _, acct := range []*store.Account{a, legacy} {
				args := stale(accountsReseal, acct.UID)
				for _, s := range []*Store{s1, s2} { // a server with the old key, then with the new one
					c := &store.Credentials{SRPType: acct.SRPType, SRPVerifier: rnd(256), SRPSalt: rnd(32), Stretching: acct.Stretching, WrapKb: rnd(32), Generation: acct.Generation}
					if err := s.SetCredentials(ctx, acct.UID, c); err != nil {
						t.Fatal(err)
					}
					if n := update(accountsReseal, args); n != 0 {
						t.Errorf("a stale reseal of %s overwrote a password change", acct.Email)
					}
					got, err := s2.AccountByUID(ctx, acct.UID)
					if err != nil || !bytes.Equal(got.SRPVerifier, c.SRPVerifier) || !bytes.Equal(got.WrapKb, c.WrapKb) || !bytes.Equal(got.KA, acct.KA) {
						t.Errorf("%s after the stale reseal: %v", acct.Email, err)
					}
					if s == s1 {
						args = stale(accountsReseal, acct.UID) // still under the old key
					}
				}
			}
			// A fresh one does its work.
			b := testAccount("bob@example.org")
			if err := s1.CreateAccount(ctx, b); err != nil {
				t.Fatal(err)
			}
			if n := update(accountsReseal, stale(accountsReseal, b.UID)); n != 1 {
				t.Errorf("a fresh reseal affected %d rows", n)
			}

			args := stale(tokensReseal, tok.ID)
			if _, err := s1.ConsumeToken(ctx, tok.Type, tok.ID); err != nil {
				t.Fatal(err)
			}
			if n := update(tokensReseal, args); n != 0 {
				t.Errorf("a stale reseal of a consumed token affected %d rows", n)
			}

			// A recovery key replaced by a server with the old key, then
			// with the new one, or deleted.
			if _, err := s1.PutRecoveryKey(ctx, testRecoveryKey(a.UID)); err != nil {
				t.Fatal(err)
			}
			args = stale(recoveryKeysReseal, a.UID)
			for _, s := range []*Store{s1, s2} {
				k := testRecoveryKey(a.UID)
				if _, err := s.PutRecoveryKey(ctx, k); err != nil {
					t.Fatal(err)
				}
				if n := update(recoveryKeysReseal, args); n != 0 {
					t.Errorf("a stale reseal overwrote a replaced recovery key")
				}
				mustReadRecoveryKeys(t, "after the stale reseal", s2, k)
				if s == s1 {
					args = stale(recoveryKeysReseal, a.UID)
				}
			}
			if _, err := s1.PutRecoveryKey(ctx, testRecoveryKey(b.UID)); err != nil {
				t.Fatal(err)
			}
			args = stale(recoveryKeysReseal, b.UID)
			if err := s1.DeleteRecoveryKey(ctx, b.UID); err != nil {
				t.Fatal(err)
			}
			if n := update(recoveryKeysReseal, args); n != 0 {
				t.Errorf("a stale reseal of a deleted recovery key affected %d rows", n)
			}
			k := testRecoveryKey(b.UID)
			if _, err := s1.PutRecoveryKey(ctx, k); err != nil {
				t.Fatal(err)
			}
			if n := update(recoveryKeysReseal, stale(recoveryKeysReseal, b.UID)); n != 1 {
				t.Errorf("a fresh reseal of a recovery key affected %d rows", n)
			}
			mustReadRecoveryKeys(t, "after a fresh reseal", s2, k)
		})
	}
}
