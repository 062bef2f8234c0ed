package recovery

import (
	"context"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/keyserver/keyserver/certs"
)

// browserIDIssuer is a configured BrowserID identity provider with its keys
// and the email domains it may vouch for.
type browserIDIssuer struct {
	BrowserIDIssuer
	keys    *keySource
	domains []string
}

// BrowserID backed assertions (spec 8.2): "cert~assertion", exactly one
// certificate. The certificate is a JWS (RS256 or EdDSA) by a key of the
// issuer named by its iss, the key picked by kid or, without kid, the only
// key or the browserid document's public-key; its payload has a
// principal.email in an allowed domain, iat (ms) at most now + 60 s, exp (ms)
// in the future, and a public-key that is a jwcrypto RS key within the
// limits of spec 7.1 (parsed by package certs). Other payload members are
// ignored. The assertion is a JWS (RS256) by that key whose aud is the key
// server's public URL (a trailing "/" ignored) and whose exp (ms) is in the
// future and at most 24 h ahead; iat and nbf, when present, are at most
// now + 60 s.
var (
	certAlgs      = []jose.SignatureAlgorithm{jose.RS256, jose.EdDSA}
	assertionAlgs = []jose.SignatureAlgorithm{jose.RS256}
)

// verifyBackedAssertion checks a BrowserID backed assertion.
func (v *Verifier) verifyBackedAssertion(ctx context.Context, backed string) (string, time.Time, error) {
	now := v.now()
	certPart, assertionPart, _ := strings.Cut(backed, "~")
	if strings.Contains(assertionPart, "~") {
		return "", time.Time{}, invalid("backed assertion: more than one certificate")
	}
	email, clientKey, err := v.verifyIdPCertificate(ctx, certPart, now)
	if err != nil {
		return "", time.Time{}, err
	}
	payload, err := verifyJWS(assertionPart, assertionAlgs, clientKey)
	if err != nil {
		return "", time.Time{}, invalid("backed assertion: %v", err)
	}
	var a struct {
		Aud           *string `json:"aud"`
		Exp, Iat, Nbf *int64
	}
	if err := json.Unmarshal(payload, &a); err != nil || a.Aud == nil || a.Exp == nil {
		return "", time.Time{}, invalid("backed assertion: payload needs aud and exp")
	}
	if v.audience == "" || strings.TrimSuffix(*a.Aud, "/") != v.audience {
		return "", time.Time{}, invalid("backed assertion: wrong audience")
	}
	exp := time.UnixMilli(*a.Exp)
	switch {
	case !exp.After(now):
		return "", time.Time{}, invalid("backed assertion: expired")
	case exp.Sub(now) > maxLifetime:
		return "", time.Time{}, invalid("backed assertion: exp more than 24 h ahead")
	case tooEarly(a.Iat, now), tooEarly(a.Nbf, now):
		return "", time.Time{}, invalid("backed assertion: iat or nbf in the future")
	}
	return email, exp, nil
}

// verifyIdPCertificate checks the certificate of a backed assertion and
// returns its principal email and certified key.
func (v *Verifier) verifyIdPCertificate(ctx context.Context, cert string, now time.Time) (string, *rsa.PublicKey, error) {
	if err := refuseCrit(cert); err != nil {
		return "", nil, invalid("certificate: %v", err)
	}
	jws, err := jose.ParseSignedCompact(cert, certAlgs)
	if err != nil {
		return "", nil, invalid("certificate: %v", err)
	}
	var c struct {
		Iss       string          `json:"iss"`
		PublicKey json.RawMessage `json:"public-key"`
		Principal *struct {
			Email string `json:"email"`
		} `json:"principal"`
		Iat, Exp *int64
	}
	if json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &c) != nil {
		return "", nil, invalid("certificate: payload is not a JSON object")
	}
	iss, ok := v.browserID[c.Iss]
	if !ok {
		return "", nil, invalid("certificate: untrusted issuer")
	}
	h := jws.Signatures[0].Protected
	pub, err := iss.keys.lookup(ctx, h.KeyID, h.Algorithm, now)
	if err != nil {
		return "", nil, invalid("certificate of %s: %v", iss.Issuer, err)
	}
	if _, err := jws.Verify(pub); err != nil {
		return "", nil, invalid("certificate of %s: bad signature", iss.Issuer)
	}
	switch {
	case c.Principal == nil || c.Principal.Email == "" || !allowedDomain(c.Principal.Email, iss.domains):
		return "", nil, invalid("certificate of %s: principal missing or in a domain the issuer may not vouch for", iss.Issuer)
	case c.Iat == nil || tooEarly(c.Iat, now):
		return "", nil, invalid("certificate of %s: iat missing or in the future", iss.Issuer)
	case c.Exp == nil || !time.UnixMilli(*c.Exp).After(now):
		return "", nil, invalid("certificate of %s: expired", iss.Issuer)
	}
	key, err := certs.ParsePublicKey(c.PublicKey, false)
	if err != nil || key.Algorithm != certs.AlgorithmRS || !key.E.IsInt64() || key.E.Int64() > 1<<31-1 {
		return "", nil, invalid("certificate of %s: the certified key is not an RS key of spec 7.1", iss.Issuer)
	}
	return c.Principal.Email, &rsa.PublicKey{N: key.N, E: int(key.E.Int64())}, nil
}

