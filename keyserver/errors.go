package keyserver

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"

	"github.com/keyserver/keyserver/store"
)

// Errnos of spec 1.5. The table is append-only.
const (
	ErrnoAccountExists       = 101
	ErrnoUnknownAccount      = 102
	ErrnoIncorrectPassword   = 103
	ErrnoUnverifiedAccount   = 104
	ErrnoInvalidCode         = 105
	ErrnoInvalidJSON         = 106
	ErrnoInvalidParameter    = 107
	ErrnoMissingParameter    = 108
	ErrnoInvalidSignature    = 109
	ErrnoInvalidToken        = 110
	ErrnoInvalidTimestamp    = 111
	ErrnoMissingLength       = 112
	ErrnoBodyTooLarge        = 113
	ErrnoTooManyRequests     = 114
	ErrnoInvalidNonce        = 115
	ErrnoIncorrectEmailCase  = 120
	ErrnoUnknownDevice       = 123
	ErrnoDeviceExists        = 124
	ErrnoRequestBlocked      = 125
	ErrnoInvalidAssertion    = 126
	ErrnoAccountDisabled     = 127
	ErrnoServiceUnavailable  = 201
	ErrnoUnspecified         = 999
	defaultRetryAfterSeconds = 30
)

// Error is the one error type of the HTTP edge. Status, Errno, Message and
// Extra are sent to the client (spec 1.4); Cause is logged and never sent.
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

func newError(status, errno int, message string) *Error {
	return &Error{Status: status, Errno: errno, Message: message}
}

// with returns a copy of e carrying one more extra field.
func (e *Error) with(key string, value any) *Error {
	c := *e
	c.Extra = make(map[string]any, len(e.Extra)+1)
	for k, v := range e.Extra {
		c.Extra[k] = v
	}
	c.Extra[key] = value
	return &c
}

// Constructors for the errors of spec 1.5.
func errAccountExists(email string) *Error {
	return newError(400, ErrnoAccountExists, "Account already exists").with("email", email)
}

func errUnknownAccount() *Error { return newError(400, ErrnoUnknownAccount, "Unknown account") }

func errIncorrectPassword() *Error {
	return newError(400, ErrnoIncorrectPassword, "Incorrect password")
}

func errUnverified() *Error { return newError(400, ErrnoUnverifiedAccount, "Unverified account") }

func errInvalidCode() *Error {
	return newError(400, ErrnoInvalidCode, "Invalid verification code")
}

func errInvalidJSON() *Error {
	return newError(400, ErrnoInvalidJSON, "Invalid JSON in request body")
}

func errInvalidParam(param string) *Error {
	return newError(400, ErrnoInvalidParameter, "Invalid parameter in request body: "+param).with("param", param)
}

func errMissingParam(param string) *Error {
	return newError(400, ErrnoMissingParameter, "Missing parameter in request body: "+param).with("param", param)
}

func errInvalidSignature() *Error {
	return newError(401, ErrnoInvalidSignature, "Invalid request signature")
}

func errInvalidToken() *Error {
	return newError(401, ErrnoInvalidToken, "Invalid authentication token in request signature")
}

// errAdminToken: a missing or wrong admin bearer token (spec 10.1).
func errAdminToken() *Error { return newError(401, ErrnoInvalidToken, "Invalid admin token") }

func errInvalidTimestamp(serverTime int64) *Error {
	return newError(401, ErrnoInvalidTimestamp, "Invalid timestamp in request signature").with("serverTime", serverTime)
}

func errMissingLength() *Error {
	return newError(411, ErrnoMissingLength, "Missing content-length header")
}

func errBodyTooLarge() *Error { return newError(413, ErrnoBodyTooLarge, "Request body too large") }

func errTooManyRequests(retryAfter int) *Error {
	return newError(429, ErrnoTooManyRequests, "Client has sent too many requests").with("retryAfter", retryAfter)
}

func errInvalidNonce() *Error {
	return newError(401, ErrnoInvalidNonce, "Invalid nonce in request signature")
}

func errIncorrectEmailCase(storedHex string) *Error {
	return newError(400, ErrnoIncorrectEmailCase, "Incorrect email case").with("email", storedHex)
}

func errUnknownDevice() *Error { return newError(400, ErrnoUnknownDevice, "Unknown device") }

func errDeviceExists() *Error {
	return newError(400, ErrnoDeviceExists, "Session already registered a device")
}

func errInvalidAssertion() *Error {
	return newError(400, ErrnoInvalidAssertion, "Invalid email assertion")
}

func errDisabled() *Error { return newError(400, ErrnoAccountDisabled, "Account disabled") }

func errUnavailable(cause error) *Error {
	e := newError(503, ErrnoServiceUnavailable, "Service unavailable").with("retryAfter", defaultRetryAfterSeconds)
	e.Cause = cause
	return e
}

func errNotFound() *Error { return newError(404, ErrnoUnspecified, "Not Found") }

func errInternal(cause error) *Error {
	e := newError(500, ErrnoUnspecified, "Unspecified error")
	e.Cause = cause
	return e
}

// asError turns any error into an *Error: unexpected ones become 500/999
// with the original kept as the logged cause.
func asError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	// A database that does not answer is an outage, not a bug.
	var netErr *net.OpError
	if errors.As(err, &netErr) || errors.Is(err, driver.ErrBadConn) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, store.ErrUnavailable) {
		return errUnavailable(err)
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

// writeError sends e as the spec's error body, with Retry-After on 429 and
// 503, and records it for the access log.
func writeError(w http.ResponseWriter, r *http.Request, e *Error) {
	if ra, ok := e.Extra["retryAfter"].(int); ok {
		w.Header().Set("Retry-After", strconv.Itoa(ra))
	}
	if info := requestInfoFrom(r.Context()); info != nil {
		info.err = e
	}
	writeJSON(w, e.Status, e.body())
}
