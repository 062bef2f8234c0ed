package recovery

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/keyserver/keyserver/internal/testidp"
)

const clientID = "keyserver-test"

// clock is a settable test clock.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Now().UnixNano())
	return c
}
func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// fixture is an IdP trusted through its JWKS URL.
type fixture struct {
	idp   *testidp.IdP
	clock *clock
	v     *Verifier
}

func newFixture(t *testing.T, edit ...func(*OIDCIssuer)) *fixture {
	t.Helper()
	f := &fixture{idp: testidp.New(t), clock: newClock()}
	e := OIDCIssuer{Issuer: f.idp.Issuer, ClientIDs: []string{"other-client", clientID}, JWKSURL: f.idp.JWKSURL()}
	for _, fn := range edit {
		fn(&e)
	}
	v, err := New(&Config{OIDC: []OIDCIssuer{e}}, Options{RootCAs: f.idp.CertPool(), Now: f.clock.now})
	if err != nil {
		t.Fatal(err)
	}
	f.v = v
	return f
}

func (f *fixture) claims() map[string]any {
	return f.idp.Claims(clientID, "Alice@Example.org", f.clock.now())
}

func (f *fixture) verify(t *testing.T, token string) (string, time.Time, error) {
	t.Helper()
	return f.v.Verify(context.Background(), token)
}

func wantInvalid(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("%s: err = %v, want ErrInvalid", what, err)
	}
	if strings.Contains(err.Error(), "eyJ") {
		t.Fatalf("%s: the error quotes the token: %v", what, err)
	}
}

func TestIDTokenValid(t *testing.T) {
	f := newFixture(t)
	for _, k := range []*testidp.Key{f.idp.RSA, f.idp.EC, f.idp.Ed} {
		t.Run(string(k.Alg), func(t *testing.T) {
			c := f.claims()
			email, exp, err := f.verify(t, testidp.Sign(t, k, c, false, nil))
			if err != nil {
				t.Fatal(err)
			}
			if email != "Alice@Example.org" || exp.Unix() != c["exp"].(int64) {
				t.Fatalf("got %q %v", email, exp)
			}
		})
	}
	if n := f.idp.JWKSFetches.Load(); n != 1 {
		t.Fatalf("%d JWKS fetches for three tokens, want 1 (cached)", n)
	}
}

