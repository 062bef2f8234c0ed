package client

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/http"

	"github.com/keyserver/keyserver/keywrap"
	"github.com/keyserver/keyserver/protocol"
	"github.com/keyserver/keyserver/srp"
)

// wireStretching is the passwordStretching object with the protocol's fixed
// numbers, whatever parameters the client really stretches with.
func wireStretching(passwordSalt []byte) protocol.Stretching {
	p := keywrap.DefaultParams()
	return protocol.Stretching{
		Type:          keywrap.StretchType,
		PBKDF2Rounds1: p.PBKDF2Rounds1,
		ScryptN:       p.ScryptN,
		ScryptR:       p.ScryptR,
		ScryptP:       p.ScryptP,
		PBKDF2Rounds2: p.PBKDF2Rounds2,
		Salt:          hex.EncodeToString(passwordSalt),
	}
}

// decodeHex decodes a hex value of the response that must have n bytes.
func decodeHex(name, s string, n int) ([]byte, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != n {
		return nil, fmt.Errorf("%w: %s is not %d bytes of hex", ErrBadResponse, name, n)
	}
	return b, nil
}

// openBundle decodes a hex bundle and opens it (spec 4.2); the plaintext
// must have n bytes.
func openBundle(key []byte, context, bundleHex string, n int) ([]byte, error) {
	b, err := decodeHex(context+" bundle", bundleHex, n+keywrap.MACSize)
	if err != nil {
		return nil, err
	}
	plain, err := keywrap.Unbundle(key, context, b)
	if err != nil {
		return nil, fmt.Errorf("client: %s bundle: %w", context, err)
	}
	return plain, nil
}

// AuthChallenge is the answer of /v1/auth/start for Email.
type AuthChallenge struct {
	Email        string // the email bytes that were accepted
	SRPToken     string // opaque hex id, sent back to auth/finish
	PasswordSalt []byte
	SRPType      string
	SRPSalt      []byte
	B            []byte
}

// SignInOptions are the optional members of /v1/auth/start.
type SignInOptions struct {
	// UnblockCode is the 8-digit code of an unblock mail (spec 14.3),
	// for a sign-in answered 400/125 (IsBlocked).
	UnblockCode string
}

// AuthStart calls /v1/auth/start for email (spec 6.3). It does not retry on
// 120; SignIn does.
func (c *Client) AuthStart(ctx context.Context, email string) (*AuthChallenge, error) {
	return c.AuthStartWith(ctx, email, SignInOptions{})
}

// AuthStartWith is AuthStart with the optional members.
func (c *Client) AuthStartWith(ctx context.Context, email string, o SignInOptions) (*AuthChallenge, error) {
	var resp struct {
		SRPToken           string              `json:"srpToken"`
		PasswordStretching protocol.Stretching `json:"passwordStretching"`
		SRP                protocol.SRP        `json:"srp"`
	}
	req := map[string]string{"email": hex.EncodeToString([]byte(email))}
	if o.UnblockCode != "" {
		req["unblockCode"] = o.UnblockCode
	}
	if err := c.Do(ctx, http.MethodPost, "/v1/auth/start", req, nil, &resp); err != nil {
		return nil, err
	}
	ps := resp.PasswordStretching
	ps.Salt = "" // everything else must be the protocol's numbers
	if ps != wireStretching(nil) {
		return nil, fmt.Errorf("%w: unsupported passwordStretching", ErrBadResponse)
	}
	if resp.SRP.Type != srp.Type {
		return nil, fmt.Errorf("%w: unsupported srp.type %q", ErrBadResponse, resp.SRP.Type)
	}
	ch := &AuthChallenge{Email: email, SRPToken: resp.SRPToken, SRPType: resp.SRP.Type}
	var err error
	if _, err = decodeHex("srpToken", resp.SRPToken, 32); err != nil {
		return nil, err
	}
	if ch.PasswordSalt, err = decodeHex("passwordStretching.salt", resp.PasswordStretching.Salt, 32); err != nil {
		return nil, err
	}
	if ch.SRPSalt, err = decodeHex("srp.salt", resp.SRP.Salt, 32); err != nil {
		return nil, err
	}
	if ch.B, err = decodeHex("srp.B", resp.SRP.B, 256); err != nil {
		return nil, err
	}
	return ch, nil
}

// Auth is the outcome of a successful SRP sign-in.
type Auth struct {
	Email      string // the exact email bytes the server stores (after a 120 retry)
	AuthToken  []byte // authToken seed
	UnwrapBKey []byte
}

// AuthFinish stretches password with the challenge's salt, runs the client
// side of SRP and calls /v1/auth/finish (spec 3, 6.3). A wrong password is an
// *Error with errno protocol.ErrnoIncorrectPassword (103).
func (c *Client) AuthFinish(ctx context.Context, ch *AuthChallenge, password string) (*Auth, error) {
	email := []byte(ch.Email)
	srpPw, unwrapBKey, err := keywrap.StretchWith(c.params, email, []byte(password), ch.PasswordSalt)
	if err != nil {
		return nil, fmt.Errorf("client: stretching: %w", err)
	}
	a, err := c.random(32)
	if err != nil {
		return nil, err
	}
	A, M1, K, err := srp.ClientProof(email, srpPw, ch.SRPSalt, a, ch.B)
	clear(srpPw)
	clear(a)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadResponse, err)
	}
	return c.finish(ctx, ch, A, M1, K, unwrapBKey)
}

