package e2e

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/keyserver/keyserver/client"
	"github.com/keyserver/keyserver/internal/smtptest"
	"github.com/keyserver/keyserver/internal/testidp"
)

// smtpFlags point a server at a test SMTP server.
func smtpFlags(m *smtptest.Server) []string {
	return []string{"--smtp-host", m.Host, "--smtp-port", strconv.Itoa(m.Port), "--smtp-starttls", "none",
		"--mail-from", "keyserver <no-reply@example.org>"}
}

// mailTo waits for the next message, which must be for to.
func mailTo(t *testing.T, m *smtptest.Server, to string) *smtptest.Message {
	t.Helper()
	msg := m.Next(t)
	if len(msg.To) != 1 || msg.To[0] != to {
		t.Fatalf("mail to %v, want %s", msg.To, to)
	}
	if !strings.Contains(msg.Text, to) || !strings.Contains(msg.HTML, to) || !strings.Contains(msg.Text, "not you") && !strings.Contains(msg.Text, "did not") {
		t.Fatalf("the mail must name the account and say what to do if it was not the user:\n%s", msg.Text)
	}
	return msg
}

// wantStatus fails unless err is a client error with this status and errno.
func wantStatus(t *testing.T, err error, status, errno int, what string) *client.Error {
	t.Helper()
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != status || ce.Errno != errno {
		t.Fatalf("%s: %v, want %d/%d", what, err, status, errno)
	}
	return ce
}

