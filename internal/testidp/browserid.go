package testidp

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/keyserver/keyserver/certs"
)

// BrowserIDIdP is a BrowserID identity provider for tests: an HTTPS server
// on 127.0.0.1 serving /.well-known/browserid, whose domain (the iss of its
// certificates) is host:port. It certifies client keys with an RS256 key.
type BrowserIDIdP struct {
	srv    *httptest.Server
	Domain string
	Key    crypto.Signer
	signer *certs.Signer
	keys   *certs.KeySet
}

// NewBrowserID starts a BrowserID IdP, stopped when the test ends.
func NewBrowserID(t testing.TB) *BrowserIDIdP {
	t.Helper()
	key, err := certs.GenerateKey(certs.RS256, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p := &BrowserIDIdP{Key: key}
	if p.signer, err = certs.NewSigner(key); err != nil {
		t.Fatal(err)
	}
	if p.keys, err = certs.NewKeySet(key.Public()); err != nil {
		t.Fatal(err)
	}
	doc, err := p.keys.BrowserID()
	if err != nil {
		t.Fatal(err)
	}
	p.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/browserid" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(doc)
	}))
	t.Cleanup(p.srv.Close)
	p.Domain = strings.TrimPrefix(p.srv.URL, "https://")
	return p
}

// CertPEM is the server's TLS certificate in PEM.
func (p *BrowserIDIdP) CertPEM() []byte { return certPEM(p.srv) }

// CertPool holds the server's TLS certificate.
func (p *BrowserIDIdP) CertPool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.srv.Certificate())
	return pool
}

// JWKS is the IdP's key as a JWK Set (for a keys file).
func (p *BrowserIDIdP) JWKS(t testing.TB) []byte {
	t.Helper()
	b, err := p.keys.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Certify signs a certificate of client for email, with iat and exp as
// given, with the IdP's key and kid and iss (usually p.Domain). Package
// certs writes it, with the key server's extra members, which verifiers
// ignore.
func (p *BrowserIDIdP) Certify(t testing.TB, iss, email string, client *rsa.PublicKey, iat, exp time.Time) string {
	t.Helper()
	// Sign takes the moment of issue and writes iat 10 s before it.
	cert, err := p.signer.Sign(&certs.Claims{
		PublicKey: ClientKey(client), Principal: email, IssuedAt: iat.Add(certs.IssuedAtBackdate), ExpiresAt: exp, Issuer: iss, Generation: iat,
	})
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// CertifyPlain signs a certificate the way a plain BrowserID IdP does: no
// kid, and only public-key, principal, iat, exp and iss; iss and signer may
// differ from the IdP's own.
func (p *BrowserIDIdP) CertifyPlain(t testing.TB, signer crypto.Signer, iss, email string, client *rsa.PublicKey, iat, exp time.Time) string {
	t.Helper()
	return signJSON(t, jose.RS256, signer, map[string]any{
		"public-key": ClientKey(client), "principal": map[string]string{"email": email},
		"iat": iat.UnixMilli(), "exp": exp.UnixMilli(), "iss": iss,
	}, nil)
}

// ClientKey is the jwcrypto form of an RSA client key.
func ClientKey(pub *rsa.PublicKey) *certs.PublicKey {
	return &certs.PublicKey{Algorithm: certs.AlgorithmRS, N: pub.N, E: new(big.Int).SetInt64(int64(pub.E))}
}

// Backed is cert~assertion, the assertion for aud expiring at exp signed
// (RS256) with the certified client key.
func Backed(t testing.TB, cert string, client *rsa.PrivateKey, aud string, exp time.Time) string {
	t.Helper()
	return cert + "~" + signJSON(t, jose.RS256, client, map[string]any{"aud": aud, "exp": exp.UnixMilli()}, nil)
}

// signJSON is a compact JWS of v's JSON with key and the header options
// opts (nil: no kid).
func signJSON(t testing.TB, alg jose.SignatureAlgorithm, key crypto.Signer, v any, opts *jose.SignerOptions) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}
