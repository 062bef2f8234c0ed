package certs

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"

	"github.com/go-jose/go-jose/v4"
)

// Paths of the placeholder pages named by the browserid document (spec 7.4).
const (
	AuthenticationPath = "/.well-known/browserid/sign_in.html"
	ProvisioningPath   = "/.well-known/browserid/provision.html"
)

// publishedKey is a server public key with its kid and JWS alg.
type publishedKey struct {
	kid string
	alg string
	pub crypto.PublicKey
}

// KeySet is a set of server public keys by kid: the keys a verifier trusts,
// or the keys a server publishes (the first is the current one).
type KeySet struct {
	keys []publishedKey
}

// NewKeySet returns the set of the given server public keys (RSA of
// exactly 2048 bits, spec 7.3, or Ed25519) with their thumbprints as kid.
// The first is the current key; repeated keys are dropped.
func NewKeySet(keys ...crypto.PublicKey) (*KeySet, error) {
	ks := &KeySet{}
	for _, pub := range keys {
		alg, err := serverKeyAlgorithm(pub)
		if err != nil {
			return nil, err
		}
		kid, err := KeyID(pub)
		if err != nil {
			return nil, err
		}
		if ks.key(kid) == nil {
			ks.keys = append(ks.keys, publishedKey{kid, alg, pub})
		}
	}
	if len(ks.keys) == 0 {
		return nil, fmt.Errorf("%w: empty key set", ErrUnsupportedKey)
	}
	return ks, nil
}

// ParseJWKS reads a JWK Set (RFC 7517) of RSA (RS256, at least 2048 bits)
// and Ed25519 (EdDSA) public keys, each with a kid, such as
// /.well-known/jwks.json publishes. It is the verifier's side: RSA keys
// above 2048 bits, which the key server never publishes, verify too.
func ParseJWKS(data []byte) (*KeySet, error) {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("%w: JWK Set: %v", ErrUnsupportedKey, err)
	}
	ks := &KeySet{}
	for _, k := range set.Keys {
		if !k.IsPublic() || k.KeyID == "" || (k.Use != "" && k.Use != "sig") {
			return nil, fmt.Errorf("%w: JWK %q must be a public signing key with a kid", ErrUnsupportedKey, k.KeyID)
		}
		alg, err := keyAlgorithm(k.Key)
		if err != nil {
			return nil, err
		}
		if k.Algorithm != "" && k.Algorithm != alg {
			return nil, fmt.Errorf("%w: JWK %q has alg %q for a %s key", ErrUnsupportedKey, k.KeyID, k.Algorithm, alg)
		}
		if ks.key(k.KeyID) != nil {
			return nil, fmt.Errorf("%w: kid %q repeated", ErrUnsupportedKey, k.KeyID)
		}
		ks.keys = append(ks.keys, publishedKey{k.KeyID, alg, k.Key})
	}
	if len(ks.keys) == 0 {
		return nil, fmt.Errorf("%w: empty key set", ErrUnsupportedKey)
	}
	return ks, nil
}

func (ks *KeySet) key(kid string) *publishedKey {
	for i := range ks.keys {
		if ks.keys[i].kid == kid {
			return &ks.keys[i]
		}
	}
	return nil
}

// lookup returns the key named by a key server certificate's kid: the key
// server's certificates always name their key (spec 7.2).
func (ks *KeySet) lookup(kid string) (crypto.PublicKey, error) {
	if kid == "" {
		return nil, fmt.Errorf("%w: the header names no key (kid)", ErrMalformed)
	}
	k := ks.key(kid)
	if k == nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownKey, kid)
	}
	return k.pub, nil
}

// KeyIDs lists the kids in the set's order.
func (ks *KeySet) KeyIDs() []string {
	ids := make([]string, len(ks.keys))
	for i, k := range ks.keys {
		ids[i] = k.kid
	}
	return ids
}

// jwk is a published JWK, members in the order of vectors.json.
type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv,omitempty"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	Kid string `json:"kid"`
	N   string `json:"n,omitempty"`
	E   string `json:"e,omitempty"`
	X   string `json:"x,omitempty"`
}

// JWKS returns the body of /.well-known/jwks.json (spec 7.4).
func (ks *KeySet) JWKS() ([]byte, error) {
	doc := struct {
		Keys []jwk `json:"keys"`
	}{Keys: []jwk{}}
	b64 := base64.RawURLEncoding.EncodeToString
	for _, k := range ks.keys {
		j := jwk{Alg: k.alg, Use: "sig", Kid: k.kid}
		switch pub := k.pub.(type) {
		case *rsa.PublicKey:
			j.Kty, j.N, j.E = "RSA", b64(pub.N.Bytes()), b64(big.NewInt(int64(pub.E)).Bytes())
		case ed25519.PublicKey:
			j.Kty, j.Crv, j.X = "OKP", "Ed25519", b64(pub)
		}
		doc.Keys = append(doc.Keys, j)
	}
	return marshalCompact(doc)
}

// browserIDKey is a server key in jwcrypto form (spec 7.4).
type browserIDKey struct {
	Algorithm string `json:"algorithm"`
	N         string `json:"n,omitempty"`
	E         string `json:"e,omitempty"`
	Crv       string `json:"crv,omitempty"`
	X         string `json:"x,omitempty"`
	Kid       string `json:"kid,omitempty"`
}

func (k *publishedKey) browserID(withKid bool) browserIDKey {
	var b browserIDKey
	switch pub := k.pub.(type) {
	case *rsa.PublicKey:
		b = browserIDKey{Algorithm: AlgorithmRS, N: pub.N.String(), E: fmt.Sprint(pub.E)}
	case ed25519.PublicKey:
		b = browserIDKey{Algorithm: "ED", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(pub)}
	}
	if withKid {
		b.Kid = k.kid
	}
	return b
}

// BrowserID returns the body of /.well-known/browserid (spec 7.4): the
// current (first) key as public-key, and the keys with their kids. While
// the current key is RSA, keys lists the RSA keys only (C21): Mozilla's
// verifier refuses the whole document for one key it does not know, so
// Ed25519 keys are then published in the JWK Set alone.
func (ks *KeySet) BrowserID() ([]byte, error) {
	if len(ks.keys) == 0 {
		return nil, fmt.Errorf("%w: empty key set", ErrUnsupportedKey)
	}
	doc := struct {
		PublicKey      browserIDKey   `json:"public-key"`
		Authentication string         `json:"authentication"`
		Provisioning   string         `json:"provisioning"`
		Keys           []browserIDKey `json:"keys"`
	}{
		PublicKey:      ks.keys[0].browserID(false),
		Authentication: AuthenticationPath,
		Provisioning:   ProvisioningPath,
	}
	rsaOnly := ks.keys[0].alg == RS256
	for i := range ks.keys {
		if !rsaOnly || ks.keys[i].alg == RS256 {
			doc.Keys = append(doc.Keys, ks.keys[i].browserID(true))
		}
	}
	return marshalCompact(doc)
}
