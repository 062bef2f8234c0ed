package accounts

import (
	"errors"
	"fmt"
	"time"

	"github.com/keyserver/keyserver/customs"
	"github.com/keyserver/keyserver/protocol"
)

// Error is a refusal of the rules: a protocol errno and the members of the
// error body that go with it. Cause, when set, is logged and never sent.
// errors.Is matches any *Error with the same errno.
type Error struct {
	Errno protocol.Errno
	// Param names the member of a 107 or 108.
	Param string
	// Email is the email asked for (101, 102) or the hex of the stored
	// email (120).
	Email string
	// HasTries marks a 105 of verify_code, which tells the tries and the
	// seconds left.
	HasTries   bool
	Tries, TTL int
	// RetryAfter is the wait of a 114 or a 201.
	RetryAfter time.Duration
	// VerificationMethod is how a 125 can be lifted ("email": an
	// unblock code, spec 14.3).
	VerificationMethod string
	Cause              error
}

func (e *Error) Error() string {
	s := fmt.Sprintf("accounts: errno %d", e.Errno)
	if e.Param != "" {
		s += " (" + e.Param + ")"
	}
	if e.Cause != nil {
		s += ": " + e.Cause.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Cause }

// Is reports whether target is an *Error with the same errno.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Errno == e.Errno
}

// Sentinels for errors.Is; the operations return copies with details.
var (
	ErrAccountExists      = &Error{Errno: protocol.ErrnoAccountExists}
	ErrUnknownAccount     = &Error{Errno: protocol.ErrnoUnknownAccount}
	ErrIncorrectPassword  = &Error{Errno: protocol.ErrnoIncorrectPassword}
	ErrUnverified         = &Error{Errno: protocol.ErrnoUnverifiedAccount}
	ErrInvalidCode        = &Error{Errno: protocol.ErrnoInvalidCode}
	ErrInvalidSignature   = &Error{Errno: protocol.ErrnoInvalidSignature}
	ErrInvalidToken       = &Error{Errno: protocol.ErrnoInvalidToken}
	ErrInvalidNonce       = &Error{Errno: protocol.ErrnoInvalidNonce}
	ErrIncorrectEmailCase = &Error{Errno: protocol.ErrnoIncorrectEmailCase}
	ErrUnknownDevice      = &Error{Errno: protocol.ErrnoUnknownDevice}
	ErrDeviceExists       = &Error{Errno: protocol.ErrnoDeviceExists}
	ErrInvalidAssertion   = &Error{Errno: protocol.ErrnoInvalidAssertion}
	ErrDisabled           = &Error{Errno: protocol.ErrnoAccountDisabled}
	ErrTooManyRequests    = &Error{Errno: protocol.ErrnoTooManyRequests}
	ErrRequestBlocked     = &Error{Errno: protocol.ErrnoRequestBlocked, VerificationMethod: "email"}
	ErrInvalidRecoveryKey = &Error{Errno: protocol.ErrnoInvalidRecoveryKey}
	ErrNoRecoveryKey      = &Error{Errno: protocol.ErrnoNoRecoveryKey}
	// ErrMailNotSent: a message that the operation needs delivered could
	// not be handed over (spec C5): 503.
	ErrMailNotSent = &Error{Errno: protocol.ErrnoServiceUnavailable}
)

// InvalidParam is a 107 for the member param.
func InvalidParam(param string) *Error {
	return &Error{Errno: protocol.ErrnoInvalidParameter, Param: param}
}

// MissingParam is a 108 for the member param.
func MissingParam(param string) *Error {
	return &Error{Errno: protocol.ErrnoMissingParameter, Param: param}
}

// refuse returns a copy of the sentinel e with cause attached.
func refuse(e *Error, cause error) *Error {
	c := *e
	c.Cause = cause
	return &c
}

// errnoOf is the errno of a refusal, or 0 for any other error (a server
// failure).
func errnoOf(err error) protocol.Errno {
	var e *Error
	if errors.As(err, &e) && e.Errno != protocol.ErrnoServiceUnavailable {
		return e.Errno
	}
	return 0
}

// customsError turns a refusal of the abuse-protection rules into the
// refusal of the protocol (429/114 with the wait, or 400/125 that an
// unblock code lifts); other errors (the store cannot answer) pass as they
// are.
func customsError(err error) error {
	r, ok := errors.AsType[*customs.Refused](err)
	if !ok {
		return err
	}
	if r.Errno == protocol.ErrnoRequestBlocked {
		return refuse(ErrRequestBlocked, r)
	}
	e := refuse(ErrTooManyRequests, r)
	e.RetryAfter = r.RetryAfter
	return e
}

// tooMany is a 429/114 waiting until until (at least a second).
func tooMany(wait time.Duration) *Error {
	e := *ErrTooManyRequests
	e.RetryAfter = time.Duration(max(1, ceilSeconds(wait))) * time.Second
	return &e
}
