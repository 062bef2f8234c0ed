package keyserver_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keyserver/keyserver/keyserver"
)

// rawHTTP sends one request without the protocol client. contentLength -1
// sends the body chunked (no Content-Length).
func rawHTTP(t *testing.T, method, url, contentType, body string, contentLength int64) (int, http.Header, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != "" || contentLength < 0 {
		rd = io.MultiReader(strings.NewReader(body)) // unknown length
	}
	req, err := http.NewRequestWithContext(t.Context(), method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if contentLength >= 0 {
		req.ContentLength = int64(len(body))
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s %s: body is not JSON: %q", method, url, raw)
	}
	return resp.StatusCode, resp.Header, out
}

const jsonType = "application/json"

// Spec 1.2, 1.4, 1.6 and C12 as seen on the wire, for requests that need no
// account. Every answer carries Timestamp and HSTS (C1).
func TestWireRules(t *testing.T) {
	f := newAPIFixture(t)
	h32 := strings.Repeat("00", 16)
	verifier := strings.Repeat("02", 256)
	salt := strings.Repeat("11", 32)
	srpOK := `"srp":{"type":"SRP-6a/SHA256/2048/v1","verifier":"` + verifier + `","salt":"` + salt + `"}`
	stretchOK := `"passwordStretching":{"type":"PBKDF2/scrypt/PBKDF2/v1","PBKDF2_rounds_1":20000,"scrypt_N":65536,"scrypt_r":8,"scrypt_p":1,"PBKDF2_rounds_2":20000,"salt":"` + salt + `"}`
	email := `"email":"6e6577406578616d706c652e6f7267"`
	cases := []struct {
		name, method, path, contentType, body string
		contentLength                         int64 // -1: chunked
		status, errno                         int
		param                                 string
	}{
		{"trailing slash", "POST", "/v1/get_random_bytes/", "", "", 0, 404, 999, ""},
		{"wrong method", "GET", "/v1/get_random_bytes", "", "", 0, 404, 999, ""},
		{"path case", "POST", "/V1/get_random_bytes", "", "", 0, 404, 999, ""},
		{"raw_password (D1)", "POST", "/v1/raw_password/account/create", jsonType, "{}", 0, 404, 999, ""},
		{"chunked", "POST", "/v1/get_random_bytes", jsonType, "{}", -1, 411, 112, ""},
		{"chunked empty", "POST", "/v1/get_random_bytes", "", "", -1, 411, 112, ""},
		{"too large", "POST", "/v1/get_random_bytes", jsonType, `{"a":"` + strings.Repeat("x", 1<<20) + `"}`, 0, 413, 113, ""},
		{"empty body", "POST", "/v1/get_random_bytes", "", "", 0, 200, 0, ""},
		{"charset parameter", "POST", "/v1/get_random_bytes", "application/json; charset=utf-8", "{}", 0, 200, 0, ""},
		{"whitespace body", "POST", "/v1/get_random_bytes", jsonType, "  \n", 0, 400, 106, ""},
		{"other content type", "POST", "/v1/get_random_bytes", "text/plain", "{}", 0, 400, 106, ""},
		{"no content type", "POST", "/v1/get_random_bytes", "", "{}", 0, 400, 106, ""},
		{"member of a no-parameter POST", "POST", "/v1/get_random_bytes", jsonType, `{"a":1}`, 0, 400, 107, "a"},
		{"GET with a body", "GET", "/v1/verify_email?uid=" + h32 + "&code=" + h32, jsonType, "{}", 0, 400, 106, ""},
		{"query parameter twice", "GET", "/v1/verify_email?uid=" + h32 + "&uid=" + h32 + "&code=" + h32, "", "", 0, 400, 107, "uid"},
		{"bad service in the link", "GET", "/v1/verify_email?uid=" + h32 + "&code=" + h32 + "&service=a-b", "", "", 0, 400, 107, "service"},
		{"heartbeat chunked", "GET", "/__heartbeat__", jsonType, "{}", -1, 411, 112, ""},
		{"heartbeat GET with a body", "GET", "/__heartbeat__", jsonType, "{}", 0, 400, 106, ""},
		{"lbheartbeat GET with a body", "GET", "/__lbheartbeat__", jsonType, "{}", 0, 400, 106, ""},
		{"null member", "POST", "/v1/account/create", jsonType, `{` + email + `,` + srpOK + `,"passwordStretching":null}`, 0, 400, 107, "passwordStretching"},
		{"integer with fraction", "POST", "/v1/account/create", jsonType, `{` + email + `,` + srpOK + `,` + strings.Replace(stretchOK, "20000,", "20000.0,", 1) + `}`, 0, 400, 107, "passwordStretching.PBKDF2_rounds_1"},
		{"integer with exponent", "POST", "/v1/account/create", jsonType, `{` + email + `,` + srpOK + `,` + strings.Replace(stretchOK, "65536", "6.5536e4", 1) + `}`, 0, 400, 107, "passwordStretching.scrypt_N"},
		// C12: unknown members, nested ones included, come after every
		// listed member.
		{"nested unknown before a missing member", "POST", "/v1/account/create", jsonType, `{` + email + `,` + strings.Replace(srpOK, `"type"`, `"foo":1,"type"`, 1) + `}`, 0, 400, 108, "passwordStretching"},
		{"nested unknown before a bad member", "POST", "/v1/account/create", jsonType, `{` + email + `,` + strings.Replace(srpOK, `"type"`, `"foo":1,"type"`, 1) + `,` + stretchOK + `,"service":"a-b"}`, 0, 400, 107, "service"},
		{"nested unknown", "POST", "/v1/account/create", jsonType, `{` + email + `,` + strings.Replace(srpOK, `"type"`, `"foo":1,"type"`, 1) + `,` + stretchOK + `}`, 0, 400, 107, "srp.foo"},
		{"unknown members in document order", "POST", "/v1/account/create", jsonType, `{"zz":1,` + email + `,` + srpOK + `,` + strings.Replace(stretchOK, `"salt"`, `"x":1,"salt"`, 1) + `}`, 0, 400, 107, "zz"},
		{"unknown member in passwordStretching", "POST", "/v1/account/create", jsonType, `{` + email + `,` + srpOK + `,` + strings.Replace(stretchOK, `"salt"`, `"x":1,"salt"`, 1) + `}`, 0, 400, 107, "passwordStretching.x"},
		{"bad verifier (C2)", "POST", "/v1/account/create", jsonType, `{` + email + `,` + strings.Replace(srpOK, verifier, strings.Repeat("00", 256), 1) + `,` + stretchOK + `}`, 0, 400, 107, "srp.verifier"},
		{"preVerified null", "POST", "/v1/account/create", jsonType, `{` + email + `,` + srpOK + `,` + stretchOK + `,"preVerified":null}`, 0, 400, 107, "preVerified"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, h, body := rawHTTP(t, tc.method, f.url+tc.path, tc.contentType, tc.body, tc.contentLength)
			if h.Get("Timestamp") == "" || h.Get("Strict-Transport-Security") != "max-age=10886400" {
				t.Errorf("headers: Timestamp %q, HSTS %q", h.Get("Timestamp"), h.Get("Strict-Transport-Security"))
			}
			if tc.errno == 0 {
				if status != 200 || body["error"] != nil {
					t.Fatalf("got %d %v, want success", status, body)
				}
				return
			}
			wantError(t, tc.name, status, body, tc.status, tc.errno, tc.param)
			if msg, _ := body["message"].(string); tc.param != "" && !strings.HasSuffix(msg, ": "+tc.param) {
				t.Fatalf("message %q does not end with the param", msg)
			}
		})
	}
}

