package keyserver_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/keyserver/keyserver/client"
	"github.com/keyserver/keyserver/customs"
	"github.com/keyserver/keyserver/internal/testidp"
	"github.com/keyserver/keyserver/keyserver"
	"github.com/keyserver/keyserver/protocol"
	"github.com/keyserver/keyserver/recovery"
	"github.com/keyserver/keyserver/store"
)

const recoveryClient = "keyserver"

// newRecoveryFixture is the API fixture trusting idp for recovery.
func newRecoveryFixture(t *testing.T, idp *testidp.IdP, configure ...func(*keyserver.Config)) (*apiFixture, *mailbox) {
	t.Helper()
	return newMailFixture(t, append(configure, func(c *keyserver.Config) {
		v, err := recovery.New(&recovery.Config{OIDC: []recovery.OIDCIssuer{{
			Issuer: idp.Issuer, ClientIDs: []string{recoveryClient}, JWKSURL: idp.JWKSURL(),
		}}}, recovery.Options{Audience: c.PublicURL, RootCAs: idp.CertPool()})
		if err != nil {
			t.Fatal(err)
		}
		c.Recovery = v
	})...)
}

// moreRecoveries raises R10 per ip (10 an hour, spec 14.2) for tests that
// try many assertions from one address.
func moreRecoveries(c *keyserver.Config) {
	c.Limits = customs.DefaultRules()
	if err := customs.SetLimit(c.Limits, "R10a", 100, time.Hour); err != nil {
		panic(err)
	}
}

// snapshot is what must not change when a recovery fails.
type snapshot struct {
	account *store.Account
	tokens  map[protocol.TokenType]int
}

