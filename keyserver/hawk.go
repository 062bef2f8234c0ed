package keyserver

import (
	"context"
	"encoding/hex"
	"errors"
	"net/http"
	"time"

	"github.com/keyserver/keyserver/hawk"
	"github.com/keyserver/keyserver/keywrap"
	"github.com/keyserver/keyserver/protocol"
	"github.com/keyserver/keyserver/store"
)

// request is what a handler works with: the raw body (already length
// checked) and, on Hawk endpoints, the verified token and its account.
type request struct {
	w       http.ResponseWriter
	r       *http.Request
	body    []byte
	token   *store.Token
	account *store.Account
	// tx is the consumption transaction of a consuming endpoint, which
	// its writes join (see write).
	tx store.Queries
}

// write runs fn in the request's consumption transaction when it has one,
// else in a transaction of its own.
func (s *Server) write(req *request, fn func(q store.Queries) error) error {
	if req.tx != nil {
		return fn(req.tx)
	}
	return s.store.WithTx(req.r.Context(), fn)
}

// handlerFunc returns a JSON-encodable result or an error; a nil result
// with a nil error means it wrote the response itself.
type handlerFunc func(req *request) (any, error)

// open serves an endpoint without authentication.
func (s *Server) open(fn handlerFunc) http.Handler {
	return s.api(func(w http.ResponseWriter, r *http.Request) (any, error) {
		body, err := s.readBody(r)
		if err != nil {
			return nil, err
		}
		return fn(&request{w: w, r: r, body: body})
	})
}

// hawkAuth serves an endpoint authenticated with a token of type typ (spec
// 5 and 6.1): length checks, Hawk verification, consumption of consuming
// tokens, then the disabled-account check, in that order (spec 1.6).
func (s *Server) hawkAuth(typ protocol.TokenType, consume bool, fn handlerFunc) http.Handler {
	return s.api(func(w http.ResponseWriter, r *http.Request) (any, error) {
		body, err := s.readBody(r)
		if err != nil {
			return nil, err
		}
		tok, h, err := s.verifyHawk(w, r, typ, body)
		if err != nil {
			return nil, err
		}
		ctx := r.Context()
		if consume {
			return s.consumeAndServe(w, r, body, typ, tok, h, fn)
		}
		if err := s.useNonce(ctx, s.store, tok, h); err != nil {
			return nil, err
		}
		acct, err := s.store.AccountByUID(ctx, tok.UID)
		if errors.Is(err, store.ErrNotFound) {
			return nil, errInvalidToken()
		} else if err != nil {
			return nil, err
		}
		if acct.Disabled {
			return nil, errDisabled()
		}
		if typ == protocol.SessionToken { // last access of its device (spec 6.5)
			if err := s.devices.Touch(ctx, tok.ID); err != nil {
				return nil, err
			}
		}
		return fn(&request{w: w, r: r, body: body, token: tok, account: acct})
	})
}

