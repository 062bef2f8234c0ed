package keywrap

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// Sizes of the recovery key extension (docs/recovery-key.md, RK.1, RK.2).
const (
	RecoveryKeySize   = 32 // R
	RecoveryKeyIDSize = 16 // recoveryKeyId
	RecoveryDataSize  = 60 // recoveryData: nonce (12) || ciphertext (32) || GCM tag (16)
)

const (
	recoveryNonceSize  = 12
	recoveryEncKeySize = 32
	recoveryKBSize     = 32
	recoveryUIDSize    = 16
	// recoveryKeyChars is the length of a recovery key string without
	// spaces: 52 characters of R and 4 zero bits, and the check character.
	recoveryKeyChars = 53
	// recoveryKeyGroups is how FormatRecoveryKey cuts the string.
	recoveryKeyGroups = 13
)

// crockford is the Crockford base32 alphabet of RK.1, value i at index i.
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// The errors of ParseRecoveryKey (RK.1 "Reading"). Their messages are meant
// for the user; they hold no key material, except that the error of
// ErrRecoveryKeyCharacter names the one character that is not in the
// alphabet.
var (
	ErrRecoveryKeyLength    = errors.New("a recovery key has 53 characters")
	ErrRecoveryKeyCharacter = errors.New("not a recovery key character (those are the digits and the letters A to Z without I, L, O and U)")
	ErrRecoveryKeyCheck     = errors.New("this is not the recovery key: a character is mistyped")
)

// ErrRecoveryData is returned by OpenRecoveryData for every failure: a
// recoveryData of the wrong length, or one that does not open with this key
// and uid (wrong key, wrong account, changed bytes). It carries no detail on
// purpose.
var ErrRecoveryData = errors.New("keywrap: recovery data does not open with this recovery key")

// NewRecoveryKey returns a new recovery key R: RecoveryKeySize bytes read from
// rand, which must be a CSPRNG (crypto/rand.Reader).
func NewRecoveryKey(rand io.Reader) ([]byte, error) {
	r := make([]byte, RecoveryKeySize)
	if _, err := io.ReadFull(rand, r); err != nil {
		return nil, fmt.Errorf("keywrap: reading random bytes for a recovery key: %w", err)
	}
	return r, nil
}

// recoveryCheck is the value of the check character of R: the top 5 bits of
// H(R).
func recoveryCheck(r []byte) byte {
	h := sha256.Sum256(r)
	return h[0] >> 3
}

// FormatRecoveryKey returns the recovery key string of R (RK.1): 52
// characters for the 256 bits of R followed by 4 zero bits, 5 bits each, most
// significant first, then the check character; shown as 13 groups separated
// by single spaces, twelve of four characters and a last one of five (65
// bytes in all). It panics if r is not RecoveryKeySize bytes.
func FormatRecoveryKey(r []byte) string {
	if len(r) != RecoveryKeySize {
		panic(fmt.Sprintf("keywrap: FormatRecoveryKey: recovery key of %d bytes, want %d", len(r), RecoveryKeySize))
	}
	var b strings.Builder
	b.Grow(recoveryKeyChars + recoveryKeyGroups - 1)
	n := 0
	emit := func(v byte) {
		if n > 0 && n%4 == 0 && n <= 4*(recoveryKeyGroups-1) { // the last group has five
			b.WriteByte(' ')
		}
		b.WriteByte(crockford[v])
		n++
	}
	// acc holds the bits of r not yet written, the newest in the low bits.
	var acc uint16
	bits := 0
	for _, x := range r {
		acc = acc<<8 | uint16(x)
		bits += 8
		for bits >= 5 {
			bits -= 5
			emit(byte(acc>>bits) & 31)
		}
	}
	// 256 = 51*5 + 1: one bit is left, followed by the 4 zero bits.
	emit(byte(acc<<(5-bits)) & 31)
	emit(recoveryCheck(r))
	return b.String()
}

// normalizeRecoveryKey is step 1 of RK.1 "Reading": s without spaces, tabs
// and hyphens, ASCII lowercase letters made uppercase, O read as 0 and I
// and L as 1.
func normalizeRecoveryKey(s string) []rune {
	chars := make([]rune, 0, recoveryKeyChars)
	for _, c := range s {
		switch {
		case c == ' ' || c == '\t' || c == '-':
			continue
		case c >= 'a' && c <= 'z':
			c -= 'a' - 'A'
		}
		switch c {
		case 'O':
			c = '0'
		case 'I', 'L':
			c = '1'
		}
		chars = append(chars, c)
	}
	return chars
}

