package client

import (
	"context"
	"encoding/hex"
	"net/http"

	"github.com/keyserver/keyserver/protocol"
)

// RecoveryEmailStatus returns the account's email (a plain string on the
// wire, spec 6.6) and whether it is verified.
func (c *Client) RecoveryEmailStatus(ctx context.Context, sessionToken []byte) (email string, verified bool, err error) {
	var resp struct {
		Email    string `json:"email"`
		Verified bool   `json:"verified"`
	}
	err = c.Do(ctx, http.MethodGet, "/v1/recovery_email/status", nil, TokenCredentials(protocol.SessionToken, sessionToken), &resp)
	return resp.Email, resp.Verified, err
}

// ResendCode asks the server to send the verification email again; service
// is optional ("" omits it).
func (c *Client) ResendCode(ctx context.Context, sessionToken []byte, service string) error {
	req := map[string]string{}
	if service != "" {
		req["service"] = service
	}
	return c.Do(ctx, http.MethodPost, "/v1/recovery_email/resend_code", req, TokenCredentials(protocol.SessionToken, sessionToken), nil)
}

// VerifyCode verifies the account's email with the code of the emailed link
// (16 bytes each).
func (c *Client) VerifyCode(ctx context.Context, uid, code []byte) error {
	req := map[string]string{"uid": hex.EncodeToString(uid), "code": hex.EncodeToString(code)}
	return c.Do(ctx, http.MethodPost, "/v1/recovery_email/verify_code", req, nil, nil)
}

// GetRandomBytes returns 32 random bytes from the server.
func (c *Client) GetRandomBytes(ctx context.Context) ([]byte, error) {
	var resp struct {
		Data string `json:"data"`
	}
	if err := c.Do(ctx, http.MethodPost, "/v1/get_random_bytes", nil, nil, &resp); err != nil {
		return nil, err
	}
	return decodeHex("data", resp.Data, 32)
}
