package certs

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Server signing algorithms: the JWS alg of certificates (spec 7.3).
const (
	RS256 = "RS256"
	EdDSA = "EdDSA"
)

// serverRSABits is the size of the server's RSA keys, signing or retired
// (spec 7.3, C21). Verifiers accept issuer RSA keys from this size up.
const serverRSABits = 2048

// IssuedAtBackdate is how long before the moment of issue a certificate's
// iat is put (spec 7.2, C21): BrowserID verifiers refuse a certificate
// issued "later than" their clock, so iat pads for clocks that are behind.
const IssuedAtBackdate = 10 * time.Second

// ErrUnsupportedKey is wrapped by rejections of server keys and key files.
var ErrUnsupportedKey = errors.New("certs: unsupported server key")

// GenerateKey makes a server key for alg: a 2048-bit RSA key for RS256 (the
// only size spec 7.3 allows), an Ed25519 key for EdDSA.
func GenerateKey(alg string, random io.Reader) (crypto.Signer, error) {
	switch alg {
	case RS256:
		return rsa.GenerateKey(random, serverRSABits)
	case EdDSA:
		_, priv, err := ed25519.GenerateKey(random)
		return priv, err
	}
	return nil, fmt.Errorf("%w: algorithm %q (want %s or %s)", ErrUnsupportedKey, alg, RS256, EdDSA)
}

// MarshalPrivateKey encodes a server key as a PEM "PRIVATE KEY" block
// (PKCS #8), the key file format of the keyserver command.
func MarshalPrivateKey(key crypto.Signer) ([]byte, error) {
	if _, err := serverKeyAlgorithm(key.Public()); err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnsupportedKey, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParsePrivateKey reads a server key from a PEM block "PRIVATE KEY" (PKCS
// #8, RSA or Ed25519) or "RSA PRIVATE KEY" (PKCS #1). An RSA key must have
// exactly 2048 bits (spec 7.3).
func ParsePrivateKey(data []byte) (crypto.Signer, error) {
	block, err := onePEMBlock(data)
	if err != nil {
		return nil, err
	}
	var key any
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("%w: PEM block %q is not a private key", ErrUnsupportedKey, block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnsupportedKey, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%w: %T", ErrUnsupportedKey, key)
	}
	if _, err := serverKeyAlgorithm(signer.Public()); err != nil {
		return nil, err
	}
	return signer, nil
}

// ParsePublicKeyPEM reads the public half of a server key from a PEM block
// "PUBLIC KEY" (PKIX), or from any private key ParsePrivateKey reads, so
// that a retired key can be published from either file.
func ParsePublicKeyPEM(data []byte) (crypto.PublicKey, error) {
	block, err := onePEMBlock(data)
	if err != nil {
		return nil, err
	}
	if block.Type != "PUBLIC KEY" {
		key, err := ParsePrivateKey(data)
		if err != nil {
			return nil, err
		}
		return key.Public(), nil
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnsupportedKey, err)
	}
	if _, err := serverKeyAlgorithm(pub); err != nil {
		return nil, err
	}
	return pub, nil
}

// onePEMBlock decodes data that holds exactly one PEM block.
func onePEMBlock(data []byte) (*pem.Block, error) {
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%w: no PEM block", ErrUnsupportedKey)
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return nil, fmt.Errorf("%w: data after the PEM block", ErrUnsupportedKey)
	}
	if len(block.Headers) > 0 {
		return nil, fmt.Errorf("%w: encrypted or annotated PEM block", ErrUnsupportedKey)
	}
	return block, nil
}

// keyAlgorithm returns the JWS alg of an issuer public key that verifiers
// accept: RS256 for RSA keys of at least 2048 bits, EdDSA for Ed25519.
func keyAlgorithm(pub crypto.PublicKey) (string, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < serverRSABits {
			return "", fmt.Errorf("%w: RSA key of %d bits (at least %d)", ErrUnsupportedKey, k.N.BitLen(), serverRSABits)
		}
		return RS256, nil
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return "", fmt.Errorf("%w: Ed25519 key of %d bytes", ErrUnsupportedKey, len(k))
		}
		return EdDSA, nil
	}
	return "", fmt.Errorf("%w: %T (want RSA or Ed25519)", ErrUnsupportedKey, pub)
}

