package keyserver

import (
	"net/http"

	"github.com/keyserver/keyserver/accounts"
	"github.com/keyserver/keyserver/hawk"
	"github.com/keyserver/keyserver/protocol"
)

// verifyHawk checks the Authorization header of r against a live token of
// type typ, in the order of spec 5 (D9), up to the replay check, which the
// rules make when they record the nonce.
func (s *Server) verifyHawk(w http.ResponseWriter, r *http.Request, typ protocol.TokenType, body []byte) (*accounts.Hawk, error) {
	values := r.Header.Values("Authorization")
	if len(values) != 1 {
		return nil, errInvalidSignature()
	}
	h, err := hawk.ParseHeader(values[0])
	if err != nil {
		return nil, errInvalidSignature()
	}
	if info := requestInfoFrom(r.Context()); info != nil {
		info.hawkID = h.ID
	}
	id, ok := decodeHex(h.ID, 32)
	if !ok {
		return nil, errInvalidToken()
	}
	tok, acct, err := s.accounts.TokenWithAccount(r.Context(), typ, id)
	if err != nil {
		return nil, err
	}
	if !h.VerifyMAC(tok.AuthKey, r.Method, requestTarget(r), s.hawkHost, s.hawkPort) {
		return nil, errInvalidSignature()
	}
	if h.Hash == "" && len(body) > 0 {
		return nil, errInvalidSignature()
	}
	if h.Hash != "" && !hawk.VerifyPayload(h.Hash, r.Header.Get("Content-Type"), body) {
		return nil, errInvalidSignature()
	}
	ts, err := h.Timestamp()
	if err != nil {
		return nil, errInvalidSignature()
	}
	now := s.now()
	skew := s.cfg.HawkSkew.Milliseconds()
	if d := ts*1000 - now.UnixMilli(); d > skew || d < -skew {
		w.Header().Set("WWW-Authenticate", hawk.StaleTimestampHeader(tok.AuthKey, now.Unix()))
		return nil, errInvalidTimestamp(now.Unix())
	}
	return &accounts.Hawk{Token: tok, Account: acct, Timestamp: ts, Nonce: h.Nonce}, nil
}

// requestTarget is the request target exactly as received (Hawk resource).
func requestTarget(r *http.Request) string {
	if r.RequestURI != "" {
		return r.RequestURI
	}
	return r.URL.RequestURI()
}
