// Package sealing protects secrets at rest: the store seals secret columns
// (kA, wrapKb, the SRP verifier, codes, token keys) before it writes them and
// opens them after it reads them, so a copy of the database alone (a backup,
// a replica, a stolen disk, an SQL read) does not reveal them (design.md,
// Storage).
//
// # Keys
//
// A key-encryption key (KEK) is 32 random bytes: an AES-256 key. A [Ring]
// holds one current key, which seals and opens, and any number of retired
// keys, which only open, so values sealed before a rotation stay readable
// until they are resealed ([Ring.NeedsReseal], [Ring.Reseal]).
//
// A key's id is the first 4 bytes of SHA-256("keyserver sealing key id v1"
// || key), written as 8 lower-case hex digits ([KeyID]). It names the key in
// sealed values and in logs; it reveals nothing useful about the key. Two
// keys of one ring must have different ids ([NewRing] refuses a ring where
// they do not, which for distinct random keys happens with probability
// 2^-32 per pair: generate another key).
//
// # Format
//
// A sealed value of an n-byte plaintext is n + [Overhead] (33) bytes:
//
//	offset  length  field
//	0       1       format version, 0x01 ([Version])
//	1       4       key id of the sealing key
//	5       12      nonce: 96 random bits, read from the caller's io.Reader
//	17      n       AES-256-GCM ciphertext
//	17+n    16      GCM tag
//
// AES-256-GCM is the standard library's (crypto/aes, crypto/cipher), with
// its standard 12-byte nonce and 16-byte tag. The associated data binds the
// value to its header and to its place in the database:
//
//	version (1) || key id (4) ||
//	uint16 big-endian len(row) || row || uint16 big-endian len(column) || column
//
// row identifies the row (the account's uid; a table keyed by more than the
// account may append further fixed-width keys, e.g. uid || tokenId) and
// column names the column ("accounts.ka"). Both are length-prefixed, so no
// two (row, column) pairs give the same associated data. A sealed value
// copied to another row or column, a changed header or any flipped bit of
// the nonce, ciphertext or tag fails to open with [ErrTampered] (or
// [ErrFormat], [ErrUnknownKey] for a changed version or key id).
//
// The nonces are random, so one key should seal fewer than 2^32 values
// (NIST SP 800-38D, section 8.3): rotate the KEK well before that (at a few
// sealed values per sign-in, that is hundreds of millions of sign-ins).
//
// # Telling sealed values from clear ones
//
// A sealed value is longer than its plaintext by exactly [Overhead] bytes, so
// for a column of fixed width (the store's secrets are 8, 16, 32 or 256
// bytes: sealed 41, 49, 65 or 289) [IsSealed] tells a clear legacy value from
// a sealed one without error: the length alone decides, and the version byte
// is checked besides. For values of variable length the length cannot
// decide and IsSealed is only a hint: a clear value that happens to be 33
// bytes longer than expected and to start with 0x01 looks sealed. A store
// migrating from clear to sealed values should record the format of each
// row as well and treat IsSealed as a consistency check.
//
// # Errors
//
// Errors wrap [ErrFormat], [ErrUnknownKey] or [ErrTampered]. Their messages
// name the column at most: they never contain plaintext, sealed bytes, keys
// or any byte read from the value (a clear value passed by mistake must not
// end up in a log).
//
// The package is pure: no I/O, no randomness of its own (Seal reads its
// nonce from the io.Reader it is given), no logging. A [Ring] is safe for
// concurrent use. Under GODEBUG=fips140=only the standard library refuses
// GCM with caller-chosen nonces, and NewRing fails.
package sealing
