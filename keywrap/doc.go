// Package keywrap implements the symmetric key handling of PICL v1 as specified in
// protocol.md (shared/spec):
//
//   - section 2, client-side password stretching: PBKDF2-HMAC-SHA256 (20000 rounds) →
//     scrypt (N = 65536, r = 8, p = 1) → PBKDF2-HMAC-SHA256 over K2 || password
//     (20000 rounds) → HKDF-SHA256 with salt passwordSalt and info KW("mainKDF"),
//     giving srpPw || unwrapBKey ([Stretch], [StretchWith]);
//   - section 4.1, token derivation: tokenId || authKey || bundleKey =
//     HKDF(seed, salt = empty, info = KW(tokenType), 96) ([DeriveToken]);
//   - section 4.2, bundles: hmacKey || xorKey = HKDF(key, salt = empty,
//     info = KW(context), 32 + len(plaintext)); bundle = ciphertext ||
//     HMAC-SHA256(hmacKey, ciphertext) with ciphertext = plaintext XOR xorKey
//     ([Bundle], [Unbundle]);
//   - section 4.3, class-B keys: kB = wrapKb XOR unwrapBKey ([UnwrapKB], [WrapKB]).
//
// It also implements the client side of the recovery-key extension, docs/recovery-key.md
// (RK.1, RK.2): a recovery key R is 32 random bytes, written for people as 53 Crockford
// base32 characters whose last is a check character, the top 5 bits of H(R)
// ([FormatRecoveryKey], [ParseRecoveryKey]); recoveryKeyId = HKDF(R, salt = empty,
// info = KW("recoveryKeyId"), 16) ([RecoveryKeyID]); recoveryData = nonce (12) ||
// AES-256-GCM(HKDF(R, salt = empty, info = KW("recoveryData"), 32), nonce, kB, aad = uid)
// ([SealRecoveryData], [OpenRecoveryData]). Its vectors are
// testdata/recovery-key-vectors.json, made by docs/recovery_key_vectors.py.
//
// All HKDF uses are RFC 5869 HKDF-SHA256; "empty salt" is the RFC's absent salt (32 zero
// bytes). Bundles are XOR + HMAC (encrypt-then-MAC), not an AEAD: this is the historic
// protocol, kept on purpose. The stretching parameters (scrypt N = 2^16, 20000-round
// PBKDF2 legs) are fixed by the protocol even though they are below current OWASP
// guidance (spec section 12).
//
// The package is pure: no I/O, no randomness of its own, no logging. Functions without
// an error result panic only on programmer errors documented on each function (or when
// the Go runtime forbids the primitives, e.g. GODEBUG=fips140=only).
package keywrap
