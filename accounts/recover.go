package accounts

import (
	"context"
	"crypto/sha256"
	"errors"
	"time"

	"github.com/keyserver/keyserver/customs"
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
//
// R10 per account (spec 14.2) is checked before the assertion, for the
// fold of the requested email, and every 126 counts for it. The token
// remembers the caller's ip, which the reset makes known.
func (s *Service) Recover(ctx context.Context, c Caller, email, assertion string) ([]byte, error) {
	req := customs.Request{IP: c.IP, Fold: Fold(email)}
	if a, err := s.st.AccountByEmail(ctx, req.Fold); err == nil {
		req.UID = a.UID // its known ips are exempt
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if err := s.check(ctx, customs.Recover, req); err != nil {
		return nil, err
	}
	ev := event{action: "account.recover"}
	seed, err := s.recover(ctx, c, &ev, email, assertion)
	if err == nil {
		return seed, nil
	}
	if errnoOf(err) == protocol.ErrnoInvalidAssertion {
		if rerr := s.count(ctx, nil, req, customs.RecoverFailure); rerr != nil {
			return nil, rerr
		}
	}
	return nil, s.auditFailure(ctx, c, ev, err)
}

// recover is Recover after the rules; ev gets the uid once the account is
// known.
func (s *Service) recover(ctx context.Context, c Caller, ev *event, email, assertion string) ([]byte, error) {
	invalid := func(reason string) error { return refuse(ErrInvalidAssertion, errors.New(reason)) }
	if s.cfg.Recovery == nil {
		return nil, invalid("no recovery issuers configured")
	}
	vouched, expires, err := s.cfg.Recovery.Verify(ctx, assertion)
	if err != nil {
		return nil, refuse(ErrInvalidAssertion, err)
	}
	if Fold(vouched) != Fold(email) {
		return nil, invalid("the assertion is for another email")
	}
	seed, art, err := s.newToken(protocol.AccountResetToken, nil)
	if err != nil {
		return nil, err
	}
	art.ExpiresAt = art.CreatedAt.Add(TokenTTL)
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
		if err := setOrigin(ctx, q, c, art, false); err != nil {
			return err
		}
		return s.audit(ctx, q, c, *ev)
	})
	if err != nil {
		return nil, err
	}
	return seed, nil
}
