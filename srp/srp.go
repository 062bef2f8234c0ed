// Package srp implements the SRP-6a variant of the PICL v1 protocol
// (protocol.md section 3, wire tag "SRP-6a/SHA256/2048/v1"), as computed by
// node-srp 0.2.0.
//
// Group and notation: N is the RFC 5054 Appendix A 2048-bit prime, g = 2,
// H = SHA-256, int(b) is the unsigned big-endian integer of bytes b and
// PAD(n) is n in big-endian left-padded with zero bytes to 256 bytes.
// I is the email bytes, P = srpPw (32 raw bytes from password stretching),
// s the SRP salt bytes as given, a and b the client and server secrets
// (at least 32 bytes; b is the srpToken's bundleKey).
//
//	k  = int(H(PAD(N) || PAD(g)))
//	x  = int(H(s || H(I || ":" || P)))
//	v  = PAD(g^x mod N)                            (verifier)
//	B  = PAD((k*v + g^b) mod N)
//	A  = PAD(g^a mod N)
//	u  = int(H(PAD(A) || PAD(B)))
//	S  = PAD(((B - k*g^x) mod N)^(a + u*x) mod N)  (client)
//	   = PAD(((A * v^u) mod N)^b mod N)            (server)
//	K  = H(PAD(S))                                 (32 bytes, "srpK")
//	M1 = H(PAD(A) || PAD(B) || PAD(S))             (32 bytes, sent as M)
//
// There is no M2: the client authenticates the server through the HMAC of the
// /v1/auth/finish bundle keyed from K. The server sends B before it sees A.
//
// Checks: the server accepts A (and, at account creation and reset, the
// verifier v, Clarification C2) only if it is exactly 256 bytes, int(A) < N
// and A mod N is not 0, 1 or N-1 (Product decision D3, see [ValidatePublic]);
// if B mod N = 0 the server picks another b (C3, [ErrDegenerateB]). The client
// requires B to be 256 bytes with 0 < int(B) < N. Both sides abort if u = 0
// ([ErrZeroU]; on the server the error also wraps [ErrBadPublicValue], since
// only the client's A can cause it). M is compared with M1 in constant time.
// Every exponentiation with a secret exponent uses constant-time fixed-width
// arithmetic (filippo.io/bigmod), not math/big: the server's with b (Product
// decision D4) and the client's with a and with the password-derived x
// (g^x for v and S); S is computed as base^a * (base^u)^x, which equals
// base^(a + u*x) without doing variable-time arithmetic on the secret
// exponent a + u*x. The server's g^b (b of at most 32 bytes) uses a fixed-base
// table of powers of g computed once (681 KiB, fixedbase.go): constant-time
// lookups that read every entry, and bigmod multiplications, about three
// times faster than bigmod's Exp; longer b falls back to Exp.
//
// Deviations from RFC 2945 and RFC 5054 (protocol.md section 12 and 3):
//   - H is SHA-256 instead of SHA-1; P is the stretched srpPw, not the password.
//   - M1 is H(PAD(A) || PAD(B) || PAD(S)), not RFC 2945's
//     H(H(N) xor H(g) || H(I) || s || A || B || K).
//   - K is H(PAD(S)), not RFC 2945's interleaved hash of S.
//   - No M2: the server never proves knowledge of v in SRP terms.
//   - A is also refused when it is 1 or N-1, not only when A mod N = 0.
//   - The 2048-bit group gives about 112-bit security, below the 128 bits of
//     OWASP ASVS 5.0 requirement 11.2.3; changing it needs a protocol v2.
package srp

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"math/big"

	"filippo.io/bigmod"
	onepw "github.com/1Password/srp"
)

// Type is the wire tag of this SRP variant ("srp.type").
const Type = "SRP-6a/SHA256/2048/v1"

// size is the byte length of N, hence of PAD(n) and of A, B, v and S.
const size = 256

// minSecret is the minimum length in bytes of the secret exponents a and b.
const minSecret = 32

var (
	// ErrBadPublicValue reports a value rejected by ValidatePublic (A, or a
	// verifier at account creation or reset), or on the client a bad B.
	ErrBadPublicValue = errors.New("srp: public value out of range")
	// ErrDegenerateB reports B mod N = 0; the caller must choose another b.
	ErrDegenerateB = errors.New("srp: B mod N is zero")
	// ErrProofLength reports a proof M that is not 32 bytes.
	ErrProofLength = errors.New("srp: M is not 32 bytes")
	// ErrBadProof reports a proof M that differs from M1.
	ErrBadProof = errors.New("srp: M does not match M1")
	// ErrZeroU reports u = 0; client and server then abort. The server's
	// error also wraps ErrBadPublicValue.
	ErrZeroU = errors.New("srp: u is zero")
)

