package certs

import (
	"bytes"
	"crypto"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
)

// Client key algorithms of jwcrypto (spec 7.1).
const (
	AlgorithmRS = "RS"
	AlgorithmDS = "DS"
)

// MaxPublicKeySize bounds the JSON of a client public key. The largest valid
// keys (a 4096-bit RS key with an e as long as n, or a 3072-bit DS key) need
// under 2.6 KB; anything longer is refused before any decoding.
const MaxPublicKeySize = 8 << 10

// Limits of spec 7.1 and D16.
const (
	minRSABits       = 2047 // C21: a "2048-bit" jwcrypto key may be one bit short
	minLegacyRSABits = 511
	maxRSABits       = 4096
	minDSAPBits      = 1024
	maxDSAPBits      = 3072
	minDSAQBits      = 160
	maxDSAQBits      = 256
)

// ErrInvalidKey is wrapped by every rejection of a client public key.
var ErrInvalidKey = errors.New("certs: invalid public key")

// PublicKey is a client's jwcrypto public key: N and E for AlgorithmRS, Y,
// P, Q and G for AlgorithmDS. Its JSON encoding is the canonical jwcrypto
// serialisation of spec 7.2.
type PublicKey struct {
	Algorithm  string
	N, E       *big.Int
	Y, P, Q, G *big.Int
}

// ParsePublicKey parses and checks a client public key (spec 7.1). legacy
// lowers the minimum RSA modulus from 2047 (C21) to 511 bits (D16). Every
// rejection wraps ErrInvalidKey.
func ParsePublicKey(data []byte, legacy bool) (*PublicKey, error) {
	if len(data) > MaxPublicKeySize {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrInvalidKey, MaxPublicKeySize)
	}
	members, err := stringMembers(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidKey, err)
	}
	k := &PublicKey{Algorithm: members["algorithm"]}
	switch k.Algorithm {
	case AlgorithmRS:
		err = k.parseRS(members, legacy)
	case AlgorithmDS:
		err = k.parseDS(members)
	default:
		err = errors.New("algorithm must be RS or DS")
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidKey, err)
	}
	return k, nil
}

// stringMembers decodes a JSON object whose members are all strings, with no
// name repeated and nothing after it.
func stringMembers(data []byte) (map[string]string, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, errors.New("not a JSON object")
	}
	members := map[string]string{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, errors.New("malformed JSON")
		}
		name := t.(string)
		v, err := dec.Token()
		s, ok := v.(string)
		if err != nil || !ok {
			return nil, fmt.Errorf("member %q is not a string", name)
		}
		if _, dup := members[name]; dup {
			return nil, fmt.Errorf("member %q repeated", name)
		}
		members[name] = s
	}
	if _, err := dec.Token(); err != nil {
		return nil, errors.New("malformed JSON")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the object")
	}
	return members, nil
}

// onlyMembers checks that members has exactly the names given.
func onlyMembers(members map[string]string, names ...string) error {
	for _, n := range names {
		if _, ok := members[n]; !ok {
			return fmt.Errorf("missing %q", n)
		}
	}
	if len(members) != len(names) {
		return errors.New("unknown member")
	}
	return nil
}

func (k *PublicKey) parseRS(members map[string]string, legacy bool) error {
	if err := onlyMembers(members, "algorithm", "n", "e"); err != nil {
		return err
	}
	var ok bool
	if k.N, ok = parseDecimal(members["n"]); !ok {
		return errors.New("n is not a canonical decimal")
	}
	if k.E, ok = parseDecimal(members["e"]); !ok {
		return errors.New("e is not a canonical decimal")
	}
	minBits := minRSABits
	if legacy {
		minBits = minLegacyRSABits
	}
	if bits := k.N.BitLen(); bits < minBits || bits > maxRSABits {
		return fmt.Errorf("n has %d bits, not %d to %d", bits, minBits, maxRSABits)
	}
	if k.N.Bit(0) == 0 {
		return errors.New("n is even")
	}
	if k.E.Bit(0) == 0 || k.E.Cmp(big.NewInt(3)) < 0 || k.E.Cmp(k.N) >= 0 {
		return errors.New("e must be odd with 3 <= e < n")
	}
	return nil
}

func (k *PublicKey) parseDS(members map[string]string) error {
	if err := onlyMembers(members, "algorithm", "y", "p", "q", "g"); err != nil {
		return err
	}
	for _, m := range []struct {
		name string
		v    **big.Int
	}{{"y", &k.Y}, {"p", &k.P}, {"q", &k.Q}, {"g", &k.G}} {
		var ok bool
		if *m.v, ok = parseHex(members[m.name]); !ok {
			return fmt.Errorf("%s is not hex", m.name)
		}
	}
	if bits := k.P.BitLen(); bits < minDSAPBits || bits > maxDSAPBits {
		return fmt.Errorf("p has %d bits, not %d to %d", bits, minDSAPBits, maxDSAPBits)
	}
	if bits := k.Q.BitLen(); bits < minDSAQBits || bits > maxDSAQBits {
		return fmt.Errorf("q has %d bits, not %d to %d", bits, minDSAQBits, maxDSAQBits)
	}
	one := big.NewInt(1)
	if k.G.Cmp(one) <= 0 || k.G.Cmp(k.P) >= 0 {
		return errors.New("g must be in (1, p)")
	}
	if k.Y.Cmp(one) <= 0 || k.Y.Cmp(k.P) >= 0 {
		return errors.New("y must be in (1, p)")
	}
	return nil
}