func TestIDTokenClaims(t *testing.T) {
	f := newFixture(t, func(e *OIDCIssuer) { e.Domains = []string{"example.org"} })
	now := f.clock.now()
	ok := func(name string, edit func(c map[string]any)) {
		t.Helper()
		c := f.claims()
		edit(c)
		if _, _, err := f.verify(t, testidp.Sign(t, f.idp.RSA, c, false, nil)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	bad := func(name string, edit func(c map[string]any)) {
		t.Helper()
		c := f.claims()
		edit(c)
		_, _, err := f.verify(t, testidp.Sign(t, f.idp.RSA, c, false, nil))
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
	ok("aud array of one", func(c map[string]any) { c["aud"] = []string{clientID} })
	ok("aud array with azp", func(c map[string]any) { c["aud"] = []string{"x", clientID}; c["azp"] = clientID })
	ok("iat 59 s ahead", func(c map[string]any) { c["iat"] = now.Add(59 * time.Second).Unix() })
	ok("nbf now", func(c map[string]any) { c["nbf"] = now.Unix() })
	ok("exp 24 h ahead", func(c map[string]any) { c["exp"] = now.Add(24 * time.Hour).Unix() })
	// A 24 h token (Dex's default) from an issuer whose clock is ahead.
	ok("exp 24 h + 59 s ahead", func(c map[string]any) { c["exp"] = now.Add(24*time.Hour + 59*time.Second).Unix() })
	ok("fractional times", func(c map[string]any) { c["iat"] = float64(now.Unix()) + 0.5 })

	bad("wrong aud", func(c map[string]any) { c["aud"] = "someone-else" })
	bad("aud array with another member and no azp", func(c map[string]any) { c["aud"] = []string{"x", clientID} })
	bad("aud array with a wrong azp", func(c map[string]any) { c["aud"] = []string{"x", clientID}; c["azp"] = "x" })
	bad("aud missing", func(c map[string]any) { delete(c, "aud") })
	bad("aud a number", func(c map[string]any) { c["aud"] = 1 })
	bad("expired", func(c map[string]any) { c["exp"] = now.Add(-time.Second).Unix() })
	bad("exp missing", func(c map[string]any) { delete(c, "exp") })
	bad("exp a string", func(c map[string]any) { c["exp"] = "9999999999" })
	bad("exp more than 24 h + 60 s ahead", func(c map[string]any) { c["exp"] = now.Add(24*time.Hour + 2*time.Minute).Unix() })
	bad("exp a numeric string", func(c map[string]any) { c["exp"] = strconv.FormatInt(now.Add(time.Hour).Unix(), 10) })
	bad("iat a numeric string", func(c map[string]any) { c["iat"] = strconv.FormatInt(now.Unix(), 10) })
	bad("nbf a numeric string", func(c map[string]any) { c["nbf"] = strconv.FormatInt(now.Unix(), 10) })
	bad("exp null", func(c map[string]any) { c["exp"] = nil })
	bad("iat missing", func(c map[string]any) { delete(c, "iat") })
	bad("iat 2 min ahead", func(c map[string]any) { c["iat"] = now.Add(2 * time.Minute).Unix() })
	bad("nbf 2 min ahead", func(c map[string]any) { c["nbf"] = now.Add(2 * time.Minute).Unix() })
	bad("email_verified false", func(c map[string]any) { c["email_verified"] = false })
	bad("email_verified a string", func(c map[string]any) { c["email_verified"] = "true" })
	bad("email_verified missing", func(c map[string]any) { delete(c, "email_verified") })
	bad("email missing", func(c map[string]any) { delete(c, "email") })
	bad("email in another domain", func(c map[string]any) { c["email"] = "alice@example.com" })
	bad("email in a subdomain", func(c map[string]any) { c["email"] = "alice@evil.example.org" })
	bad("another issuer", func(c map[string]any) { c["iss"] = "https://evil.example" })
	bad("issuer with a trailing slash", func(c map[string]any) { c["iss"] = f.idp.Issuer + "/" })
}

func TestIDTokenSignature(t *testing.T) {
	f := newFixture(t)
	good := testidp.Sign(t, f.idp.RSA, f.claims(), false, nil)
	parts := strings.Split(good, ".")

	t.Run("tampered payload", func(t *testing.T) {
		c := f.claims()
		c["email"] = "mallory@example.org"
		payload, _ := json.Marshal(c)
		_, _, err := f.verify(t, parts[0]+"."+base64.RawURLEncoding.EncodeToString(payload)+"."+parts[2])
		wantInvalid(t, "tampered payload", err)
	})
	t.Run("flipped signature bit", func(t *testing.T) {
		sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
		sig[10] ^= 1
		_, _, err := f.verify(t, parts[0]+"."+parts[1]+"."+base64.RawURLEncoding.EncodeToString(sig))
		wantInvalid(t, "flipped bit", err)
	})
	t.Run("unpublished key with a published kid", func(t *testing.T) {
		k := testidp.NewKey(t, f.idp.RSA.KID, jose.RS256)
		_, _, err := f.verify(t, testidp.Sign(t, k, f.claims(), false, nil))
		wantInvalid(t, "forged", err)
	})
	t.Run("unknown kid", func(t *testing.T) {
		k := testidp.NewKey(t, "unknown", jose.RS256)
		_, _, err := f.verify(t, testidp.Sign(t, k, f.claims(), false, nil))
		wantInvalid(t, "unknown kid", err)
	})
	t.Run("no kid with several keys", func(t *testing.T) {
		_, _, err := f.verify(t, testidp.Sign(t, f.idp.RSA, f.claims(), true, nil))
		wantInvalid(t, "no kid", err)
	})
	t.Run("alg of another key type", func(t *testing.T) {
		// An ES256 token naming the RSA key's kid.
		k := &testidp.Key{KID: f.idp.RSA.KID, Alg: jose.ES256, Signer: f.idp.EC.Signer}
		_, _, err := f.verify(t, testidp.Sign(t, k, f.claims(), false, nil))
		wantInvalid(t, "alg/key mismatch", err)
	})
	t.Run("crit header", func(t *testing.T) {
		_, _, err := f.verify(t, testidp.Sign(t, f.idp.RSA, f.claims(), false, map[string]any{"crit": []string{"b64"}, "b64": true}))
		wantInvalid(t, "crit", err)
	})
	t.Run("alg none", func(t *testing.T) {
		head := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","kid":"rsa-1"}`))
		_, _, err := f.verify(t, head+"."+parts[1]+".")
		wantInvalid(t, "none", err)
	})
	t.Run("HS256 keyed with the public key", func(t *testing.T) {
		der, _ := json.Marshal(f.idp.RSA.JWK())
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: der}, (&jose.SignerOptions{}).WithHeader("kid", "rsa-1"))
		if err != nil {
			t.Fatal(err)
		}
		payload, _ := json.Marshal(f.claims())
		jws, _ := s.Sign(payload)
		tok, _ := jws.CompactSerialize()
		_, _, err = f.verify(t, tok)
		wantInvalid(t, "HS256", err)
	})
	t.Run("not a JWS", func(t *testing.T) {
		for _, tok := range []string{"", "x", "a.b", "a.b.c", parts[0] + "." + parts[1]} {
			_, _, err := f.verify(t, tok)
			wantInvalid(t, "garbage", err)
		}
	})
}

// Keys are cached for an hour, fetched again at most once a minute for an
// unknown kid, and a rotation is picked up.
func TestKeyFetching(t *testing.T) {
	f := newFixture(t)
	fetches := func(want int64) {
		t.Helper()
		if n := f.idp.JWKSFetches.Load(); n != want {
			t.Fatalf("%d JWKS fetches, want %d", n, want)
		}
	}
	if _, _, err := f.verify(t, testidp.Sign(t, f.idp.RSA, f.claims(), false, nil)); err != nil {
		t.Fatal(err)
	}
	fetches(1)

	// Rotation: a new key appears; its kid is unknown, so the keys are
	// fetched again, the last fetch being a minute old.
	rotated := testidp.NewKey(t, "rsa-2", jose.RS256)
	f.idp.Publish(rotated)
	f.clock.advance(time.Minute)
	if _, _, err := f.verify(t, testidp.Sign(t, rotated, f.claims(), false, nil)); err != nil {
		t.Fatalf("rotated key: %v", err)
	}
	fetches(2)

	// Unknown kids within the minute fetch nothing more.
	stranger := testidp.NewKey(t, "rsa-3", jose.RS256)
	for range 3 {
		_, _, err := f.verify(t, testidp.Sign(t, stranger, f.claims(), false, nil))
		wantInvalid(t, "unknown kid", err)
	}
	fetches(2)
	f.clock.advance(time.Minute)
	_, _, err := f.verify(t, testidp.Sign(t, stranger, f.claims(), false, nil))
	wantInvalid(t, "unknown kid", err)
	fetches(3)

	// Known kids use the keys until an hour after the last fetch.
	f.clock.advance(59 * time.Minute)
	if _, _, err := f.verify(t, testidp.Sign(t, rotated, f.claims(), false, nil)); err != nil {
		t.Fatal(err)
	}
	fetches(3)
	f.clock.advance(time.Minute)
	if _, _, err := f.verify(t, testidp.Sign(t, rotated, f.claims(), false, nil)); err != nil {
		t.Fatal(err)
	}
	fetches(4)
}

// jwksServer serves handler over TLS and returns a verifier trusting it
// with its JWK Set at path.
func jwksServer(t *testing.T, path string, handler http.HandlerFunc) (*Verifier, *testidp.IdP) {
	idp := testidp.New(t)
	srv := httptest.NewTLSServer(handler)
	t.Cleanup(srv.Close)
	roots := idp.CertPool()
	roots.AddCert(srv.Certificate())
	v, err := New(&Config{OIDC: []OIDCIssuer{{Issuer: idp.Issuer, ClientIDs: []string{clientID}, JWKSURL: srv.URL + path}}},
		Options{RootCAs: roots})
	if err != nil {
		t.Fatal(err)
	}
	return v, idp
}

func TestKeyFetchLimits(t *testing.T) {
	var idp *testidp.IdP
	var v *Verifier
	v, idp = jwksServer(t, "/", func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/big":
			set, _ := json.Marshal(idp.JWKS())
			w.Write(set[:len(set)-2])
			w.Write([]byte(`,"pad":"` + strings.Repeat("x", maxFetchSize) + `"}`))
		case "/plain":
			http.Redirect(w, r, "http://"+r.Host+"/", http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	})
	token := testidp.Sign(t, idp.RSA, idp.Claims(clientID, "a@example.org", time.Now()), false, nil)
	base := strings.TrimSuffix(v.oidc[idp.Issuer].keys.url, "/")
	for path, why := range map[string]string{"/big": "larger than", "/plain": "not https", "/missing": "status 404"} {
		src := v.oidc[idp.Issuer].keys
		src.url, src.tried = base+path, time.Time{}
		_, _, err := v.Verify(context.Background(), token)
		wantInvalid(t, path, err)
		if !strings.Contains(err.Error(), why) {
			t.Errorf("%s: %v, want it to say %q", path, err, why)
		}
	}
}

func TestConfigFiles(t *testing.T) {
	idp := testidp.New(t)
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// A single-key JWK Set file: tokens without kid use its only key.
	single, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{idp.Ed.JWK()}})
	write("keys.json", string(single))
	good := write("issuers.json", `{"oidc": [{"issuer": "`+idp.Issuer+`", "clientIds": ["`+clientID+`"], "jwksFile": "keys.json"}],
		"browserid": [{"issuer": "idp.example.org", "wellKnown": true}]}`)
	cfg, err := LoadConfig(good)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.OIDC[0].JWKSFile != filepath.Join(dir, "keys.json") {
		t.Fatalf("jwksFile not resolved against the file's directory: %q", cfg.OIDC[0].JWKSFile)
	}
	v, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	email, _, err := v.Verify(context.Background(), testidp.Sign(t, idp.Ed, idp.Claims(clientID, "a@example.org", time.Now()), true, nil))
	if err != nil || email != "a@example.org" {
		t.Fatalf("token without kid, single-key file: %q %v", email, err)
	}

	bad := map[string]string{
		"not JSON":        `{"oidc": [`,
		"unknown member":  `{"oidc": [], "extra": 1}`,
		"unknown in oidc": `{"oidc": [{"issuer": "https://a.example", "clientIds": ["c"], "jwksUrl": "https://a.example/k", "x": 1}]}`,
		"trailing data":   `{} {}`,
		"member case":     `{"OIDC": [{"issuer": "https://a.example", "clientIds": ["c"], "jwksUrl": "https://a.example/k"}]}`,
		"entry case":      `{"browserid": [{"Issuer": "a.example", "wellKnown": true}]}`,
		"key source case": `{"oidc": [{"issuer": "https://a.example", "clientIds": ["c"], "jwksURL": "https://a.example/k"}]}`,
		"two key sources": `{"oidc": [{"issuer": "https://a.example", "clientIds": ["c"], "jwksUrl": "https://a.example/k", "jwksFile": "k"}]}`,
		"http issuer":     `{"oidc": [{"issuer": "http://a.example", "clientIds": ["c"], "jwksUrl": "https://a.example/k"}]}`,
		"http jwksUrl":    `{"oidc": [{"issuer": "https://a.example", "clientIds": ["c"], "jwksUrl": "http://a.example/k"}]}`,
		"no client id":    `{"oidc": [{"issuer": "https://a.example", "clientIds": [], "jwksUrl": "https://a.example/k"}]}`,
		"upper domain":    `{"oidc": [{"issuer": "https://a.example", "clientIds": ["c"], "jwksUrl": "https://a.example/k", "domains": ["A.example"]}]}`,
		"browserid both":  `{"browserid": [{"issuer": "a.example", "keysFile": "k", "wellKnown": true}]}`,
		"browserid none":  `{"browserid": [{"issuer": "a.example"}]}`,
		"browserid URL":   `{"browserid": [{"issuer": "https://a.example", "wellKnown": true}]}`,
		"missing keys":    `{"oidc": [{"issuer": "https://a.example", "clientIds": ["c"], "jwksFile": "missing.json"}]}`,
	}
	for name, content := range bad {
		p := write("bad.json", content)
		cfg, err := LoadConfig(p)
		if err == nil {
			_, err = New(cfg, Options{})
		}
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// A request cancelled during the first key fetch does not spoil it: the
// fetch is not redone for a minute, so a cancelled one would leave every
// token of the issuer invalid until then.
func TestKeyFetchSurvivesCancelledRequest(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f.v.Verify(ctx, testidp.Sign(t, f.idp.RSA, f.claims(), false, nil))
	if _, _, err := f.verify(t, testidp.Sign(t, f.idp.RSA, f.claims(), false, nil)); err != nil {
		t.Fatalf("after a cancelled request: %v", err)
	}
	if n := f.idp.JWKSFetches.Load(); n != 1 {
		t.Fatalf("%d JWKS fetches, want 1", n)
	}
}
