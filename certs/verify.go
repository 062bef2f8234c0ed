package certs

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Verification failures wrap one of these.
var (
	ErrMalformed   = errors.New("certs: malformed certificate or assertion")
	ErrAlgorithm   = errors.New("certs: signature algorithm not accepted")
	ErrUnknownKey  = errors.New("certs: unknown key id")
	ErrSignature   = errors.New("certs: bad signature")
	ErrExpired     = errors.New("certs: expired")
	ErrNotYetValid = errors.New("certs: issued in the future")
	ErrIssuer      = errors.New("certs: wrong issuer")
	ErrAudience    = errors.New("certs: wrong audience")
)

// MaxTokenSize bounds a certificate or backed assertion, like the assertion
// limit of spec 8.1; longer input is refused before decoding.
const MaxTokenSize = 16384

// Verifier checks certificates and backed assertions against the published
// keys of an issuer. This is what a storage server runs on each request:
//
//	ks, err := certs.ParseJWKS(jwksJSON) // GET https://<key server>/.well-known/jwks.json
//	v := &certs.Verifier{Keys: ks, Issuer: "keys.example.com", Skew: time.Minute}
//	a, err := v.VerifyAssertion(backedAssertion, "https://storage.example.com")
//	// a.Certificate.Principal names the user, a.Certificate.Generation lets
//	// the storage server refuse certificates older than the last password
//	// change it has seen.
//
// A key that is no longer in Keys no longer verifies. The zero Skew
// tolerates no clock difference. A Verifier is safe for concurrent use.
type Verifier struct {
	// Keys are the trusted issuer keys by kid.
	Keys *KeySet
	// Issuer, when not empty, is the only accepted iss.
	Issuer string
	// LegacyClientKeys accepts certified RSA client keys from 511 bits
	// (D16), as a key server with legacy client keys issues them.
	LegacyClientKeys bool
	// Skew is how far in the future iat and nbf may be (exp gets none).
	Skew time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Certificate is a verified certificate.
type Certificate struct {
	Claims
	KeyID     string // kid of the issuer key that signed it
	Algorithm string // RS256 or EdDSA
}

// Assertion is a verified backed assertion.
type Assertion struct {
	Certificate *Certificate
	Audience    string
	ExpiresAt   time.Time
	IssuedAt    time.Time // zero when the assertion has no iat
}

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

// VerifyCertificate checks a certificate: well-formed, header alg RS256 or
// EdDSA matching the key named by kid in v.Keys, signature, payload (spec
// 7.2), iat <= now + Skew, now < exp, iss (when v.Issuer is set) and a
// principal "<local>@<iss>".
func (v *Verifier) VerifyCertificate(cert string) (*Certificate, error) {
	if v.Keys == nil {
		return nil, fmt.Errorf("%w: no keys configured", ErrUnknownKey)
	}
	jws, err := splitJWS(cert, "alg", "kid")
	if err != nil {
		return nil, err
	}
	if jws.alg != RS256 && jws.alg != EdDSA {
		return nil, fmt.Errorf("%w: %q", ErrAlgorithm, jws.alg)
	}
	key := v.Keys.key(jws.kid)
	if key == nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownKey, jws.kid)
	}
	if key.alg != jws.alg {
		return nil, fmt.Errorf("%w: %s for a %s key", ErrAlgorithm, jws.alg, key.alg)
	}
	payload, err := verifyJWS(cert, jws.alg, key.pub)
	if err != nil {
		return nil, err
	}
	claims, err := parseClaims(payload, v.LegacyClientKeys)
	if err != nil {
		return nil, err
	}
	if err := v.checkTimes(claims.IssuedAt, time.Time{}, claims.ExpiresAt); err != nil {
		return nil, err
	}
	if v.Issuer != "" && claims.Issuer != v.Issuer {
		return nil, fmt.Errorf("%w: %q", ErrIssuer, claims.Issuer)
	}
	local, domain, ok := strings.Cut(claims.Principal, "@")
	if !ok || local == "" || domain != claims.Issuer {
		return nil, fmt.Errorf("%w: principal %q is not in the issuer's domain", ErrIssuer, claims.Principal)
	}
	return &Certificate{Claims: *claims, KeyID: key.kid, Algorithm: key.alg}, nil
}

