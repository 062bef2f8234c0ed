package accounts

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"time"

	"github.com/keyserver/keyserver/customs"
	"github.com/keyserver/keyserver/protocol"
	"github.com/keyserver/keyserver/store"
)

// Forgot-password codes (spec 6.7, Product decision D8).
const (
	forgotTTL   = 15 * time.Minute
	forgotTries = 3
	// ForgotCodeLength is the number of digits of a code.
	ForgotCodeLength = 8
)

// ForgotToken is the answer of send_code and resend_code.
type ForgotToken struct {
	Seed  []byte // the forgotPasswordToken
	TTL   int    // seconds left, rounded up
	Tries int
}

func (s *Service) forgotToken(tok *store.Token) *ForgotToken {
	return &ForgotToken{Seed: tok.Seed, TTL: s.ttl(tok), Tries: tok.Tries}
}

// ttl is the token's remaining lifetime in seconds, rounded up.
func (s *Service) ttl(tok *store.Token) int {
	return max(0, ceilSeconds(tok.ExpiresAt.Sub(s.now())))
}

// ceilSeconds is d in whole seconds, rounded up.
func ceilSeconds(d time.Duration) int {
	return int((d + time.Second - 1) / time.Second)
}

// forgotCode is a uniform random code in [10000000, 99999999] (D8).
func (s *Service) forgotCode() (string, error) {
	n, err := rand.Int(s.cfg.Rand, big.NewInt(90_000_000))
	if err != nil {
		return "", fmt.Errorf("random: %w", err)
	}
	return fmt.Sprint(10_000_000 + n.Int64()), nil
}

// maxForgotTokens is how many forgotPasswordTokens an account may have
// live (spec 6.7, 14.2).
const maxForgotTokens = 3

// ForgotSendCode makes a new forgotPasswordToken for email and mails its
// code (spec 6.7): 102, 127, 120; 107 for an email that may not receive mail
// (C20); R8 and R6 (spec 14.2). The token replaces the live one created
// from the caller's ip, if any; without one, a fourth live token is refused
// with 429 rather than evicting one. C5: if the mail cannot be handed over,
// the new token is deleted again and the answer is ErrMailNotSent.
func (s *Service) ForgotSendCode(ctx context.Context, c Caller, email string) (*ForgotToken, error) {
	a, err := s.accountByEmail(ctx, email)
	if err != nil {
		return nil, err
	}
	if err := mailable(a); err != nil {
		return nil, err
	}
	if err := s.check(ctx, customs.ForgotSend, customsRequest(c, a)); err != nil {
		return nil, err
	}
	now, ip := s.now(), customs.IPKey(c.IP)
	origins, err := s.st.TokenOrigins(ctx, a.UID, protocol.ForgotPasswordToken)
	if err != nil {
		return nil, err
	}
	var drop [][]byte // expired tokens and the one of this ip
	var live []time.Time
	for _, o := range origins {
		if !o.ExpiresAt.After(now) || o.IP == ip {
			drop = append(drop, o.TokenID)
		} else {
			live = append(live, o.ExpiresAt)
		}
	}
	if len(live) >= maxForgotTokens {
		slices.SortFunc(live, time.Time.Compare)
		return nil, tooMany(live[len(live)-maxForgotTokens].Sub(now))
	}
	mailReq, err := s.mailCheck(ctx, c, a.UID, a.Email)
	if err != nil {
		return nil, err
	}
	code, err := s.forgotCode()
	if err != nil {
		return nil, err
	}
	seed, tok, err := s.newToken(protocol.ForgotPasswordToken, a.UID)
	if err != nil {
		return nil, err
	}
	tok.Seed, tok.Code, tok.Tries, tok.ExpiresAt = seed, code, forgotTries, tok.CreatedAt.Add(forgotTTL)
	err = s.st.WithTx(ctx, func(q store.Queries) error {
		for _, id := range drop {
			if err := q.DeleteToken(ctx, protocol.ForgotPasswordToken, id); err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
		}
		if err := q.CreateToken(ctx, tok); err != nil {
			return err
		}
		return setOrigin(ctx, q, c, tok, false)
	})
	if err != nil {
		return nil, err
	}
	if err := s.send(ctx, "forgot-password", forgotPasswordMail(a.Email, code)); err != nil {
		// The token is useless without its code: take it back.
		if derr := s.st.DeleteToken(context.WithoutCancel(ctx), protocol.ForgotPasswordToken, tok.ID); derr != nil && !errors.Is(derr, store.ErrNotFound) {
			s.log.ErrorContext(ctx, "forgot-password token of a failed mail not deleted", "uid", hexString(a.UID), "err", derr)
		}
		return nil, err
	}
	s.mailSent(ctx, mailReq)
	if err := s.audit(ctx, s.st, c, event{action: "password.forgot.send_code", uid: a.UID}); err != nil {
		return nil, err
	}
	return s.forgotToken(tok), nil
}

