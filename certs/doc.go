// Package certs signs and verifies the BrowserID identity certificates of the
// PICL key server (../shared/spec/protocol.md section 7, Product decisions
// D11 and D16): the key server signs a client's public key for
// "<uid hex>@<issuer domain>", and storage servers accept the certificate, or
// a backed assertion "cert~assertion", instead of a password.
//
// Exact variant:
//
//   - Client keys are jwcrypto public keys (spec 7.1): RS {"algorithm":"RS",
//     "n","e"} as decimal strings without sign or leading zeros (n odd, 2047
//     to 4096 bits, C21, or from 511 bits with legacy client keys; e odd,
//     3 <= e < n), or DS {"algorithm":"DS","y","p","q","g"} as hex of any
//     length (p 1024 to 3072 bits, q 160 to 256 bits, 1 < g < p, 1 < y < p).
//     [ParsePublicKey] refuses anything else, and any input above
//     [MaxPublicKeySize] bytes before decoding it.
//   - A certificate is a JWS compact serialisation (RFC 7515) of the compact
//     JSON header {"alg":"RS256"|"EdDSA","kid":<kid>} and the compact JSON
//     payload with members in the order public-key (re-serialised
//     canonically: algorithm first, decimal n and e, lower-case hex y, p, q, g
//     without leading zeros), principal {"email"}, iat, exp (milliseconds),
//     iss, picl-generation (milliseconds), picl-deviceId (absent when the
//     session has no device). iat is the moment of issue minus
//     [IssuedAtBackdate] (10 s, C21), exp the moment of issue plus the
//     duration. RS256 is RSASSA-PKCS1-v1_5 with SHA-256 and a server key of
//     exactly 2048 bits (spec 7.3, C21); EdDSA is Ed25519 (RFC 8037).
//   - kid is the RFC 7638 JWK thumbprint (SHA-256, base64url) of the server's
//     public key. Published keys are a JWK Set (RFC 7517) and the browserid
//     document of spec 7.4, which lists RSA keys only while the current key
//     is RSA (C21).
//   - A backed assertion is "cert~assertion" with exactly one certificate.
//     The assertion is a JWS made by the client with the certificate's key,
//     with the header alg of jwcrypto: RS64, RS128 or RS256 for RS keys (all
//     RSASSA-PKCS1-v1_5 with SHA-256), DS128 (SHA-1) or DS256 (SHA-256) for
//     DS keys, whose signature is r || s, each left-padded to the byte length
//     of q. Its payload carries aud and exp (milliseconds), optionally iat and
//     nbf.
//
// Deviations from the RFCs (spec 12): iat and exp are milliseconds, not RFC
// 7519 NumericDate seconds; client keys use the jwcrypto serialisation, not
// JWK; jwcrypto's DSA hashes are not truncated to the size of q (FIPS 186-4
// 4.6), exactly like jwcrypto. The verifier refuses a JWS whose base64url
// parts are not canonical (RFC 4648 3.5), so that one certificate has exactly
// one encoding.
//
// [Verifier] is the project's one BrowserID verifier: storage servers and
// `keyserver certs verify` use it with the key server's published keys,
// package recovery with the keys of email-domain identity providers
// ([KeyFunc]) and the rules of spec 8.2 (RS256Only, MaxLifetime,
// AnyDomain). JWS signing, the parsing of every JWS and the verification
// of certificates use github.com/go-jose/go-jose/v4 (which also computes
// the thumbprints and reads JWK Sets); a check before go-jose refuses
// non-canonical base64url and header members other than alg and kid.
// Client signatures on assertions are verified here with math/big: go-jose
// knows no DSA, and crypto/rsa refuses moduli below 1024 bits (legacy
// client keys have 511) and exponents beyond 32 bits (jwcrypto allows any
// e < n).
//
// The package is pure: no I/O, time comes in as a func() time.Time and
// randomness as an io.Reader. Reading key files and fetching JWK Sets is the
// caller's job.
package certs
