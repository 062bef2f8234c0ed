package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"math/big"
	"testing"

	"github.com/keyserver/keyserver/srp"
)

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestProverMatchesSRP checks the prover's shortcut against the spec's
// client (srp.ClientProof with the same a) and the server's verification.
func TestProverMatchesSRP(t *testing.T) {
	a := randomBytes(t, 32)
	c, err := New("http://127.0.0.1:9000", WithRand(bytes.NewReader(a)))
	if err != nil {
		t.Fatal(err)
	}
	email := "Prover@Example.org"
	srpPw, unwrapBKey, pwSalt, srpSalt := randomBytes(t, 32), randomBytes(t, 32), randomBytes(t, 32), randomBytes(t, 32)
	p, err := c.NewProver(email, srpPw, unwrapBKey, pwSalt, srpSalt)
	if err != nil {
		t.Fatal(err)
	}
	v := srp.Verifier([]byte(email), srpPw, srpSalt)
	if !bytes.Equal(p.verifier, v) || !bytes.Equal(p.UnwrapBKey(), unwrapBKey) || p.Email() != email {
		t.Fatal("prover does not hold the account's values")
	}
	for i := 0; i < 8; i++ {
		b := randomBytes(t, 32)
		B, err := srp.ServerB(v, b)
		if err != nil {
			t.Fatal(err)
		}
		A, M1, K, err := p.Proof(B)
		if err != nil {
			t.Fatal(err)
		}
		wantA, wantM1, wantK, err := srp.ClientProof([]byte(email), srpPw, srpSalt, a, B)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(A, wantA) || !bytes.Equal(M1, wantM1) || !bytes.Equal(K, wantK) {
			t.Fatalf("proof %d differs from srp.ClientProof", i)
		}
		serverK, err := srp.ServerVerify(v, b, B, A, M1)
		if err != nil || !bytes.Equal(serverK, K) {
			t.Fatalf("server verification: %v", err)
		}
	}
	N := benchGroup.N.FillBytes(make([]byte, 256))
	for name, B := range map[string][]byte{"short": make([]byte, 255), "zero": make([]byte, 256), "N": N,
		"above N": new(big.Int).Add(benchGroup.N, big.NewInt(1)).FillBytes(make([]byte, 256))} {
		if _, _, _, err := p.Proof(B); !errors.Is(err, srp.ErrBadPublicValue) {
			t.Errorf("B %s: %v, want ErrBadPublicValue", name, err)
		}
	}
}

// TestProverRoundTrip signs in to the real server with accounts made by
// CreateTestAccount and by CreateAccount (stretched once by
// StretchProver), several times with one prover.
func TestProverRoundTrip(t *testing.T) {
	url, _ := newServer(t)
	c := newTestClient(t, url)
	ctx := context.Background()

	p, uid, err := c.CreateTestAccount(ctx, "bench@example.org", CreateOptions{PreVerified: true})
	if err != nil {
		t.Fatal(err)
	}
	var kA []byte
	for i := 0; i < 3; i++ {
		ch, err := c.AuthStart(ctx, p.Email())
		if err != nil {
			t.Fatal(err)
		}
		auth, err := c.AuthFinishWith(ctx, ch, p)
		if err != nil {
			t.Fatal(err)
		}
		s, err := c.SessionCreate(ctx, auth.AuthToken)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(s.UID, uid) || !s.Verified {
			t.Fatalf("session: uid %x verified %v", s.UID, s.Verified)
		}
		keys, err := c.Keys(ctx, s.KeyFetchToken, auth.UnwrapBKey)
		if err != nil {
			t.Fatal(err)
		}
		if kA != nil && !bytes.Equal(keys.KA, kA) {
			t.Fatal("kA changed between sign-ins")
		}
		kA = keys.KA
	}

	const email, password = "stretched@example.org", "a password"
	if _, err := c.CreateAccount(ctx, email, password, CreateOptions{PreVerified: true}); err != nil {
		t.Fatal(err)
	}
	ch, err := c.AuthStart(ctx, email)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := c.StretchProver(ch, password)
	if err != nil {
		t.Fatal(err)
	}
	_, want := loginKeys(t, c, email, password)
	for i := 0; i < 2; i++ {
		if i > 0 {
			if ch, err = c.AuthStart(ctx, email); err != nil {
				t.Fatal(err)
			}
		}
		auth, err := c.AuthFinishWith(ctx, ch, sp)
		if err != nil {
			t.Fatal(err)
		}
		s, err := c.SessionCreate(ctx, auth.AuthToken)
		if err != nil {
			t.Fatal(err)
		}
		keys, err := c.Keys(ctx, s.KeyFetchToken, auth.UnwrapBKey)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(keys.KA, want.KA) || !bytes.Equal(keys.KB, want.KB) {
			t.Fatal("the prover's keys differ from Login's")
		}
	}
	if _, err := c.AuthFinishWith(ctx, ch, p); !errors.Is(err, ErrProverMismatch) {
		t.Fatalf("another account's challenge: %v, want ErrProverMismatch", err)
	}
}

// BenchmarkProverProof is the client's SRP cost per sign-in with a Prover
// (compare BenchmarkClientProof: srp.ClientProof, as AuthFinish does after
// stretching).
func BenchmarkProverProof(b *testing.B) {
	c, _ := New("http://127.0.0.1:9000")
	email, srpPw, salt := "bench@example.org", randomBytes(b, 32), randomBytes(b, 32)
	p, err := c.NewProver(email, srpPw, randomBytes(b, 32), randomBytes(b, 32), salt)
	if err != nil {
		b.Fatal(err)
	}
	B, err := srp.ServerB(p.verifier, randomBytes(b, 32))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("prover", func(b *testing.B) {
		for b.Loop() {
			if _, _, _, err := p.Proof(B); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("srp.ClientProof", func(b *testing.B) {
		a := randomBytes(b, 32)
		for b.Loop() {
			if _, _, _, err := srp.ClientProof([]byte(email), srpPw, salt, a, B); err != nil {
				b.Fatal(err)
			}
		}
	})
}
