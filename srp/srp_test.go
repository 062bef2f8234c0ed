package srp

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"os"
	"testing"
)

const vectorsPath = "../../shared/spec/vectors.json"

// JSON names differ only in case ("a"/"A", "b"/"B", "k"/"K"), so every
// ambiguous field carries a tag; encoding/json prefers the exact match.
type srpSet struct {
	ID, N, I, P, Salt, X, V, U, S, M1 string
	G                                 int
	KConst                            string `json:"k"`
	KHash                             string `json:"K"`
	SecretA                           string `json:"a"`
	SecretB                           string `json:"b"`
	A                                 string `json:"A"`
	B                                 string `json:"B"`
}

type vectors struct {
	Constants struct {
		SRPGroup struct {
			N string
			G int
			K string `json:"k"`
		} `json:"srp_group"`
	}
	SRP         []srpSet                         `json:"srp"`
	AValidation []struct{ ID, A, Expect string } `json:"srp_A_validation"`
	LoginChain  []struct {
		ID, Email, SrpPw, SrpSalt, Verifier, U, S, M string
		SecretA                                      string `json:"a"`
		SecretB                                      string `json:"b"`
		A                                            string `json:"A"`
		B                                            string `json:"B"`
		KHash                                        string `json:"K"`
	} `json:"login_chain"`
}

