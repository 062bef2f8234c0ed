package sealing

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
)

const (
	// Version is the format version, the first byte of a sealed value.
	Version = 0x01
	// KeySize is the size of a key-encryption key (AES-256).
	KeySize = 32
	// Overhead is how much longer a sealed value is than its plaintext:
	// version, key id, nonce and tag.
	Overhead = headerSize + tagSize

	keyIDSize  = 4
	nonceSize  = 12
	tagSize    = 16
	headerSize = 1 + keyIDSize + nonceSize
	keyIDLabel = "keyserver sealing key id v1"
	// maxBinding bounds row and column, whose lengths are uint16s in the
	// associated data.
	maxBinding = 0xffff
)

var (
	// ErrFormat: the value is not a sealed value of a known format version
	// (too short, or another version byte), e.g. a clear legacy value.
	ErrFormat = errors.New("sealing: not a sealed value")
	// ErrUnknownKey: the value names a key id that is neither the current
	// nor a retired key of the ring: a KEK file is missing (a retired key
	// removed too early, or the wrong --kek-file).
	ErrUnknownKey = errors.New("sealing: sealed under a key that is not in the key ring")
	// ErrTampered: authentication failed. The value was altered, copied from
	// another row or column, or sealed under another key with the same id.
	ErrTampered = errors.New("sealing: authentication failed (value altered, moved from another row or column, or sealed under another key)")
)

type keyID [keyIDSize]byte

func (id keyID) String() string { return hex.EncodeToString(id[:]) }

func deriveKeyID(key []byte) keyID {
	h := sha256.New()
	h.Write([]byte(keyIDLabel))
	h.Write(key)
	return keyID(h.Sum(nil))
}

// KeyID returns the id of a key-encryption key: 8 lower-case hex digits,
// the first 4 bytes of SHA-256("keyserver sealing key id v1" || key).
func KeyID(key []byte) (string, error) {
	if len(key) != KeySize {
		return "", keySizeError(len(key))
	}
	return deriveKeyID(key).String(), nil
}

func keySizeError(n int) error {
	return fmt.Errorf("sealing: a key-encryption key is %d bytes, not %d", KeySize, n)
}

type ringKey struct {
	id      keyID
	aead    cipher.AEAD
	retired bool
}

// A Ring holds the key-encryption keys: the current key, which seals, and
// retired keys, which only open. It is safe for concurrent use.
type Ring struct {
	current *ringKey
	keys    map[keyID]*ringKey // current and retired
}

