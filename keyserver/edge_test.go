package keyserver_test

import (
	"context"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyserver/keyserver/accounts"
	"github.com/keyserver/keyserver/client"
	"github.com/keyserver/keyserver/keyserver"
	"github.com/keyserver/keyserver/store/sqlstore"
)

// Every answer whose CORS headers depend on the request's origin says so
// with Vary: Origin, whether the origin is allowed or not.
func TestVaryOrigin(t *testing.T) {
	f := newAPIFixture(t, func(c *keyserver.Config) { c.CORSOrigins = []string{"https://app.example"} })
	for _, tt := range []struct{ origin, allow string }{
		{"https://app.example", "https://app.example"},
		{"https://evil.example", ""},
		{"", ""},
	} {
		for _, path := range []string{"/__lbheartbeat__", "/.well-known/jwks.json"} {
			req, _ := http.NewRequest(http.MethodGet, f.url+path, nil)
			if tt.origin != "" {
				req.Header.Set("Origin", tt.origin)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got := resp.Header.Get("Access-Control-Allow-Origin"); got != tt.allow {
				t.Errorf("%s from %q: Access-Control-Allow-Origin %q, want %q", path, tt.origin, got, tt.allow)
			}
			if !strings.Contains(strings.Join(resp.Header.Values("Vary"), ","), "Origin") {
				t.Errorf("%s from %q: no Vary: Origin (%q)", path, tt.origin, resp.Header.Values("Vary"))
			}
		}
	}
}

// The access log redacts the code of a verification link in any letter
// case of its name.
func TestAccessLogRedactsCodeAnyCase(t *testing.T) {
	f := newAPIFixture(t)
	const secret = "0123456789abcdef0123456789abcdef"
	for _, name := range []string{"code", "CODE", "Code"} {
		resp, err := http.Get(f.url + "/v1/verify_email?uid=" + strings.Repeat("a", 32) + "&" + name + "=" + secret)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if l := f.logs.String(); strings.Contains(l, secret) || !strings.Contains(l, "REDACTED") {
		t.Fatalf("code logged or not redacted:\n%s", l)
	}
}

type failMailer struct{}

func (failMailer) Send(context.Context, *accounts.Message) error { return errors.New("smtp down") }

// A log line written while serving a request carries its request id, not
// only the access-log line.
func TestRequestIDOnEveryLine(t *testing.T) {
	f := newAPIFixture(t, func(c *keyserver.Config) { c.Mailer = failMailer{} })
	if _, err := f.c.CreateAccount(t.Context(), "reqid@example.org", password, client.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var line string
	for _, l := range strings.Split(f.logs.String(), "\n") {
		if strings.Contains(l, "verification mail not sent") {
			line = l
		}
	}
	if line == "" || !strings.Contains(line, " req=") {
		t.Fatalf("warning without request id: %q\n%s", line, f.logs.String())
	}
}

// A request whose client has gone (its context canceled) is not logged as
// a server failure.
func TestClientGoneIsNotAServerError(t *testing.T) {
	st, err := sqlstore.Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "ks.db"), sqlstore.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	logs := &lockedBuffer{}
	srv, err := keyserver.New(keyserver.Config{PublicURL: "http://127.0.0.1:9", Dev: true,
		Logger: slog.New(slog.NewTextHandler(logs, nil))}, st)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	body := `{"email":"` + hex.EncodeToString([]byte("gone@example.org")) + `"}`
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/v1/auth/start", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, req)
	l := logs.String()
	if rec.Code == http.StatusInternalServerError || strings.Contains(l, "level=ERROR") || !strings.Contains(l, "client_gone=true") {
		t.Fatalf("status %d, log:\n%s", rec.Code, l)
	}
}

// A browser opening the verification link from its mail lands on the web
// client's /verify page; API clients keep the plain-text answer (spec 6.6).
func TestVerifyLinkInBrowser(t *testing.T) {
	f := newAPIFixture(t)
	query := "uid=" + strings.Repeat("ab", 16) + "&code=" + strings.Repeat("cd", 16)
	req, _ := http.NewRequest(http.MethodGet, f.url+"/v1/verify_email?"+query, nil)
	req.Header.Set("Accept", "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8")
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/verify?"+query {
		t.Fatalf("browser: %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, err = noRedirect.Get(f.url + "/v1/verify_email?" + query)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest { // unknown account: 400/102 in JSON
		t.Fatalf("API client: %d", resp.StatusCode)
	}
}
