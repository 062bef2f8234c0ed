package keyserver

import (
	"net/http"

	"github.com/keyserver/keyserver/accounts"
	"github.com/keyserver/keyserver/protocol"
)

// request is what a handler works with: the raw body (already length
// checked) and the caller as the rules see it.
type request struct {
	w      http.ResponseWriter
	r      *http.Request
	body   []byte
	caller accounts.Caller
}

// handlerFunc returns a JSON-encodable result, written, or an error.
type handlerFunc func(req *request) (any, error)

// writtenResponse is the result of a handler that wrote its response
// itself (a redirect, plain text, a published document).
type writtenResponse struct{}

var written any = writtenResponse{}

// emptyObject is the {} answer.
var emptyObject = struct{}{}

// serve runs fn and writes its result or error.
func serve(w http.ResponseWriter, r *http.Request, fn func() (any, error)) {
	res, err := fn()
	switch {
	case err != nil:
		writeError(w, r, err)
	case res != written:
		writeJSON(w, http.StatusOK, res)
	}
}

// open serves an endpoint without authentication.
func (s *Server) open(fn handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		serve(w, r, func() (any, error) {
			body, err := s.readBody(r)
			if err != nil {
				return nil, err
			}
			return fn(&request{w: w, r: r, body: body, caller: s.caller(r)})
		})
	})
}

// hawkAuth serves an endpoint authenticated with a token of type typ whose
// token is kept (spec 5 and 6.1): length checks, Hawk verification, then
// the rules' nonce and disabled-account checks, in that order (spec 1.6).
func (s *Server) hawkAuth(typ protocol.TokenType, fn handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		serve(w, r, func() (any, error) {
			req, err := s.hawkRequest(w, r, typ)
			if err != nil {
				return nil, err
			}
			if req.caller, err = s.accounts.Authenticate(r.Context(), req.caller); err != nil {
				return nil, err
			}
			return fn(req)
		})
	})
}

// hawkConsume serves an endpoint whose token is consumed: fn hands the
// verified caller to a consuming operation of the rules (or to
// accounts.Reject when the body is refused), which records the nonce and
// consumes the token in its own transaction.
func (s *Server) hawkConsume(typ protocol.TokenType, fn handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		serve(w, r, func() (any, error) {
			req, err := s.hawkRequest(w, r, typ)
			if err != nil {
				return nil, err
			}
			return fn(req)
		})
	})
}

// hawkRequest reads the body and verifies the Hawk header of r.
func (s *Server) hawkRequest(w http.ResponseWriter, r *http.Request, typ protocol.TokenType) (*request, error) {
	body, err := s.readBody(r)
	if err != nil {
		return nil, err
	}
	h, err := s.verifyHawk(w, r, typ, body)
	if err != nil {
		return nil, err
	}
	c := s.caller(r)
	c.Hawk = h
	return &request{w: w, r: r, body: body, caller: c}, nil
}

// caller is what the rules learn about r before authentication.
func (s *Server) caller(r *http.Request) accounts.Caller {
	var c accounts.Caller
	if info := requestInfoFrom(r.Context()); info != nil {
		c.IP = info.clientIP
	}
	return c
}

// rejectBody is for consuming endpoints: a body that does not decode still
// consumes the token (D2).
func (s *Server) rejectBody(req *request, err error) error {
	return s.accounts.Reject(req.r.Context(), req.caller, err)
}
