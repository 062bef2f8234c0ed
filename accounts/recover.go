package accounts

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

// assertionSkew keeps an assertion's hash past its expiry (spec 8.3).
const assertionSkew = 60 * time.Second

// Recover trades a valid, unused email assertion for the account's email
// for a new accountResetToken, returning its seed (spec 8, D12). Every
// assertion failure, the missing account and a replay included, is 126
// (the reason is the logged cause); 127 and 120 come after and do not use
// up the assertion. Nothing about the account changes on any failure.
func (s *Service) Recover(ctx context.Context, c Caller, email, assertion string) ([]byte, error) {
	ev := event{action: "account.recover"}
	invalid := func(reason string) error { return refuse(ErrInvalidAssertion, errors.New(reason)) }
	if s.cfg.Recovery == nil {
		return nil, s.auditFailure(ctx, c, ev, invalid("no recovery issuers configured"))
	}
	vouched, expires, err := s.cfg.Recovery.Verify(ctx, assertion)
	if err != nil {
		return nil, s.auditFailure(ctx, c, ev, refuse(ErrInvalidAssertion, err))
	}
	if Fold(vouched) != Fold(email) {
		return nil, s.auditFailure(ctx, c, ev, invalid("the assertion is for another email"))
	}
	seed, art, err := s.newToken(protocol.AccountResetToken, nil)
	if err != nil {
		return nil, err
	}
	hash := sha256.Sum256([]byte(assertion))
	err = s.st.WithTx(ctx, func(q store.Queries) error {
		a, err := q.AccountByEmail(ctx, Fold(email))
		if errors.Is(err, store.ErrNotFound) {
			return invalid("no account for the email")
		} else if err != nil {
			return err
		}
		ev.uid = a.UID
		// C13: checked and recorded in one step; a 127 or 120 below rolls
		// the record back.
		if err := q.UseAssertion(ctx, hash[:], expires.Add(assertionSkew)); errors.Is(err, store.ErrConflict) {
			return invalid("assertion already used")
		} else if err != nil {
			return err
		}
		if a.Disabled {
			return ErrDisabled
		}
		if a.Email != email {
			return emailCase(a)
		}
		if err := q.DeleteAccountTokens(ctx, a.UID, protocol.ForgotPasswordToken, protocol.AccountResetToken); err != nil {
			return err
		}
		art.UID = a.UID
		if err := q.CreateToken(ctx, art); err != nil {
			return err
		}
		return s.audit(ctx, q, c, ev)
	})
	if err != nil {
		return nil, s.auditFailure(ctx, c, ev, err)
	}
	return seed, nil
}