func takeSnapshot(t *testing.T, f *apiFixture, uid []byte) snapshot {
	t.Helper()
	a, err := f.st.AccountByUID(t.Context(), uid)
	if err != nil {
		t.Fatal(err)
	}
	s := snapshot{account: a, tokens: map[protocol.TokenType]int{}}
	for _, typ := range protocol.TokenTypes {
		if s.tokens[typ], err = f.st.CountTokens(t.Context(), uid, typ); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func (s snapshot) same(o snapshot) bool {
	a, b := s.account, o.account
	if !bytes.Equal(a.SRPVerifier, b.SRPVerifier) || !bytes.Equal(a.WrapKb, b.WrapKb) || !bytes.Equal(a.KA, b.KA) ||
		!a.Generation.Equal(b.Generation) || a.Disabled != b.Disabled || a.Verified != b.Verified {
		return false
	}
	for typ, n := range s.tokens {
		if o.tokens[typ] != n {
			return false
		}
	}
	return true
}

func TestRecoverByIDToken(t *testing.T) {
	idp := testidp.New(t)
	f, _ := newRecoveryFixture(t, idp, moreRecoveries)
	ctx := t.Context()
	const email = "Alice@Example.org"
	uid := f.account(t, email)
	f.account(t, "bob@example.org")
	sess := f.login(t, email)
	before, err := f.c.Keys(ctx, sess.KeyFetchToken, sess.UnwrapBKey)
	if err != nil {
		t.Fatal(err)
	}
	// An older forgotPasswordToken and accountResetToken are replaced.
	if _, err := f.c.ForgotSendCode(ctx, email); err != nil {
		t.Fatal(err)
	}
	auth, err := f.c.SignIn(ctx, email, password)
	if err != nil {
		t.Fatal(err)
	}
	_, oldReset, err := f.c.PasswordChangeStart(ctx, auth.AuthToken)
	if err != nil {
		t.Fatal(err)
	}
	snap := takeSnapshot(t, f, uid)

	claims := func(edit func(c map[string]any)) map[string]any {
		c := idp.Claims(recoveryClient, "alice@example.org", time.Now()) // the fold matches
		if edit != nil {
			edit(c)
		}
		return c
	}
	sign := func(edit func(c map[string]any)) string { return testidp.Sign(t, idp.RSA, claims(edit), false, nil) }
	stranger := testidp.NewKey(t, "stranger", jose.RS256)
	forged := testidp.NewKey(t, idp.EC.KID, jose.ES256)
	good := sign(nil)
	bad := map[string]string{
		"wrong audience":       sign(func(c map[string]any) { c["aud"] = "someone-else" }),
		"wrong issuer":         sign(func(c map[string]any) { c["iss"] = "https://evil.example" }),
		"expired":              sign(func(c map[string]any) { c["exp"] = time.Now().Add(-time.Minute).Unix() }),
		"email_verified false": sign(func(c map[string]any) { c["email_verified"] = false }),
		"another email":        sign(func(c map[string]any) { c["email"] = "bob@example.org" }),
		"bad signature":        testidp.Sign(t, forged, claims(nil), false, nil),
		"unknown kid":          testidp.Sign(t, stranger, claims(nil), false, nil),
		"BrowserID garbage":    good + "~" + good,
		"not a token":          "hello",
	}
	for name, assertion := range bad {
		_, _, err := f.c.Recover(ctx, email, assertion)
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Status != 400 || ce.Errno != 126 || ce.Message != "Invalid email assertion" {
			t.Fatalf("%s: %v, want 400/126", name, err)
		}
		if !takeSnapshot(t, f, uid).same(snap) {
			t.Fatalf("%s: the account changed", name)
		}
	}
	// An account that does not exist, and an assertion for another
	// account than the body's email.
	_, _, err = f.c.Recover(ctx, "carol@example.org", testidp.Sign(t, idp.RSA, idp.Claims(recoveryClient, "carol@example.org", time.Now()), false, nil))
	wantErrno(t, "no account", err, 126)
	_, _, err = f.c.Recover(ctx, "bob@example.org", good)
	wantErrno(t, "assertion for alice, body bob", err, 126)

	// Disabled: 127, and the assertion is not used up.
	if err := f.admin.Disable(ctx, hexOf(uid)); err != nil {
		t.Fatal(err)
	}
	_, _, err = f.c.Recover(ctx, email, good)
	wantErrno(t, "disabled", err, 127)
	if err := f.admin.Enable(ctx, hexOf(uid)); err != nil {
		t.Fatal(err)
	}
	// Another case: 120 with the stored email, the assertion not used up
	// either; the client retries with the stored bytes.
	err = f.c.Do(ctx, "POST", "/v1/account/recover", map[string]string{"email": hexOf([]byte("alice@example.org")), "assertion": good}, nil, nil)
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Errno != 120 || ce.Body["email"] != hexOf([]byte(email)) {
		t.Fatalf("email case: %v", err)
	}
	if !takeSnapshot(t, f, uid).same(snap) {
		t.Fatal("the account changed")
	}
	resetToken, stored, err := f.c.Recover(ctx, "alice@example.org", good)
	if err != nil || stored != email {
		t.Fatalf("recover: %v (stored %q)", err, stored)
	}
	// Single use, across the whole store.
	_, _, err = f.c.Recover(ctx, email, good)
	wantErrno(t, "replay", err, 126)

	if n, _ := f.st.CountTokens(ctx, uid, protocol.ForgotPasswordToken); n != 0 {
		t.Fatal("the forgotPasswordToken survived the recovery")
	}
	err = f.c.ResetAccount(ctx, oldReset, email, "x", nil)
	wantErrno(t, "replaced accountResetToken", err, 110)
	if err := f.c.ResetAccount(ctx, resetToken, email, "new password", nil); err != nil {
		t.Fatal(err)
	}
	_, _, err = f.c.RecoveryEmailStatus(ctx, sess.SessionToken)
	wantErrno(t, "session after recovery", err, 110)
	s2 := f.login2(t, email, "new password")
	after, err := f.c.Keys(ctx, s2.KeyFetchToken, s2.UnwrapBKey)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(after.KA, before.KA) || bytes.Equal(after.KB, before.KB) {
		t.Fatal("recovery must keep kA and lose kB")
	}

	// Audit: failures before an account is identified have no uid; the
	// 120 twice (the client's first try and the raw request).
	evs, err := f.st.Events(ctx, store.EventQuery{})
	if err != nil {
		t.Fatal(err)
	}
	outcomes := map[string]int{}
	for _, e := range evs {
		if e.Action == "account.recover" {
			who := "alice"
			if e.UID == nil {
				who = "nobody"
			} else if !bytes.Equal(e.UID, uid) {
				who = "other"
			}
			outcomes[who+" "+e.Outcome+" "+e.Details]++
		}
	}
	want := map[string]int{
		"alice success {}":             1,
		`alice failure {"errno":127}`:  1,
		`alice failure {"errno":120}`:  2,
		`alice failure {"errno":126}`:  1,            // the replay
		`nobody failure {"errno":126}`: len(bad) + 2, // + no account, another email
		`other failure {"errno":126}`:  0,
	}
	for k, n := range want {
		if outcomes[k] != n {
			t.Fatalf("account.recover events: %v, want %v", outcomes, want)
		}
	}
}

// Without recovery issuers every assertion is refused.
func TestRecoverWithoutIssuers(t *testing.T) {
	idp := testidp.New(t)
	f, _ := newMailFixture(t)
	f.account(t, "a@example.org")
	_, _, err := f.c.Recover(t.Context(), "a@example.org", testidp.Sign(t, idp.RSA, idp.Claims(recoveryClient, "a@example.org", time.Now()), false, nil))
	wantErrno(t, "no issuers", err, 126)
	// Body validation comes first.
	err = f.c.Do(t.Context(), "POST", "/v1/account/recover", map[string]string{"email": hexOf([]byte("a@example.org")), "assertion": "é"}, nil, nil)
	if ce := (*client.Error)(nil); !errors.As(err, &ce) || ce.Errno != 107 || ce.Body["param"] != "assertion" {
		t.Fatalf("non-ASCII assertion: %v", err)
	}
	err = f.c.Do(t.Context(), "POST", "/v1/account/recover", map[string]string{"email": hexOf([]byte("a@example.org"))}, nil, nil)
	if ce := (*client.Error)(nil); !errors.As(err, &ce) || ce.Errno != 108 || ce.Body["param"] != "assertion" {
		t.Fatalf("no assertion: %v", err)
	}
}