// consumeAndServe runs a consuming endpoint in one transaction: the nonce is
// recorded, the token consumed, and the handler's writes made together. A
// Hawk failure (replay, token already consumed) rolls everything back; a
// client error of the handler (4xx, e.g. 104) still commits the consumption
// (D2); a server error rolls back, so an outage does not burn the token.
func (s *Server) consumeAndServe(w http.ResponseWriter, r *http.Request, body []byte, typ protocol.TokenType,
	tok *store.Token, h *hawk.Header, fn handlerFunc) (any, error) {
	ctx := r.Context()
	var res any
	var failure error
	err := s.store.WithTx(ctx, func(q store.Queries) error {
		if err := s.useNonce(ctx, q, tok, h); err != nil {
			return err
		}
		consumed, err := q.ConsumeToken(ctx, typ, tok.ID)
		if err != nil {
			return err
		}
		acct, err := q.AccountByUID(ctx, consumed.UID)
		if err != nil {
			return err
		}
		if acct.Disabled {
			failure = errDisabled()
			return nil
		}
		res, failure = fn(&request{w: w, r: r, body: body, token: consumed, account: acct, tx: q})
		if failure != nil && asError(failure).Status >= 500 {
			return failure
		}
		return nil
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, errInvalidToken()
	case err != nil:
		return nil, err
	}
	return res, failure
}

// verifyHawk checks the Authorization header of r against a live token of
// type typ, in the order of spec 5 (D9), up to the replay check (useNonce).
func (s *Server) verifyHawk(w http.ResponseWriter, r *http.Request, typ protocol.TokenType, body []byte) (*store.Token, *hawk.Header, error) {
	values := r.Header.Values("Authorization")
	if len(values) != 1 {
		return nil, nil, errInvalidSignature()
	}
	h, err := hawk.ParseHeader(values[0])
	if err != nil {
		return nil, nil, errInvalidSignature()
	}
	if info := requestInfoFrom(r.Context()); info != nil {
		info.hawkID = h.ID
	}
	id, ok := decodeHex(h.ID, 32)
	if !ok {
		return nil, nil, errInvalidToken()
	}
	ctx := r.Context()
	tok, err := s.store.Token(ctx, typ, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, errInvalidToken()
	} else if err != nil {
		return nil, nil, err
	}
	now := s.now()
	if tok.Expired(now) {
		return nil, nil, errInvalidToken()
	}
	if !h.VerifyMAC(tok.AuthKey, r.Method, requestTarget(r), s.hawkHost, s.hawkPort) {
		return nil, nil, errInvalidSignature()
	}
	if h.Hash == "" && len(body) > 0 {
		return nil, nil, errInvalidSignature()
	}
	if h.Hash != "" && !hawk.VerifyPayload(h.Hash, r.Header.Get("Content-Type"), body) {
		return nil, nil, errInvalidSignature()
	}
	ts, err := h.Timestamp()
	if err != nil {
		return nil, nil, errInvalidSignature()
	}
	skew := s.cfg.HawkSkew.Milliseconds()
	if d := ts*1000 - now.UnixMilli(); d > skew || d < -skew {
		w.Header().Set("WWW-Authenticate", hawk.StaleTimestampHeader(tok.AuthKey, now.Unix()))
		return nil, nil, errInvalidTimestamp(now.Unix())
	}
	return tok, h, nil
}

// useNonce records the request's (tokenId, ts, nonce) until ts + skew, so a
// replay inside the accepted window is caught by every instance (401/115).
func (s *Server) useNonce(ctx context.Context, q store.Queries, tok *store.Token, h *hawk.Header) error {
	ts, _ := h.Timestamp() // checked by verifyHawk
	err := q.UseNonce(ctx, tok.ID, ts, h.Nonce, time.Unix(ts, 0).Add(s.cfg.HawkSkew))
	if errors.Is(err, store.ErrConflict) {
		return errInvalidNonce()
	}
	return err
}

// requestTarget is the request target exactly as received (Hawk resource).
func requestTarget(r *http.Request) string {
	if r.RequestURI != "" {
		return r.RequestURI
	}
	return r.URL.RequestURI()
}

// newToken makes a token of type typ for uid from a fresh random seed.
func (s *Server) newToken(typ protocol.TokenType, uid []byte) (seed []byte, tok *store.Token, err error) {
	seed, err = s.random(32)
	if err != nil {
		return nil, nil, err
	}
	return seed, tokenFromSeed(typ, uid, seed, s.now()), nil
}

func tokenFromSeed(typ protocol.TokenType, uid, seed []byte, now time.Time) *store.Token {
	id, authKey, bundleKey := keywrap.DeriveToken(string(typ), seed)
	return &store.Token{ID: id, Type: typ, UID: uid, AuthKey: authKey, BundleKey: bundleKey, CreatedAt: now}
}

func hexString(b []byte) string { return hex.EncodeToString(b) }
