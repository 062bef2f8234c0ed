package recovery

import (
	"context"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyserver/keyserver/internal/testidp"
)

// An issuer given with only issuer and clientIds gets its keys through
// OpenID Connect discovery.
func TestDiscovery(t *testing.T) {
	idp := testidp.New(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "issuers.json")
	if err := os.WriteFile(file, []byte(`{"oidc": [{"issuer": "`+idp.Issuer+`", "clientIds": ["`+clientID+`"]}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(file)
	if err != nil {
		t.Fatalf("issuer and clientIds alone: %v", err)
	}
	c := newClock()
	v, err := New(cfg, Options{RootCAs: idp.CertPool(), Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	token := testidp.Sign(t, idp.EC, idp.Claims(clientID, "alice@example.org", c.now()), false, nil)
	email, _, err := v.Verify(context.Background(), token)
	if err != nil || email != "alice@example.org" {
		t.Fatalf("Verify through discovery: %q %v", email, err)
	}
	if n := idp.JWKSFetches.Load(); n != 1 {
		t.Errorf("JWK Set fetched %d times, want 1 (the jwks_uri of the document)", n)
	}
}

// The discovery document must name the configured issuer and an https
// jwks_uri, and is bounded like a key fetch.
func TestDiscoveryRefusals(t *testing.T) {
	idp := testidp.New(t)
	for name, c := range map[string]struct {
		doc  func(issuer string) string
		want string
	}{
		"other issuer": {func(string) string {
			return `{"issuer": "https://evil.example", "jwks_uri": "` + idp.JWKSURL() + `"}`
		}, `names the issuer "https://evil.example", not the configured`},
		"issuer with a slash": {func(iss string) string {
			return `{"issuer": "` + iss + `/", "jwks_uri": "` + idp.JWKSURL() + `"}`
		}, "not the configured"},
		"no issuer":     {func(string) string { return `{"jwks_uri": "` + idp.JWKSURL() + `"}` }, "has no issuer"},
		"no jwks_uri":   {func(iss string) string { return `{"issuer": "` + iss + `"}` }, "has no jwks_uri"},
		"http jwks_uri": {func(iss string) string { return `{"issuer": "` + iss + `", "jwks_uri": "http://127.0.0.1/k"}` }, "is not an https URL"},
		"not JSON":      {func(string) string { return `<html>` }, "is not a JSON object"},
		"too large": {func(iss string) string {
			return `{"issuer": "` + iss + `", "x": "` + strings.Repeat("a", maxFetchSize) + `"}`
		}, "larger than"},
	} {
		t.Run(name, func(t *testing.T) {
			var issuer string
			srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/.well-known/openid-configuration" {
					http.NotFound(w, r)
					return
				}
				_, _ = w.Write([]byte(c.doc(issuer)))
			}))
			defer srv.Close()
			issuer = srv.URL
			pool := x509.NewCertPool()
			pool.AddCert(srv.Certificate())
			clk := newClock()
			v, err := New(&Config{OIDC: []OIDCIssuer{{Issuer: issuer, ClientIDs: []string{clientID}}}}, Options{RootCAs: pool, Now: clk.now})
			if err != nil {
				t.Fatal(err)
			}
			claims := idp.Claims(clientID, "alice@example.org", clk.now())
			claims["iss"] = issuer
			_, _, err = v.Verify(context.Background(), testidp.Sign(t, idp.EC, claims, false, nil))
			wantInvalid(t, name, err)
			if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), issuer+"/.well-known/openid-configuration") {
				t.Errorf("%s: %v; want %q and the document's URL", name, err, c.want)
			}
			if n := idp.JWKSFetches.Load(); n != 0 {
				t.Errorf("%s: the JWK Set was fetched", name)
			}
		})
	}
}
