package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net/http"

	"filippo.io/bigmod"
	onepw "github.com/1Password/srp"

	"github.com/keyserver/keyserver/keywrap"
	"github.com/keyserver/keyserver/protocol"
	"github.com/keyserver/keyserver/srp"
)

// This file is the cheap client side of sign-in for load drivers (keyserver
// bench): the password is stretched at most once per account, and the SRP
// arithmetic is precomputed as far as it can be. What goes over the wire is
// exactly what CreateAccount and AuthFinish send.

// ErrProverMismatch is returned by AuthFinishWith when the challenge's email
// or salts are not the ones the Prover was made for (the password was
// changed or reset since).
var ErrProverMismatch = errors.New("client: the challenge does not match the prover's account (password changed?)")

// benchGroup is the SRP group of package srp (RFC 5054, 2048 bits, g = 2)
// with k = H(PAD(N) || PAD(g)), in math/big and bigmod form.
var benchGroup = func() (g struct {
	N, k *big.Int
	mod  *bigmod.Modulus
	gPad []byte
}) {
	src := onepw.KnownGroups[onepw.RFC5054Group2048]
	g.N = new(big.Int).Set(src.N())
	g.gPad = new(big.Int).Set(src.Generator()).FillBytes(make([]byte, 256))
	h := sha256.Sum256(append(g.N.FillBytes(make([]byte, 256)), g.gPad...))
	g.k = new(big.Int).SetBytes(h[:])
	var err error
	if g.mod, err = bigmod.NewModulus(g.N.Bytes()); err != nil {
		panic("client: bad SRP group")
	}
	return g
}()

// Prover signs in to one account many times, for load drivers. It holds the
// account's stretched password (as x = H(s || H(I || ":" || srpPw)) and
// k*v), its unwrapBKey, and one SRP secret a, with A = g^a, that every proof
// reuses. A proof then costs one 2048-bit exponentiation,
// ((B - k*v) mod N)^(a + u*x), instead of password stretching (about 200 ms
// and 64 MiB) and the five exponentiations of AuthFinish.
//
// Reusing a lets an observer link the sign-ins of one account, and the
// arithmetic is not all constant time: use a Prover for test accounts on
// test servers only. It is safe for concurrent use.
type Prover struct {
	email        string
	passwordSalt []byte
	srpSalt      []byte
	unwrapBKey   []byte
	verifier     []byte
	x            *big.Int
	a            *big.Int
	A            []byte // PAD(g^a mod N)
	kv           *big.Int
}

// NewProver returns the Prover of the account with this exact email, whose
// password stretches (keywrap.Stretch with passwordSalt) to srpPw and
// unwrapBKey, and whose SRP salt is srpSalt. Its secret a comes from the
// client's random source.
func (c *Client) NewProver(email string, srpPw, unwrapBKey, passwordSalt, srpSalt []byte) (*Prover, error) {
	a, err := c.random(32)
	if err != nil {
		return nil, err
	}
	p := &Prover{
		email:        email,
		passwordSalt: bytes.Clone(passwordSalt),
		srpSalt:      bytes.Clone(srpSalt),
		unwrapBKey:   bytes.Clone(unwrapBKey),
		verifier:     srp.Verifier([]byte(email), srpPw, srpSalt),
		a:            new(big.Int).SetBytes(a),
	}
	inner := sha256.Sum256(append([]byte(email+":"), srpPw...))
	x := sha256.Sum256(append(bytes.Clone(srpSalt), inner[:]...))
	p.x = new(big.Int).SetBytes(x[:])
	v := new(big.Int).SetBytes(p.verifier)
	p.kv = v.Mul(v, benchGroup.k).Mod(v, benchGroup.N)
	gn, err := bigmod.NewNat().SetBytes(benchGroup.gPad, benchGroup.mod)
	if err != nil {
		return nil, fmt.Errorf("client: SRP group: %w", err)
	}
	p.A = bigmod.NewNat().Exp(gn, a, benchGroup.mod).Bytes(benchGroup.mod)
	clear(a)
	return p, nil
}

// StretchProver stretches password once, with the salt of the challenge
// ch (from AuthStart of the account) and the client's stretching
// parameters, and returns the account's Prover.
func (c *Client) StretchProver(ch *AuthChallenge, password string) (*Prover, error) {
	srpPw, unwrapBKey, err := keywrap.StretchWith(c.params, []byte(ch.Email), []byte(password), ch.PasswordSalt)
	if err != nil {
		return nil, fmt.Errorf("client: stretching: %w", err)
	}
	defer clear(srpPw)
	return c.NewProver(ch.Email, srpPw, unwrapBKey, ch.PasswordSalt, ch.SRPSalt)
}

// Email returns the account's exact email.
func (p *Prover) Email() string { return p.email }