// tooEarly reports whether a millisecond time is more than the clock skew
// ahead of now (false when absent).
func tooEarly(ms *int64, now time.Time) bool {
	return ms != nil && time.UnixMilli(*ms).Sub(now) > clockSkew
}

// verifyJWS checks a compact JWS of one of algs with pub and returns its
// payload.
func verifyJWS(token string, algs []jose.SignatureAlgorithm, pub any) ([]byte, error) {
	if err := refuseCrit(token); err != nil {
		return nil, err
	}
	jws, err := jose.ParseSignedCompact(token, algs)
	if err != nil {
		return nil, err
	}
	payload, err := jws.Verify(pub)
	if err != nil {
		return nil, errors.New("bad signature")
	}
	return payload, nil
}

// parseBrowserIDDocument reads the keys of a /.well-known/browserid
// document: its public-key (the key of certificates without kid) and its
// keys (each with a kid), in the jwcrypto forms of spec 7.4.
func parseBrowserIDDocument(data []byte) ([]key, error) {
	var doc struct {
		PublicKey json.RawMessage   `json:"public-key"`
		Keys      []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("not a browserid document: %w", err)
	}
	var keys []key
	if doc.PublicKey != nil {
		k, err := jwcryptoKey(doc.PublicKey)
		if err != nil {
			return nil, fmt.Errorf("public-key: %w", err)
		}
		k.primary = true
		keys = append(keys, k)
	}
	for _, raw := range doc.Keys {
		if k, err := jwcryptoKey(raw); err == nil && k.kid != "" {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("no usable key in the browserid document")
	}
	return keys, nil
}

// jwcryptoKey reads an issuer key {"algorithm": "RS", "n", "e"} (decimal,
// parsed by package certs, at least 2048 bits) or {"algorithm": "ED",
// "crv": "Ed25519", "x"}, with an optional kid.
func jwcryptoKey(raw json.RawMessage) (key, error) {
	var m struct {
		Algorithm string `json:"algorithm"`
		N, E      string
		Crv, X    string
		Kid       string `json:"kid"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return key{}, err
	}
	switch m.Algorithm {
	case certs.AlgorithmRS:
		rs, _ := json.Marshal(map[string]string{"algorithm": m.Algorithm, "n": m.N, "e": m.E})
		pk, err := certs.ParsePublicKey(rs, false)
		if err != nil || !pk.E.IsInt64() || pk.E.Int64() > 1<<31-1 {
			return key{}, fmt.Errorf("bad RS key: %v", err)
		}
		return key{kid: m.Kid, alg: string(jose.RS256), pub: &rsa.PublicKey{N: pk.N, E: int(pk.E.Int64())}}, nil
	case "ED":
		x, err := base64.RawURLEncoding.DecodeString(m.X)
		if m.Crv != "Ed25519" || err != nil || len(x) != ed25519.PublicKeySize {
			return key{}, errors.New("bad ED key")
		}
		return key{kid: m.Kid, alg: string(jose.EdDSA), pub: ed25519.PublicKey(x)}, nil
	}
	return key{}, fmt.Errorf("unsupported algorithm %q", m.Algorithm)
}