// parseDecimal accepts decimal digits without sign or leading zeros.
func parseDecimal(s string) (*big.Int, bool) {
	if s == "" || s[0] == '0' {
		return nil, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return nil, false
		}
	}
	return new(big.Int).SetString(s, 10)
}

// parseHex accepts hex digits of either case, any non-zero length.
func parseHex(s string) (*big.Int, bool) {
	if s == "" {
		return nil, false
	}
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20 // lower case for letters
		if (s[i] < '0' || s[i] > '9') && (c < 'a' || c > 'f') {
			return nil, false
		}
	}
	return new(big.Int).SetString(s, 16)
}

// MarshalJSON writes the canonical jwcrypto serialisation (spec 7.2).
func (k *PublicKey) MarshalJSON() ([]byte, error) {
	switch k.Algorithm {
	case AlgorithmRS:
		return marshalCompact(struct {
			Algorithm string `json:"algorithm"`
			N         string `json:"n"`
			E         string `json:"e"`
		}{k.Algorithm, k.N.String(), k.E.String()})
	case AlgorithmDS:
		return marshalCompact(struct {
			Algorithm string `json:"algorithm"`
			Y         string `json:"y"`
			P         string `json:"p"`
			Q         string `json:"q"`
			G         string `json:"g"`
		}{k.Algorithm, k.Y.Text(16), k.P.Text(16), k.Q.Text(16), k.G.Text(16)})
	}
	return nil, fmt.Errorf("%w: algorithm %q", ErrInvalidKey, k.Algorithm)
}

// marshalCompact is json.Marshal without HTML escaping, as JSON.stringify
// writes it.
func marshalCompact(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// assertionHash returns the hash jwcrypto uses with this key for the JWS alg
// of an assertion header, or false when alg does not belong to the key.
func (k *PublicKey) assertionHash(alg string) (crypto.Hash, bool) {
	switch {
	case k.Algorithm == AlgorithmRS && (alg == "RS64" || alg == "RS128" || alg == "RS256"):
		return crypto.SHA256, true
	case k.Algorithm == AlgorithmDS && alg == "DS128":
		return crypto.SHA1, true
	case k.Algorithm == AlgorithmDS && alg == "DS256":
		return crypto.SHA256, true
	}
	return 0, false
}

// verify checks a client signature on msg made with hash h.
func (k *PublicKey) verify(h crypto.Hash, msg, sig []byte) bool {
	var digest []byte
	switch h {
	case crypto.SHA1:
		d := sha1.Sum(msg)
		digest = d[:]
	case crypto.SHA256:
		d := sha256.Sum256(msg)
		digest = d[:]
	default:
		return false
	}
	if k.Algorithm == AlgorithmRS {
		return k.verifyRS(h, digest, sig)
	}
	return k.verifyDS(digest, sig)
}

// sha256DigestInfo is the DER prefix of a SHA-256 DigestInfo (RFC 8017 9.2).
var sha256DigestInfo = []byte{0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20}

// verifyRS is RSASSA-PKCS1-v1_5 verification (RFC 8017 8.2.2): s^e mod n is
// compared with the whole expected encoding, so nothing is parsed. A
// signature shorter than n is accepted: old jwcrypto versions dropped its
// leading zero bytes.
func (k *PublicKey) verifyRS(h crypto.Hash, digest, sig []byte) bool {
	size := (k.N.BitLen() + 7) / 8
	tLen := len(sha256DigestInfo) + len(digest)
	if h != crypto.SHA256 || len(sig) == 0 || len(sig) > size || size < tLen+11 {
		return false
	}
	s := new(big.Int).SetBytes(sig)
	if s.Cmp(k.N) >= 0 {
		return false
	}
	em := new(big.Int).Exp(s, k.E, k.N).FillBytes(make([]byte, size))
	want := make([]byte, size)
	want[1] = 0x01
	for i := 2; i < size-tLen-1; i++ {
		want[i] = 0xff
	}
	copy(want[size-tLen:], sha256DigestInfo)
	copy(want[size-len(digest):], digest)
	return bytes.Equal(em, want)
}

// verifyDS is DSA verification (FIPS 186-4 4.7) of r || s, with the digest
// used whole as jwcrypto does.
func (k *PublicKey) verifyDS(digest, sig []byte) bool {
	qLen := (k.Q.BitLen() + 7) / 8
	if len(sig) != 2*qLen {
		return false
	}
	r := new(big.Int).SetBytes(sig[:qLen])
	s := new(big.Int).SetBytes(sig[qLen:])
	if r.Sign() <= 0 || r.Cmp(k.Q) >= 0 || s.Sign() <= 0 || s.Cmp(k.Q) >= 0 {
		return false
	}
	w := new(big.Int).ModInverse(s, k.Q)
	if w == nil {
		return false
	}
	z := new(big.Int).SetBytes(digest)
	u1 := new(big.Int).Mul(z, w)
	u1.Mod(u1, k.Q)
	u2 := new(big.Int).Mul(r, w)
	u2.Mod(u2, k.Q)
	v := new(big.Int).Exp(k.G, u1, k.P)
	v.Mul(v, new(big.Int).Exp(k.Y, u2, k.P))
	v.Mod(v, k.P).Mod(v, k.Q)
	return v.Cmp(r) == 0
}
