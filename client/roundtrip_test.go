package client

import (
	"bytes"
	"context"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/keyserver/keyserver/accounts"
	"github.com/keyserver/keyserver/keyserver"
	"github.com/keyserver/keyserver/keywrap"
	"github.com/keyserver/keyserver/protocol"
	"github.com/keyserver/keyserver/store/sqlstore"
)

// cheap are stretching parameters for tests that are not about stretching.
var cheap = keywrap.Params{PBKDF2Rounds1: 2, ScryptN: 16, ScryptR: 8, ScryptP: 1, PBKDF2Rounds2: 2}

// captureMailer records the messages the server sends.
type captureMailer struct {
	mu   sync.Mutex
	msgs []*accounts.Message
}

func (m *captureMailer) Send(ctx context.Context, msg *accounts.Message) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.msgs = append(m.msgs, msg)
	return nil
}

func (m *captureMailer) last(t *testing.T) *accounts.Message {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.msgs) == 0 {
		t.Fatal("no mail sent")
	}
	return m.msgs[len(m.msgs)-1]
}

// newServer starts the real server on a fresh SQLite database in development
// mode, with its public URL equal to the test server's URL.
func newServer(t *testing.T) (url string, mail *captureMailer) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "ks.db"), sqlstore.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ts := httptest.NewUnstartedServer(nil)
	url = "http://" + ts.Listener.Addr().String()
	mail = &captureMailer{}
	srv, err := keyserver.New(keyserver.Config{PublicURL: url, Dev: true, Mailer: mail}, st)
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = srv.Handler()
	ts.Start()
	t.Cleanup(ts.Close)
	return url, mail
}

