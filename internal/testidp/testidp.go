// Package testidp has identity providers for tests, HTTPS servers on
// 127.0.0.1 (httptest.NewTLSServer): an OpenID Connect issuer that serves
// discovery and a JWK Set and signs ID tokens with its keys (RS256, ES256,
// EdDSA), and a BrowserID IdP that serves /.well-known/browserid and
// certifies client keys.
package testidp

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Key is a signing key of the IdP.
type Key struct {
	KID    string
	Alg    jose.SignatureAlgorithm
	Signer crypto.Signer
}

// IdP is a running test identity provider.
type IdP struct {
	srv *httptest.Server
	// Issuer is its issuer URL (the server's https origin).
	Issuer string
	// RSA, EC and Ed are its published keys.
	RSA, EC, Ed *Key
	// JWKSFetches counts the requests for the JWK Set.
	JWKSFetches atomic.Int64

	mu        sync.Mutex
	published []*Key
}

// New starts an IdP, stopped when the test ends.
func New(t testing.TB) *IdP {
	t.Helper()
	p := &IdP{
		RSA: NewKey(t, "rsa-1", jose.RS256),
		EC:  NewKey(t, "ec-1", jose.ES256),
		Ed:  NewKey(t, "ed-1", jose.EdDSA),
	}
	p.published = []*Key{p.RSA, p.EC, p.Ed}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"issuer": p.Issuer, "jwks_uri": p.JWKSURL(),
			"id_token_signing_alg_values_supported": []string{"RS256", "ES256", "EdDSA"}})
	})
	mux.HandleFunc("GET /jwks.json", func(w http.ResponseWriter, r *http.Request) {
		p.JWKSFetches.Add(1)
		writeJSON(w, p.JWKS())
	})
	p.srv = httptest.NewTLSServer(mux)
	t.Cleanup(p.srv.Close)
	p.Issuer = p.srv.URL
	return p
}

// NewKey makes a key of the type alg needs (RSA 2048, P-256 or Ed25519).
func NewKey(t testing.TB, kid string, alg jose.SignatureAlgorithm) *Key {
	t.Helper()
	var signer crypto.Signer
	var err error
	switch alg {
	case jose.RS256:
		signer, err = rsa.GenerateKey(rand.Reader, 2048)
	case jose.ES256:
		signer, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.EdDSA:
		_, signer, err = ed25519.GenerateKey(rand.Reader)
	default:
		t.Fatalf("testidp: no key type for %s", alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	return &Key{KID: kid, Alg: alg, Signer: signer}
}

// JWKSURL is the URL of the JWK Set.
func (p *IdP) JWKSURL() string { return p.srv.URL + "/jwks.json" }

// Client is an HTTP client that trusts the IdP's certificate.
func (p *IdP) Client() *http.Client { return p.srv.Client() }

// CertPool holds the IdP's certificate.
func (p *IdP) CertPool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.srv.Certificate())
	return pool
}

// CertPEM is the IdP's certificate in PEM.
func (p *IdP) CertPEM() []byte { return certPEM(p.srv) }

func certPEM(srv *httptest.Server) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
}

// Publish replaces the published keys.
func (p *IdP) Publish(keys ...*Key) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.published = keys
}

// JWKS is the published JWK Set.
func (p *IdP) JWKS() jose.JSONWebKeySet {
	p.mu.Lock()
	defer p.mu.Unlock()
	var set jose.JSONWebKeySet
	for _, k := range p.published {
		set.Keys = append(set.Keys, k.JWK())
	}
	return set
}

// JWK is the key's public JWK.
func (k *Key) JWK() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.Signer.Public(), KeyID: k.KID, Algorithm: string(k.Alg), Use: "sig"}
}

// Claims are valid ID token claims for email and audience aud, issued now
// and valid for an hour.
func (p *IdP) Claims(aud, email string, now time.Time) map[string]any {
	return map[string]any{
		"iss": p.Issuer, "sub": "user-" + email, "aud": aud, "email": email, "email_verified": true,
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}
}

// Sign makes a compact JWS of claims with k, its kid in the header (unless
// noKID) and any extra header members.
func Sign(t testing.TB, k *Key, claims map[string]any, noKID bool, extra map[string]any) string {
	t.Helper()
	opts := &jose.SignerOptions{}
	if !noKID {
		opts = opts.WithHeader("kid", k.KID)
	}
	for name, v := range extra {
		opts = opts.WithHeader(jose.HeaderKey(name), v)
	}
	return signJSON(t, k.Alg, k.Signer, claims, opts)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