// serverKeyAlgorithm is keyAlgorithm for the server's own keys, signing or
// retired: RSA keys of exactly 2048 bits (spec 7.3, C21).
func serverKeyAlgorithm(pub crypto.PublicKey) (string, error) {
	if k, ok := pub.(*rsa.PublicKey); ok && k.N.BitLen() != serverRSABits {
		return "", fmt.Errorf("%w: RSA key of %d bits: the server's RSA keys must be exactly %d bits (spec 7.3: BrowserID verifiers know RS256 only as %d-bit RSA)",
			ErrUnsupportedKey, k.N.BitLen(), serverRSABits, serverRSABits)
	}
	return keyAlgorithm(pub)
}

// KeyID returns the kid of a server public key: its RFC 7638 JWK
// thumbprint, SHA-256, base64url without padding (spec 7.3).
func KeyID(pub crypto.PublicKey) (string, error) {
	if _, err := keyAlgorithm(pub); err != nil {
		return "", err
	}
	jwk := jose.JSONWebKey{Key: pub}
	sum, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrUnsupportedKey, err)
	}
	return base64.RawURLEncoding.EncodeToString(sum), nil
}

// Signer signs certificates with one server key. It is safe for concurrent
// use.
type Signer struct {
	alg string
	kid string
	pub crypto.PublicKey
	jws jose.Signer
}

// NewSigner returns a signer for an RSA (RS256, exactly 2048 bits) or
// Ed25519 (EdDSA) private key. It signs and verifies a probe first, so a
// damaged key is refused here rather than at the first request.
func NewSigner(key crypto.Signer) (*Signer, error) {
	pub := key.Public()
	alg, err := serverKeyAlgorithm(pub)
	if err != nil {
		return nil, err
	}
	kid, err := KeyID(pub)
	if err != nil {
		return nil, err
	}
	// go-jose writes the protected header as {"alg":...,"kid":...} (its
	// members sorted), the exact header of spec 7.2, and signs the payload
	// bytes as given.
	signingKey := key
	if ed, ok := key.(*ed25519.PrivateKey); ok {
		signingKey = *ed
	}
	jws, err := jose.NewSigner(jose.SigningKey{
		Algorithm: jose.SignatureAlgorithm(alg),
		Key:       jose.JSONWebKey{Key: signingKey, KeyID: kid},
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnsupportedKey, err)
	}
	s := &Signer{alg: alg, kid: kid, pub: pub, jws: jws}
	probe, err := s.jws.Sign([]byte(`{"probe":true}`))
	if err != nil {
		return nil, fmt.Errorf("certs: signing: %w", err)
	}
	if _, err := probe.Verify(pub); err != nil {
		return nil, fmt.Errorf("%w: the private and public halves do not match", ErrUnsupportedKey)
	}
	return s, nil
}

// Algorithm returns the JWS alg, RS256 or EdDSA.
func (s *Signer) Algorithm() string { return s.alg }

// KeyID returns the kid of the signing key.
func (s *Signer) KeyID() string { return s.kid }

// Public returns the public half of the signing key.
func (s *Signer) Public() crypto.PublicKey { return s.pub }

// Sign returns the certificate for c (spec 7.2) as a JWS compact
// serialisation. c.IssuedAt is the moment of issue: the certificate's iat
// is IssuedAtBackdate earlier; its exp is c.ExpiresAt.
func (s *Signer) Sign(c *Claims) (string, error) {
	signed := *c
	signed.IssuedAt = c.IssuedAt.Add(-IssuedAtBackdate)
	payload, err := signed.MarshalJSON()
	if err != nil {
		return "", err
	}
	obj, err := s.jws.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("certs: signing: %w", err)
	}
	return obj.CompactSerialize()
}

// ParseAlgorithm maps a case-insensitive name (rs256, eddsa) to RS256 or
// EdDSA.
func ParseAlgorithm(name string) (string, error) {
	for _, alg := range []string{RS256, EdDSA} {
		if strings.EqualFold(name, alg) {
			return alg, nil
		}
	}
	return "", fmt.Errorf("%w: algorithm %q (want rs256 or eddsa)", ErrUnsupportedKey, name)
}