// NewRing returns a ring that seals with current and opens values sealed
// under current or any of retired. Every key is KeySize bytes; no two keys
// may have the same id (the same key given twice, or a 2^-32 accident). The
// ring keeps no reference to the slices.
func NewRing(current []byte, retired ...[]byte) (*Ring, error) {
	r := &Ring{keys: make(map[keyID]*ringKey, 1+len(retired))}
	for i, key := range append([][]byte{current}, retired...) {
		if len(key) != KeySize {
			return nil, keySizeError(len(key))
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, fmt.Errorf("sealing: %w", err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("sealing: %w", err)
		}
		k := &ringKey{id: deriveKeyID(key), aead: aead, retired: i > 0}
		if _, dup := r.keys[k.id]; dup {
			return nil, fmt.Errorf("sealing: two keys of the ring have the id %s (the same key given twice?)", k.id)
		}
		r.keys[k.id] = k
		if i == 0 {
			r.current = k
		}
	}
	return r, nil
}

// KeyID returns the id of the current key.
func (r *Ring) KeyID() string { return r.current.id.String() }

// RetiredKeyIDs returns the ids of the retired keys, in no particular order.
func (r *Ring) RetiredKeyIDs() []string {
	var ids []string
	for _, k := range r.keys {
		if k.retired {
			ids = append(ids, k.id.String())
		}
	}
	return ids
}

// Seal encrypts plaintext under the current key with a nonce read from rand
// (crypto/rand.Reader in production), bound to row and column: the value
// opens only with the same row and column. row identifies the row (the
// account's uid, possibly followed by further fixed-width row keys); column
// names the column ("accounts.ka"). Both are 1 to 65535 bytes. The result is
// len(plaintext) + Overhead bytes and shares no memory with the arguments.
func (r *Ring) Seal(rand io.Reader, plaintext, row []byte, column string) ([]byte, error) {
	if err := checkBinding(row, column); err != nil {
		return nil, err
	}
	if rand == nil {
		return nil, errors.New("sealing: no source of randomness")
	}
	k := r.current
	out := make([]byte, headerSize, len(plaintext)+Overhead)
	out[0] = Version
	copy(out[1:], k.id[:])
	nonce := out[1+keyIDSize : headerSize]
	if _, err := io.ReadFull(rand, nonce); err != nil {
		return nil, fmt.Errorf("sealing: reading the nonce: %w", err)
	}
	return k.aead.Seal(out, nonce, plaintext, additionalData(out, row, column)), nil
}

// Open decrypts a value sealed by Seal of any key of the ring with the same
// row and column. Its errors wrap ErrFormat, ErrUnknownKey or ErrTampered
// (or report an invalid row or column); they name the column and nothing
// read from sealed.
func (r *Ring) Open(sealed, row []byte, column string) ([]byte, error) {
	if err := checkBinding(row, column); err != nil {
		return nil, err
	}
	k, err := r.key(sealed)
	if err != nil {
		return nil, fmt.Errorf("%w (column %s)", err, column)
	}
	out := make([]byte, 0, len(sealed)-Overhead)
	out, err = k.aead.Open(out, sealed[1+keyIDSize:headerSize], sealed[headerSize:], additionalData(sealed, row, column))
	if err != nil {
		return nil, fmt.Errorf("%w (column %s)", ErrTampered, column)
	}
	return out, nil
}

// NeedsReseal reports whether sealed is a sealed value under one of the
// ring's retired keys, which Reseal moves to the current key. It is false
// for the current key, an unknown key and anything that is not a sealed
// value (which Open refuses). It does not authenticate the value.
func (r *Ring) NeedsReseal(sealed []byte) bool {
	k, err := r.key(sealed)
	return err == nil && k.retired
}

// Reseal opens sealed (under any key of the ring) and seals its plaintext
// again under the current key with a fresh nonce, for the same row and
// column. It zeroes the intermediate plaintext.
func (r *Ring) Reseal(rand io.Reader, sealed, row []byte, column string) ([]byte, error) {
	plaintext, err := r.Open(sealed, row, column)
	if err != nil {
		return nil, err
	}
	defer clear(plaintext)
	return r.Seal(rand, plaintext, row, column)
}

// IsSealed reports whether b has the form of a value sealed from a
// plaintext of plaintextLen bytes: exactly plaintextLen + Overhead bytes,
// starting with the version byte. For a column of fixed width this tells
// clear values (plaintextLen bytes) from sealed ones by length alone, with
// no false answer; see the package documentation for its limits otherwise.
// It does not authenticate the value.
func IsSealed(b []byte, plaintextLen int) bool {
	return plaintextLen >= 0 && len(b)-Overhead == plaintextLen && b[0] == Version
}

// key returns the ring's key that sealed names.
func (r *Ring) key(sealed []byte) (*ringKey, error) {
	if len(sealed) < Overhead {
		return nil, fmt.Errorf("%w: %d bytes, shorter than the %d bytes of a sealed empty value", ErrFormat, len(sealed), Overhead)
	}
	if sealed[0] != Version {
		// The byte itself is not named: it may be a byte of a clear secret.
		return nil, fmt.Errorf("%w: unknown format version", ErrFormat)
	}
	k := r.keys[keyID(sealed[1:1+keyIDSize])]
	if k == nil {
		return nil, ErrUnknownKey
	}
	return k, nil
}

func checkBinding(row []byte, column string) error {
	if len(row) == 0 || len(row) > maxBinding {
		return fmt.Errorf("sealing: a row id of %d bytes: want 1 to %d", len(row), maxBinding)
	}
	if len(column) == 0 || len(column) > maxBinding {
		return fmt.Errorf("sealing: a column name of %d bytes: want 1 to %d", len(column), maxBinding)
	}
	return nil
}

// additionalData returns version || key id (from header) ||
// uint16(len(row)) || row || uint16(len(column)) || column.
func additionalData(header, row []byte, column string) []byte {
	ad := make([]byte, 0, 1+keyIDSize+2+len(row)+2+len(column))
	ad = append(ad, header[:1+keyIDSize]...)
	ad = binary.BigEndian.AppendUint16(ad, uint16(len(row)))
	ad = append(ad, row...)
	ad = binary.BigEndian.AppendUint16(ad, uint16(len(column)))
	return append(ad, column...)
}
