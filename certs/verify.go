package certs

import (
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
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
	ErrLifetime    = errors.New("certs: valid for too long")
)

// MaxTokenSize bounds a certificate or backed assertion, like the assertion
// limit of spec 8.1; longer input is refused before decoding.
const MaxTokenSize = 16384

// KeyFunc returns the key that verifies a certificate: the key of issuer
// iss named by kid ("" when the header names none), of the type the JWS
// alg (RS256 or EdDSA) needs. iss is read before the signature is checked.
type KeyFunc func(iss, kid, alg string) (crypto.PublicKey, error)

// Verifier is the one BrowserID verifier of the project: it checks
// certificates and backed assertions, of the key server (against its
// published keys) or of the identity providers that recovery trusts
// (through KeyFunc). This is what a storage server runs on each request:
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
	// Keys are the trusted key server keys by kid; a certificate must name
	// one by kid.
	Keys *KeySet
	// KeyFunc, when not nil, finds the issuer keys instead of Keys.
	KeyFunc KeyFunc
	// Issuer, when not empty, is the only accepted iss.
	Issuer string
	// AnyDomain accepts a principal in any email domain, leaving the
	// domain policy to the caller. By default the principal's domain must
	// be the issuer's, as in the key server's certificates.
	AnyDomain bool
	// LegacyClientKeys accepts certified RSA client keys from 511 bits
	// (D16), as a key server with legacy client keys issues them.
	LegacyClientKeys bool
	// RS256Only accepts only RS certified keys and RS256 assertions (spec
	// 8.2) instead of every jwcrypto key and algorithm (spec 7.1).
	RS256Only bool
	// Skew is how far in the future iat and nbf may be (exp gets none).
	Skew time.Duration
	// MaxLifetime, when not zero, bounds how far ahead of now an
	// assertion's exp may be (spec 8.2: 24 h); Skew does not apply to it.
	MaxLifetime time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Certificate is a verified certificate.
type Certificate struct {
	Claims
	KeyID     string // kid of the issuer key that signed it ("" if none named)
	Algorithm string // RS256 or EdDSA
}

// Assertion is a verified backed assertion.
type Assertion struct {
	Certificate *Certificate
	Audience    string
	ExpiresAt   time.Time
	IssuedAt    time.Time // zero when the assertion has no iat
}

// JWS algorithms: of certificates (spec 7.2), and of client assertions
// (jwcrypto's names, spec 7.1; RS256 alone with RS256Only).
var (
	certAlgs      = []jose.SignatureAlgorithm{jose.RS256, jose.EdDSA}
	assertionAlgs = []jose.SignatureAlgorithm{"RS64", "RS128", jose.RS256, "DS128", "DS256"}
	rs256Only     = []jose.SignatureAlgorithm{jose.RS256}
)

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

// VerifyCertificate checks a certificate: well-formed, header alg RS256 or
// EdDSA matching the issuer key (named by kid), signature, payload (spec
// 7.2), iat <= now + Skew, now < exp, iss (when v.Issuer is set) and a
// principal "<local>@<domain>" whose domain is iss (unless AnyDomain).
func (v *Verifier) VerifyCertificate(cert string) (*Certificate, error) {
	return v.verifyCertificate(cert, v.now())
}

func (v *Verifier) verifyCertificate(cert string, now time.Time) (*Certificate, error) {
	jws, err := parseJWS(cert, certAlgs)
	if err != nil {
		return nil, err
	}
	var unverified struct {
		Issuer string `json:"iss"`
	}
	if err := json.Unmarshal(jws.obj.UnsafePayloadWithoutVerification(), &unverified); err != nil {
		return nil, fmt.Errorf("%w: payload: %v", ErrMalformed, err)
	}
	pub, err := v.issuerKey(unverified.Issuer, jws.kid, jws.alg)
	if err != nil {
		return nil, err
	}
	if alg, err := keyAlgorithm(pub); err != nil || alg != jws.alg {
		return nil, fmt.Errorf("%w: %s for a key of type %T", ErrAlgorithm, jws.alg, pub)
	}
	payload, err := jws.obj.Verify(pub)
	if err != nil {
		return nil, ErrSignature
	}
	claims, err := parseClaims(payload, v.LegacyClientKeys)
	if err != nil {
		return nil, err
	}
	if v.RS256Only && claims.PublicKey.Algorithm != AlgorithmRS {
		return nil, fmt.Errorf("%w: the certified key is not an RS key", ErrAlgorithm)
	}
	if err := v.checkTimes(now, claims.IssuedAt, time.Time{}, claims.ExpiresAt); err != nil {
		return nil, err
	}
	if v.Issuer != "" && claims.Issuer != v.Issuer {
		return nil, fmt.Errorf("%w: %q", ErrIssuer, claims.Issuer)
	}
	at := strings.LastIndexByte(claims.Principal, '@')
	if at <= 0 || at == len(claims.Principal)-1 {
		return nil, fmt.Errorf("%w: principal is not an email", ErrMalformed)
	}
	if !v.AnyDomain && claims.Principal[at+1:] != claims.Issuer {
		return nil, fmt.Errorf("%w: principal %q is not in the issuer's domain", ErrIssuer, claims.Principal)
	}
	return &Certificate{Claims: *claims, KeyID: jws.kid, Algorithm: jws.alg}, nil
}

