package keyserver

import (
	"encoding/hex"
	"errors"
	"net/http"
	"time"

	"github.com/keyserver/keyserver/hawk"
	"github.com/keyserver/keyserver/keywrap"
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
func (s *Server) hawkAuth(typ store.TokenType, consume bool, fn handlerFunc) http.Handler {
	return s.api(func(w http.ResponseWriter, r *http.Request) (any, error) {
		body, err := s.readBody(r)
		if err != nil {
			return nil, err
		}
		tok, err := s.verifyHawk(w, r, typ, body)
		if err != nil {
			return nil, err
		}
		ctx := r.Context()
		if consume {
			if tok, err = s.store.ConsumeToken(ctx, typ, tok.ID); err != nil {
				if errors.Is(err, store.ErrNotFound) {
					return nil, errInvalidToken()
				}
				return nil, err
			}
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
		if typ == store.SessionToken { // last access of its device (spec 6.5)
			if err := s.devices.Touch(ctx, tok.ID); err != nil {
				return nil, err
			}
		}
		return fn(&request{w: w, r: r, body: body, token: tok, account: acct})
	})
}

// verifyHawk checks the Authorization header of r against a live token of
// type typ, in the order of spec 5 (D9).
func (s *Server) verifyHawk(w http.ResponseWriter, r *http.Request, typ store.TokenType, body []byte) (*store.Token, error) {
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
	ctx := r.Context()
	tok, err := s.store.Token(ctx, typ, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errInvalidToken()
	} else if err != nil {
		return nil, err
	}
	now := s.now()
	if tok.Expired(now) {
		return nil, errInvalidToken()
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
	skew := s.cfg.HawkSkew.Milliseconds()
	if d := ts*1000 - now.UnixMilli(); d > skew || d < -skew {
		w.Header().Set("WWW-Authenticate", hawk.StaleTimestampHeader(tok.AuthKey, now.Unix()))
		return nil, errInvalidTimestamp(now.Unix())
	}
	expires := time.Unix(ts, 0).Add(s.cfg.HawkSkew)
	if err := s.store.UseNonce(ctx, tok.ID, ts, h.Nonce, expires); errors.Is(err, store.ErrConflict) {
		return nil, errInvalidNonce()
	} else if err != nil {
		return nil, err
	}
	return tok, nil
}

// requestTarget is the request target exactly as received (Hawk resource).
func requestTarget(r *http.Request) string {
	if r.RequestURI != "" {
		return r.RequestURI
	}
	return r.URL.RequestURI()
}

// newToken makes a token of type typ for uid from a fresh random seed.
func (s *Server) newToken(typ store.TokenType, uid []byte) (seed []byte, tok *store.Token, err error) {
	seed, err = s.random(32)
	if err != nil {
		return nil, nil, err
	}
	return seed, tokenFromSeed(typ, uid, seed, s.now()), nil
}

func tokenFromSeed(typ store.TokenType, uid, seed []byte, now time.Time) *store.Token {
	id, authKey, bundleKey := keywrap.DeriveToken(string(typ), seed)
	return &store.Token{ID: id, Type: typ, UID: uid, AuthKey: authKey, BundleKey: bundleKey, CreatedAt: now}
}

func hexString(b []byte) string { return hex.EncodeToString(b) }
