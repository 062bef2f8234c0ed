package keyserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/keyserver/keyserver/accounts"
	"github.com/keyserver/keyserver/protocol"
	"github.com/keyserver/keyserver/store"
)

// defaultRetryAfterSeconds is the Retry-After of a 503 without a wait of its own.
const defaultRetryAfterSeconds = 30

// statuses maps each errno of spec 1.5 to its HTTP status: the one table
// that turns the refusals of package accounts (and the edge's own) into
// responses. An errno missing here is a bug and answers 500.
var statuses = map[protocol.Errno]int{
	protocol.ErrnoAccountExists:      400,
	protocol.ErrnoUnknownAccount:     400,
	protocol.ErrnoIncorrectPassword:  400,
	protocol.ErrnoUnverifiedAccount:  400,
	protocol.ErrnoInvalidCode:        400,
	protocol.ErrnoInvalidJSON:        400,
	protocol.ErrnoInvalidParameter:   400,
	protocol.ErrnoMissingParameter:   400,
	protocol.ErrnoInvalidSignature:   401,
	protocol.ErrnoInvalidToken:       401,
	protocol.ErrnoInvalidTimestamp:   401,
	protocol.ErrnoMissingLength:      411,
	protocol.ErrnoBodyTooLarge:       413,
	protocol.ErrnoTooManyRequests:    429,
	protocol.ErrnoInvalidNonce:       401,
	protocol.ErrnoIncorrectEmailCase: 400,
	protocol.ErrnoUnknownDevice:      400,
	protocol.ErrnoDeviceExists:       400,
	protocol.ErrnoRequestBlocked:     400,
	protocol.ErrnoInvalidAssertion:   400,
	protocol.ErrnoAccountDisabled:    400,
	protocol.ErrnoInvalidRecoveryKey: 400,
	protocol.ErrnoNoRecoveryKey:      400,
	protocol.ErrnoServiceUnavailable: 503,
}

// Error is a response the edge sends: status, errno, a client-safe
// message and the extra members of the error body (spec 1.4). Cause is
// logged and never sent.
type Error struct {
	Status  int
	Errno   int
	Message string
	Extra   map[string]any
	Cause   error
}

func (e *Error) Error() string {
	s := fmt.Sprintf("%d/%d %s", e.Status, e.Errno, e.Message)
	if e.Cause != nil {
		s += ": " + e.Cause.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Cause }

// refusal is the response for a refusal of the rules.
func refusal(r *accounts.Error) *Error {
	status, ok := statuses[r.Errno]
	if !ok {
		return errInternal(r)
	}
	e := &Error{Status: status, Errno: r.Errno, Message: protocol.Messages[r.Errno], Extra: map[string]any{}, Cause: r.Cause}
	if r.Param != "" {
		e.Message += r.Param
		e.Extra["param"] = r.Param
	}
	if r.Email != "" {
		e.Extra["email"] = r.Email
	}
	if r.HasTries {
		e.Extra["tries"], e.Extra["ttl"] = r.Tries, r.TTL
	}
	if r.VerificationMethod != "" {
		e.Extra["verificationMethod"] = r.VerificationMethod
	}
	switch {
	case r.RetryAfter > 0:
		e.Extra["retryAfter"] = int((r.RetryAfter + time.Second - 1) / time.Second)
	case status == http.StatusServiceUnavailable:
		e.Extra["retryAfter"] = defaultRetryAfterSeconds
	}
	return e
}

// Constructors for the edge's own errors.
func errInvalidJSON() error      { return &accounts.Error{Errno: protocol.ErrnoInvalidJSON} }
func errInvalidSignature() error { return accounts.ErrInvalidSignature }
func errInvalidToken() error     { return accounts.ErrInvalidToken }
func errMissingLength() error    { return &accounts.Error{Errno: protocol.ErrnoMissingLength} }
func errBodyTooLarge() error     { return &accounts.Error{Errno: protocol.ErrnoBodyTooLarge} }
func errInvalidParam(p string) error {
	return accounts.InvalidParam(p)
}
func errMissingParam(p string) error {
	return accounts.MissingParam(p)
}

func errInvalidTimestamp(serverTime int64) *Error {
	e := refusal(&accounts.Error{Errno: protocol.ErrnoInvalidTimestamp})
	e.Extra["serverTime"] = serverTime
	return e
}

// errAdminToken: a missing or wrong admin bearer token (spec 10.1).
func errAdminToken() *Error {
	return &Error{Status: 401, Errno: protocol.ErrnoInvalidToken, Message: "Invalid admin token"}
}

func errUnavailable(cause error) *Error {
	e := refusal(&accounts.Error{Errno: protocol.ErrnoServiceUnavailable})
	e.Cause = cause
	return e
}

func errNotFound() *Error {
	return &Error{Status: 404, Errno: protocol.ErrnoUnspecified, Message: "Not Found"}
}

func errInternal(cause error) *Error {
	return &Error{Status: 500, Errno: protocol.ErrnoUnspecified, Message: protocol.Messages[protocol.ErrnoUnspecified], Cause: cause}
}

// errClientGone is what a request whose client hung up ends with: nobody
// reads the answer, and it is no server failure.
var errClientGone = &Error{Status: 499, Errno: protocol.ErrnoUnspecified, Message: "Client closed request"}

// asError turns any error into the response to send: refusals through the
// status table, a store that cannot answer 503, a client that hung up
// errClientGone, anything else 500/999 with the original as logged cause.
func asError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var r *accounts.Error
	if errors.As(err, &r) {
		return refusal(r)
	}
	switch {
	case errors.Is(err, store.ErrUnavailable):
		return errUnavailable(err)
	case errors.Is(err, context.Canceled):
		c := *errClientGone
		c.Cause = err
		return &c
	}
	return errInternal(err)
}

// body is the JSON error body of spec 1.4.
func (e *Error) body() map[string]any {
	b := make(map[string]any, 4+len(e.Extra))
	for k, v := range e.Extra {
		b[k] = v
	}
	b["code"] = e.Status
	b["errno"] = e.Errno
	reason := http.StatusText(e.Status)
	if reason == "" {
		reason = "Error"
	}
	b["error"] = reason
	b["message"] = e.Message
	return b
}

// writeError sends err as the spec's error body, with Retry-After on 429
// and 503, and records it for the access log.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := asError(err)
	if ra, ok := e.Extra["retryAfter"].(int); ok {
		w.Header().Set("Retry-After", strconv.Itoa(ra))
	}
	if info := requestInfoFrom(r.Context()); info != nil {
		info.err = e
	}
	writeJSON(w, e.Status, e.body())
}