// D13: a reset advances generation to max(now_ms, generation + 1), also
// when it happens within the millisecond the generation was set in.
func TestResetAdvancesGenerationWithinMillisecond(t *testing.T) {
	fixed := time.Now().Truncate(time.Millisecond).Add(500 * time.Microsecond)
	f := newAPIFixture(t, func(c *keyserver.Config) { c.Now = func() time.Time { return fixed } })
	uid := hexOf(f.account(t, "gen@example.org"))
	before, err := f.admin.Account(t.Context(), uid)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.c.ChangePassword(t.Context(), "gen@example.org", password, "new password"); err != nil {
		t.Fatal(err)
	}
	after, err := f.admin.Account(t.Context(), uid)
	if err != nil {
		t.Fatal(err)
	}
	if after.Generation != before.Generation+1 {
		t.Fatalf("generation %d after reset, want %d", after.Generation, before.Generation+1)
	}
}

// C14: the code of a verification link never reaches the access log, not
// even inside a query that does not parse.
func TestVerifyLinkCodeNotLogged(t *testing.T) {
	f := newAPIFixture(t)
	const secret = "5ec1e75ec1e75ec1e75ec1e75ec1e75e"
	for _, q := range []string{
		"uid=" + strings.Repeat("00", 16) + "&code=" + secret,
		"uid=" + strings.Repeat("00", 16) + "&code=" + secret + ";x",
		"code=" + secret + "%zz",
	} {
		req, err := http.NewRequestWithContext(t.Context(), "GET", f.url+"/v1/verify_email?"+q, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if logs := f.logs.String(); strings.Contains(logs, secret) {
		t.Fatalf("verification code in the log:\n%s", logs)
	}
}