// ParseRecoveryKey reads a recovery key string as a user typed it and returns
// R (RK.1 "Reading"): spaces, tabs and hyphens are removed, ASCII lowercase
// letters made uppercase, O read as 0 and I and L as 1. The result must have
// 53 characters (else an error wrapping ErrRecoveryKeyLength, saying how many
// it has), all in the alphabet (else an error wrapping
// ErrRecoveryKeyCharacter that names the first other character and its
// position), and the 4 bits after R must be zero and the check character
// the one of R (else ErrRecoveryKeyCheck).
func ParseRecoveryKey(s string) ([]byte, error) {
	chars := normalizeRecoveryKey(s)
	if len(chars) != recoveryKeyChars {
		return nil, fmt.Errorf("%w, not %d", ErrRecoveryKeyLength, len(chars))
	}
	vals := make([]byte, recoveryKeyChars)
	for i, c := range chars {
		v := -1
		if c < utf8.RuneSelf {
			v = strings.IndexByte(crockford, byte(c))
		}
		if v < 0 {
			return nil, fmt.Errorf("character %d, %q, is %w", i+1, c, ErrRecoveryKeyCharacter)
		}
		vals[i] = byte(v)
	}
	r := make([]byte, 0, RecoveryKeySize)
	var acc uint16
	bits := 0
	for _, v := range vals[:recoveryKeyChars-1] {
		acc = acc<<5 | uint16(v)
		bits += 5
		if bits >= 8 {
			bits -= 8
			r = append(r, byte(acc>>bits))
		}
	}
	// 260 bits: 4 are left over, and they must be zero.
	if bits != 4 || acc&0xf != 0 || recoveryCheck(r) != vals[recoveryKeyChars-1] {
		clear(r)
		return nil, ErrRecoveryKeyCheck
	}
	return r, nil
}

// checkRecoveryKey fails unless r is RecoveryKeySize bytes.
func checkRecoveryKey(r []byte) error {
	if len(r) != RecoveryKeySize {
		return fmt.Errorf("keywrap: recovery key of %d bytes, want %d", len(r), RecoveryKeySize)
	}
	return nil
}

// RecoveryKeyID returns recoveryKeyId = HKDF(R, salt = empty, info =
// KW("recoveryKeyId"), 16) (RK.2), the value the server compares. It panics
// if r is not RecoveryKeySize bytes.
func RecoveryKeyID(r []byte) []byte {
	if err := checkRecoveryKey(r); err != nil {
		panic("keywrap: RecoveryKeyID: " + err.Error())
	}
	id, err := hkdfSHA256(r, "recoveryKeyId", RecoveryKeyIDSize)
	if err != nil {
		panic("keywrap: RecoveryKeyID: " + err.Error())
	}
	return id
}

// recoveryEncKey returns recoveryEncKey = HKDF(R, salt = empty, info =
// KW("recoveryData"), 32) (RK.2).
func recoveryEncKey(r []byte) ([]byte, error) {
	return hkdfSHA256(r, "recoveryData", recoveryEncKeySize)
}

// recoveryAEAD is AES-256-GCM (12-byte nonce, 16-byte tag) under the
// recoveryEncKey of r.
func recoveryAEAD(r []byte) (cipher.AEAD, error) {
	key, err := recoveryEncKey(r)
	if err != nil {
		return nil, err
	}
	defer clear(key)
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// SealRecoveryData returns recoveryData = nonce || AES-256-GCM(recoveryEncKey,
// nonce, plaintext = kB, aad = uid) (RK.2), RecoveryDataSize bytes, with a
// 12-byte nonce read from rand (a CSPRNG). r must be RecoveryKeySize bytes,
// uid 16 and kB 32.
func SealRecoveryData(rand io.Reader, r, uid, kB []byte) ([]byte, error) {
	if err := checkRecoveryKey(r); err != nil {
		return nil, err
	}
	if len(uid) != recoveryUIDSize {
		return nil, fmt.Errorf("keywrap: uid of %d bytes, want %d", len(uid), recoveryUIDSize)
	}
	if len(kB) != recoveryKBSize {
		return nil, fmt.Errorf("keywrap: kB of %d bytes, want %d", len(kB), recoveryKBSize)
	}
	aead, err := recoveryAEAD(r)
	if err != nil {
		return nil, fmt.Errorf("keywrap: recovery data: %w", err)
	}
	out := make([]byte, recoveryNonceSize, RecoveryDataSize)
	if _, err := io.ReadFull(rand, out); err != nil {
		return nil, fmt.Errorf("keywrap: reading the recovery data nonce: %w", err)
	}
	return aead.Seal(out, out, kB, uid), nil
}

// OpenRecoveryData opens a recoveryData made by SealRecoveryData with the
// recovery key r and the account's uid as associated data, and returns kB.
// Every failure (wrong key, wrong uid, altered or mis-sized data, mis-sized
// r or uid) is ErrRecoveryData.
func OpenRecoveryData(r, uid, data []byte) ([]byte, error) {
	if len(r) != RecoveryKeySize || len(uid) != recoveryUIDSize || len(data) != RecoveryDataSize {
		return nil, ErrRecoveryData
	}
	aead, err := recoveryAEAD(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRecoveryData, err)
	}
	kB, err := aead.Open(nil, data[:recoveryNonceSize], data[recoveryNonceSize:], uid)
	if err != nil {
		return nil, ErrRecoveryData
	}
	return kB, nil
}
