package keyserver

import (
	"context"
	"crypto/sha256"
	"errors"
	"time"

	"github.com/keyserver/keyserver/protocol"
	"github.com/keyserver/keyserver/store"
)

// AssertionVerifier checks the email assertions of account recovery (spec
// 8.2); package recovery implements it.
type AssertionVerifier interface {
	// Verify returns the email the assertion vouches for and when the
	// assertion expires; any error means it is invalid.
	Verify(ctx context.Context, assertion string) (email string, expires time.Time, err error)
}

// maxAssertionLength bounds the assertion member (spec 8.1).
const maxAssertionLength = 16384

// validAssertion: ASCII, at most 16384 characters.
func validAssertion(s string) bool {
	if len(s) > maxAssertionLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// assertionSkew keeps an assertion's hash past its expiry (spec 8.3).
const assertionSkew = 60 * time.Second

// POST /v1/account/recover (spec 8, D12): a valid, unused email assertion
// for the account's email gets an accountResetToken. Every assertion
// failure, the missing account and a replay included, is 126 with one
// message; 127 and 120 come after and do not use up the assertion. Nothing
// about the account changes on any failure.
func (s *Server) accountRecover(req *request) (any, error) {
	o, err := parseObject(req.r, req.body)
	if err != nil {
		return nil, err
	}
	email, err := o.Email("email")
	if err != nil {
		return nil, err
	}
	assertion, err := o.String("assertion", validAssertion)
	if err != nil {
		return nil, err
	}
	if err := o.End(); err != nil {
		return nil, err
	}
	ctx := req.r.Context()
	ev := event{action: "account.recover"}
	invalid := func(cause error) error {
		e := errInvalidAssertion()
		e.Cause = cause // logged, never sent
		return e
	}
	if s.cfg.Recovery == nil {
		return nil, s.auditFailure(ctx, ev, invalid(errors.New("no recovery issuers configured")))
	}
	vouched, expires, err := s.cfg.Recovery.Verify(ctx, assertion)
	if err != nil {
		return nil, s.auditFailure(ctx, ev, invalid(err))
	}
	if fold(vouched) != fold(email) {
		return nil, s.auditFailure(ctx, ev, invalid(errors.New("the assertion is for another email")))
	}
	seed, art, err := s.newToken(protocol.AccountResetToken, nil)
	if err != nil {
		return nil, err
	}
	hash := sha256.Sum256([]byte(assertion))
	err = s.store.WithTx(ctx, func(q store.Queries) error {
		a, err := q.AccountByEmail(ctx, fold(email))
		if errors.Is(err, store.ErrNotFound) {
			return invalid(errors.New("no account for the email"))
		} else if err != nil {
			return err
		}
		ev.uid = a.UID
		// C13: checked and recorded in one step; a 127 or 120 below rolls
		// the record back.
		if err := q.UseAssertion(ctx, hash[:], expires.Add(assertionSkew)); errors.Is(err, store.ErrConflict) {
			return invalid(errors.New("assertion already used"))
		} else if err != nil {
			return err
		}
		if a.Disabled {
			return errDisabled()
		}
		if a.Email != email {
			return errIncorrectEmailCase(hexString([]byte(a.Email)))
		}
		if err := q.DeleteAccountTokens(ctx, a.UID, protocol.ForgotPasswordToken, protocol.AccountResetToken); err != nil {
			return err
		}
		art.UID = a.UID
		if err := q.CreateToken(ctx, art); err != nil {
			return err
		}
		return s.audit(ctx, q, ev)
	})
	if err != nil {
		return nil, s.auditFailure(ctx, ev, err)
	}
	return map[string]string{"accountResetToken": hexString(seed)}, nil
}
