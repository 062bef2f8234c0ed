package accounts

import (
	"context"
	"crypto/subtle"
	"encoding/hex"
	"errors"

	"github.com/keyserver/keyserver/customs"
	"github.com/keyserver/keyserver/protocol"
	"github.com/keyserver/keyserver/store"
)

// NewAccount is what account/create gives (spec 6.3), already validated.
type NewAccount struct {
	Email       string
	SRPType     string
	SRPVerifier []byte
	SRPSalt     []byte
	Stretching  store.Stretching
	// Service, when set, goes into the verification link.
	Service     string
	PreVerified bool
}

// Create makes an account with fresh kA, wrapKb and email code, and mails
// the verification link unless it is pre-verified. A mail failure is
// logged and the account stands (C5: the client can resend). It returns
// the uid; 101 when the email fold is taken, 107 (email) when mail could
// not be sent to it (C20) and it is not pre-verified. When R6 refuses the
// mail it is skipped and logged, and the account stands (C5).
func (s *Service) Create(ctx context.Context, c Caller, n NewAccount) ([]byte, error) {
	if !n.PreVerified && !Mailable(n.Email) {
		return nil, InvalidParam("email")
	}
	secrets, err := s.random(16 + 32 + 32 + 16)
	if err != nil {
		return nil, err
	}
	now := s.now()
	a := &store.Account{
		UID: secrets[0:16:16], Email: n.Email, NormalizedEmail: Fold(n.Email),
		SRPType: n.SRPType, SRPVerifier: n.SRPVerifier, SRPSalt: n.SRPSalt, Stretching: n.Stretching,
		KA: secrets[16:48:48], WrapKb: secrets[48:80:80], EmailCode: secrets[80:96:96],
		Verified: n.PreVerified, CreatedAt: now, Generation: now,
	}
	err = s.st.WithTx(ctx, func(q store.Queries) error {
		if err := q.CreateAccount(ctx, a); err != nil {
			return err
		}
		return s.audit(ctx, q, c, event{action: "account.create", uid: a.UID})
	})
	if errors.Is(err, store.ErrConflict) {
		e := *ErrAccountExists
		e.Email = n.Email
		return nil, &e
	} else if err != nil {
		return nil, err
	}
	if !a.Verified {
		if err := s.deliver(ctx, c, nil, "verification", s.verificationMail(a.UID, a.Email, hexString(a.EmailCode), n.Service)); err != nil {
			s.log.WarnContext(ctx, "verification mail not sent", "uid", hexString(a.UID), "err", err)
		}
	}
	return a.UID, nil
}

// accountByEmail finds the account for a requested email: 102 when none,
// 127 when disabled, 120 (with the stored email) when only the case
// differs (spec 1.3).
func (s *Service) accountByEmail(ctx context.Context, email string) (*store.Account, error) {
	a, err := s.st.AccountByEmail(ctx, Fold(email))
	if errors.Is(err, store.ErrNotFound) {
		e := *ErrUnknownAccount
		e.Email = email
		return nil, &e
	} else if err != nil {
		return nil, err
	}
	if a.Disabled {
		return nil, ErrDisabled
	}
	if a.Email != email {
		return nil, emailCase(a)
	}
	return a, nil
}

// emailCase is the 120 that names the stored email.
func emailCase(a *store.Account) error {
	e := *ErrIncorrectEmailCase
	e.Email = hexString([]byte(a.Email))
	return &e
}

// ResendVerification mails the verification link again while the caller's
// account is unverified (spec 6.6, C8), within R9 and R6 (spec 14.2).
func (s *Service) ResendVerification(ctx context.Context, c Caller, service string) error {
	a := c.Account
	if a.Verified {
		return nil
	}
	if err := mailable(a); err != nil {
		return err
	}
	if err := s.check(ctx, customs.VerifyResend, customsRequest(c, a)); err != nil {
		return err
	}
	if err := s.deliver(ctx, c, a.UID, "verification", s.verificationMail(a.UID, a.Email, hexString(a.EmailCode), service)); err != nil {
		return err
	}
	return s.audit(ctx, s.st, c, event{action: "recovery_email.resend_code", uid: a.UID, session: c.Token.ID})
}

// VerifyEmail marks the account verified when code is its email code: 102
// unknown, 127 disabled, 105 wrong code (counted for R11, which refuses
// with 429 once it is reached). Idempotent. The keyFetchTokens issued
// while the account was unverified get their hour from now (spec 9.2).
func (s *Service) VerifyEmail(ctx context.Context, c Caller, uid, code []byte) error {
	ev := event{action: "account.verify"}
	a, err := s.st.AccountByUID(ctx, uid)
	if errors.Is(err, store.ErrNotFound) {
		return s.auditFailure(ctx, c, ev, ErrUnknownAccount)
	} else if err != nil {
		return err
	}
	ev.uid = a.UID
	if a.Disabled {
		return s.auditFailure(ctx, c, ev, ErrDisabled)
	}
	req := customsRequest(c, a)
	if err := s.check(ctx, customs.VerifyCode, req); err != nil {
		return err
	}
	if !equalSecret(code, a.EmailCode) {
		if err := s.count(ctx, nil, req, customs.VerifyFailure); err != nil {
			return err
		}
		return s.auditFailure(ctx, c, ev, ErrInvalidCode)
	}
	if a.Verified {
		return nil
	}
	return s.st.WithTx(ctx, func(q store.Queries) error {
		if err := q.SetVerified(ctx, a.UID); err != nil {
			return err
		}
		if err := q.SetTokensExpiry(ctx, a.UID, protocol.KeyFetchToken, s.now().Add(TokenTTL)); err != nil {
			return err
		}
		return s.audit(ctx, q, c, ev)
	})
}

// equalSecret compares secrets in constant time (D4).
func equalSecret(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }

func hexString(b []byte) string { return hex.EncodeToString(b) }
