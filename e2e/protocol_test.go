package e2e

import (
	"bytes"
	"context"
	"encoding/hex"
	"io"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyserver/keyserver/client"
	"github.com/keyserver/keyserver/keywrap"
	"github.com/keyserver/keyserver/srp"
)

// cheap stretching: the server cannot tell, and full scrypt is tested in
// keywrap and in the client's own full-parameter test.
var cheap = keywrap.Params{PBKDF2Rounds1: 2, ScryptN: 16, ScryptR: 1, ScryptP: 1, PBKDF2Rounds2: 2}

func newClient(t *testing.T, s *server) *client.Client {
	t.Helper()
	c, err := client.New(s.URL, client.WithStretching(cheap))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// wantErrno fails unless err is a client error with this errno (and, when
// given, this HTTP status).
func wantErrno(t *testing.T, err error, errno int, what string) *client.Error {
	t.Helper()
	ce, ok := err.(*client.Error)
	if !ok {
		t.Fatalf("%s: got %v, want errno %d", what, err, errno)
	}
	if ce.Errno != errno {
		t.Fatalf("%s: got %d/%d %s, want errno %d", what, ce.Status, ce.Errno, ce.Message, errno)
	}
	if ce.Status >= 500 {
		t.Fatalf("%s: status %d", what, ce.Status)
	}
	return ce
}

// The whole account life cycle against the real binary, on both backends.
func TestAccountLifecycle(t *testing.T) {
	backends(t, func(t *testing.T, db string, extra ...string) {
		s := startServer(t, append([]string{"--db", db, "--dev"}, extra...)...)
		c := newClient(t, s)
		ctx := ctxT(t)
		const email, pw, pw2 = "Alice@Example.org", "correct horse", "battery staple"

		uid, err := c.CreateAccount(ctx, email, pw, client.CreateOptions{PreVerified: true})
		if err != nil {
			t.Fatal(err)
		}
		sess1, err := c.Login(ctx, email, pw)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(sess1.UID, uid) || !sess1.Verified {
			t.Fatalf("session: uid %x verified %v", sess1.UID, sess1.Verified)
		}
		keys1, err := c.Keys(ctx, sess1.KeyFetchToken, sess1.UnwrapBKey)
		if err != nil {
			t.Fatal(err)
		}
		// A keyFetchToken is single-use.
		_, err = c.Keys(ctx, sess1.KeyFetchToken, sess1.UnwrapBKey)
		wantErrno(t, err, 110, "keyFetchToken reuse")

		sess2, err := c.Login(ctx, email, pw)
		if err != nil {
			t.Fatal(err)
		}
		keys2, err := c.Keys(ctx, sess2.KeyFetchToken, sess2.UnwrapBKey)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(keys1.KA, keys2.KA) || !bytes.Equal(keys1.KB, keys2.KB) {
			t.Fatal("a second login gave other keys")
		}

		// An unused keyFetchToken and a live authToken from before the change.
		sess3, err := c.Login(ctx, email, pw)
		if err != nil {
			t.Fatal(err)
		}
		oldAuth, err := c.SignIn(ctx, email, pw)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.ChangePassword(ctx, email, pw, pw2); err != nil {
			t.Fatal(err)
		}
		_, err = c.Login(ctx, email, pw)
		wantErrno(t, err, 103, "old password after change")
		_, _, err = c.RecoveryEmailStatus(ctx, sess2.SessionToken)
		wantErrno(t, err, 110, "old sessionToken after change")
		_, err = c.Keys(ctx, sess3.KeyFetchToken, sess3.UnwrapBKey)
		wantErrno(t, err, 110, "old keyFetchToken after change")
		_, err = c.SessionCreate(ctx, oldAuth.AuthToken)
		wantErrno(t, err, 110, "old authToken after change")

		sess4, err := c.Login(ctx, email, pw2)
		if err != nil {
			t.Fatal(err)
		}
		keys4, err := c.Keys(ctx, sess4.KeyFetchToken, sess4.UnwrapBKey)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(keys1.KA, keys4.KA) || !bytes.Equal(keys1.KB, keys4.KB) {
			t.Fatal("password change lost kA or kB")
		}

		if err := c.DestroyAccount(ctx, email, pw2); err != nil {
			t.Fatal(err)
		}
		_, err = c.Login(ctx, email, pw2)
		wantErrno(t, err, 102, "login after destroy")
		_, _, err = c.RecoveryEmailStatus(ctx, sess4.SessionToken)
		wantErrno(t, err, 110, "session after destroy")
	})
}

// preVerified is honoured only in development mode (D7); an account is
// verified through the emailed link.
func TestEmailVerification(t *testing.T) {
	s := startServer(t, "--db", sqliteDB(t), "--dev")
	c := newClient(t, s)
	ctx := ctxT(t)
	uid, err := c.CreateAccount(ctx, "bob@example.org", "pw", client.CreateOptions{Service: "sync"})
	if err != nil {
		t.Fatal(err)
	}
	sess, err := c.Login(ctx, "bob@example.org", "pw")
	if err != nil {
		t.Fatal(err)
	}
	if _, verified, err := c.RecoveryEmailStatus(ctx, sess.SessionToken); err != nil || verified {
		t.Fatalf("status before verification: %v %v", verified, err)
	}
	link := findLogValue(t, s, "X-Link")
	if !strings.Contains(link, "uid="+hex.EncodeToString(uid)) || !strings.Contains(link, "service=sync") {
		t.Fatalf("verification link %q", link)
	}
	code := findLogValue(t, s, "X-Verify-Code")
	wrong := strings.Repeat("0", 32)
	resp, err := http.Get(s.URL + "/v1/verify_email?uid=" + hex.EncodeToString(uid) + "&code=" + wrong)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("wrong code: %d", resp.StatusCode)
	}
	resp, err = http.Get(s.URL + "/v1/verify_email?uid=" + hex.EncodeToString(uid) + "&service=sync&code=" + code)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(page) != "Email address verified" {
		t.Fatalf("verify link: %d %q", resp.StatusCode, page)
	}
	if _, verified, err := c.RecoveryEmailStatus(ctx, sess.SessionToken); err != nil || !verified {
		t.Fatalf("status after verification: %v %v", verified, err)
	}
	if _, err := c.Keys(ctx, sess.KeyFetchToken, sess.UnwrapBKey); err != nil {
		t.Fatal(err)
	}
	s.waitLog("code=REDACTED&service=sync")
	if access := accessLog(s); !strings.Contains(access, "code=REDACTED") || strings.Contains(access, code) {
		t.Fatalf("the access log does not redact the verification code:\n%s", access)
	}

	// Links can point at the web client's page instead.
	custom := startServer(t, "--db", sqliteDB(t), "--dev", "--verification-url", "https://keys.example.com/verify")
	if _, err := newClient(t, custom).CreateAccount(ctx, "dave@example.org", "pw", client.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if link := findLogValue(t, custom, "X-Link"); !strings.HasPrefix(link, "https://keys.example.com/verify?uid=") {
		t.Fatalf("link with --verification-url: %q", link)
	}

	// Without --dev, preVerified is refused.
	prod := startServer(t, "--db", sqliteDB(t))
	_, err = newClient(t, prod).CreateAccount(ctx, "carol@example.org", "pw", client.CreateOptions{PreVerified: true})
	if ce := wantErrno(t, err, 107, "preVerified without --dev"); ce.Body["param"] != "preVerified" {
		t.Fatalf("param = %v", ce.Body["param"])
	}
}

// accessLog is the server's access-log lines (the development mailer's
// lines may carry codes; these never).
func accessLog(s *server) string {
	var lines []string
	for _, l := range strings.Split(s.logs.String(), "\n") {
		if strings.Contains(l, "msg=request") {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "\n")
}

// findLogValue returns the value of key=value in the server's text log.
func findLogValue(t *testing.T, s *server, key string) string {
	t.Helper()
	if !s.waitLog(key + "=") {
		t.Fatalf("no %s in the server log", key)
	}
	logs := s.logs.String()
	i := strings.Index(logs, key+"=")
	v := logs[i+len(key)+1:]
	if end := strings.IndexAny(v, " \n"); end >= 0 {
		v = v[:end]
	}
	return strings.Trim(v, `"`)
}

// Negative cases of the spec: each answers as specified and never 500.
func TestProtocolNegative(t *testing.T) {
	s := startServer(t, "--db", sqliteDB(t), "--dev")
	c := newClient(t, s)
	ctx := ctxT(t)
	const email, pw = "neg@example.org", "pw"
	if _, err := c.CreateAccount(ctx, email, pw, client.CreateOptions{PreVerified: true}); err != nil {
		t.Fatal(err)
	}

	t.Run("unknown email", func(t *testing.T) {
		_, err := c.AuthStart(ctx, "nobody@example.org")
		ce := wantErrno(t, err, 102, "unknown email")
		if ce.Body["email"] != "nobody@example.org" {
			t.Fatalf("102 email = %v", ce.Body["email"])
		}
	})
	t.Run("email case", func(t *testing.T) {
		_, err := c.AuthStart(ctx, "NEG@example.org")
		ce := wantErrno(t, err, 120, "case-mismatched email")
		if ce.Body["email"] != hex.EncodeToString([]byte(email)) {
			t.Fatalf("120 email = %v", ce.Body["email"])
		}
	})

	N := new(big.Int).SetBytes(mustHex(t, "ac6bdb41324a9a9bf166de5e1389582faf72b6651987ee07fc3192943db56050a37329cbb4a099ed8193e0757767a13dd52312ab4b03310dcd7f48a9da04fd50e8083969edb767b0cf6095179a163ab3661a05fbd5faaae82918a9962f0b93b855f97993ec975eeaa80d740adbf4ff747359d041d5c33ea71d281e446b14773bca97b43a23fb801676bd207a436c6481f1d2b9078717461a5b9d32e688f87748544523b524b0d57d5ea77a2775d2ecfa032cfbdbf52fb3786160279004e57ae6af874e7303ce53299ccc041c7bc308d82a5698f3a8d0c38271ae35f8e9dbfbb694b5c803d89f7ae435de236d525f54759b65e372fcd68ef20fa7111f9e4aff73"))
	pad := func(n *big.Int) string { return hex.EncodeToString(n.FillBytes(make([]byte, 256))) }
	one := big.NewInt(1)
	badA := map[string]string{
		"0":         pad(big.NewInt(0)),
		"1":         pad(one),
		"N-1":       pad(new(big.Int).Sub(N, one)),
		"N":         pad(N),
		"N+1":       pad(new(big.Int).Add(N, one)),
		"255 bytes": strings.Repeat("02", 255),
		"257 bytes": strings.Repeat("02", 257),
	}
	for name, A := range badA {
		t.Run("A="+name, func(t *testing.T) {
			ch, err := c.AuthStart(ctx, email)
			if err != nil {
				t.Fatal(err)
			}
			err = c.Do(ctx, "POST", "/v1/auth/finish", map[string]string{"srpToken": ch.SRPToken, "A": A, "M": strings.Repeat("00", 32)}, nil, nil)
			ce := wantErrno(t, err, 107, "A="+name)
			if ce.Body["param"] != "A" {
				t.Fatalf("param = %v", ce.Body["param"])
			}
			// The srpToken was consumed all the same (D2).
			err = c.Do(ctx, "POST", "/v1/auth/finish", map[string]string{"srpToken": ch.SRPToken, "A": A, "M": strings.Repeat("00", 32)}, nil, nil)
			wantErrno(t, err, 110, "srpToken after a bad A")
		})
	}

	t.Run("wrong M then the same srpToken", func(t *testing.T) {
		ch, err := c.AuthStart(ctx, email)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.AuthFinish(ctx, ch, "wrong password")
		wantErrno(t, err, 103, "wrong M")
		_, err = c.AuthFinish(ctx, ch, pw)
		wantErrno(t, err, 110, "srpToken after a wrong M")
	})

	t.Run("concurrent auth/finish", func(t *testing.T) {
		ch, err := c.AuthStart(ctx, email)
		if err != nil {
			t.Fatal(err)
		}
		srpPw, _, err := keywrap.StretchWith(cheap, []byte(email), []byte(pw), ch.PasswordSalt)
		if err != nil {
			t.Fatal(err)
		}
		A, M, _, err := srp.ClientProof([]byte(email), srpPw, ch.SRPSalt, bytes.Repeat([]byte{7}, 32), ch.B)
		if err != nil {
			t.Fatal(err)
		}
		body := map[string]string{"srpToken": ch.SRPToken, "A": hex.EncodeToString(A), "M": hex.EncodeToString(M)}
		const n = 8
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = c.Do(ctx, "POST", "/v1/auth/finish", body, nil, nil)
			}()
		}
		wg.Wait()
		wins := 0
		for _, err := range errs {
			if err == nil {
				wins++
			} else {
				wantErrno(t, err, 110, "losing concurrent auth/finish")
			}
		}
		if wins != 1 {
			t.Fatalf("%d of %d concurrent auth/finish succeeded, want 1", wins, n)
		}
	})

	sess, err := c.Login(ctx, email, pw)
	if err != nil {
		t.Fatal(err)
	}
	sessCred := client.TokenCredentials("sessionToken", sess.SessionToken)

	t.Run("token type confusion", func(t *testing.T) {
		// A sessionToken where an authToken is required.
		err := c.Do(ctx, "POST", "/v1/session/create", nil, client.TokenCredentials("authToken", sess.SessionToken), nil)
		wantErrno(t, err, 110, "sessionToken seed as authToken")
		err = c.Do(ctx, "POST", "/v1/session/create", nil, sessCred, nil)
		wantErrno(t, err, 110, "sessionToken at session/create")
		err = c.Do(ctx, "GET", "/v1/account/keys", nil, sessCred, nil)
		wantErrno(t, err, 110, "sessionToken at account/keys")
	})

	t.Run("hawk replay", func(t *testing.T) {
		req := &client.RawRequest{Method: "GET", Path: "/v1/recovery_email/status", Cred: sessCred, Nonce: "fixed-nonce-1"}
		if _, err := c.DoRaw(ctx, req, nil); err != nil {
			t.Fatal(err)
		}
		_, err := c.DoRaw(ctx, req, nil)
		wantErrno(t, err, 115, "replayed request")
	})

	t.Run("stale timestamp", func(t *testing.T) {
		req := &client.RawRequest{Method: "GET", Path: "/v1/recovery_email/status", Cred: sessCred, TS: time.Now().Unix() - 120}
		_, err := c.DoRaw(ctx, req, nil)
		ce := wantErrno(t, err, 111, "stale ts")
		st, ok := ce.Body["serverTime"].(float64)
		if !ok || abs(int64(st)-time.Now().Unix()) > 5 {
			t.Fatalf("serverTime = %v", ce.Body["serverTime"])
		}
	})

	t.Run("body changed after signing", func(t *testing.T) {
		req := &client.RawRequest{Method: "POST", Path: "/v1/recovery_email/resend_code", Cred: sessCred,
			Body: []byte(`{"service":"sync"}`), SignedBody: []byte(`{"service":"evil"}`), ContentType: "application/json"}
		_, err := c.DoRaw(ctx, req, nil)
		wantErrno(t, err, 109, "changed body")
		req = &client.RawRequest{Method: "POST", Path: "/v1/recovery_email/resend_code", Cred: sessCred,
			Body: []byte(`{}`), NoHash: true, ContentType: "application/json"}
		_, err = c.DoRaw(ctx, req, nil)
		wantErrno(t, err, 109, "body without a payload hash")
	})

	t.Run("keys of an unverified account", func(t *testing.T) {
		if _, err := c.CreateAccount(ctx, "unverified@example.org", pw, client.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		u, err := c.Login(ctx, "unverified@example.org", pw)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Keys(ctx, u.KeyFetchToken, u.UnwrapBKey)
		wantErrno(t, err, 104, "unverified keys")
		_, err = c.Keys(ctx, u.KeyFetchToken, u.UnwrapBKey)
		wantErrno(t, err, 110, "keyFetchToken consumed by a 104")
	})

	t.Run("malformed bodies", func(t *testing.T) {
		cases := []struct {
			path, body string
			errno      int
			param      string
		}{
			{"/v1/auth/start", `{"email":"zz"}`, 107, "email"},
			{"/v1/auth/start", `{}`, 108, "email"},
			{"/v1/auth/start", `{"email":"6140622e6364","x":1}`, 107, "x"},
			{"/v1/auth/start", `{"email":"6140622e6364","email":"6140622e6364"}`, 106, ""},
			{"/v1/auth/start", `[]`, 106, ""},
			{"/v1/auth/finish", `{"srpToken":"00"}`, 107, "srpToken"},
			{"/v1/account/create", `{"email":"6140622e6364","srp":{"type":"SRP-6a/SHA256/2048/v1","verifier":"` + strings.Repeat("00", 256) + `","salt":"` + strings.Repeat("00", 32) + `"}}`, 107, "srp.verifier"},
			{"/v1/recovery_email/verify_code", `{"uid":"` + strings.Repeat("00", 16) + `","code":"` + strings.Repeat("00", 16) + `"}`, 102, ""},
		}
		for _, tc := range cases {
			_, err := c.DoRaw(ctx, &client.RawRequest{Method: "POST", Path: tc.path, Body: []byte(tc.body), ContentType: "application/json"}, nil)
			ce := wantErrno(t, err, tc.errno, tc.path+" "+tc.body)
			if tc.param != "" && ce.Body["param"] != tc.param {
				t.Fatalf("%s %s: param %v, want %s", tc.path, tc.body, ce.Body["param"], tc.param)
			}
		}
	})

	if strings.Contains(s.logs.String(), "panic") {
		t.Fatalf("panic in the server log")
	}
}

func mustHex(t *testing.T, s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
