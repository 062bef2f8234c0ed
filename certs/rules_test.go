package certs

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// signPlain signs the claims as given (no iat backdating) with key, the
// header naming kid unless it is "".
func signPlain(t *testing.T, key crypto.Signer, kid string, c *Claims) string {
	t.Helper()
	alg, err := keyAlgorithm(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	opts := &jose.SignerOptions{}
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	js, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := c.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	obj, err := js.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// The certificate's iat is the moment of issue minus 10 s (spec 7.2, C21);
// exp is unchanged.
func TestSignBackdatesIssuedAt(t *testing.T) {
	s := newSigner(t, serverKey(t, EdDSA, 0))
	c := testClaims(rsaClientKey(t, 2048, 65537).pub)
	cert, err := s.Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(strings.Split(cert, ".")[1])
	var p struct{ Iat, Exp int64 }
	if err := json.Unmarshal(raw, &p); err != nil {
		t.Fatal(err)
	}
	if p.Iat != c.IssuedAt.UnixMilli()-10_000 || p.Exp != c.ExpiresAt.UnixMilli() {
		t.Fatalf("iat %d exp %d, want %d %d", p.Iat, p.Exp, c.IssuedAt.UnixMilli()-10_000, c.ExpiresAt.UnixMilli())
	}
	if c.IssuedAt != testNow {
		t.Fatal("Sign changed the caller's claims")
	}
}

var oddRSAKeys = sync.OnceValues(func() (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, 2056) })

// The server's RSA keys are exactly 2048 bits (spec 7.3, C21); verifiers
// still accept larger issuer keys.
func TestServerRSAKeySize(t *testing.T) {
	if k := serverKey(t, RS256, 0).(*rsa.PrivateKey); k.N.BitLen() != 2048 {
		t.Fatalf("GenerateKey made a %d-bit key", k.N.BitLen())
	}
	odd, err := oddRSAKeys()
	if err != nil {
		t.Fatal(err)
	}
	wantRefused := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, ErrUnsupportedKey) || !strings.Contains(err.Error(), "2056 bits") || !strings.Contains(err.Error(), "exactly 2048 bits") {
			t.Errorf("%s: %v, want a refusal naming the size and the rule", what, err)
		}
	}
	_, err = NewSigner(odd)
	wantRefused("NewSigner", err)
	_, err = NewKeySet(serverKey(t, EdDSA, 0).Public(), &odd.PublicKey)
	wantRefused("NewKeySet", err)
	_, err = MarshalPrivateKey(odd)
	wantRefused("MarshalPrivateKey", err)
	der, _ := x509.MarshalPKCS8PrivateKey(odd)
	_, err = ParsePrivateKey(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	wantRefused("ParsePrivateKey", err)
	_, err = ParsePublicKeyPEM(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(odd)}))
	wantRefused("ParsePublicKeyPEM of a private key", err)
	der, _ = x509.MarshalPKIXPublicKey(&odd.PublicKey)
	_, err = ParsePublicKeyPEM(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	wantRefused("ParsePublicKeyPEM", err)

	// A verifier reading a JWK Set takes any RS256 key of 2048 bits or more.
	jwk, _ := json.Marshal(jose.JSONWebKey{Key: &odd.PublicKey, KeyID: "big", Algorithm: RS256, Use: "sig"})
	ks, err := ParseJWKS([]byte(`{"keys":[` + string(jwk) + `]}`))
	if err != nil {
		t.Fatalf("JWK Set with a 2056-bit key: %v", err)
	}
	cert := signPlain(t, odd, "big", testClaims(rsaClientKey(t, 2048, 65537).pub))
	if _, err := verifier(ks).VerifyCertificate(cert); err != nil {
		t.Fatalf("certificate of a 2056-bit issuer key: %v", err)
	}
}

type browserIDDoc struct {
	PublicKey map[string]string   `json:"public-key"`
	Keys      []map[string]string `json:"keys"`
}