// VerifyAssertion checks a backed assertion "cert~assertion": the
// certificate as VerifyCertificate does, then the assertion's signature with
// the certified key, aud equal to audience (a trailing '/' ignored on
// either), now < exp, and iat and nbf (when present) <= now + Skew.
func (v *Verifier) VerifyAssertion(backed, audience string) (*Assertion, error) {
	if len(backed) > MaxTokenSize {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrMalformed, MaxTokenSize)
	}
	if strings.Count(backed, "~") != 1 {
		return nil, fmt.Errorf("%w: want exactly one certificate and one assertion", ErrMalformed)
	}
	certPart, assertionPart, _ := strings.Cut(backed, "~")
	cert, err := v.VerifyCertificate(certPart)
	if err != nil {
		return nil, err
	}
	jws, err := splitJWS(assertionPart, "alg")
	if err != nil {
		return nil, err
	}
	h, ok := cert.PublicKey.assertionHash(jws.alg)
	if !ok {
		return nil, fmt.Errorf("%w: %q for a certified %s key", ErrAlgorithm, jws.alg, cert.PublicKey.Algorithm)
	}
	if !cert.PublicKey.verify(h, []byte(jws.signingInput), jws.signature) {
		return nil, fmt.Errorf("%w: assertion", ErrSignature)
	}
	var p struct {
		Audience  *string `json:"aud"`
		ExpiresAt *int64  `json:"exp"`
		IssuedAt  *int64  `json:"iat"`
		NotBefore *int64  `json:"nbf"`
	}
	if err := json.Unmarshal(jws.payload, &p); err != nil || p.Audience == nil || p.ExpiresAt == nil {
		return nil, fmt.Errorf("%w: assertion payload needs aud and exp", ErrMalformed)
	}
	if audience == "" || strings.TrimSuffix(*p.Audience, "/") != strings.TrimSuffix(audience, "/") {
		return nil, fmt.Errorf("%w: %q", ErrAudience, *p.Audience)
	}
	a := &Assertion{Certificate: cert, Audience: *p.Audience, ExpiresAt: time.UnixMilli(*p.ExpiresAt).UTC()}
	var nbf time.Time
	if p.IssuedAt != nil {
		a.IssuedAt = time.UnixMilli(*p.IssuedAt).UTC()
	}
	if p.NotBefore != nil {
		nbf = time.UnixMilli(*p.NotBefore)
	}
	if err := v.checkTimes(a.IssuedAt, nbf, a.ExpiresAt); err != nil {
		return nil, fmt.Errorf("assertion: %w", err)
	}
	return a, nil
}

// checkTimes checks iat and nbf (skipped when zero) against now + Skew, and
// now < exp.
func (v *Verifier) checkTimes(iat, nbf, exp time.Time) error {
	now := v.now()
	latest := now.Add(v.Skew)
	if (!iat.IsZero() && iat.After(latest)) || (!nbf.IsZero() && nbf.After(latest)) {
		return ErrNotYetValid
	}
	if !now.Before(exp) {
		return ErrExpired
	}
	return nil
}

// jwsParts is a compact JWS taken apart, nothing verified yet.
type jwsParts struct {
	alg, kid     string
	signingInput string
	payload      []byte
	signature    []byte
}

// splitJWS takes a compact JWS apart. Each part must be canonical base64url
// without padding, and the header a JSON object with a string alg and no
// members but the names given (each of which is then required).
func splitJWS(token string, headerNames ...string) (*jwsParts, error) {
	if len(token) > MaxTokenSize {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrMalformed, MaxTokenSize)
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("%w: not a compact JWS", ErrMalformed)
	}
	var raw [3][]byte
	for i, p := range parts {
		b, err := base64.RawURLEncoding.Strict().DecodeString(p)
		if err != nil || len(b) == 0 {
			return nil, fmt.Errorf("%w: part %d is not canonical base64url", ErrMalformed, i+1)
		}
		raw[i] = b
	}
	var header map[string]json.RawMessage
	if err := json.Unmarshal(raw[0], &header); err != nil || len(header) != len(headerNames) {
		return nil, fmt.Errorf("%w: header must have exactly %s", ErrMalformed, strings.Join(headerNames, ", "))
	}
	values := map[string]string{}
	for _, name := range headerNames {
		var s string
		if err := json.Unmarshal(header[name], &s); err != nil || s == "" {
			return nil, fmt.Errorf("%w: header %s must be a non-empty string", ErrMalformed, name)
		}
		values[name] = s
	}
	return &jwsParts{
		alg: values["alg"], kid: values["kid"],
		signingInput: parts[0] + "." + parts[1],
		payload:      raw[1], signature: raw[2],
	}, nil
}