// grp holds the group constants in both representations.
var grp = loadGroup()

type group struct {
	N, g, k *big.Int
	mod     *bigmod.Modulus
	gPad    []byte
	kPad    []byte
}

func loadGroup() group {
	src := onepw.KnownGroups[onepw.RFC5054Group2048]
	gr := group{
		N: new(big.Int).Set(src.N()),
		g: new(big.Int).Set(src.Generator()),
	}
	var err error
	if gr.mod, err = bigmod.NewModulus(gr.N.Bytes()); err != nil || gr.mod.Size() != size {
		panic("srp: bad RFC 5054 2048-bit group")
	}
	gr.gPad = pad(gr.g)
	gr.k = new(big.Int).SetBytes(hash(pad(gr.N), gr.gPad))
	gr.kPad = pad(gr.k)
	return gr
}

// pad returns PAD(n) for 0 <= n < 2^2048.
func pad(n *big.Int) []byte {
	return n.FillBytes(make([]byte, size))
}

func hash(parts ...[]byte) []byte {
	h := sha256.New()
	for _, p := range parts {
		h.Write(p)
	}
	return h.Sum(nil)
}

// nat converts a value known to be below N.
func nat(b []byte) *bigmod.Nat {
	n, err := bigmod.NewNat().SetBytes(b, grp.mod)
	if err != nil {
		panic("srp: internal value not below N")
	}
	return n
}

// ValidatePublic applies the server's rule for A (D3) and for verifiers (C2):
// exactly 256 bytes, int(p) < N, and p mod N not in {0, 1, N-1}. The error
// wraps ErrBadPublicValue.
func ValidatePublic(p []byte) error {
	_, err := parsePublic(p)
	return err
}

func parsePublic(p []byte) (*bigmod.Nat, error) {
	if len(p) != size {
		return nil, fmt.Errorf("%w: %d bytes, want %d", ErrBadPublicValue, len(p), size)
	}
	n, err := bigmod.NewNat().SetBytes(p, grp.mod)
	if err != nil {
		return nil, fmt.Errorf("%w: not below N", ErrBadPublicValue)
	}
	if n.IsZero()|n.IsOne()|n.IsMinusOne(grp.mod) == 1 {
		return nil, fmt.Errorf("%w: 0, 1 or N-1", ErrBadPublicValue)
	}
	return n, nil
}

// hashX returns x = H(s || H(I || ":" || P)), the big-endian bytes of the
// exponent x (32 bytes, leading zeros kept).
func hashX(email, srpPw, salt []byte) []byte {
	return hash(salt, hash(email, []byte(":"), srpPw))
}

// scramble returns u = H(PAD(A) || PAD(B)). It is a variable only so that
// tests can force u = 0, which no feasible A and B give.
var scramble = func(A, B []byte) []byte { return hash(A, B) }

// isZero reports whether every byte of b is 0.
func isZero(b []byte) bool {
	var acc byte
	for _, c := range b {
		acc |= c
	}
	return acc == 0
}

// expG returns g^e mod N in constant time for a given len(e).
func expG(e []byte) *bigmod.Nat {
	return bigmod.NewNat().Exp(nat(grp.gPad), e, grp.mod)
}

// Verifier returns v = PAD(g^x mod N) for account creation and reset,
// computed in constant time (x derives from the password).
func Verifier(email, srpPw, salt []byte) []byte {
	return expG(hashX(email, srpPw, salt)).Bytes(grp.mod)
}

// checkSecret rejects secret exponents shorter than 32 bytes.
func checkSecret(name string, e []byte) error {
	if len(e) < minSecret {
		return fmt.Errorf("srp: %s has %d bytes, want at least %d", name, len(e), minSecret)
	}
	return nil
}

// storedVerifier parses the server's stored verifier. Its errors deliberately
// do not wrap ErrBadPublicValue: a bad stored value is a server fault.
func storedVerifier(verifier []byte) (*bigmod.Nat, error) {
	v, err := parsePublic(verifier)
	if err != nil {
		return nil, fmt.Errorf("srp: stored verifier: %v", err)
	}
	return v, nil
}

// ServerB returns B = PAD((k*v + g^b) mod N) for the stored verifier and the
// server secret b (at least 32 bytes). It returns ErrDegenerateB if
// B mod N = 0, in which case the caller must pick another b (C3).
func ServerB(verifier, b []byte) ([]byte, error) {
	return serverB(verifier, b, expGServer)
}

