package client

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"

	"github.com/keyserver/keyserver/keywrap"
	"github.com/keyserver/keyserver/protocol"
	"github.com/keyserver/keyserver/srp"
)

// CreateOptions are the optional members of /v1/account/create.
type CreateOptions struct {
	// PreVerified creates a verified account; only a server in
	// development/test mode accepts it (spec 6.3, D7).
	PreVerified bool
	// Service is copied into the verification link (1 to 16 letters/digits).
	Service string
}

// credentials are what create and reset send for a new password.
type credentials struct {
	stretching protocol.Stretching
	srpSalt    []byte
	verifier   []byte
	unwrapBKey []byte
}

// newCredentials picks fresh passwordSalt and SRP salt (32 bytes each),
// stretches password and computes the verifier, all with the exact email
// bytes (spec 2, 3).
func (c *Client) newCredentials(email, password string) (*credentials, error) {
	salts, err := c.random(64)
	if err != nil {
		return nil, err
	}
	passwordSalt, srpSalt := salts[:32:32], salts[32:]
	srpPw, unwrapBKey, err := keywrap.StretchWith(c.params, []byte(email), []byte(password), passwordSalt)
	if err != nil {
		return nil, fmt.Errorf("client: stretching: %w", err)
	}
	verifier := srp.Verifier([]byte(email), srpPw, srpSalt)
	clear(srpPw)
	return &credentials{wireStretching(passwordSalt), srpSalt, verifier, unwrapBKey}, nil
}

// CreateAccount creates an account (spec 6.3) and returns its uid.
func (c *Client) CreateAccount(ctx context.Context, email, password string, opt CreateOptions) ([]byte, error) {
	cr, err := c.newCredentials(email, password)
	if err != nil {
		return nil, err
	}
	req := struct {
		Email              string              `json:"email"`
		SRP                protocol.SRP        `json:"srp"`
		PasswordStretching protocol.Stretching `json:"passwordStretching"`
		Service            string              `json:"service,omitempty"`
		PreVerified        bool                `json:"preVerified,omitempty"` // sent only as true, like the historic client
	}{
		Email:              hex.EncodeToString([]byte(email)),
		SRP:                protocol.SRP{Type: srp.Type, Verifier: hex.EncodeToString(cr.verifier), Salt: hex.EncodeToString(cr.srpSalt)},
		PasswordStretching: cr.stretching,
		Service:            opt.Service,
		PreVerified:        opt.PreVerified,
	}
	var resp struct {
		UID string `json:"uid"`
	}
	if err := c.Do(ctx, http.MethodPost, "/v1/account/create", req, nil, &resp); err != nil {
		return nil, err
	}
	return decodeHex("uid", resp.UID, 16)
}

// PasswordChangeStart exchanges an authToken (consumed) for a keyFetchToken
// and an accountResetToken (seeds; spec 6.7).
func (c *Client) PasswordChangeStart(ctx context.Context, authToken []byte) (keyFetchToken, accountResetToken []byte, err error) {
	cred := TokenCredentials(protocol.AuthToken, authToken)
	var resp struct {
		Bundle string `json:"bundle"`
	}
	if err := c.Do(ctx, http.MethodPost, "/v1/password/change/start", nil, cred, &resp); err != nil {
		return nil, nil, err
	}
	seeds, err := openBundle(cred.BundleKey, keywrap.ContextPasswordChange, resp.Bundle, 2*keywrap.TokenSize)
	if err != nil {
		return nil, nil, err
	}
	return seeds[:32:32], seeds[32:], nil
}

// ChangePassword changes the password and keeps kA and kB (spec 9.1, 4.3):
// sign in with the old password, password/change/start, fetch the keys,
// then reset with wrapKb' = kB XOR the new unwrapBKey. The new verifier and
// stretching use the email bytes the server stores. All sessions end. As kB
// is kept, the reset asks the server to keep the account's recovery key too
// ("keepRecoveryKey": true, docs/recovery-key.md RK.6).
func (c *Client) ChangePassword(ctx context.Context, email, oldPassword, newPassword string) error {
	auth, err := c.SignIn(ctx, email, oldPassword)
	if err != nil {
		return err
	}
	keyFetch, accountReset, err := c.PasswordChangeStart(ctx, auth.AuthToken)
	if err != nil {
		return err
	}
	keys, err := c.Keys(ctx, keyFetch, auth.UnwrapBKey)
	if err != nil {
		return err
	}
	return c.reset(ctx, accountReset, auth.Email, newPassword, func(unwrapBKey []byte) []byte {
		return keywrap.WrapKB(keys.KB, unwrapBKey)
	}, true)
}

