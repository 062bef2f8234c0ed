package client

import (
	"context"
	"encoding/hex"
	"errors"
	"net/http"
	"time"

	"github.com/keyserver/keyserver/keywrap"
	"github.com/keyserver/keyserver/protocol"
)

// ForgotToken is the answer of /v1/password/forgot/send_code and
// resend_code (spec 6.7).
type ForgotToken struct {
	// Email is the exact email bytes the server stores (after a 120 retry);
	// the new password must be stretched with them.
	Email      string
	Token      []byte // forgotPasswordToken seed
	TTL        time.Duration
	CodeLength int
	Tries      int
}

type forgotJSON struct {
	ForgotPasswordToken string `json:"forgotPasswordToken"`
	TTL                 int    `json:"ttl"`
	CodeLength          int    `json:"codeLength"`
	Tries               int    `json:"tries"`
}

func (f *forgotJSON) token(email string) (*ForgotToken, error) {
	seed, err := decodeHex("forgotPasswordToken", f.ForgotPasswordToken, keywrap.TokenSize)
	if err != nil {
		return nil, err
	}
	return &ForgotToken{Email: email, Token: seed, TTL: time.Duration(f.TTL) * time.Second, CodeLength: f.CodeLength, Tries: f.Tries}, nil
}

// ForgotSendCode asks the server to email a forgot-password code (spec
// 6.7). When the server answers 400/120 it retries once with the stored
// email bytes (spec 1.3).
func (c *Client) ForgotSendCode(ctx context.Context, email string) (*ForgotToken, error) {
	var resp forgotJSON
	err := c.Do(ctx, http.MethodPost, "/v1/password/forgot/send_code", emailBody(email), nil, &resp)
	if stored, ok := storedEmail(err); ok {
		email = stored
		err = c.Do(ctx, http.MethodPost, "/v1/password/forgot/send_code", emailBody(email), nil, &resp)
	}
	if err != nil {
		return nil, err
	}
	return resp.token(email)
}

// ForgotResendCode asks for the same code again; the answer has the tries
// and the lifetime left.
func (c *Client) ForgotResendCode(ctx context.Context, ft *ForgotToken) (*ForgotToken, error) {
	var resp forgotJSON
	err := c.Do(ctx, http.MethodPost, "/v1/password/forgot/resend_code", emailBody(ft.Email),
		TokenCredentials(protocol.ForgotPasswordToken, ft.Token), &resp)
	if err != nil {
		return nil, err
	}
	return resp.token(ft.Email)
}

// ForgotVerifyCode trades the emailed code for an accountResetToken seed. A
// wrong code is an *Error with errno 105 whose Body has the tries and ttl
// left.
func (c *Client) ForgotVerifyCode(ctx context.Context, ft *ForgotToken, code string) ([]byte, error) {
	var resp struct {
		AccountResetToken string `json:"accountResetToken"`
	}
	err := c.Do(ctx, http.MethodPost, "/v1/password/forgot/verify_code", map[string]string{"code": code},
		TokenCredentials(protocol.ForgotPasswordToken, ft.Token), &resp)
	if err != nil {
		return nil, err
	}
	return decodeHex("accountResetToken", resp.AccountResetToken, keywrap.TokenSize)
}

// Recover trades an email assertion (an OpenID Connect ID token or a
// BrowserID backed assertion) for an accountResetToken seed (spec 8). It
// returns the exact email bytes the server stores (after a 120 retry).
func (c *Client) Recover(ctx context.Context, email, assertion string) (accountResetToken []byte, storedAs string, err error) {
	var resp struct {
		AccountResetToken string `json:"accountResetToken"`
	}
	body := func(email string) map[string]string {
		return map[string]string{"email": hex.EncodeToString([]byte(email)), "assertion": assertion}
	}
	err = c.Do(ctx, http.MethodPost, "/v1/account/recover", body(email), nil, &resp)
	if stored, ok := storedEmail(err); ok {
		email = stored
		err = c.Do(ctx, http.MethodPost, "/v1/account/recover", body(email), nil, &resp)
	}
	if err != nil {
		return nil, "", err
	}
	seed, err := decodeHex("accountResetToken", resp.AccountResetToken, keywrap.TokenSize)
	return seed, email, err
}

func emailBody(email string) map[string]string {
	return map[string]string{"email": hex.EncodeToString([]byte(email))}
}

// storedEmail returns the stored email bytes of a 400/120 answer (spec 1.3).
func storedEmail(err error) (string, bool) {
	var e *Error
	if !errors.As(err, &e) || e.Errno != protocol.ErrnoIncorrectEmailCase {
		return "", false
	}
	s, _ := e.Body["email"].(string)
	b, derr := hex.DecodeString(s)
	if derr != nil || len(b) == 0 {
		return "", false
	}
	return string(b), true
}