// ForgotResendCode mails the caller's forgotPasswordToken's code again, to
// the stored address (spec 6.7), within R9 and R6; ErrMailNotSent when it
// cannot be handed over (the token stays).
func (s *Service) ForgotResendCode(ctx context.Context, c Caller) (*ForgotToken, error) {
	a, tok := c.Account, c.Token
	if err := mailable(a); err != nil {
		return nil, err
	}
	if err := s.check(ctx, customs.ForgotResend, customsRequest(c, a)); err != nil {
		return nil, err
	}
	if err := s.deliver(ctx, c, a.UID, "forgot-password", forgotPasswordMail(a.Email, tok.Code)); err != nil {
		return nil, err
	}
	if err := s.audit(ctx, s.st, c, event{action: "password.forgot.resend_code", uid: a.UID}); err != nil {
		return nil, err
	}
	return s.forgotToken(tok), nil
}

// ForgotVerifyCode trades the caller's forgotPasswordToken for a new
// accountResetToken, returning its seed, when code is right (spec 6.7, D8);
// a wrong code costs a try (105 with the tries and ttl left), and the last
// try deletes the token.
func (s *Service) ForgotVerifyCode(ctx context.Context, c Caller, code string) ([]byte, error) {
	a, tok := c.Account, c.Token
	ev := event{action: "password.forgot.verify_code", uid: a.UID}
	if !equalSecret([]byte(code), []byte(tok.Code)) {
		return nil, s.auditFailure(ctx, c, ev, s.wrongForgotCode(ctx, tok))
	}
	seed, art, err := s.newToken(protocol.AccountResetToken, a.UID)
	if err != nil {
		return nil, err
	}
	art.ExpiresAt = art.CreatedAt.Add(TokenTTL)
	err = s.st.WithTx(ctx, func(q store.Queries) error {
		// Atomic with a concurrent wrong try: only a token that still
		// exists with tries left is traded.
		used, err := q.ConsumeToken(ctx, protocol.ForgotPasswordToken, tok.ID)
		if errors.Is(err, store.ErrNotFound) || (err == nil && used.Tries <= 0) {
			return ErrInvalidToken
		} else if err != nil {
			return err
		}
		if err := q.DeleteAccountTokens(ctx, a.UID, protocol.AccountResetToken); err != nil {
			return err
		}
		if err := q.CreateToken(ctx, art); err != nil {
			return err
		}
		if err := setOrigin(ctx, q, c, art, false); err != nil {
			return err
		}
		return s.audit(ctx, q, c, ev)
	})
	if err != nil {
		return nil, s.auditFailure(ctx, c, ev, err)
	}
	return seed, nil
}

// wrongForgotCode takes a try from tok: 105 with the tries and ttl left,
// the token deleted when none is left; 110 when it is already gone. The
// decrement and the deletion are one transaction, so no token without tries
// (which resend_code would still serve) can be left behind.
func (s *Service) wrongForgotCode(ctx context.Context, tok *store.Token) error {
	var left int
	err := s.st.WithTx(ctx, func(q store.Queries) error {
		var err error
		if left, err = q.DecrementTries(ctx, tok.ID); err != nil || left > 0 {
			return err
		}
		return q.DeleteToken(ctx, protocol.ForgotPasswordToken, tok.ID)
	})
	if errors.Is(err, store.ErrNotFound) {
		return ErrInvalidToken
	} else if err != nil {
		return err
	}
	e := *ErrInvalidCode
	e.HasTries, e.Tries, e.TTL = true, left, s.ttl(tok)
	return &e
}