// ResetAccount sets a new password with an accountResetToken seed (spec
// 6.4). wrapKb is stored as the new wrapKb; nil means 32 zero bytes, with
// which the server picks a fresh random wrapKb (kB changes). email must be
// the exact email bytes the server stores.
func (c *Client) ResetAccount(ctx context.Context, accountResetToken []byte, email, newPassword string, wrapKb []byte) error {
	if wrapKb == nil {
		wrapKb = make([]byte, 32)
	}
	if len(wrapKb) != 32 {
		return fmt.Errorf("client: wrapKb must be 32 bytes")
	}
	return c.reset(ctx, accountResetToken, email, newPassword, func([]byte) []byte { return wrapKb }, false)
}

// ResetAccountWithKB sets a new password with an accountResetToken seed and
// keeps kB: it stores wrapKb = kB XOR the new unwrapBKey (spec 4.3), as
// after RecoveryKB (docs/recovery-key.md RK.5 step 3). kA and kB are then
// those of before. Like every reset that is not a password change, it
// deletes the account's recovery key (RK.6): the user makes a new one once
// signed in. email must be the exact email bytes the server stores.
func (c *Client) ResetAccountWithKB(ctx context.Context, accountResetToken []byte, email, newPassword string, kB []byte) error {
	if len(kB) != 32 {
		return fmt.Errorf("client: kB must be 32 bytes")
	}
	return c.reset(ctx, accountResetToken, email, newPassword, func(unwrapBKey []byte) []byte {
		return keywrap.WrapKB(kB, unwrapBKey)
	}, false)
}

// reset calls /v1/account/reset with new credentials for password;
// wrapKb computes the wrapKb to store from the new unwrapBKey. With
// keepRecoveryKey the body has "keepRecoveryKey": true (RK.6), which only a
// reset that keeps kB may send; a server without the recovery key
// extension refuses the member (400/107, param keepRecoveryKey, the token
// not consumed) and has no recovery key to keep, so the reset is sent again
// without it.
func (c *Client) reset(ctx context.Context, accountResetToken []byte, email, password string, wrapKb func(unwrapBKey []byte) []byte, keepRecoveryKey bool) error {
	cr, err := c.newCredentials(email, password)
	if err != nil {
		return err
	}
	cred := TokenCredentials(protocol.AccountResetToken, accountResetToken)
	plain := append(append(make([]byte, 0, 32+len(cr.verifier)), wrapKb(cr.unwrapBKey)...), cr.verifier...)
	req := resetRequest{
		Bundle:             hex.EncodeToString(keywrap.Bundle(cred.BundleKey, keywrap.ContextAccountReset, plain)),
		SRP:                protocol.SRP{Type: srp.Type, Salt: hex.EncodeToString(cr.srpSalt)},
		PasswordStretching: cr.stretching,
		KeepRecoveryKey:    keepRecoveryKey,
	}
	clear(plain)
	err = c.Do(ctx, http.MethodPost, "/v1/account/reset", req, cred, nil)
	var e *Error
	if keepRecoveryKey && errors.As(err, &e) && e.Errno == protocol.ErrnoInvalidParameter && e.Body["param"] == "keepRecoveryKey" {
		req.KeepRecoveryKey = false
		err = c.Do(ctx, http.MethodPost, "/v1/account/reset", req, cred, nil)
	}
	return err
}

// resetRequest is the body of /v1/account/reset (spec 6.4).
type resetRequest struct {
	Bundle             string              `json:"bundle"`
	SRP                protocol.SRP        `json:"srp"`
	PasswordStretching protocol.Stretching `json:"passwordStretching"`
	// KeepRecoveryKey is sent, as true, only by a password change that
	// re-wraps the kB it holds (docs/recovery-key.md RK.6).
	KeepRecoveryKey bool `json:"keepRecoveryKey,omitempty"`
}

// DestroyAccount signs in and destroys the account (spec 9.1).
func (c *Client) DestroyAccount(ctx context.Context, email, password string) error {
	auth, err := c.SignIn(ctx, email, password)
	if err != nil {
		return err
	}
	return c.DestroyAccountWithToken(ctx, auth.AuthToken)
}

// DestroyAccountWithToken destroys the account of an authToken seed
// (consumed; spec 6.4).
func (c *Client) DestroyAccountWithToken(ctx context.Context, authToken []byte) error {
	return c.Do(ctx, http.MethodPost, "/v1/account/destroy", nil, TokenCredentials(protocol.AuthToken, authToken), nil)
}
