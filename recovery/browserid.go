package recovery

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
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

// verifyBackedAssertion checks a BrowserID backed assertion (spec 8.2)
// with the verifier of package certs: the certificate by a key of the
// issuer named by its iss (picked by kid or, without kid, the only key or
// the browserid document's public-key), RS certified keys and RS256
// assertions only, the assertion's aud the key server's public URL and its
// exp at most 24 h ahead, a 60 s skew on iat and nbf. What is left here is
// the policy: which issuers, and which email domains each may vouch for.
func (v *Verifier) verifyBackedAssertion(ctx context.Context, backed string) (string, time.Time, error) {
	now := v.now()
	bv := certs.Verifier{
		KeyFunc: func(iss, kid, alg string) (crypto.PublicKey, error) {
			e, ok := v.browserID[iss]
			if !ok {
				return nil, errors.New("untrusted issuer")
			}
			return e.keys.lookup(ctx, kid, alg, now)
		},
		AnyDomain:   true,
		RS256Only:   true,
		Skew:        clockSkew,
		MaxLifetime: maxLifetime,
		Now:         func() time.Time { return now },
	}
	a, err := bv.VerifyAssertion(backed, v.audience)
	if err != nil {
		return "", time.Time{}, invalid("backed assertion: %v", err)
	}
	c := a.Certificate
	if !allowedDomain(c.Principal, v.browserID[c.Issuer].domains) {
		return "", time.Time{}, invalid("certificate of %s: principal in a domain the issuer may not vouch for", c.Issuer)
	}
	return c.Principal, a.ExpiresAt, nil
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
		if err != nil || pk.N.BitLen() < minRSABits || !pk.E.IsInt64() || pk.E.Int64() > 1<<31-1 {
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