// finish sends the proof (A, M1) of challenge ch to /v1/auth/finish and
// opens the authToken seed sealed under K.
func (c *Client) finish(ctx context.Context, ch *AuthChallenge, A, M1, K, unwrapBKey []byte) (*Auth, error) {
	var resp struct {
		Bundle string `json:"bundle"`
	}
	req := map[string]string{"srpToken": ch.SRPToken, "A": hex.EncodeToString(A), "M": hex.EncodeToString(M1)}
	if err := c.Do(ctx, http.MethodPost, "/v1/auth/finish", req, nil, &resp); err != nil {
		return nil, err
	}
	seed, err := openBundle(K, keywrap.ContextAuthFinish, resp.Bundle, keywrap.TokenSize)
	if err != nil {
		return nil, err
	}
	return &Auth{Email: ch.Email, AuthToken: seed, UnwrapBKey: unwrapBKey}, nil
}

// SignIn runs auth/start and auth/finish and returns an authToken. When the
// server answers 400/120 (the email differs in case from the stored one) it
// retries once with the stored email bytes (spec 1.3).
func (c *Client) SignIn(ctx context.Context, email, password string) (*Auth, error) {
	return c.SignInWith(ctx, email, password, SignInOptions{})
}

// SignInWith is SignIn with the optional members of auth/start (an unblock
// code).
func (c *Client) SignInWith(ctx context.Context, email, password string, o SignInOptions) (*Auth, error) {
	ch, err := c.AuthStartWith(ctx, email, o)
	if stored, ok := storedEmail(err); ok {
		ch, err = c.AuthStartWith(ctx, stored, o)
	}
	if err != nil {
		return nil, err
	}
	return c.AuthFinish(ctx, ch, password)
}

// Session is a signed-in session. SessionToken and KeyFetchToken are seeds;
// the keyFetchToken is single use.
type Session struct {
	UID           []byte
	Verified      bool
	Email         string // the exact email bytes used to sign in
	SessionToken  []byte
	KeyFetchToken []byte
	UnwrapBKey    []byte
}

// SessionCreate exchanges an authToken (consumed) for a sessionToken and a
// keyFetchToken (spec 6.3). Email and UnwrapBKey are left empty.
func (c *Client) SessionCreate(ctx context.Context, authToken []byte) (*Session, error) {
	cred := TokenCredentials(protocol.AuthToken, authToken)
	var resp struct {
		UID      string `json:"uid"`
		Verified bool   `json:"verified"`
		Bundle   string `json:"bundle"`
	}
	if err := c.Do(ctx, http.MethodPost, "/v1/session/create", nil, cred, &resp); err != nil {
		return nil, err
	}
	uid, err := decodeHex("uid", resp.UID, 16)
	if err != nil {
		return nil, err
	}
	seeds, err := openBundle(cred.BundleKey, keywrap.ContextSessionCreate, resp.Bundle, 2*keywrap.TokenSize)
	if err != nil {
		return nil, err
	}
	return &Session{UID: uid, Verified: resp.Verified, KeyFetchToken: seeds[:32:32], SessionToken: seeds[32:]}, nil
}

// Login signs in and creates a session (spec 9.1). A sign-in blocked by
// abuse protection is an *Error for which IsBlocked holds (send an unblock
// code, then LoginWith it) or a 429 with RetryAfter.
func (c *Client) Login(ctx context.Context, email, password string) (*Session, error) {
	return c.LoginWith(ctx, email, password, SignInOptions{})
}

// SendUnblockCode asks for an unblock code mailed to email (spec 14.3).
// Like SignIn it retries once with the stored email on 400/120.
func (c *Client) SendUnblockCode(ctx context.Context, email string) error {
	send := func(e string) error {
		return c.Do(ctx, http.MethodPost, "/v1/account/login/send_unblock_code", map[string]string{"email": hex.EncodeToString([]byte(e))}, nil, nil)
	}
	err := send(email)
	if stored, ok := storedEmail(err); ok {
		err = send(stored)
	}
	return err
}

// LoginWith is Login with the optional members of auth/start.
func (c *Client) LoginWith(ctx context.Context, email, password string, o SignInOptions) (*Session, error) {
	auth, err := c.SignInWith(ctx, email, password, o)
	if err != nil {
		return nil, err
	}
	s, err := c.SessionCreate(ctx, auth.AuthToken)
	if err != nil {
		return nil, err
	}
	s.Email, s.UnwrapBKey = auth.Email, auth.UnwrapBKey
	return s, nil
}

// SessionDestroy ends the session of a sessionToken seed.
func (c *Client) SessionDestroy(ctx context.Context, sessionToken []byte) error {
	return c.Do(ctx, http.MethodPost, "/v1/session/destroy", nil, TokenCredentials(protocol.SessionToken, sessionToken), nil)
}

// Keys are the account keys; KB is nil when no unwrapBKey was given.
type Keys struct {
	KA, WrapKb, KB []byte
}

// Keys fetches kA and wrapKb with a keyFetchToken seed (consumed; spec 6.4)
// and, when unwrapBKey is not nil, computes kB = wrapKb XOR unwrapBKey.
func (c *Client) Keys(ctx context.Context, keyFetchToken, unwrapBKey []byte) (*Keys, error) {
	cred := TokenCredentials(protocol.KeyFetchToken, keyFetchToken)
	var resp struct {
		Bundle string `json:"bundle"`
	}
	if err := c.Do(ctx, http.MethodGet, "/v1/account/keys", nil, cred, &resp); err != nil {
		return nil, err
	}
	plain, err := openBundle(cred.BundleKey, keywrap.ContextAccountKeys, resp.Bundle, 64)
	if err != nil {
		return nil, err
	}
	k := &Keys{KA: plain[:32:32], WrapKb: plain[32:]}
	if unwrapBKey != nil {
		if len(unwrapBKey) != len(k.WrapKb) {
			return nil, fmt.Errorf("client: unwrapBKey must be %d bytes", len(k.WrapKb))
		}
		k.KB = keywrap.UnwrapKB(k.WrapKb, unwrapBKey)
	}
	return k, nil
}