func parseBrowserIDDoc(t *testing.T, ks *KeySet) browserIDDoc {
	t.Helper()
	b, err := ks.BrowserID()
	if err != nil {
		t.Fatal(err)
	}
	var doc browserIDDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

func jwksKids(t *testing.T, ks *KeySet) []string {
	t.Helper()
	b, err := ks.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := ParseJWKS(b)
	if err != nil {
		t.Fatal(err)
	}
	return parsed.KeyIDs()
}

// While the current key is RSA, /.well-known/browserid lists RSA keys only;
// Ed25519 keys are in the JWK Set alone (spec 7.4, C21).
func TestBrowserIDDocumentKeys(t *testing.T) {
	rs0, rs1, ed := serverKey(t, RS256, 0).Public(), serverKey(t, RS256, 1).Public(), serverKey(t, EdDSA, 0).Public()
	kid := func(pub crypto.PublicKey) string {
		k, err := KeyID(pub)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}

	ks := keySet(t, rs0, ed, rs1)
	doc := parseBrowserIDDoc(t, ks)
	if doc.PublicKey["algorithm"] != AlgorithmRS || len(doc.Keys) != 2 || doc.Keys[0]["kid"] != kid(rs0) || doc.Keys[1]["kid"] != kid(rs1) {
		t.Fatalf("RSA current key: browserid %+v", doc)
	}
	for _, k := range doc.Keys {
		if k["algorithm"] != AlgorithmRS {
			t.Fatalf("RSA current key: browserid lists %+v", k)
		}
	}
	if kids := jwksKids(t, ks); len(kids) != 3 || kids[1] != kid(ed) {
		t.Fatalf("RSA current key: jwks kids %v", kids)
	}

	// With the Ed25519 key current, both documents list every key.
	ks = keySet(t, ed, rs0)
	doc = parseBrowserIDDoc(t, ks)
	if doc.PublicKey["algorithm"] != "ED" || len(doc.Keys) != 2 || doc.Keys[0]["kid"] != kid(ed) || doc.Keys[1]["kid"] != kid(rs0) {
		t.Fatalf("Ed25519 current key: browserid %+v", doc)
	}
	if kids := jwksKids(t, ks); len(kids) != 2 {
		t.Fatalf("Ed25519 current key: jwks kids %v", kids)
	}
}

// The rules recovery selects: keys from a KeyFunc (no kid needed), any
// principal domain, RS keys and RS256 assertions only, a 24 h cap on the
// assertion's exp.
func TestVerifierOptions(t *testing.T) {
	idpKey := serverKey(t, RS256, 1)
	const idp = "idp.example.net"
	const aud = "https://keys.example.com"
	client := rsaClientKey(t, 2048, 65537)
	ds := dsaClientKey(t, "DS256")
	claims := func(pk *PublicKey, email string) *Claims {
		return &Claims{PublicKey: pk, Principal: email, IssuedAt: testNow, ExpiresAt: testNow.Add(time.Hour), Issuer: idp}
	}
	var calls []string
	v := &Verifier{
		KeyFunc: func(iss, kid, alg string) (crypto.PublicKey, error) {
			calls = append(calls, iss+" "+kid+" "+alg)
			if iss != idp {
				return nil, errors.New("untrusted issuer")
			}
			return idpKey.Public(), nil
		},
		AnyDomain: true, RS256Only: true, Skew: time.Minute, MaxLifetime: 24 * time.Hour,
		Now: func() time.Time { return testNow },
	}

	// A plain IdP certificate: no kid, no picl- members, a principal in
	// another domain.
	cert := signPlain(t, idpKey, "", claims(client.pub, "alice@example.org"))
	a, err := v.VerifyAssertion(cert+"~"+assertion("RS256", client.sign, aud, testNow.Add(24*time.Hour)), aud)
	if err != nil {
		t.Fatal(err)
	}
	if c := a.Certificate; c.Principal != "alice@example.org" || c.Issuer != idp || c.KeyID != "" || !c.Generation.IsZero() || c.DeviceID != "" {
		t.Fatalf("certificate %+v", c)
	}
	if len(calls) != 1 || calls[0] != idp+"  RS256" {
		t.Fatalf("KeyFunc calls %q", calls)
	}
	// The certificate without picl-generation re-serialises without it.
	if b, _ := a.Certificate.Claims.MarshalJSON(); strings.Contains(string(b), "picl-") {
		t.Fatalf("re-serialised as %s", b)
	}

	for _, tc := range []struct {
		name, backed string
		want         error
	}{
		{"exp more than 24 h ahead", cert + "~" + assertion("RS256", client.sign, aud, testNow.Add(24*time.Hour+time.Millisecond)), ErrLifetime},
		{"RS64 assertion", cert + "~" + assertion("RS64", client.sign, aud, testNow.Add(time.Minute)), ErrAlgorithm},
		{"DS certified key", signPlain(t, idpKey, "", claims(ds.pub, "alice@example.org")) + "~" + assertion("DS256", ds.sign, aud, testNow.Add(time.Minute)), ErrAlgorithm},
		{"untrusted issuer", signPlain(t, idpKey, "", &Claims{PublicKey: client.pub, Principal: "a@example.org", IssuedAt: testNow, ExpiresAt: testNow.Add(time.Hour), Issuer: "evil.example"}) + "~" + assertion("RS256", client.sign, aud, testNow.Add(time.Minute)), ErrUnknownKey},
		{"issuer key of the wrong type", signPlain(t, serverKey(t, EdDSA, 0), "", claims(client.pub, "a@example.org")) + "~" + assertion("RS256", client.sign, aud, testNow.Add(time.Minute)), ErrAlgorithm},
		{"signed by another key", signPlain(t, serverKey(t, RS256, 0), "", claims(client.pub, "a@example.org")) + "~" + assertion("RS256", client.sign, aud, testNow.Add(time.Minute)), ErrSignature},
		{"empty principal", signPlain(t, idpKey, "", claims(client.pub, "")) + "~" + assertion("RS256", client.sign, aud, testNow.Add(time.Minute)), ErrMalformed},
		{"principal without local part", signPlain(t, idpKey, "", claims(client.pub, "@example.org")) + "~" + assertion("RS256", client.sign, aud, testNow.Add(time.Minute)), ErrMalformed},
	} {
		if _, err := v.VerifyAssertion(tc.backed, aud); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}

	// By default (the key server's rules) a principal outside the issuer's
	// domain, RS64 and DS assertions, and any lifetime are as before.
	v.AnyDomain, v.RS256Only, v.MaxLifetime = false, false, 0
	if _, err := v.VerifyCertificate(cert); !errors.Is(err, ErrIssuer) {
		t.Fatalf("principal outside the issuer's domain: %v", err)
	}
	own := signPlain(t, idpKey, "", claims(ds.pub, "alice@"+idp))
	if _, err := v.VerifyAssertion(own+"~"+assertion("DS256", ds.sign, aud, testNow.Add(48*time.Hour)), aud); err != nil {
		t.Fatalf("DS key, 48 h assertion: %v", err)
	}
}