// issuerKey finds the key of a certificate with KeyFunc or in Keys.
func (v *Verifier) issuerKey(iss, kid, alg string) (crypto.PublicKey, error) {
	if v.KeyFunc != nil {
		pub, err := v.KeyFunc(iss, kid, alg)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrUnknownKey, err)
		}
		return pub, nil
	}
	if v.Keys == nil {
		return nil, fmt.Errorf("%w: no keys configured", ErrUnknownKey)
	}
	return v.Keys.lookup(kid)
}

// VerifyAssertion checks a backed assertion "cert~assertion": the
// certificate as VerifyCertificate does, then the assertion's signature with
// the certified key, aud equal to audience (a trailing '/' ignored on
// either), now < exp (and exp <= now + MaxLifetime when set), and iat and
// nbf (when present) <= now + Skew.
func (v *Verifier) VerifyAssertion(backed, audience string) (*Assertion, error) {
	if len(backed) > MaxTokenSize {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrMalformed, MaxTokenSize)
	}
	if strings.Count(backed, "~") != 1 {
		return nil, fmt.Errorf("%w: want exactly one certificate and one assertion", ErrMalformed)
	}
	now := v.now()
	certPart, assertionPart, _ := strings.Cut(backed, "~")
	cert, err := v.verifyCertificate(certPart, now)
	if err != nil {
		return nil, err
	}
	algs := assertionAlgs
	if v.RS256Only {
		algs = rs256Only
	}
	jws, err := parseJWS(assertionPart, algs)
	if err != nil {
		return nil, fmt.Errorf("assertion: %w", err)
	}
	// go-jose knows neither DSA nor RSA keys below 1024 bits: the client's
	// signature is checked by PublicKey.verify.
	h, ok := cert.PublicKey.assertionHash(jws.alg)
	if !ok {
		return nil, fmt.Errorf("%w: %q for a certified %s key", ErrAlgorithm, jws.alg, cert.PublicKey.Algorithm)
	}
	if !cert.PublicKey.verify(h, []byte(jws.signingInput), jws.obj.Signatures[0].Signature) {
		return nil, fmt.Errorf("%w: assertion", ErrSignature)
	}
	var p struct {
		Audience  *string `json:"aud"`
		ExpiresAt *int64  `json:"exp"`
		IssuedAt  *int64  `json:"iat"`
		NotBefore *int64  `json:"nbf"`
	}
	if err := json.Unmarshal(jws.obj.UnsafePayloadWithoutVerification(), &p); err != nil || p.Audience == nil || p.ExpiresAt == nil {
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
	if err := v.checkTimes(now, a.IssuedAt, nbf, a.ExpiresAt); err != nil {
		return nil, fmt.Errorf("assertion: %w", err)
	}
	if v.MaxLifetime > 0 && a.ExpiresAt.Sub(now) > v.MaxLifetime {
		return nil, fmt.Errorf("assertion: %w: exp more than %v ahead", ErrLifetime, v.MaxLifetime)
	}
	return a, nil
}

// checkTimes checks iat and nbf (skipped when zero) against now + Skew, and
// now < exp.
func (v *Verifier) checkTimes(now, iat, nbf, exp time.Time) error {
	latest := now.Add(v.Skew)
	if (!iat.IsZero() && iat.After(latest)) || (!nbf.IsZero() && nbf.After(latest)) {
		return ErrNotYetValid
	}
	if !now.Before(exp) {
		return ErrExpired
	}
	return nil
}

// jws is a compact JWS parsed by go-jose, its signature not checked yet.
type jws struct {
	obj          *jose.JSONWebSignature
	alg, kid     string
	signingInput string
}

// parseJWS parses a compact JWS with go-jose, after refusing what go-jose
// lets through: parts that are not canonical base64url (RFC 4648 3.5: one
// token has exactly one encoding) or empty, and a header with members
// other than a string alg (one of algs) and an optional string kid, such
// as crit, b64, jwk or x5c.
func parseJWS(token string, algs []jose.SignatureAlgorithm) (*jws, error) {
	if len(token) > MaxTokenSize {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrMalformed, MaxTokenSize)
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("%w: not a compact JWS", ErrMalformed)
	}
	var header []byte
	for i, p := range parts {
		b, err := base64.RawURLEncoding.Strict().DecodeString(p)
		if err != nil || len(b) == 0 {
			return nil, fmt.Errorf("%w: part %d is not canonical base64url", ErrMalformed, i+1)
		}
		if i == 0 {
			header = b
		}
	}
	members, err := stringMembers(header)
	ok := err == nil && members["alg"] != ""
	for name, value := range members {
		ok = ok && (name == "alg" || name == "kid") && value != ""
	}
	if !ok {
		return nil, fmt.Errorf("%w: the header must have a string alg, an optional string kid, and nothing else", ErrMalformed)
	}
	alg := members["alg"]
	if !slices.Contains(algs, jose.SignatureAlgorithm(alg)) {
		return nil, fmt.Errorf("%w: %q", ErrAlgorithm, alg)
	}
	obj, err := jose.ParseSignedCompact(token, algs)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return &jws{obj: obj, alg: alg, kid: members["kid"], signingInput: parts[0] + "." + parts[1]}, nil
}