// UnwrapBKey returns the account's unwrapBKey (kB = wrapKb XOR unwrapBKey).
func (p *Prover) UnwrapBKey() []byte { return bytes.Clone(p.unwrapBKey) }

// Matches reports whether the challenge is for the prover's account with
// the salts it was made for.
func (p *Prover) Matches(ch *AuthChallenge) bool {
	return ch.Email == p.email && bytes.Equal(ch.PasswordSalt, p.passwordSalt) && bytes.Equal(ch.SRPSalt, p.srpSalt)
}

// Proof returns A, the proof M1 and K for the server's B, as
// srp.ClientProof would with the prover's a.
func (p *Prover) Proof(B []byte) (A, M1, K []byte, err error) {
	if len(B) != 256 {
		return nil, nil, nil, fmt.Errorf("%w: B has %d bytes, want 256", srp.ErrBadPublicValue, len(B))
	}
	Bi := new(big.Int).SetBytes(B)
	if Bi.Sign() == 0 || Bi.Cmp(benchGroup.N) >= 0 {
		return nil, nil, nil, fmt.Errorf("%w: B not in 1..N-1", srp.ErrBadPublicValue)
	}
	u := sha256.Sum256(append(bytes.Clone(p.A), B...))
	ui := new(big.Int).SetBytes(u[:])
	if ui.Sign() == 0 {
		return nil, nil, nil, srp.ErrZeroU
	}
	base := Bi.Sub(Bi, p.kv)
	base.Mod(base, benchGroup.N)
	e := ui.Mul(ui, p.x)
	e.Add(e, p.a)
	bn, err := bigmod.NewNat().SetBytes(base.FillBytes(make([]byte, 256)), benchGroup.mod)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("client: SRP base: %w", err)
	}
	S := bigmod.NewNat().Exp(bn, e.Bytes(), benchGroup.mod).Bytes(benchGroup.mod)
	m := sha256.New()
	m.Write(p.A)
	m.Write(B)
	m.Write(S)
	k := sha256.Sum256(S)
	return bytes.Clone(p.A), m.Sum(nil), k[:], nil
}

// AuthFinishWith is AuthFinish with the prover's precomputed values: no
// stretching, one exponentiation. The challenge must match the prover
// (ErrProverMismatch otherwise). Auth.UnwrapBKey is the prover's.
func (c *Client) AuthFinishWith(ctx context.Context, ch *AuthChallenge, p *Prover) (*Auth, error) {
	if !p.Matches(ch) {
		return nil, ErrProverMismatch
	}
	A, M1, K, err := p.Proof(ch.B)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadResponse, err)
	}
	return c.finish(ctx, ch, A, M1, K, p.UnwrapBKey())
}

// CreateTestAccount creates an account (spec 6.3) whose srpPw and
// unwrapBKey are random bytes instead of the stretching of a password, and
// returns its Prover and uid. The request is the one CreateAccount sends,
// the server cannot tell the difference, but the account has no password:
// only the Prover signs in to it. Meant for load tests against servers in
// development mode (with opt.PreVerified).
func (c *Client) CreateTestAccount(ctx context.Context, email string, opt CreateOptions) (*Prover, []byte, error) {
	r, err := c.random(4 * 32)
	if err != nil {
		return nil, nil, err
	}
	passwordSalt, srpSalt, srpPw, unwrapBKey := r[0:32:32], r[32:64:64], r[64:96:96], r[96:]
	p, err := c.NewProver(email, srpPw, unwrapBKey, passwordSalt, srpSalt)
	clear(srpPw)
	if err != nil {
		return nil, nil, err
	}
	req := struct {
		Email              string              `json:"email"`
		SRP                protocol.SRP        `json:"srp"`
		PasswordStretching protocol.Stretching `json:"passwordStretching"`
		Service            string              `json:"service,omitempty"`
		PreVerified        bool                `json:"preVerified,omitempty"`
	}{
		Email:              hex.EncodeToString([]byte(email)),
		SRP:                protocol.SRP{Type: srp.Type, Verifier: hex.EncodeToString(p.verifier), Salt: hex.EncodeToString(srpSalt)},
		PasswordStretching: wireStretching(passwordSalt),
		Service:            opt.Service,
		PreVerified:        opt.PreVerified,
	}
	var resp struct {
		UID string `json:"uid"`
	}
	if err := c.Do(ctx, http.MethodPost, "/v1/account/create", req, nil, &resp); err != nil {
		return nil, nil, err
	}
	uid, err := decodeHex("uid", resp.UID, 16)
	if err != nil {
		return nil, nil, err
	}
	return p, uid, nil
}

// StoredEmail returns the email bytes the server stores when err is its
// 400/120 answer (the email differs in case), as SignIn uses them.
func StoredEmail(err error) (string, bool) { return storedEmail(err) }
