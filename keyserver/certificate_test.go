package keyserver_test

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyserver/keyserver/certs"
	"github.com/keyserver/keyserver/client"
	"github.com/keyserver/keyserver/keyserver"
	"github.com/keyserver/keyserver/protocol"
	"github.com/keyserver/keyserver/store"
	"github.com/keyserver/keyserver/store/sqlstore"
)

// testSigners are server keys made once per test binary.
var (
	testSigners   = map[string][]*certs.Signer{}
	testSignersMu sync.Mutex
)

// testSigner returns the i-th signer of algorithm alg.
func testSigner(tb testing.TB, alg string, i int) *certs.Signer {
	tb.Helper()
	testSignersMu.Lock()
	defer testSignersMu.Unlock()
	for len(testSigners[alg]) <= i {
		key, err := certs.GenerateKey(alg, rand.Reader)
		if err != nil {
			tb.Fatal(err)
		}
		s, err := certs.NewSigner(key)
		if err != nil {
			tb.Fatal(err)
		}
		testSigners[alg] = append(testSigners[alg], s)
	}
	return testSigners[alg][i]
}

// clientKey is a jwcrypto RS public key of a 2048-bit client key.
var clientKey = sync.OnceValue(func() map[string]string {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return map[string]string{"algorithm": "RS", "n": k.N.String(), "e": "65537"}
})

// legacyKey is the 511-bit client key of vector CERT-1.
var legacyKey = map[string]string{"algorithm": "RS", "e": "65537",
	"n": "4759385967235610503571494339196749614544606692567785790953934768202714280652973091341316862993582789079872007974809511698859885077002492642203267408776123"}

func withSigner(s *certs.Signer, retired ...crypto.PublicKey) func(*keyserver.Config) {
	return func(c *keyserver.Config) { c.Signer, c.RetiredKeys = s, retired }
}