// serverB is ServerB with g^b computed by expGb (expGServer; tests and
// benchmarks also pass the plain expG).
func serverB(verifier, b []byte, expGb func([]byte) *bigmod.Nat) ([]byte, error) {
	v, err := storedVerifier(verifier)
	if err != nil {
		return nil, err
	}
	if err := checkSecret("b", b); err != nil {
		return nil, err
	}
	// Constant time (D4): the fixed-base table lookups (fixedbase.go) or
	// bigmod's Exp for a b longer than 32 bytes, and bigmod's Mul and Add,
	// run in time that depends only on len(b) and the size of N, not on b
	// or v.
	gb := expGb(b)
	B := nat(grp.kPad).Mul(v, grp.mod).Add(gb, grp.mod)
	if B.IsZero() == 1 {
		return nil, ErrDegenerateB
	}
	return B.Bytes(grp.mod), nil
}

// ServerVerify checks the client's A and proof M against the state kept
// since /v1/auth/start (the verifier, the secret b and B = ServerB(verifier,
// b)) and returns K. It validates A first (D3, ErrBadPublicValue), then the
// length of M (ErrProofLength); it refuses u = 0 with an error wrapping both
// ErrBadPublicValue and ErrZeroU, and returns ErrBadProof if M != M1. Any
// other error means the stored state is invalid.
func ServerVerify(verifier, b, B, A, M []byte) (K []byte, err error) {
	An, err := parsePublic(A)
	if err != nil {
		return nil, err
	}
	if len(M) != sha256.Size {
		return nil, ErrProofLength
	}
	S, err := serverS(verifier, b, B, A, An)
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare(M, hash(A, B, S)) != 1 {
		return nil, ErrBadProof
	}
	return hash(S), nil
}

// serverS returns PAD(((A * v^u) mod N)^b mod N); An is A already validated.
func serverS(verifier, b, B, A []byte, An *bigmod.Nat) ([]byte, error) {
	v, err := storedVerifier(verifier)
	if err != nil {
		return nil, err
	}
	if err := checkSecret("b", b); err != nil {
		return nil, err
	}
	if len(B) != size {
		return nil, fmt.Errorf("srp: stored B has %d bytes, want %d", len(B), size)
	}
	u := scramble(A, B)
	if isZero(u) {
		return nil, fmt.Errorf("%w: %w", ErrBadPublicValue, ErrZeroU)
	}
	// Constant time (D4): v^u and the exponentiation with b use bigmod's
	// fixed-width Montgomery arithmetic; only len(b) and len(u) are public.
	base := bigmod.NewNat().Exp(v, u, grp.mod).Mul(An, grp.mod)
	return bigmod.NewNat().Exp(base, b, grp.mod).Bytes(grp.mod), nil
}

// ClientProof runs the client side for the secret a (at least 32 bytes) and
// the server's B: it returns A to send, the proof M1 (sent as M) and K.
// B must be 256 bytes with 0 < int(B) < N (ErrBadPublicValue); u = 0 gives
// ErrZeroU. The exponentiations with a and with the password-derived x run
// in constant time (bigmod), like the server's with b.
func ClientProof(email, srpPw, salt, a, B []byte) (A, M1, K []byte, err error) {
	A, S, err := clientS(email, srpPw, salt, a, B)
	if err != nil {
		return nil, nil, nil, err
	}
	return A, hash(A, B, S), hash(S), nil
}

// clientS returns A and S = PAD(((B - k*g^x) mod N)^(a + u*x) mod N).
func clientS(email, srpPw, salt, a, B []byte) (A, S []byte, err error) {
	if err := checkSecret("a", a); err != nil {
		return nil, nil, err
	}
	if len(B) != size {
		return nil, nil, fmt.Errorf("%w: B has %d bytes, want %d", ErrBadPublicValue, len(B), size)
	}
	Bn, err := bigmod.NewNat().SetBytes(B, grp.mod)
	if err != nil || Bn.IsZero() == 1 {
		return nil, nil, fmt.Errorf("%w: B not in 1..N-1", ErrBadPublicValue)
	}
	A = expG(a).Bytes(grp.mod)
	u := scramble(A, B)
	if isZero(u) {
		return nil, nil, ErrZeroU
	}
	// Constant time: every exponentiation with a or x is bigmod's
	// fixed-width Montgomery Exp, whose time depends only on the exponent's
	// length; u is public.
	x := hashX(email, srpPw, salt)
	kgx := expG(x).Mul(nat(grp.kPad), grp.mod)
	base := Bn.Sub(kgx, grp.mod) // (B - k*g^x) mod N
	// base^(a + u*x) = base^a * (base^u)^x
	Sa := bigmod.NewNat().Exp(base, a, grp.mod)
	Sux := bigmod.NewNat().Exp(bigmod.NewNat().Exp(base, u, grp.mod), x, grp.mod)
	return A, Sa.Mul(Sux, grp.mod).Bytes(grp.mod), nil
}
