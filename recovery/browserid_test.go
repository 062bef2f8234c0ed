package recovery

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyserver/keyserver/internal/testidp"
)

const audience = "https://keys.example.org"

var clientKeys = sync.OnceValues(func() (*rsa.PrivateKey, *rsa.PrivateKey) {
	a, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	b, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return a, b
})

// rs64Assertion is an assertion with jwcrypto's header alg RS64 (RS256
// signatures under another name), which spec 8.2 does not accept.
func rs64Assertion(t *testing.T, client *rsa.PrivateKey, aud string, exp time.Time) string {
	t.Helper()
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	input := enc(map[string]string{"alg": "RS64"}) + "." + enc(map[string]any{"aud": aud, "exp": exp.UnixMilli()})
	digest := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(nil, client, crypto.SHA256, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func browserIDVerifier(t *testing.T, idp *testidp.BrowserIDIdP, c *clock, e BrowserIDIssuer) *Verifier {
	t.Helper()
	v, err := New(&Config{BrowserID: []BrowserIDIssuer{e}}, Options{Audience: audience + "/", RootCAs: idp.CertPool(), Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestBackedAssertion(t *testing.T) {
	idp := testidp.NewBrowserID(t)
	other := testidp.NewBrowserID(t)
	c := newClock()
	v := browserIDVerifier(t, idp, c, BrowserIDIssuer{Issuer: idp.Domain, WellKnown: true, Domains: []string{"example.org"}})
	client, stranger := clientKeys()
	now := c.now()
	cert := func(email string) string {
		return idp.Certify(t, idp.Domain, email, &client.PublicKey, now, now.Add(time.Hour))
	}
	backed := func(cert string) string { return testidp.Backed(t, cert, client, audience, now.Add(2*time.Minute)) }

	for name, a := range map[string]string{
		"certificate with kid":                 backed(cert("Alice@Example.org")),
		"plain certificate, the public-key":    backed(idp.CertifyPlain(t, idp.Key, idp.Domain, "Alice@Example.org", &client.PublicKey, now, now.Add(time.Hour))),
		"audience with a trailing slash":       testidp.Backed(t, cert("Alice@Example.org"), client, audience+"/", now.Add(time.Minute)),
		"assertion exp 24 h ahead":             testidp.Backed(t, cert("Alice@Example.org"), client, audience, now.Add(24*time.Hour)),
		"certificate iat 59 s in the future":   backed(idp.Certify(t, idp.Domain, "Alice@Example.org", &client.PublicKey, now.Add(59*time.Second), now.Add(time.Hour))),
		"certificate exp before the assertion": testidp.Backed(t, idp.Certify(t, idp.Domain, "Alice@Example.org", &client.PublicKey, now, now.Add(time.Minute)), client, audience, now.Add(time.Hour)),
	} {
		email, exp, err := v.Verify(context.Background(), a)
		if err != nil || email != "Alice@Example.org" || !exp.After(now) {
			t.Errorf("%s: %q %v %v", name, email, exp, err)
		}
	}

	bad := map[string]string{
		"wrong audience":                     testidp.Backed(t, cert("alice@example.org"), client, "https://evil.example", now.Add(time.Minute)),
		"assertion expired":                  testidp.Backed(t, cert("alice@example.org"), client, audience, now.Add(-time.Millisecond)),
		"assertion exp over 24 h ahead":      testidp.Backed(t, cert("alice@example.org"), client, audience, now.Add(24*time.Hour+time.Second)),
		"certificate expired":                backed(idp.Certify(t, idp.Domain, "alice@example.org", &client.PublicKey, now.Add(-time.Hour), now.Add(-time.Second))),
		"certificate iat in the future":      backed(idp.Certify(t, idp.Domain, "alice@example.org", &client.PublicKey, now.Add(2*time.Minute), now.Add(time.Hour))),
		"principal in another domain":        backed(cert("alice@example.com")),
		"principal in the IdP's domain":      backed(cert("alice@" + idp.Domain)),
		"certificate by another key":         backed(idp.CertifyPlain(t, other.Key, idp.Domain, "alice@example.org", &client.PublicKey, now, now.Add(time.Hour))),
		"unknown kid":                        backed(other.Certify(t, idp.Domain, "alice@example.org", &client.PublicKey, now, now.Add(time.Hour))),
		"untrusted issuer":                   backed(other.CertifyPlain(t, other.Key, other.Domain, "alice@example.org", &client.PublicKey, now, now.Add(time.Hour))),
		"assertion by another client key":    testidp.Backed(t, cert("alice@example.org"), stranger, audience, now.Add(time.Minute)),
		"two certificates":                   cert("alice@example.org") + "~" + backed(cert("alice@example.org")),
		"no assertion":                       cert("alice@example.org") + "~",
		"ID token with a tilde":              "a.b.c~",
		"RS64 assertion (jwcrypto, not 8.2)": cert("alice@example.org") + "~" + rs64Assertion(t, client, audience, now.Add(time.Minute)),
	}
	for name, a := range bad {
		_, _, err := v.Verify(context.Background(), a)
		wantInvalid(t, name, err)
	}
	// A flipped bit anywhere in the assertion's signature.
	good := backed(cert("alice@example.org"))
	tampered := []byte(good)
	tampered[len(tampered)-5] ^= 1
	_, _, err := v.Verify(context.Background(), string(tampered))
	wantInvalid(t, "tampered assertion signature", err)
}

// Keys from a JWK Set file, and the default domain: the issuer itself.
func TestBackedAssertionKeysFile(t *testing.T) {
	idp := testidp.NewBrowserID(t)
	file := filepath.Join(t.TempDir(), "keys.json")
	if err := os.WriteFile(file, idp.JWKS(t), 0o600); err != nil {
		t.Fatal(err)
	}
	c := newClock()
	v := browserIDVerifier(t, idp, c, BrowserIDIssuer{Issuer: idp.Domain, KeysFile: file})
	client, _ := clientKeys()
	now := c.now()
	email := "bob@" + idp.Domain
	for _, cert := range []string{
		idp.Certify(t, idp.Domain, email, &client.PublicKey, now, now.Add(time.Hour)),
		idp.CertifyPlain(t, idp.Key, idp.Domain, email, &client.PublicKey, now, now.Add(time.Hour)),
	} {
		got, _, err := v.Verify(context.Background(), testidp.Backed(t, cert, client, audience, now.Add(time.Minute)))
		if err != nil || got != email {
			t.Fatalf("%q %v", got, err)
		}
	}
	_, _, err := v.Verify(context.Background(), testidp.Backed(t, idp.Certify(t, idp.Domain, "bob@example.org", &client.PublicKey, now, now.Add(time.Hour)), client, audience, now.Add(time.Minute)))
	wantInvalid(t, "principal outside the issuer's domain", err)
	if !strings.Contains(err.Error(), "domain") {
		t.Fatalf("reason: %v", err)
	}
}
