package keywrap

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
)

// NS is the namespace prefix of every KDF label (spec 1.1).
const NS = "identity.mozilla.com/picl/v1/"

// KW returns NS || name (spec 1.1).
func KW(name string) string { return NS + name }

// KWE returns NS || name || ":" || email (spec 1.1).
func KWE(name, email string) string { return NS + name + ":" + email }

// Bundle contexts of spec 4.2.
const (
	ContextAuthFinish     = "auth/finish"     // key K; authToken seed
	ContextSessionCreate  = "session/create"  // authToken.bundleKey; keyFetchToken seed || sessionToken seed
	ContextPasswordChange = "password/change" // authToken.bundleKey; keyFetchToken seed || accountResetToken seed
	ContextAccountKeys    = "account/keys"    // keyFetchToken.bundleKey; kA || wrapKb
	ContextAccountReset   = "account/reset"   // accountResetToken.bundleKey; wrapKb || verifier
)

// TokenSize is the length of a token seed and of each value DeriveToken returns.
const TokenSize = 32

// MACSize is the length of the HMAC-SHA256 tag that ends every bundle.
const MACSize = sha256.Size

// MaxBundlePlaintext is the largest plaintext a bundle can carry: HKDF-SHA256 yields at
// most 255*32 bytes, of which MACSize are the HMAC key.
const MaxBundlePlaintext = 255*sha256.Size - MACSize

// ErrBadBundle is returned by Unbundle when a bundle is too short, too long or fails the
// HMAC check. It carries no detail on purpose.
var ErrBadBundle = errors.New("keywrap: bad bundle")

// hkdfSHA256 is HKDF-SHA256 with an empty salt and info KW(name).
func hkdfSHA256(ikm []byte, name string, length int) ([]byte, error) {
	return hkdf.Key(sha256.New, ikm, nil, KW(name), length)
}

// DeriveToken derives tokenId || authKey || bundleKey = HKDF(seed, empty salt,
// KW(tokenType), 96) (spec 4.1). Each result is 32 bytes with its own capacity, so
// appending to one never overwrites another.
func DeriveToken(tokenType string, seed []byte) (tokenID, authKey, bundleKey []byte) {
	okm, err := hkdfSHA256(seed, tokenType, 3*TokenSize)
	if err != nil {
		panic("keywrap: DeriveToken: " + err.Error())
	}
	return okm[0:32:32], okm[32:64:64], okm[64:96:96]
}

// bundleKeys returns hmacKey || xorKey for a plaintext of n bytes.
func bundleKeys(key []byte, context string, n int) (hmacKey, xorKey []byte, err error) {
	okm, err := hkdfSHA256(key, context, MACSize+n)
	if err != nil {
		return nil, nil, err
	}
	return okm[:MACSize], okm[MACSize:], nil
}

// Bundle returns ciphertext || HMAC(hmacKey, ciphertext) for plaintext under key and
// context (spec 4.2), as raw bytes; the wire form is its lowercase hex. It panics if
// plaintext is longer than MaxBundlePlaintext.
func Bundle(key []byte, context string, plaintext []byte) []byte {
	if len(plaintext) > MaxBundlePlaintext {
		panic(fmt.Sprintf("keywrap: Bundle: plaintext of %d bytes exceeds %d", len(plaintext), MaxBundlePlaintext))
	}
	hmacKey, xorKey, err := bundleKeys(key, context, len(plaintext))
	if err != nil {
		panic("keywrap: Bundle: " + err.Error())
	}
	out := make([]byte, len(plaintext), len(plaintext)+MACSize)
	subtle.XORBytes(out, plaintext, xorKey)
	mac := hmac.New(sha256.New, hmacKey)
	mac.Write(out)
	return mac.Sum(out)
}

// Unbundle checks the trailing HMAC of bundle (raw bytes, not hex) in constant time and
// returns the plaintext (spec 4.2). Any failure, including a bundle shorter than
// MACSize, returns ErrBadBundle.
func Unbundle(key []byte, context string, bundle []byte) ([]byte, error) {
	n := len(bundle) - MACSize
	if n < 0 || n > MaxBundlePlaintext {
		return nil, ErrBadBundle
	}
	ciphertext, tag := bundle[:n], bundle[n:]
	hmacKey, xorKey, err := bundleKeys(key, context, n)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadBundle, err)
	}
	mac := hmac.New(sha256.New, hmacKey)
	mac.Write(ciphertext)
	if !hmac.Equal(mac.Sum(nil), tag) {
		return nil, ErrBadBundle
	}
	plaintext := make([]byte, n)
	subtle.XORBytes(plaintext, ciphertext, xorKey)
	return plaintext, nil
}

// UnwrapKB returns kB = wrapKb XOR unwrapBKey (spec 2, 4.3). It panics if the lengths
// differ (both are 32 bytes in the protocol; check lengths of untrusted input first).
func UnwrapKB(wrapKb, unwrapBKey []byte) []byte {
	if len(wrapKb) != len(unwrapBKey) {
		panic(fmt.Sprintf("keywrap: UnwrapKB: lengths differ (%d, %d)", len(wrapKb), len(unwrapBKey)))
	}
	kB := make([]byte, len(wrapKb))
	subtle.XORBytes(kB, wrapKb, unwrapBKey)
	return kB
}

// WrapKB returns wrapKb = kB XOR unwrapBKey, the inverse of UnwrapKB (the same XOR), as a
// client computes it to keep kB across a password change (spec 4.3).
func WrapKB(kB, unwrapBKey []byte) []byte { return UnwrapKB(kB, unwrapBKey) }