func newTestClient(t *testing.T, url string, opts ...Option) *Client {
	t.Helper()
	c, err := New(url, append([]Option{WithStretching(cheap)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// loginKeys signs in and fetches the keys.
func loginKeys(t *testing.T, c *Client, email, password string) (*Session, *Keys) {
	t.Helper()
	ctx := context.Background()
	s, err := c.Login(ctx, email, password)
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	k, err := c.Keys(ctx, s.KeyFetchToken, s.UnwrapBKey)
	if err != nil {
		t.Fatalf("keys: %v", err)
	}
	return s, k
}

func wantErrno(t *testing.T, what string, err error, errno int) {
	t.Helper()
	if !IsErrno(err, errno) {
		t.Fatalf("%s: got %v, want errno %d", what, err, errno)
	}
}

func TestRoundTrip(t *testing.T) {
	url, _ := newServer(t)
	c := newTestClient(t, url)
	ctx := context.Background()
	const email, pw, pw2 = "andré@example.org", "pässwörd", "new password"

	uid, err := c.CreateAccount(ctx, email, pw, CreateOptions{PreVerified: true})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	_, err = c.CreateAccount(ctx, "ANDRÉ@example.org", pw, CreateOptions{PreVerified: true})
	wantErrno(t, "create again", err, 101)

	s1, k1 := loginKeys(t, c, email, pw)
	if !bytes.Equal(s1.UID, uid) || !s1.Verified || s1.Email != email {
		t.Fatalf("session %x verified=%v email=%q", s1.UID, s1.Verified, s1.Email)
	}
	if len(k1.KA) != 32 || len(k1.KB) != 32 || bytes.Equal(k1.KB, k1.WrapKb) {
		t.Fatalf("keys %x %x %x", k1.KA, k1.WrapKb, k1.KB)
	}
	_, err = c.Keys(ctx, s1.KeyFetchToken, s1.UnwrapBKey)
	wantErrno(t, "keyFetchToken reused", err, 110)

	s2, k2 := loginKeys(t, c, email, pw)
	if !bytes.Equal(k1.KA, k2.KA) || !bytes.Equal(k1.KB, k2.KB) || bytes.Equal(s1.SessionToken, s2.SessionToken) {
		t.Fatal("second login: keys differ or same session")
	}

	gotEmail, verified, err := c.RecoveryEmailStatus(ctx, s2.SessionToken)
	if err != nil || gotEmail != email || !verified {
		t.Fatalf("status: %q %v %v", gotEmail, verified, err)
	}
	if err := c.ResendCode(ctx, s2.SessionToken, "sync"); err != nil {
		t.Fatalf("resend_code: %v", err)
	}
	if b, err := c.GetRandomBytes(ctx); err != nil || len(b) != 32 {
		t.Fatalf("get_random_bytes: %x %v", b, err)
	}
	if err := c.SessionDestroy(ctx, s2.SessionToken); err != nil {
		t.Fatalf("session/destroy: %v", err)
	}
	_, _, err = c.RecoveryEmailStatus(ctx, s2.SessionToken)
	wantErrno(t, "status after session/destroy", err, 110)

	_, err = c.Login(ctx, email, "wrong")
	wantErrno(t, "wrong password", err, protocol.ErrnoIncorrectPassword)
	_, err = c.Login(ctx, "nobody@example.org", pw)
	wantErrno(t, "unknown account", err, 102)

	// Password change keeps kA and kB and ends every session.
	if err := c.ChangePassword(ctx, email, pw, pw2); err != nil {
		t.Fatalf("change password: %v", err)
	}
	_, _, err = c.RecoveryEmailStatus(ctx, s1.SessionToken)
	wantErrno(t, "old session after password change", err, 110)
	_, err = c.Login(ctx, email, pw)
	wantErrno(t, "old password", err, protocol.ErrnoIncorrectPassword)
	_, k3 := loginKeys(t, c, email, pw2)
	if !bytes.Equal(k1.KA, k3.KA) || !bytes.Equal(k1.KB, k3.KB) {
		t.Fatal("password change lost kA or kB")
	}
	if bytes.Equal(k1.WrapKb, k3.WrapKb) {
		t.Fatal("wrapKb unchanged by the password change")
	}

	err = c.DestroyAccount(ctx, email, pw)
	wantErrno(t, "destroy with the old password", err, protocol.ErrnoIncorrectPassword)
	if err := c.DestroyAccount(ctx, email, pw2); err != nil {
		t.Fatalf("destroy: %v", err)
	}
	_, err = c.Login(ctx, email, pw2)
	wantErrno(t, "login after destroy", err, 102)
}

// TestEmailCaseAndVerification: the client retries with the stored email
// bytes (120), an unverified account cannot fetch keys, and the emailed code
// verifies it.
func TestEmailCaseAndVerification(t *testing.T) {
	url, mail := newServer(t)
	c := newTestClient(t, url)
	ctx := context.Background()
	const stored, typed, pw = "Straße@Example.ORG", "straße@example.org", "pw"

	uid, err := c.CreateAccount(ctx, stored, pw, CreateOptions{Service: "sync"})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	_, err = c.AuthStart(ctx, typed)
	wantErrno(t, "auth/start with other case", err, protocol.ErrnoIncorrectEmailCase)

	s, err := c.Login(ctx, typed, pw)
	if err != nil {
		t.Fatalf("login with other case: %v", err)
	}
	if s.Email != stored || s.Verified {
		t.Fatalf("session email %q verified %v", s.Email, s.Verified)
	}
	_, err = c.Keys(ctx, s.KeyFetchToken, s.UnwrapBKey)
	wantErrno(t, "keys unverified", err, 104)

	if err := c.ResendCode(ctx, s.SessionToken, ""); err != nil {
		t.Fatalf("resend_code: %v", err)
	}
	msg := mail.last(t)
	code, err := hex.DecodeString(msg.Headers["X-Verify-Code"])
	if err != nil || msg.Headers["X-Uid"] != hex.EncodeToString(uid) {
		t.Fatalf("mail headers %v", msg.Headers)
	}
	err = c.VerifyCode(ctx, uid, make([]byte, 16))
	wantErrno(t, "wrong code", err, 105)
	if err := c.VerifyCode(ctx, uid, code); err != nil {
		t.Fatalf("verify_code: %v", err)
	}
	_, k1 := loginKeys(t, c, typed, pw)

	// The change uses the stored bytes, so sign-in with either case works.
	if err := c.ChangePassword(ctx, typed, pw, "pw2"); err != nil {
		t.Fatalf("change password: %v", err)
	}
	_, k2 := loginKeys(t, c, stored, "pw2")
	if !bytes.Equal(k1.KA, k2.KA) || !bytes.Equal(k1.KB, k2.KB) {
		t.Fatal("keys changed")
	}
}

// TestResetWithZeroWrapKb: a reset with wrapKb nil keeps kA and changes kB,
// as in the forgot-password flow.
func TestResetWithZeroWrapKb(t *testing.T) {
	url, _ := newServer(t)
	c := newTestClient(t, url)
	ctx := context.Background()
	const email = "reset@example.org"
	if _, err := c.CreateAccount(ctx, email, "pw", CreateOptions{PreVerified: true}); err != nil {
		t.Fatal(err)
	}
	_, k1 := loginKeys(t, c, email, "pw")
	auth, err := c.SignIn(ctx, email, "pw")
	if err != nil {
		t.Fatal(err)
	}
	_, resetToken, err := c.PasswordChangeStart(ctx, auth.AuthToken)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ResetAccount(ctx, resetToken, email, "pw2", nil); err != nil {
		t.Fatalf("reset: %v", err)
	}
	err = c.ResetAccount(ctx, resetToken, email, "pw3", nil)
	wantErrno(t, "second reset with the same token", err, 110)
	_, k2 := loginKeys(t, c, email, "pw2")
	if !bytes.Equal(k1.KA, k2.KA) || bytes.Equal(k1.KB, k2.KB) {
		t.Fatal("reset with zero wrapKb: want same kA, new kB")
	}
}

// TestHawkNegative drives the negative-test hooks of DoRaw against the
// server: a body changed after signing, a stale timestamp, a replayed nonce.
func TestHawkNegative(t *testing.T) {
	url, _ := newServer(t)
	c := newTestClient(t, url)
	ctx := context.Background()
	const email = "hawk@example.org"
	if _, err := c.CreateAccount(ctx, email, "pw", CreateOptions{PreVerified: true}); err != nil {
		t.Fatal(err)
	}
	s, err := c.Login(ctx, email, "pw")
	if err != nil {
		t.Fatal(err)
	}
	cred := TokenCredentials(protocol.SessionToken, s.SessionToken)
	req := func() *RawRequest {
		return &RawRequest{Method: http.MethodPost, Path: "/v1/recovery_email/resend_code",
			Body: []byte(`{}`), ContentType: "application/json", Cred: cred}
	}

	r := req()
	r.SignedBody = []byte(`{"service":"x"}`)
	_, err = c.DoRaw(ctx, r, nil)
	wantErrno(t, "body changed after signing", err, 109)

	r = req()
	r.NoHash = true
	_, err = c.DoRaw(ctx, r, nil)
	wantErrno(t, "body without hash", err, 109)

	r = req()
	r.TS = c.ServerTime().Add(-10 * time.Minute).Unix()
	_, err = c.DoRaw(ctx, r, nil)
	wantErrno(t, "stale timestamp", err, 111)
	if e := err.(*Error); e.Body["serverTime"] == nil || e.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("111 without serverTime or WWW-Authenticate: %v", e.Body)
	}

	r = req()
	r.Nonce = "replayed-nonce"
	if _, err := c.DoRaw(ctx, r, nil); err != nil {
		t.Fatalf("first use of nonce: %v", err)
	}
	_, err = c.DoRaw(ctx, r, nil)
	wantErrno(t, "replayed nonce", err, 115)

	_, err = c.DoRaw(ctx, &RawRequest{Method: http.MethodGet, Path: "/v1/recovery_email/status",
		Cred: &Credentials{ID: cred.ID, Key: make([]byte, 32)}}, nil)
	wantErrno(t, "wrong key", err, 109)
}

// TestFullStretching runs one sign-in with the protocol's real parameters.
func TestFullStretching(t *testing.T) {
	if testing.Short() {
		t.Skip("full stretching costs 64 MiB and about a second")
	}
	url, _ := newServer(t)
	c, err := New(url)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const email = "full@example.org"
	if _, err := c.CreateAccount(ctx, email, "correct horse", CreateOptions{PreVerified: true}); err != nil {
		t.Fatal(err)
	}
	_, k := loginKeys(t, c, email, "correct horse")
	// The cheap client derives another verifier, so it cannot sign in.
	_, err = newTestClient(t, url).Login(ctx, email, "correct horse")
	wantErrno(t, "cheap stretching against a full verifier", err, protocol.ErrnoIncorrectPassword)
	if len(k.KB) != 32 {
		t.Fatal("no kB")
	}
}