// Create → the verification mail → its link; forgot → the code → wrong
// codes → the right one → reset: kA kept, kB new, the other device signed
// out. Real SMTP to a server started by the test, on both backends.
func TestMailVerificationAndForgotPassword(t *testing.T) {
	backends(t, func(t *testing.T, db string, extra ...string) {
		mail := smtptest.Start(t)
		s := startServer(t, append(append([]string{"--db", db}, smtpFlags(mail)...), extra...)...)
		c := newClient(t, s)
		ctx := ctxT(t)
		const email, pw, pw2 = "Alice@Example.org", "correct horse", "battery staple"

		uid, err := c.CreateAccount(ctx, email, pw, client.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		msg := mailTo(t, mail, email)
		link := msg.Get("X-Link")
		if !strings.HasPrefix(link, s.URL+"/v1/verify_email?uid="+hex.EncodeToString(uid)+"&code=") || !strings.Contains(msg.Text, link) {
			t.Fatalf("verification link %q in\n%s", link, msg.Text)
		}
		resp, err := http.Get(link)
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(page) != "Email address verified" {
			t.Fatalf("verification link: %d %q", resp.StatusCode, page)
		}

		other, err := c.Login(ctx, email, pw)
		if err != nil {
			t.Fatal(err)
		}
		if !other.Verified {
			t.Fatal("not verified after the link")
		}
		name, typ := "old laptop", "desktop"
		if _, err := c.RegisterDevice(ctx, other.SessionToken, client.DeviceFields{Name: &name, Type: &typ}); err != nil {
			t.Fatal(err)
		}
		before, err := c.Keys(ctx, other.KeyFetchToken, other.UnwrapBKey)
		if err != nil {
			t.Fatal(err)
		}

		// Three wrong codes kill the token.
		ft, err := c.ForgotSendCode(ctx, email)
		if err != nil {
			t.Fatal(err)
		}
		code := mailTo(t, mail, email).Get("X-Recovery-Code")
		wrong := "12345678"
		if code == wrong {
			wrong = "87654321"
		}
		for tries := 2; tries >= 0; tries-- {
			_, err := c.ForgotVerifyCode(ctx, ft, wrong)
			ce := wantStatus(t, err, 400, 105, "wrong code")
			if ce.Body["tries"] != float64(tries) || ce.Body["ttl"].(float64) <= 0 || ce.Body["ttl"].(float64) > 900 {
				t.Fatalf("wrong code: tries %v ttl %v, want %d tries", ce.Body["tries"], ce.Body["ttl"], tries)
			}
		}
		_, err = c.ForgotVerifyCode(ctx, ft, code)
		wantStatus(t, err, 401, 110, "the right code after the third wrong one")

		// A new code, right the first time.
		ft, err = c.ForgotSendCode(ctx, email)
		if err != nil {
			t.Fatal(err)
		}
		msg = mailTo(t, mail, email)
		code = msg.Get("X-Recovery-Code")
		if len(code) != 8 || !strings.Contains(msg.Text, code) {
			t.Fatalf("code %q in\n%s", code, msg.Text)
		}
		resetToken, err := c.ForgotVerifyCode(ctx, ft, code)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.ResetAccount(ctx, resetToken, email, pw2, nil); err != nil {
			t.Fatal(err)
		}
		if n := mailTo(t, mail, email); !strings.Contains(n.Get("Subject"), "password was changed") {
			t.Fatalf("notification subject %q", n.Get("Subject"))
		}

		_, err = c.Login(ctx, email, pw)
		wantErrno(t, err, 103, "old password")
		sess, err := c.Login(ctx, email, pw2)
		if err != nil {
			t.Fatal(err)
		}
		after, err := c.Keys(ctx, sess.KeyFetchToken, sess.UnwrapBKey)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(after.KA, before.KA) || bytes.Equal(after.KB, before.KB) {
			t.Fatal("forgot-password reset must keep kA and change kB")
		}
		_, _, err = c.RecoveryEmailStatus(ctx, other.SessionToken)
		wantStatus(t, err, 401, 110, "the other device's session")
		if strings.Contains(s.logs.String(), code) {
			t.Fatal("the server log holds the forgot-password code")
		}
	})
}

// C5: the SMTP server refuses, or is down: 503/201 with Retry-After,
// nothing lost, and the resend works once it is back.
func TestMailServerFaults(t *testing.T) {
	mail := smtptest.Start(t)
	s := startServer(t, append([]string{"--db", sqliteDB(t)}, smtpFlags(mail)...)...)
	c := newClient(t, s)
	ctx := ctxT(t)
	const email, pw = "bob@example.org", "pw"
	want503 := func(err error, what string) {
		t.Helper()
		ce := wantStatus(t, err, 503, 201, what)
		if ce.Header.Get("Retry-After") == "" || ce.Body["retryAfter"] == nil {
			t.Fatalf("%s: no Retry-After", what)
		}
	}

	mail.Refuse(true)
	if _, err := c.CreateAccount(ctx, email, pw, client.CreateOptions{}); err != nil {
		t.Fatalf("create while mail is refused: %v", err)
	}
	sess, err := c.Login(ctx, email, pw)
	if err != nil {
		t.Fatal(err)
	}
	want503(c.ResendCode(ctx, sess.SessionToken, ""), "resend_code refused")
	_, err = c.ForgotSendCode(ctx, email)
	want503(err, "forgot send_code refused")

	mail.Refuse(false)
	mail.Stop()
	want503(c.ResendCode(ctx, sess.SessionToken, ""), "resend_code, SMTP down")
	_, err = c.ForgotSendCode(ctx, email)
	want503(err, "forgot send_code, SMTP down")
	if mail.Count() != 0 {
		t.Fatalf("%d messages delivered", mail.Count())
	}

	mail.Restart()
	if err := c.ResendCode(ctx, sess.SessionToken, ""); err != nil {
		t.Fatalf("resend_code once SMTP is back: %v", err)
	}
	resp, err := http.Get(mailTo(t, mail, email).Get("X-Link"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if _, verified, err := c.RecoveryEmailStatus(ctx, sess.SessionToken); err != nil || !verified {
		t.Fatalf("verified after the resent link: %v %v", verified, err)
	}
	ft, err := c.ForgotSendCode(ctx, email)
	if err != nil {
		t.Fatalf("forgot send_code once SMTP is back: %v", err)
	}
	if _, err := c.ForgotVerifyCode(ctx, ft, mailTo(t, mail, email).Get("X-Recovery-Code")); err != nil {
		t.Fatal(err)
	}
	// Nothing was lost: the password and the session still work.
	if _, err := c.Login(ctx, email, pw); err != nil {
		t.Fatal(err)
	}
	if !s.waitLog("mail not sent") {
		t.Fatal("mail failures are not logged")
	}
}

// recoveryServer starts a server trusting the OpenID Connect issuer idp and
// the BrowserID IdP bid (for example.org) through an issuers file, and their
// TLS certificates through --recovery-ca-file.
func recoveryServer(t *testing.T, idp *testidp.IdP, bid *testidp.BrowserIDIdP, db string, extra ...string) *server {
	t.Helper()
	// The JWK Set URL comes from the IdP's discovery document.
	resp, err := idp.Client().Get(idp.Issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	var disc struct {
		JWKSURI string `json:"jwks_uri"`
	}
	err = json.NewDecoder(resp.Body).Decode(&disc)
	resp.Body.Close()
	if err != nil || disc.JWKSURI == "" {
		t.Fatalf("discovery: %v", err)
	}
	dir := t.TempDir()
	issuers, _ := json.Marshal(map[string]any{
		"oidc":      []map[string]any{{"issuer": idp.Issuer, "clientIds": []string{"keyserver-e2e"}, "jwksUrl": disc.JWKSURI}},
		"browserid": []map[string]any{{"issuer": bid.Domain, "wellKnown": true, "domains": []string{"example.org"}}},
	})
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	args := []string{"--db", db, "--dev", "--recovery-issuers", write("issuers.json", issuers),
		"--recovery-ca-file", write("ca.pem", append(idp.CertPEM(), bid.CertPEM()...))}
	return startServer(t, append(args, extra...)...)
}

// Recovery with ID tokens of a test identity provider: every bad token is
// 400/126 and changes nothing; a valid one recovers once.
func TestRecoveryByIDToken(t *testing.T) {
	backends(t, func(t *testing.T, db string, extra ...string) {
		idp := testidp.New(t)
		s := recoveryServer(t, idp, testidp.NewBrowserID(t), db, extra...)
		c := newClient(t, s)
		ctx := ctxT(t)
		const email, pw, pw2 = "carol@example.org", "pw", "new pw"
		sess, before := recoveryAccount(t, c, email, pw, "dave@example.org")

		claims := func(edit func(map[string]any)) map[string]any {
			cl := idp.Claims("keyserver-e2e", email, time.Now())
			if edit != nil {
				edit(cl)
			}
			return cl
		}
		sign := func(edit func(map[string]any)) string { return testidp.Sign(t, idp.RSA, claims(edit), false, nil) }
		bad := map[string]string{
			"wrong audience":       sign(func(c map[string]any) { c["aud"] = "another-client" }),
			"wrong issuer":         sign(func(c map[string]any) { c["iss"] = "https://accounts.example.com" }),
			"expired":              sign(func(c map[string]any) { c["exp"] = time.Now().Add(-time.Minute).Unix() }),
			"email_verified false": sign(func(c map[string]any) { c["email_verified"] = false }),
			"another email":        sign(func(c map[string]any) { c["email"] = "dave@example.org" }),
			"bad signature":        testidp.Sign(t, testidp.NewKey(t, idp.RSA.KID, jose.RS256), claims(nil), false, nil),
			"unknown kid":          testidp.Sign(t, testidp.NewKey(t, "kid-nobody-knows", jose.RS256), claims(nil), false, nil),
		}
		for what, assertion := range bad {
			_, _, err := c.Recover(ctx, email, assertion)
			if ce := wantStatus(t, err, 400, 126, what); ce.Message != "Invalid email assertion" {
				t.Fatalf("%s: message %q", what, ce.Message)
			}
		}
		good := testidp.Sign(t, idp.EC, claims(nil), false, nil)
		resetToken, _, err := c.Recover(ctx, email, good)
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = c.Recover(ctx, email, good)
		wantStatus(t, err, 400, 126, "replayed ID token")
		// The failures changed nothing: the old password and session work.
		if _, _, err := c.RecoveryEmailStatus(ctx, sess.SessionToken); err != nil {
			t.Fatalf("session after failed recoveries: %v", err)
		}
		if _, err := c.SignIn(ctx, email, pw); err != nil {
			t.Fatalf("old password after failed recoveries: %v", err)
		}

		if err := c.ResetAccount(ctx, resetToken, email, pw2, nil); err != nil {
			t.Fatal(err)
		}
		s2, err := c.Login(ctx, email, pw2)
		if err != nil {
			t.Fatal(err)
		}
		after, err := c.Keys(ctx, s2.KeyFetchToken, s2.UnwrapBKey)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(after.KA, before.KA) || bytes.Equal(after.KB, before.KB) {
			t.Fatal("recovery must keep kA and change kB")
		}
		_, _, err = c.RecoveryEmailStatus(ctx, sess.SessionToken)
		wantStatus(t, err, 401, 110, "session after the recovery")
		if strings.Contains(s.logs.String(), good[:40]) {
			t.Fatal("the server log holds the assertion")
		}

		// The CLI: `keyserver client recover` with a fresh token.
		assertionFile := filepath.Join(t.TempDir(), "id_token")
		newPW := filepath.Join(t.TempDir(), "pw")
		if err := os.WriteFile(assertionFile, []byte(testidp.Sign(t, idp.Ed, claims(nil), false, nil)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(newPW, []byte("cli password\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		out, errOut, code := runKeyserver(t, "client", "recover", "--url", s.URL, "--email", email,
			"--assertion-file", assertionFile, "--new-password-file", newPW)
		if code != 0 || !strings.Contains(out, "kA: "+hex.EncodeToString(before.KA)) || strings.Contains(out, hex.EncodeToString(after.KB)) {
			t.Fatalf("client recover: exit %d\n%s%s", code, out, errOut)
		}
	})
}

// Mail and recovery settings: what serve says at startup, and what stops it.
func TestMailAndRecoveryConfig(t *testing.T) {
	// Without --smtp-host and --dev no mail is sent, and none is logged
	// (C14: only the development mailer of --dev may log codes): create
	// still succeeds, send_code is 503 (C5).
	s := startServer(t, "--db", sqliteDB(t))
	if !s.waitLog("level=WARN msg=\"no --smtp-host: no mail can be sent") {
		t.Fatalf("no warning about the missing mail server:\n%s", s.logs)
	}
	c := newClient(t, s)
	if _, err := c.CreateAccount(ctxT(t), "nomail@example.org", "pw", client.CreateOptions{}); err != nil {
		t.Fatalf("create without a mail server: %v", err)
	}
	_, err := c.ForgotSendCode(ctxT(t), "nomail@example.org")
	wantStatus(t, err, 503, 201, "send_code without a mail server")
	if l := s.logs.String(); strings.Contains(l, "development mailer") || strings.Contains(l, "X-Verify-Code") || strings.Contains(l, "X-Recovery-Code") {
		t.Fatalf("messages logged outside --dev:\n%s", l)
	}
	mail := smtptest.Start(t)
	s = startServer(t, append([]string{"--db", sqliteDB(t)}, smtpFlags(mail)...)...)
	if !s.waitLog("sending mail through SMTP") || strings.Contains(s.logs.String(), "development mailer") {
		t.Fatalf("startup log with --smtp-host:\n%s", s.logs)
	}

	dir := t.TempDir()
	bad := filepath.Join(dir, "issuers.json")
	if err := os.WriteFile(bad, []byte(`{"oidc": [{"issuer": "https://idp.example", "clientIds": ["c"], "jwksUrl": "https://idp.example/k", "jwksFile": "k.json"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"--recovery-issuers", bad}, 1, "at most one of jwksUrl and jwksFile"},
		{[]string{"--recovery-issuers", filepath.Join(dir, "missing.json")}, 1, "missing.json"},
		{[]string{"--recovery-ca-file", bad}, 2, "--recovery-ca-file needs --recovery-issuers"},
		{[]string{"--smtp-host", "127.0.0.1", "--smtp-starttls", "sometimes"}, 2, "STARTTLS policy"},
		{[]string{"--smtp-host", "127.0.0.1", "--mail-from", "not an address"}, 2, "sender address"},
	}
	for _, tc := range cases {
		args := append([]string{"serve", "--listen", "127.0.0.1:0", "--db", sqliteDB(t), "--signing-key", signingKey, "--kek-file", kekFile}, tc.args...)
		out, errOut, code := runKeyserver(t, args...)
		if code != tc.code || !strings.Contains(errOut, tc.msg) || out != "" {
			t.Errorf("serve %v: exit %d, stderr %q; want %d and %q", tc.args, code, errOut, tc.code, tc.msg)
		}
	}
}

// recoveryAccount creates email (verified) and another account and returns
// a session of email and its keys.
func recoveryAccount(t *testing.T, c *client.Client, email, pw, other string) (*client.Session, *client.Keys) {
	t.Helper()
	ctx := ctxT(t)
	for _, e := range []string{email, other} {
		if _, err := c.CreateAccount(ctx, e, pw, client.CreateOptions{PreVerified: true}); err != nil {
			t.Fatal(err)
		}
	}
	sess, err := c.Login(ctx, email, pw)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := c.Keys(ctx, sess.KeyFetchToken, sess.UnwrapBKey)
	if err != nil {
		t.Fatal(err)
	}
	return sess, keys
}

// Recovery with BrowserID backed assertions certified by a test IdP that
// publishes its key at /.well-known/browserid.
func TestRecoveryByBackedAssertion(t *testing.T) {
	backends(t, func(t *testing.T, db string, extra ...string) {
		bid, stranger := testidp.NewBrowserID(t), testidp.NewBrowserID(t)
		s := recoveryServer(t, testidp.New(t), bid, db, extra...)
		c := newClient(t, s)
		ctx := ctxT(t)
		const email, pw, pw2 = "erin@example.org", "pw", "new pw"
		sess, before := recoveryAccount(t, c, email, pw, "frank@example.org")

		clientKey := certClient()
		now := time.Now()
		cert := func(idp *testidp.BrowserIDIdP, email string, exp time.Time) string {
			return idp.Certify(t, bid.Domain, email, &clientKey.PublicKey, now, exp)
		}
		backed := func(cert, aud string, exp time.Time) string { return testidp.Backed(t, cert, clientKey, aud, exp) }
		valid := cert(bid, email, now.Add(time.Hour))
		soon := now.Add(2 * time.Minute)
		bad := map[string]string{
			"wrong audience":     backed(valid, "https://storage.example.org", soon),
			"wrong issuer":       backed(stranger.Certify(t, stranger.Domain, email, &clientKey.PublicKey, now, now.Add(time.Hour)), s.URL, soon),
			"expired assertion":  backed(valid, s.URL, now.Add(-time.Second)),
			"expired cert":       backed(bid.Certify(t, bid.Domain, email, &clientKey.PublicKey, now.Add(-time.Hour), now.Add(-time.Minute)), s.URL, soon),
			"another email":      backed(cert(bid, "frank@example.org", now.Add(time.Hour)), s.URL, soon),
			"bad signature":      backed(bid.CertifyPlain(t, stranger.Key, bid.Domain, email, &clientKey.PublicKey, now, now.Add(time.Hour)), s.URL, soon),
			"unknown kid":        backed(cert(stranger, email, now.Add(time.Hour)), s.URL, soon),
			"another client key": testidp.Backed(t, valid, mustRSA(t), s.URL, soon),
		}
		for what, assertion := range bad {
			_, _, err := c.Recover(ctx, email, assertion)
			wantStatus(t, err, 400, 126, what)
		}
		good := backed(valid, s.URL+"/", soon)
		resetToken, _, err := c.Recover(ctx, email, good)
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = c.Recover(ctx, email, good)
		wantStatus(t, err, 400, 126, "replayed backed assertion")
		if _, _, err := c.RecoveryEmailStatus(ctx, sess.SessionToken); err != nil {
			t.Fatalf("session after failed recoveries: %v", err)
		}

		if err := c.ResetAccount(ctx, resetToken, email, pw2, nil); err != nil {
			t.Fatal(err)
		}
		s2, err := c.Login(ctx, email, pw2)
		if err != nil {
			t.Fatal(err)
		}
		after, err := c.Keys(ctx, s2.KeyFetchToken, s2.UnwrapBKey)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(after.KA, before.KA) || bytes.Equal(after.KB, before.KB) {
			t.Fatal("recovery must keep kA and change kB")
		}
		_, _, err = c.RecoveryEmailStatus(ctx, sess.SessionToken)
		wantStatus(t, err, 401, 110, "session after the recovery")
	})
}

func mustRSA(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
