package client

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/http"

	"github.com/keyserver/keyserver/keywrap"
	"github.com/keyserver/keyserver/protocol"
)

// The recovery key extension (docs/recovery-key.md): a key only the user
// holds, under which the client stores kB on the server, so that a reset
// after a forgotten password can keep kB. The server answers 400/128
// (protocol.ErrnoInvalidRecoveryKey) to a key that is not the account's and
// 400/129 (protocol.ErrnoNoRecoveryKey) when the account has none; test
// with IsErrno.

// CreateRecoveryKey makes a new recovery key for the account of a
// sessionToken seed, whose uid and kB the caller just fetched (Login, Keys),
// and stores recoveryKeyId and recoveryData = kB sealed under it on the
// server (POST /v1/recoveryKey, RK.4), replacing the account's previous one.
// It returns the recovery key string (RK.1) to show the user once: it is
// kept nowhere else. The account must be verified (else 400/104).
func (c *Client) CreateRecoveryKey(ctx context.Context, sessionToken, uid, kB []byte) (keyString string, err error) {
	r, err := keywrap.NewRecoveryKey(c.rand)
	if err != nil {
		return "", fmt.Errorf("client: %w", err)
	}
	defer clear(r)
	data, err := keywrap.SealRecoveryData(c.rand, r, uid, kB)
	if err != nil {
		return "", fmt.Errorf("client: %w", err)
	}
	req := struct {
		RecoveryKeyID string `json:"recoveryKeyId"`
		RecoveryData  string `json:"recoveryData"`
	}{hex.EncodeToString(keywrap.RecoveryKeyID(r)), hex.EncodeToString(data)}
	if err := c.Do(ctx, http.MethodPost, "/v1/recoveryKey", req, TokenCredentials(protocol.SessionToken, sessionToken), nil); err != nil {
		return "", err
	}
	return keywrap.FormatRecoveryKey(r), nil
}

// RecoveryKeyStatus tells whether the account of a sessionToken seed has a
// recovery key, and since when (GET /v1/recoveryKey).
func (c *Client) RecoveryKeyStatus(ctx context.Context, sessionToken []byte) (*protocol.RecoveryKeyStatus, error) {
	var st protocol.RecoveryKeyStatus
	if err := c.Do(ctx, http.MethodGet, "/v1/recoveryKey", nil, TokenCredentials(protocol.SessionToken, sessionToken), &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// DeleteRecoveryKey deletes the account's recovery key, if it has one
// (POST /v1/recoveryKey/destroy).
func (c *Client) DeleteRecoveryKey(ctx context.Context, sessionToken []byte) error {
	return c.Do(ctx, http.MethodPost, "/v1/recoveryKey/destroy", nil, TokenCredentials(protocol.SessionToken, sessionToken), nil)
}

// RecoveryKB is steps 1 and 2 of RK.5: it reads the recovery key string the
// user typed (a mistyped one fails with keywrap.ErrRecoveryKeyLength,
// ErrRecoveryKeyCharacter or ErrRecoveryKeyCheck before anything is sent),
// fetches the account's recoveryData with an accountResetToken seed (not
// consumed) and opens it with the key and the uid the server sent, giving
// the account's kB. A valid key that is not the account's is 400/128, an
// account without one 400/129; data that does not open is
// keywrap.ErrRecoveryData. The accountResetToken stays valid for the reset,
// which should then wrap kB under the new password (ResetAccountWithKB).
func (c *Client) RecoveryKB(ctx context.Context, accountResetToken []byte, keyString string) (kB []byte, err error) {
	r, err := keywrap.ParseRecoveryKey(keyString)
	if err != nil {
		return nil, err
	}
	defer clear(r)
	req := map[string]string{"recoveryKeyId": hex.EncodeToString(keywrap.RecoveryKeyID(r))}
	var resp protocol.RecoveryKeyData
	if err := c.Do(ctx, http.MethodPost, "/v1/recoveryKey/data", req, TokenCredentials(protocol.AccountResetToken, accountResetToken), &resp); err != nil {
		return nil, err
	}
	uid, err := decodeHex("uid", resp.UID, 16)
	if err != nil {
		return nil, err
	}
	data, err := decodeHex("recoveryData", resp.RecoveryData, keywrap.RecoveryDataSize)
	if err != nil {
		return nil, err
	}
	kB, err = keywrap.OpenRecoveryData(r, uid, data)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	return kB, nil
}
