package keyserver_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyserver/keyserver/accounts"
	"github.com/keyserver/keyserver/client"
	"github.com/keyserver/keyserver/keyserver"
	"github.com/keyserver/keyserver/protocol"
	"github.com/keyserver/keyserver/store"
	"github.com/keyserver/keyserver/store/sqlstore"
)

// mailbox is a Mailer that keeps what it is given, or fails while failing.
type mailbox struct {
	mu      sync.Mutex
	msgs    []*accounts.Message
	failing bool
}

func (m *mailbox) Send(_ context.Context, msg *accounts.Message) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failing {
		return errors.New("554 refused")
	}
	m.msgs = append(m.msgs, msg)
	return nil
}

func (m *mailbox) fail(on bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.failing = on
}

func (m *mailbox) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.msgs)
}

// last is the latest message; it must be for to.
func (m *mailbox) last(t *testing.T, to string) *accounts.Message {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.msgs) == 0 {
		t.Fatal("no mail sent")
	}
	msg := m.msgs[len(m.msgs)-1]
	if msg.To != to {
		t.Fatalf("mail to %q, want %q", msg.To, to)
	}
	return msg
}

// newMailFixture is the API fixture with a mailbox as its mailer.
func newMailFixture(t *testing.T, configure ...func(*keyserver.Config)) (*apiFixture, *mailbox) {
	mb := &mailbox{}
	f := newAPIFixture(t, append([]func(*keyserver.Config){func(c *keyserver.Config) { c.Mailer = mb }}, configure...)...)
	return f, mb
}

var codeRE = regexp.MustCompile(`^[1-9][0-9]{7}$`)

// forgotCode is the code of the latest forgot-password mail to email.
func forgotCode(t *testing.T, mb *mailbox, email string) string {
	t.Helper()
	msg := mb.last(t, email)
	code := msg.Headers["X-Recovery-Code"]
	if !codeRE.MatchString(code) {
		t.Fatalf("code %q is not 8 digits without a leading zero", code)
	}
	for _, part := range []string{msg.Text, msg.HTML} {
		if !strings.Contains(part, code) || !strings.Contains(part, email) || !strings.Contains(part, "not you") {
			t.Fatalf("the message must carry the code, the account email and what to do if it was not the user:\n%s", part)
		}
	}
	return code
}

// otherCode is a well-formed code that is not code.
func otherCode(code string) string {
	if code == "12345678" {
		return "87654321"
	}
	return "12345678"
}

// wantForgot105 checks a wrong-code answer.
func wantForgot105(t *testing.T, err error, tries int, ttl time.Duration) {
	t.Helper()
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Errno != 105 {
		t.Fatalf("got %v, want errno 105", err)
	}
	if ce.Body["tries"] != float64(tries) || ce.Body["ttl"] != ttl.Seconds() {
		t.Fatalf("105 with tries %v ttl %v, want %d and %v", ce.Body["tries"], ce.Body["ttl"], tries, ttl.Seconds())
	}
}

