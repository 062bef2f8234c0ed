package client

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/keyserver/keyserver/protocol"
)

// CertificateSign asks for an identity certificate (spec 7) for publicKey,
// valid for durationMs milliseconds (at most 24 h). publicKey is anything
// that encodes to a jwcrypto public key: a map, a json.RawMessage, or a
// *certs.PublicKey. The certificate is returned as the server sent it (a JWS
// compact serialisation); certs.Verifier checks it.
func (c *Client) CertificateSign(ctx context.Context, sessionToken []byte, publicKey any, durationMs int64) (cert string, err error) {
	req := struct {
		PublicKey any   `json:"publicKey"`
		Duration  int64 `json:"duration"`
	}{publicKey, durationMs}
	var resp struct {
		Cert string `json:"cert"`
	}
	cred := TokenCredentials(protocol.SessionToken, sessionToken)
	if err := c.Do(ctx, http.MethodPost, "/v1/certificate/sign", req, cred, &resp); err != nil {
		return "", err
	}
	if strings.Count(resp.Cert, ".") != 2 {
		return "", fmt.Errorf("%w: cert is not a compact JWS", ErrBadResponse)
	}
	return resp.Cert, nil
}