// get fetches a path of the fixture's server.
func (f *apiFixture) get(t *testing.T, path string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Get(f.url + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

// verifier trusts the keys the fixture publishes.
func (f *apiFixture) verifier(t *testing.T) *certs.Verifier {
	t.Helper()
	resp, body := f.get(t, "/.well-known/jwks.json")
	if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "public, max-age=3600" {
		t.Fatalf("jwks: %d %v", resp.StatusCode, resp.Header)
	}
	ks, err := certs.ParseJWKS(body)
	if err != nil {
		t.Fatal(err)
	}
	return &certs.Verifier{Keys: ks, Issuer: strings.TrimPrefix(f.url, "http://"), Skew: time.Minute}
}

// A certificate verifies with the published key and carries uid, issuer,
// iat, exp, generation and the session's device.
func TestCertificateSign(t *testing.T) {
	for _, alg := range []string{certs.RS256, certs.EdDSA} {
		t.Run(alg, func(t *testing.T) {
			signer := testSigner(t, alg, 0)
			f := newAPIFixture(t, withSigner(signer))
			ctx := t.Context()
			uid := f.account(t, "cert@example.com")
			s := f.login(t, "cert@example.com")

			before := time.Now().Truncate(time.Millisecond)
			cert, err := f.c.CertificateSign(ctx, s.SessionToken, clientKey(), 3600_000)
			if err != nil {
				t.Fatal(err)
			}
			v := f.verifier(t)
			got, err := v.VerifyCertificate(cert)
			if err != nil {
				t.Fatal(err)
			}
			acct, err := f.st.AccountByUID(ctx, uid)
			if err != nil {
				t.Fatal(err)
			}
			issuer := strings.TrimPrefix(f.url, "http://")
			// iat is the moment of issue - 10 s (spec 7.2, C21).
			issued := got.IssuedAt.Add(certs.IssuedAtBackdate)
			if got.Algorithm != alg || got.KeyID != signer.KeyID() || got.Principal != hexOf(uid)+"@"+issuer ||
				got.Issuer != issuer || issued.Before(before) || issued.After(time.Now()) ||
				got.ExpiresAt.Sub(issued) != time.Hour || !got.Generation.Equal(acct.Generation) ||
				got.DeviceID != "" || got.PublicKey.N.String() != clientKey()["n"] {
				t.Fatalf("claims %+v", got)
			}

			// With a registered device the certificate names it.
			d := f.device(t, s, "Laptop", "desktop")
			cert, err = f.c.CertificateSign(ctx, s.SessionToken, clientKey(), 60_000)
			if err != nil {
				t.Fatal(err)
			}
			if got, err = v.VerifyCertificate(cert); err != nil {
				t.Fatal(err)
			} else if got.DeviceID != d.ID {
				t.Fatalf("device %q, want %q", got.DeviceID, d.ID)
			}
			// One audit event per issuance.
			events, err := f.st.Events(ctx, store.EventQuery{UID: uid, Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, e := range events {
				if e.Action == "certificate.sign" {
					n++
					if e.Outcome != store.OutcomeSuccess || len(e.SessionID) != 8 {
						t.Fatalf("event %+v", e)
					}
				}
			}
			if n != 2 {
				t.Fatalf("%d certificate.sign events, want 2", n)
			}
		})
	}
}

// After a password change new certificates carry a newer generation.
func TestCertificateGeneration(t *testing.T) {
	f := newAPIFixture(t, withSigner(testSigner(t, certs.EdDSA, 0)))
	ctx := t.Context()
	f.account(t, "gen@example.com")
	v := f.verifier(t)
	sign := func(pw string) *certs.Certificate {
		t.Helper()
		s, err := f.c.Login(ctx, "gen@example.com", pw)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := f.c.CertificateSign(ctx, s.SessionToken, clientKey(), 60_000)
		if err != nil {
			t.Fatal(err)
		}
		c, err := v.VerifyCertificate(cert)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	first := sign(password)
	if err := f.c.ChangePassword(ctx, "gen@example.com", password, "new "+password); err != nil {
		t.Fatal(err)
	}
	second := sign("new " + password)
	if !second.Generation.After(first.Generation) {
		t.Fatalf("generation %v after the change, %v before", second.Generation, first.Generation)
	}
}

func TestCertificateSignErrors(t *testing.T) {
	f := newAPIFixture(t, withSigner(testSigner(t, certs.RS256, 0)))
	f.account(t, "bad@example.com")
	s := f.login(t, "bad@example.com")
	key, _ := json.Marshal(clientKey())
	huge := `{"algorithm":"RS","n":"` + strings.Repeat("9", 64<<10) + `","e":"65537"}`
	for _, tc := range []struct {
		name, body  string
		errno       int
		param       string
		maxDuration time.Duration
	}{
		{"empty", `{}`, 108, "publicKey", 0},
		{"no duration", `{"publicKey":` + string(key) + `}`, 108, "duration", 0},
		{"null key", `{"publicKey":null,"duration":1}`, 107, "publicKey", 0},
		{"key not an object", `{"publicKey":"RS","duration":1}`, 107, "publicKey", 0},
		{"missing e", `{"publicKey":{"algorithm":"RS","n":"` + clientKey()["n"] + `"},"duration":1}`, 107, "publicKey", 0},
		{"version member", `{"publicKey":{"algorithm":"RS","n":"` + clientKey()["n"] + `","e":"65537","version":"2012.08.15"},"duration":1}`, 107, "publicKey", 0},
		{"legacy key", `{"publicKey":{"algorithm":"RS","n":"` + legacyKey["n"] + `","e":"65537"},"duration":1}`, 107, "publicKey", 0},
		{"DS small p", `{"publicKey":{"algorithm":"DS","y":"2","p":"ff","q":"f","g":"2"},"duration":1}`, 107, "publicKey", 0},
		{"64 KB key", `{"publicKey":` + huge + `,"duration":1}`, 107, "publicKey", 0},
		{"duration 0", `{"publicKey":` + string(key) + `,"duration":0}`, 107, "duration", 0},
		{"negative duration", `{"publicKey":` + string(key) + `,"duration":-1}`, 107, "duration", 0},
		{"duration over 24 h", `{"publicKey":` + string(key) + `,"duration":86400001}`, 107, "duration", 0},
		{"fractional duration", `{"publicKey":` + string(key) + `,"duration":1.5}`, 107, "duration", 0},
		{"duration string", `{"publicKey":` + string(key) + `,"duration":"1000"}`, 107, "duration", 0},
		{"huge duration", `{"publicKey":` + string(key) + `,"duration":99999999999999999999999}`, 107, "duration", 0},
		{"unknown member", `{"publicKey":` + string(key) + `,"duration":1,"x":1}`, 107, "x", 0},
	} {
		start := time.Now()
		status, body := f.raw(t, "POST", "/v1/certificate/sign", tc.body, s.SessionToken)
		wantError(t, tc.name, status, body, 400, tc.errno, tc.param)
		if tc.name == "64 KB key" && time.Since(start) > 2*time.Second {
			t.Fatalf("64 KB key took %v", time.Since(start))
		}
	}
	status, body := f.raw(t, "POST", "/v1/certificate/sign", `{"publicKey":`+string(key)+`,"duration":86400000}`, s.SessionToken)
	if status != 200 || body["cert"] == nil {
		t.Fatalf("24 h: %d %v", status, body)
	}

	// Unverified: 104 for a valid body, and validation comes first.
	if _, err := f.c.CreateAccount(t.Context(), "unverified@example.com", password, client.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	u := f.login(t, "unverified@example.com")
	status, body = f.raw(t, "POST", "/v1/certificate/sign", `{"publicKey":`+string(key)+`,"duration":1000}`, u.SessionToken)
	wantError(t, "unverified", status, body, 400, 104, "")
	status, body = f.raw(t, "POST", "/v1/certificate/sign", `{"publicKey":`+string(key)+`,"duration":0}`, u.SessionToken)
	wantError(t, "unverified, bad duration", status, body, 400, 107, "duration")
}

// With legacy client keys the 511-bit key of the historic client is certified.
func TestCertificateLegacyKeys(t *testing.T) {
	f := newAPIFixture(t, withSigner(testSigner(t, certs.RS256, 0)), func(c *keyserver.Config) { c.LegacyClientKeys = true })
	f.account(t, "legacy@example.com")
	s := f.login(t, "legacy@example.com")
	cert, err := f.c.CertificateSign(t.Context(), s.SessionToken, legacyKey, 1000)
	if err != nil {
		t.Fatal(err)
	}
	v := f.verifier(t)
	if _, err := v.VerifyCertificate(cert); err == nil {
		t.Fatal("a verifier without legacy client keys accepted a 511-bit key")
	}
	v.LegacyClientKeys = true
	if _, err := v.VerifyCertificate(cert); err != nil {
		t.Fatal(err)
	}
}

// The published documents: current key first, retired keys after it.
func TestPublishedKeys(t *testing.T) {
	cur, old := testSigner(t, certs.EdDSA, 0), testSigner(t, certs.RS256, 0)
	f := newAPIFixture(t, withSigner(cur, old.Public()))
	resp, body := f.get(t, "/.well-known/browserid")
	var doc struct {
		PublicKey      map[string]string   `json:"public-key"`
		Authentication string              `json:"authentication"`
		Provisioning   string              `json:"provisioning"`
		Keys           []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil || resp.StatusCode != 200 ||
		resp.Header.Get("Cache-Control") != "public, max-age=3600" {
		t.Fatalf("browserid: %d %s %v", resp.StatusCode, body, err)
	}
	if doc.PublicKey["algorithm"] != "ED" || doc.PublicKey["crv"] != "Ed25519" || len(doc.Keys) != 2 ||
		doc.Keys[0]["kid"] != cur.KeyID() || doc.Keys[1]["kid"] != old.KeyID() || doc.Keys[1]["algorithm"] != "RS" {
		t.Fatalf("browserid document %s", body)
	}
	oldRSA := old.Public().(*rsa.PublicKey)
	if doc.Keys[1]["n"] != oldRSA.N.String() || doc.Keys[1]["e"] != big.NewInt(int64(oldRSA.E)).String() {
		t.Fatalf("retired key %v", doc.Keys[1])
	}
	for _, p := range []string{doc.Authentication, doc.Provisioning} {
		resp, page := f.get(t, p)
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
			!strings.Contains(string(page), "not a general BrowserID identity provider") {
			t.Fatalf("%s: %d %s", p, resp.StatusCode, page)
		}
	}
	if ids := f.verifier(t).Keys.KeyIDs(); len(ids) != 2 || ids[0] != cur.KeyID() || ids[1] != old.KeyID() {
		t.Fatalf("jwks kids %v", ids)
	}
}

// Without a signing key nothing is signed or published: 503/201.
func TestNoSigner(t *testing.T) {
	f := newAPIFixture(t)
	f.account(t, "nosigner@example.com")
	s := f.login(t, "nosigner@example.com")
	key, _ := json.Marshal(clientKey())
	status, body := f.raw(t, "POST", "/v1/certificate/sign", `{"publicKey":`+string(key)+`,"duration":1000}`, s.SessionToken)
	wantError(t, "sign", status, body, 503, 201, "")
	for _, p := range []string{"/.well-known/browserid", "/.well-known/jwks.json"} {
		if resp, _ := f.get(t, p); resp.StatusCode != 503 {
			t.Fatalf("%s: %d", p, resp.StatusCode)
		}
	}
}

// inProcess serves a client's requests with a handler, without sockets.
type inProcess struct{ h http.Handler }

func (p inProcess) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	r.RequestURI = r.URL.RequestURI()
	if r.Body == nil {
		r.Body = http.NoBody // as a server sees a request without a body
	}
	p.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}

// benchmarkCertificateEndpoint is certificates per second through
// /v1/certificate/sign in-process on SQLite: Hawk verification with its
// nonce write, the device lookup, signing and the audit write.
func benchmarkCertificateEndpoint(b *testing.B, alg string) {
	st, err := sqlstore.Open(b.Context(), "sqlite:"+filepath.Join(b.TempDir(), "ks.db"), sqlstore.Options{Migrate: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	srv, err := keyserver.New(keyserver.Config{PublicURL: benchURL, Dev: true, Mailer: discardMailer{}, Signer: testSigner(b, alg, 0)}, st)
	if err != nil {
		b.Fatal(err)
	}
	f := &signInFixture{h: srv.Handler()}
	c, err := client.New(benchURL, client.WithStretching(cheap), client.WithHTTPClient(&http.Client{Transport: inProcess{f.h}}))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := c.CreateAccount(b.Context(), "bench@example.com", password, client.CreateOptions{PreVerified: true}); err != nil {
		b.Fatal(err)
	}
	sess, err := c.Login(b.Context(), "bench@example.com", password)
	if err != nil {
		b.Fatal(err)
	}
	body := map[string]any{"publicKey": clientKey(), "duration": 3600_000}
	var out struct{ Cert string }
	b.ResetTimer()
	for b.Loop() {
		f.serve(b, f.sign("POST", "/v1/certificate/sign", body, protocol.SessionToken, sess.SessionToken), &out)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "certs/s")
}

// BenchmarkCertificateEndpointRS256 and BenchmarkCertificateEndpointEdDSA
// measure the endpoint with each server key type.
func BenchmarkCertificateEndpointRS256(b *testing.B) { benchmarkCertificateEndpoint(b, certs.RS256) }

func BenchmarkCertificateEndpointEdDSA(b *testing.B) { benchmarkCertificateEndpoint(b, certs.EdDSA) }