// loadVectors reads the spec's vectors and fails if a group is empty.
func loadVectors(tb testing.TB) *vectors {
	tb.Helper()
	data, err := os.ReadFile(vectorsPath)
	if err != nil {
		tb.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(data, &v); err != nil {
		tb.Fatal(err)
	}
	if len(v.SRP) == 0 || len(v.AValidation) == 0 || len(v.LoginChain) == 0 {
		tb.Fatalf("no vectors found: %d srp, %d srp_A_validation, %d login_chain",
			len(v.SRP), len(v.AValidation), len(v.LoginChain))
	}
	return &v
}

func unhex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func checkHex(t *testing.T, name string, got []byte, want string) {
	t.Helper()
	if hex.EncodeToString(got) != want {
		t.Errorf("%s = %x, want %s", name, got, want)
	}
}

func TestGroup(t *testing.T) {
	vec := loadVectors(t)
	c := vec.Constants.SRPGroup
	checkHex(t, "N", pad(grp.N), c.N)
	if grp.g.Cmp(big.NewInt(int64(c.G))) != 0 {
		t.Errorf("g = %v, want %d", grp.g, c.G)
	}
	checkHex(t, "k", grp.k.FillBytes(make([]byte, 32)), c.K)
	checkHex(t, "k (spec text)", grp.k.FillBytes(make([]byte, 32)),
		"05b9e8ef059c6b32ea59fc1d322d37f04aa30bae5aa9003b8321e21ddb04e300")
}

func TestVectors(t *testing.T) {
	for _, s := range loadVectors(t).SRP {
		t.Run(s.ID, func(t *testing.T) {
			if s.N != hex.EncodeToString(pad(grp.N)) || s.G != 2 {
				t.Fatal("vector uses another group")
			}
			checkHex(t, "k", grp.k.FillBytes(make([]byte, 32)), s.KConst)
			email, pw, salt := unhex(t, s.I), unhex(t, s.P), unhex(t, s.Salt)
			a, b := unhex(t, s.SecretA), unhex(t, s.SecretB)
			checkHex(t, "x", hashX(email, pw, salt), s.X)
			v := Verifier(email, pw, salt)
			checkHex(t, "v", v, s.V)
			if err := ValidatePublic(v); err != nil {
				t.Errorf("ValidatePublic(v): %v", err)
			}

			B, err := ServerB(v, b)
			if err != nil {
				t.Fatal(err)
			}
			checkHex(t, "B", B, s.B)

			A, S, err := clientS(email, pw, salt, a, B)
			if err != nil {
				t.Fatal(err)
			}
			checkHex(t, "A", A, s.A)
			checkHex(t, "u", hash(A, B), s.U)
			checkHex(t, "S (client)", S, s.S)
			A2, M1, K, err := ClientProof(email, pw, salt, a, B)
			if err != nil {
				t.Fatal(err)
			}
			checkHex(t, "A (ClientProof)", A2, s.A)
			checkHex(t, "M1 (client)", M1, s.M1)
			checkHex(t, "K (client)", K, s.KHash)

			An, err := parsePublic(A)
			if err != nil {
				t.Fatal(err)
			}
			S, err = serverS(v, b, B, A, An)
			if err != nil {
				t.Fatal(err)
			}
			checkHex(t, "S (server)", S, s.S)
			K, err = ServerVerify(v, b, B, A, unhex(t, s.M1))
			if err != nil {
				t.Fatal(err)
			}
			checkHex(t, "K (server)", K, s.KHash)
		})
	}
}

func TestAValidation(t *testing.T) {
	for _, c := range loadVectors(t).AValidation {
		err := ValidatePublic(unhex(t, c.A))
		switch {
		case c.Expect == "accept" && err != nil:
			t.Errorf("%s: rejected: %v", c.ID, err)
		case c.Expect == "reject" && !errors.Is(err, ErrBadPublicValue):
			t.Errorf("%s: got %v, want ErrBadPublicValue", c.ID, err)
		case c.Expect != "accept" && c.Expect != "reject":
			t.Errorf("%s: unknown expectation %q", c.ID, c.Expect)
		}
	}
}

// TestAValidationServer checks that ServerVerify applies D3 before anything
// else: rejected values give ErrBadPublicValue, accepted ones reach the proof.
func TestAValidationServer(t *testing.T) {
	vec := loadVectors(t)
	s := vec.SRP[0]
	v, b, B := unhex(t, s.V), unhex(t, s.SecretB), unhex(t, s.B)
	for _, c := range vec.AValidation {
		A := unhex(t, c.A)
		_, err := ServerVerify(v, b, B, A, unhex(t, s.M1))
		want := ErrBadPublicValue
		if c.Expect == "accept" {
			want = ErrBadProof
			if bytes.Equal(A, unhex(t, s.A)) {
				want = nil
			}
		}
		if !errors.Is(err, want) {
			t.Errorf("%s: got %v, want %v", c.ID, err, want)
		}
	}
}

func TestLoginChain(t *testing.T) {
	for _, c := range loadVectors(t).LoginChain {
		t.Run(c.ID, func(t *testing.T) {
			email, pw, salt := unhex(t, c.Email), unhex(t, c.SrpPw), unhex(t, c.SrpSalt)
			v := Verifier(email, pw, salt)
			checkHex(t, "verifier", v, c.Verifier)
			b := unhex(t, c.SecretB)
			B, err := ServerB(v, b)
			if err != nil {
				t.Fatal(err)
			}
			checkHex(t, "B", B, c.B)
			a := unhex(t, c.SecretA)
			A, S, err := clientS(email, pw, salt, a, B)
			if err != nil {
				t.Fatal(err)
			}
			checkHex(t, "A", A, c.A)
			checkHex(t, "u", hash(A, B), c.U)
			checkHex(t, "S", S, c.S)
			_, M, K, err := ClientProof(email, pw, salt, a, B)
			if err != nil {
				t.Fatal(err)
			}
			checkHex(t, "M", M, c.M)
			checkHex(t, "K (client)", K, c.KHash)
			K, err = ServerVerify(v, b, B, A, M)
			if err != nil {
				t.Fatal(err)
			}
			checkHex(t, "K (server)", K, c.KHash)
		})
	}
}

func TestTamper(t *testing.T) {
	s := loadVectors(t).SRP[0]
	v, b, B, A, M := unhex(t, s.V), unhex(t, s.SecretB), unhex(t, s.B), unhex(t, s.A), unhex(t, s.M1)
	for i := range len(M) * 8 {
		m := bytes.Clone(M)
		m[i/8] ^= 1 << (i % 8)
		if _, err := ServerVerify(v, b, B, A, m); !errors.Is(err, ErrBadProof) {
			t.Fatalf("M bit %d flipped: got %v, want ErrBadProof", i, err)
		}
	}
	// One bit per byte of A (bit i%8 of byte i) keeps the test fast.
	for i := range A {
		a := bytes.Clone(A)
		a[i] ^= 1 << (i % 8)
		_, err := ServerVerify(v, b, B, a, M)
		if !errors.Is(err, ErrBadProof) && !errors.Is(err, ErrBadPublicValue) {
			t.Fatalf("A byte %d flipped: got %v", i, err)
		}
	}
	for _, m := range [][]byte{nil, M[:31], append(bytes.Clone(M), 0)} {
		if _, err := ServerVerify(v, b, B, A, m); !errors.Is(err, ErrProofLength) {
			t.Errorf("M of %d bytes: got %v, want ErrProofLength", len(m), err)
		}
	}
}

func TestServerErrors(t *testing.T) {
	s := loadVectors(t).SRP[0]
	v, b, B, A, M := unhex(t, s.V), unhex(t, s.SecretB), unhex(t, s.B), unhex(t, s.A), unhex(t, s.M1)
	sentinels := []error{ErrBadPublicValue, ErrDegenerateB, ErrProofLength, ErrBadProof, ErrZeroU}
	nMinus1 := pad(new(big.Int).Sub(grp.N, big.NewInt(1)))
	for name, err := range map[string]error{
		"ServerB short b":         second(ServerB(v, b[:31])),
		"ServerB verifier = 0":    second(ServerB(make([]byte, size), b)),
		"ServerB verifier = N-1":  second(ServerB(nMinus1, b)),
		"ServerVerify 255-byte v": second(ServerVerify(v[1:], b, B, A, M)),
		"ServerVerify short b":    second(ServerVerify(v, b[:31], B, A, M)),
		"ServerVerify short B":    second(ServerVerify(v, b, B[1:], A, M)),
		"ClientProof short a":     errOf(ClientProof(nil, nil, nil, make([]byte, 31), B)),
	} {
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		// Faults in server state must not look like client errors.
		if name[:6] == "Server" {
			for _, e := range sentinels {
				if errors.Is(err, e) {
					t.Errorf("%s: %v wraps sentinel %v", name, err, e)
				}
			}
		}
	}
}

func TestClientBChecks(t *testing.T) {
	s := loadVectors(t).SRP[0]
	email, pw, salt, a := unhex(t, s.I), unhex(t, s.P), unhex(t, s.Salt), unhex(t, s.SecretA)
	one := make([]byte, size)
	one[size-1] = 1
	for name, B := range map[string][]byte{
		"zero":      make([]byte, size),
		"N":         pad(grp.N),
		"255 bytes": unhex(t, s.B)[1:],
		"all ones":  bytes.Repeat([]byte{0xff}, size),
	} {
		if _, _, _, err := ClientProof(email, pw, salt, a, B); !errors.Is(err, ErrBadPublicValue) {
			t.Errorf("B %s: got %v, want ErrBadPublicValue", name, err)
		}
	}
	if _, _, _, err := ClientProof(email, pw, salt, a, one); err != nil {
		t.Errorf("B = 1: %v", err)
	}
}

// TestDegenerateB picks b, then the verifier v = -g^b / k mod N, so that
// k*v + g^b = 0 mod N (C3).
func TestDegenerateB(t *testing.T) {
	b := bytes.Repeat([]byte{0x5a}, 32)
	gb := new(big.Int).Exp(grp.g, new(big.Int).SetBytes(b), grp.N)
	kInv := new(big.Int).ModInverse(grp.k, grp.N)
	v := new(big.Int).Neg(gb)
	v.Mul(v, kInv).Mod(v, grp.N)
	if _, err := ServerB(pad(v), b); !errors.Is(err, ErrDegenerateB) {
		t.Fatalf("got %v, want ErrDegenerateB", err)
	}
}

// TestRoundTrip runs fresh secrets through both sides.
func TestRoundTrip(t *testing.T) {
	for i := range 3 {
		email := []byte(fmt.Sprintf("user%d@example.org", i))
		pw := bytes.Repeat([]byte{byte(i + 1)}, 32)
		salt := bytes.Repeat([]byte{byte(i + 7)}, 32)
		a := bytes.Repeat([]byte{byte(i + 3)}, 32)
		b := bytes.Repeat([]byte{byte(i + 9)}, 32)
		v := Verifier(email, pw, salt)
		B, err := ServerB(v, b)
		if err != nil {
			t.Fatal(err)
		}
		A, M, K, err := ClientProof(email, pw, salt, a, B)
		if err != nil {
			t.Fatal(err)
		}
		K2, err := ServerVerify(v, b, B, A, M)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(K, K2) {
			t.Errorf("round %d: K differs", i)
		}
		// Wrong password: same flow, proof must fail.
		_, M, _, err = ClientProof(email, append(bytes.Clone(pw[1:]), 0), salt, a, B)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ServerVerify(v, b, B, A, M); !errors.Is(err, ErrBadProof) {
			t.Errorf("round %d wrong password: got %v, want ErrBadProof", i, err)
		}
	}
}

// TestZeroU forces u = 0, which no feasible A and B give: the server
// refuses A (ErrBadPublicValue and ErrZeroU), the client aborts (ErrZeroU).
func TestZeroU(t *testing.T) {
	s := loadVectors(t).SRP[0]
	email, pw, salt := unhex(t, s.I), unhex(t, s.P), unhex(t, s.Salt)
	v, a, b, B, A, M := unhex(t, s.V), unhex(t, s.SecretA), unhex(t, s.SecretB), unhex(t, s.B), unhex(t, s.A), unhex(t, s.M1)
	old := scramble
	t.Cleanup(func() { scramble = old })
	scramble = func(_, _ []byte) []byte { return make([]byte, 32) }

	_, err := ServerVerify(v, b, B, A, M)
	if !errors.Is(err, ErrZeroU) || !errors.Is(err, ErrBadPublicValue) {
		t.Errorf("ServerVerify with u = 0: got %v, want ErrZeroU and ErrBadPublicValue", err)
	}
	if _, _, _, err := ClientProof(email, pw, salt, a, B); !errors.Is(err, ErrZeroU) || errors.Is(err, ErrBadPublicValue) {
		t.Errorf("ClientProof with u = 0: got %v, want ErrZeroU", err)
	}

	// u is checked as a whole: one non-zero byte anywhere is a valid u.
	for _, i := range []int{0, 31} {
		scramble = func(_, _ []byte) []byte { u := make([]byte, 32); u[i] = 1; return u }
		if _, err := ServerVerify(v, b, B, A, M); !errors.Is(err, ErrBadProof) {
			t.Errorf("u with byte %d set: got %v, want ErrBadProof (the vector's M is for another u)", i, err)
		}
		if _, _, _, err := ClientProof(email, pw, salt, a, B); err != nil {
			t.Errorf("ClientProof, u with byte %d set: %v", i, err)
		}
	}
}

// TestClientTamperB flips one bit in every fourth byte of B: the client
// either refuses B or computes a proof the server rejects.
func TestClientTamperB(t *testing.T) {
	s := loadVectors(t).SRP[0]
	email, pw, salt := unhex(t, s.I), unhex(t, s.P), unhex(t, s.Salt)
	v, a, b, B := unhex(t, s.V), unhex(t, s.SecretA), unhex(t, s.SecretB), unhex(t, s.B)
	for i := 0; i < len(B); i += 4 {
		tb := bytes.Clone(B)
		tb[i] ^= 1 << (i % 8)
		A, M, _, err := ClientProof(email, pw, salt, a, tb)
		if errors.Is(err, ErrBadPublicValue) {
			continue
		}
		if err != nil {
			t.Fatalf("B byte %d flipped: %v", i, err)
		}
		if hex.EncodeToString(M) == s.M1 {
			t.Fatalf("B byte %d flipped: same M1", i)
		}
		if _, err := ServerVerify(v, b, B, A, M); !errors.Is(err, ErrBadProof) {
			t.Fatalf("B byte %d flipped: server got %v, want ErrBadProof", i, err)
		}
	}
}

// refClient is the client side written plainly with math/big (variable
// time), as a reference for the constant-time code.
func refClient(email, srpPw, salt, a, B []byte) (v, A, S []byte) {
	x := new(big.Int).SetBytes(hashX(email, srpPw, salt))
	v = pad(new(big.Int).Exp(grp.g, x, grp.N))
	ai := new(big.Int).SetBytes(a)
	A = pad(new(big.Int).Exp(grp.g, ai, grp.N))
	u := new(big.Int).SetBytes(hash(A, B))
	kgx := new(big.Int).Exp(grp.g, x, grp.N)
	kgx.Mul(kgx, grp.k)
	base := kgx.Sub(new(big.Int).SetBytes(B), kgx).Mod(kgx, grp.N)
	e := u.Mul(u, x).Add(u, ai)
	return v, A, pad(base.Exp(base, e, grp.N))
}

// TestClientMatchesReference compares Verifier and the client side with the
// math/big reference on pseudo-random inputs: secrets of several lengths
// (leading zero bytes included) and B anywhere in 1..N-1.
func TestClientMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewChaCha8([32]byte{'s', 'r', 'p'}))
	read := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	nMinus1 := pad(new(big.Int).Sub(grp.N, big.NewInt(1)))
	for i := range 24 {
		email, pw, salt := read(1+i), read(32), read(32)
		a := read(32 + i%3*16)
		if i%4 == 1 {
			a[0], a[1] = 0, 0
		}
		var B []byte
		switch i % 6 {
		case 0:
			B = pad(big.NewInt(1))
		case 1:
			B = nMinus1
		default:
			B = pad(new(big.Int).Mod(new(big.Int).SetBytes(read(size)), grp.N))
		}
		wantV, wantA, wantS := refClient(email, pw, salt, a, B)
		if got := Verifier(email, pw, salt); !bytes.Equal(got, wantV) {
			t.Fatalf("case %d: Verifier differs from math/big", i)
		}
		A, S, err := clientS(email, pw, salt, a, B)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if !bytes.Equal(A, wantA) || !bytes.Equal(S, wantS) {
			t.Fatalf("case %d: A or S differs from math/big", i)
		}
	}
}