func TestForgotPasswordFlow(t *testing.T) {
	f, mb := newMailFixture(t)
	ctx := t.Context()
	const email = "Alice@Example.org"
	uid := f.account(t, email)
	s1, s2 := f.login(t, email), f.login(t, email)
	f.device(t, s1, "laptop", "desktop")
	f.device(t, s2, "phone", "mobile")
	before, err := f.c.Keys(ctx, s1.KeyFetchToken, s1.UnwrapBKey)
	if err != nil {
		t.Fatal(err)
	}
	acct, err := f.st.AccountByUID(ctx, uid)
	if err != nil {
		t.Fatal(err)
	}

	ft, err := f.c.ForgotSendCode(ctx, email)
	if err != nil {
		t.Fatal(err)
	}
	if ft.TTL != 15*time.Minute || ft.CodeLength != 8 || ft.Tries != 3 || ft.Email != email {
		t.Fatalf("send_code: %+v", ft)
	}
	code := forgotCode(t, mb, email)

	// Malformed codes cost no try (D8).
	for _, bad := range []any{"1234567", "123456789", "1234567a", " 12345678", "", 12345678} {
		err := f.c.Do(ctx, "POST", "/v1/password/forgot/verify_code", map[string]any{"code": bad},
			client.TokenCredentials("forgotPasswordToken", ft.Token), nil)
		if ce := (*client.Error)(nil); !errors.As(err, &ce) || ce.Errno != 107 || ce.Body["param"] != "code" {
			t.Fatalf("code %#v: %v, want 107 code", bad, err)
		}
	}
	f.jump(t, time.Minute)
	_, err = f.c.ForgotVerifyCode(ctx, ft, otherCode(code))
	wantForgot105(t, err, 2, 14*time.Minute)

	// resend_code: the same seed and code, the tries and ttl left.
	f.jump(t, time.Minute)
	again, err := f.c.ForgotResendCode(ctx, ft)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.Token, ft.Token) || again.Tries != 2 || again.TTL != 13*time.Minute || again.CodeLength != 8 {
		t.Fatalf("resend_code: %+v", again)
	}
	if forgotCode(t, mb, email) != code {
		t.Fatal("resend_code sent another code")
	}

	resetToken, err := f.c.ForgotVerifyCode(ctx, ft, code)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.c.ForgotVerifyCode(ctx, ft, code)
	wantErrno(t, "forgotPasswordToken after the right code", err, 110)

	mails := mb.count()
	if err := f.c.ResetAccount(ctx, resetToken, email, "new password", nil); err != nil {
		t.Fatal(err)
	}
	if mb.count() != mails+1 || !strings.Contains(mb.last(t, email).Subject, "password was changed") {
		t.Fatal("no password-changed notification")
	}
	err = f.c.ResetAccount(ctx, resetToken, email, "newer password", nil)
	wantErrno(t, "accountResetToken after a reset", err, 110)

	// D13: kA and uid kept, kB new, every session and device gone,
	// generation advanced.
	for _, s := range []*client.Session{s1, s2} {
		_, _, err := f.c.RecoveryEmailStatus(ctx, s.SessionToken)
		wantErrno(t, "session from before the reset", err, 110)
	}
	_, err = f.c.Login(ctx, email, password)
	wantErrno(t, "old password", err, 103)
	s3, err := f.c.Login(ctx, email, "new password")
	if err != nil {
		t.Fatal(err)
	}
	after, err := f.c.Keys(ctx, s3.KeyFetchToken, s3.UnwrapBKey)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(s3.UID, uid) || !bytes.Equal(after.KA, before.KA) || bytes.Equal(after.KB, before.KB) || bytes.Equal(after.WrapKb, before.WrapKb) {
		t.Fatal("reset must keep uid and kA and pick a new wrapKb")
	}
	if ds, err := f.c.Devices(ctx, s3.SessionToken); err != nil || len(ds) != 0 {
		t.Fatalf("devices after reset: %v %v", ds, err)
	}
	now, err := f.st.AccountByUID(ctx, uid)
	if err != nil {
		t.Fatal(err)
	}
	if !now.Generation.After(acct.Generation) || now.Email != acct.Email || !now.Verified || bytes.Equal(now.SRPSalt, acct.SRPSalt) ||
		bytes.Equal(now.Stretching.Salt, acct.Stretching.Salt) || bytes.Equal(now.SRPVerifier, acct.SRPVerifier) {
		t.Fatal("reset must set new salts and verifier, keep email and verified, and advance generation")
	}

	// The audit trail: send, a failed and a successful verify, the reset.
	evs, err := f.st.Events(ctx, store.EventQuery{UID: uid})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range evs {
		if strings.HasPrefix(e.Action, "password.forgot") || e.Action == "account.reset" {
			got = append(got, e.Action+" "+e.Outcome+" "+e.Details)
		}
	}
	want := []string{
		"password.forgot.send_code success {}",
		"password.forgot.verify_code failure {\"errno\":105}",
		"password.forgot.resend_code success {}",
		"password.forgot.verify_code success {}",
		"account.reset success {}",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("audit events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestForgotTriesExpiryAndErrors(t *testing.T) {
	f, mb := newMailFixture(t)
	ctx := t.Context()
	const email = "bob@example.org"
	uid := f.account(t, email)

	t.Run("three wrong codes", func(t *testing.T) {
		ft, err := f.c.ForgotSendCode(ctx, email)
		if err != nil {
			t.Fatal(err)
		}
		code := forgotCode(t, mb, email)
		for tries := 2; tries >= 0; tries-- {
			_, err := f.c.ForgotVerifyCode(ctx, ft, otherCode(code))
			wantForgot105(t, err, tries, 15*time.Minute)
		}
		_, err = f.c.ForgotVerifyCode(ctx, ft, code)
		wantErrno(t, "the right code after the last try", err, 110)
		if n, _ := f.st.CountTokens(ctx, uid, protocol.ForgotPasswordToken); n != 0 {
			t.Fatalf("%d forgot tokens left", n)
		}
	})
	t.Run("expiry", func(t *testing.T) {
		ft, err := f.c.ForgotSendCode(ctx, email)
		if err != nil {
			t.Fatal(err)
		}
		code := forgotCode(t, mb, email)
		f.jump(t, 15*time.Minute)
		_, err = f.c.ForgotVerifyCode(ctx, ft, code)
		wantErrno(t, "expired token (C10)", err, 110)
		_, err = f.c.ForgotResendCode(ctx, ft)
		wantErrno(t, "resend with an expired token", err, 110)
	})
	t.Run("one live token per account", func(t *testing.T) {
		f.jump(t, time.Hour) // a fresh send_code allowance
		first, err := f.c.ForgotSendCode(ctx, email)
		if err != nil {
			t.Fatal(err)
		}
		firstCode := forgotCode(t, mb, email)
		second, err := f.c.ForgotSendCode(ctx, email)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.c.ForgotVerifyCode(ctx, first, firstCode)
		wantErrno(t, "replaced token", err, 110)
		if _, err := f.c.ForgotVerifyCode(ctx, second, forgotCode(t, mb, email)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("unknown, case and disabled", func(t *testing.T) {
		f.jump(t, time.Hour)
		post := func(email string) error {
			return f.c.Do(ctx, "POST", "/v1/password/forgot/send_code", map[string]string{"email": hexOf([]byte(email))}, nil, nil)
		}
		err := post("nobody@example.org")
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Errno != 102 || ce.Body["email"] != "nobody@example.org" {
			t.Fatalf("unknown email: %v", err)
		}
		err = post("BOB@example.org")
		if !errors.As(err, &ce) || ce.Errno != 120 || ce.Body["email"] != hexOf([]byte(email)) {
			t.Fatalf("email case: %v", err)
		}
		// The client retries with the stored bytes.
		ft, err := f.c.ForgotSendCode(ctx, "BOB@example.org")
		if err != nil || ft.Email != email {
			t.Fatalf("client retry on 120: %v %+v", err, ft)
		}
		if err := f.admin.Disable(ctx, hexOf(uid)); err != nil {
			t.Fatal(err)
		}
		wantErrno(t, "disabled account", post(email), 127)
		_, err = f.c.ForgotVerifyCode(ctx, ft, forgotCode(t, mb, email))
		wantErrno(t, "forgot token of a disabled account", err, 127)
	})
}

// C5: mail is sent after the commit; a failed send_code or resend answers
// 503/201 with Retry-After and changes nothing; notifications are best
// effort.
func TestMailFailures(t *testing.T) {
	f, mb := newMailFixture(t)
	ctx := t.Context()
	const email = "carol@example.org"
	uid := f.account(t, email)
	want503 := func(what string, err error) {
		t.Helper()
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Status != 503 || ce.Errno != 201 || ce.Header.Get("Retry-After") != "30" || ce.Body["retryAfter"] != float64(30) {
			t.Fatalf("%s: %v, want 503/201 with Retry-After 30", what, err)
		}
	}

	mb.fail(true)
	_, err := f.c.ForgotSendCode(ctx, email)
	want503("send_code", err)
	if n, err := f.st.CountTokens(ctx, uid, protocol.ForgotPasswordToken); err != nil || n != 0 {
		t.Fatalf("%d forgot tokens after a failed send_code, want 0 (%v)", n, err)
	}
	mb.fail(false)
	ft, err := f.c.ForgotSendCode(ctx, email)
	if err != nil {
		t.Fatal(err)
	}
	code := forgotCode(t, mb, email)
	mb.fail(true)
	_, err = f.c.ForgotResendCode(ctx, ft)
	want503("forgot resend_code", err)
	mb.fail(false)
	if _, err := f.c.ForgotResendCode(ctx, ft); err != nil {
		t.Fatalf("resend once mail works again: %v", err)
	}

	// The verification mail: create still succeeds, resend_code is 503.
	mb.fail(true)
	if _, err := f.c.CreateAccount(ctx, "dave@example.org", password, client.CreateOptions{}); err != nil {
		t.Fatalf("create with failing mail: %v", err)
	}
	dave := f.login(t, "dave@example.org")
	want503("recovery_email/resend_code", f.c.ResendCode(ctx, dave.SessionToken, ""))
	mb.fail(false)
	if err := f.c.ResendCode(ctx, dave.SessionToken, ""); err != nil {
		t.Fatal(err)
	}
	if link := mb.last(t, "dave@example.org").Headers["X-Link"]; !strings.Contains(link, "/v1/verify_email?uid=") {
		t.Fatalf("verification link %q", link)
	}

	// A failed notification does not undo the reset.
	resetToken, err := f.c.ForgotVerifyCode(ctx, ft, code)
	if err != nil {
		t.Fatal(err)
	}
	mb.fail(true)
	if err := f.c.ResetAccount(ctx, resetToken, email, "new password", nil); err != nil {
		t.Fatalf("reset with failing notification: %v", err)
	}
	if !strings.Contains(f.logs.String(), "notification mail not sent") {
		t.Fatal("the failed notification is not logged")
	}
	if strings.Contains(f.logs.String(), code) {
		t.Fatal("the log holds a forgot-password code")
	}
	mb.fail(false)
	f.login2(t, email, "new password")
}

// jump moves the server clock forward by more than the Hawk skew may allow,
// and lets the client learn the new server time.
func (f *apiFixture) jump(t *testing.T, d time.Duration) {
	t.Helper()
	f.advance(d)
	if _, err := f.c.GetRandomBytes(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// login2 signs in with a password other than the fixture's.
func (f *apiFixture) login2(t *testing.T, email, pw string) *client.Session {
	t.Helper()
	s, err := f.c.Login(t.Context(), email, pw)
	if err != nil {
		t.Fatalf("login %s: %v", email, err)
	}
	return s
}

// C19: 3 send_code per account and 20 per client IP per hour; 3
// recovery_email/resend_code per account per hour.
func TestMailThrottling(t *testing.T) {
	f, _ := newMailFixture(t)
	ctx := t.Context()
	f.account(t, "erin@example.org")
	f.account(t, "frank@example.org")
	want429 := func(what string, err error, retryAfter time.Duration) {
		t.Helper()
		var ce *client.Error
		ra := float64(retryAfter / time.Second)
		if !errors.As(err, &ce) || ce.Status != 429 || ce.Errno != 114 || ce.Body["retryAfter"] != ra || ce.Header.Get("Retry-After") != fmt.Sprint(ra) {
			t.Fatalf("%s: %v, want 429/114 retryAfter %v", what, err, ra)
		}
	}
	for i := range 3 {
		if _, err := f.c.ForgotSendCode(ctx, "erin@example.org"); err != nil {
			t.Fatalf("send_code %d: %v", i+1, err)
		}
		f.jump(t, time.Minute)
	}
	_, err := f.c.ForgotSendCode(ctx, "erin@example.org")
	want429("4th send_code of an account", err, 57*time.Minute)
	if _, err := f.c.ForgotSendCode(ctx, "frank@example.org"); err != nil {
		t.Fatalf("another account: %v", err)
	}
	f.jump(t, 57*time.Minute)
	if _, err := f.c.ForgotSendCode(ctx, "erin@example.org"); err != nil {
		t.Fatalf("an hour after the first: %v", err)
	}

	// 20 per client IP, unknown emails included.
	g, _ := newMailFixture(t)
	g.account(t, "frank@example.org")
	for range 20 {
		err := g.c.Do(ctx, "POST", "/v1/password/forgot/send_code", map[string]string{"email": hexOf([]byte("nobody@example.org"))}, nil, nil)
		wantErrno(t, "unknown email", err, 102)
	}
	_, err = g.c.ForgotSendCode(ctx, "frank@example.org")
	want429("21st send_code from one IP", err, time.Hour)

	// recovery_email/resend_code, for an unverified account.
	if _, err := f.c.CreateAccount(ctx, "gina@example.org", password, client.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	s := f.login(t, "gina@example.org")
	for i := range 3 {
		if err := f.c.ResendCode(ctx, s.SessionToken, ""); err != nil {
			t.Fatalf("resend_code %d: %v", i+1, err)
		}
	}
	want429("4th resend_code", f.c.ResendCode(ctx, s.SessionToken, ""), time.Hour)
}

// C14: without a mailer and outside the test switch, nothing is sent or
// logged; send_code answers 503 (C5) and leaves no token.
func TestNoMailerOutsideDev(t *testing.T) {
	f := newAPIFixture(t, func(c *keyserver.Config) { c.Dev, c.Mailer = false, nil })
	ctx := t.Context()
	const email = "nomail@example.org"
	uid, err := f.c.CreateAccount(ctx, email, password, client.CreateOptions{})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	_, err = f.c.ForgotSendCode(ctx, email)
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != 503 || ce.Errno != 201 {
		t.Fatalf("send_code: %v, want 503/201", err)
	}
	if n, _ := f.st.CountTokens(ctx, uid, protocol.ForgotPasswordToken); n != 0 {
		t.Fatalf("%d forgot tokens", n)
	}
	if l := f.logs.String(); strings.Contains(l, "X-Verify-Code") || strings.Contains(l, "X-Recovery-Code") || strings.Contains(l, "development mailer") {
		t.Fatalf("a message was logged outside the test switch:\n%s", l)
	}
}

// failForgotDelete fails every deletion of a forgotPasswordToken, inside
// transactions and out.
type failForgotDelete struct{ store.Store }

type failForgotDeleteQ struct{ store.Queries }

func (s failForgotDelete) DeleteToken(ctx context.Context, typ protocol.TokenType, id []byte) error {
	if typ == protocol.ForgotPasswordToken {
		return errCrash
	}
	return s.Store.DeleteToken(ctx, typ, id)
}

func (q failForgotDeleteQ) DeleteToken(ctx context.Context, typ protocol.TokenType, id []byte) error {
	if typ == protocol.ForgotPasswordToken {
		return errCrash
	}
	return q.Queries.DeleteToken(ctx, typ, id)
}

func (s failForgotDelete) WithTx(ctx context.Context, fn func(store.Queries) error) error {
	return s.Store.WithTx(ctx, func(q store.Queries) error { return fn(failForgotDeleteQ{q}) })
}

// The last try's decrement and the token's deletion are one step: when the
// deletion fails, the try is not taken either, so no token without tries
// is left for resend_code to serve.
func TestLastTryAtomic(t *testing.T) {
	ctx := t.Context()
	st, err := sqlstore.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "ks.db"), sqlstore.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	mb := &mailbox{}
	ts := httptest.NewUnstartedServer(nil)
	url := "http://" + ts.Listener.Addr().String()
	srv, err := keyserver.New(keyserver.Config{PublicURL: url, Dev: true, Mailer: mb}, failForgotDelete{st})
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = srv.Handler()
	ts.Start()
	t.Cleanup(ts.Close)
	c, err := client.New(url, client.WithStretching(cheap))
	if err != nil {
		t.Fatal(err)
	}
	const email = "tries@example.org"
	if _, err := c.CreateAccount(ctx, email, password, client.CreateOptions{PreVerified: true}); err != nil {
		t.Fatal(err)
	}
	ft, err := c.ForgotSendCode(ctx, email)
	if err != nil {
		t.Fatal(err)
	}
	code := forgotCode(t, mb, email)
	for tries := 2; tries >= 1; tries-- {
		_, err := c.ForgotVerifyCode(ctx, ft, otherCode(code))
		wantForgot105(t, err, tries, 15*time.Minute)
	}
	if _, err := c.ForgotVerifyCode(ctx, ft, otherCode(code)); err == nil {
		t.Fatal("the last wrong try succeeded")
	}
	again, err := c.ForgotResendCode(ctx, ft)
	if err != nil {
		t.Fatalf("resend after the failed last try: %v", err)
	}
	if again.Tries != 1 {
		t.Fatalf("resend after the failed last try: %d tries, want 1 (not taken)", again.Tries)
	}
}