func second[T any](_ T, err error) error { return err }

func errOf(_, _, _ []byte, err error) error { return err }

func FuzzServerVerify(f *testing.F) {
	vec := loadVectors(f)
	s := vec.SRP[0]
	v, b, B := unhex(f, s.V), unhex(f, s.SecretB), unhex(f, s.B)
	for _, set := range vec.SRP {
		f.Add(unhex(f, set.A), unhex(f, set.M1))
	}
	for _, c := range vec.AValidation {
		f.Add(unhex(f, c.A), unhex(f, s.M1))
	}
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, A, M []byte) {
		K, err := ServerVerify(v, b, B, A, M)
		switch {
		case err == nil:
			if !bytes.Equal(A, unhex(t, s.A)) || len(K) != 32 {
				t.Fatalf("accepted A=%x M=%x", A, M)
			}
		case !errors.Is(err, ErrBadPublicValue) && !errors.Is(err, ErrProofLength) && !errors.Is(err, ErrBadProof):
			t.Fatalf("unexpected error %v", err)
		}
	})
}

func BenchmarkServerB(b *testing.B) {
	s := loadVectors(b).SRP[0]
	v := unhex(b, s.V)
	secret := bytes.Repeat([]byte{0xa5}, 32) // b as in production: a 32-byte bundleKey
	for b.Loop() {
		if _, err := ServerB(v, secret); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkServerVerify(b *testing.B) {
	s := loadVectors(b).SRP[0]
	email, pw, salt, a := unhex(b, s.I), unhex(b, s.P), unhex(b, s.Salt), unhex(b, s.SecretA)
	v := unhex(b, s.V)
	secret := bytes.Repeat([]byte{0xa5}, 32)
	B, err := ServerB(v, secret)
	if err != nil {
		b.Fatal(err)
	}
	A, M, _, err := ClientProof(email, pw, salt, a, B)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := ServerVerify(v, secret, B, A, M); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkClientProof(b *testing.B) {
	s := loadVectors(b).SRP[0]
	email, pw, salt, a, B := unhex(b, s.I), unhex(b, s.P), unhex(b, s.Salt), unhex(b, s.SecretA), unhex(b, s.B)
	for b.Loop() {
		if _, _, _, err := ClientProof(email, pw, salt, a, B); err != nil {
			b.Fatal(err)
		}
	}
}
