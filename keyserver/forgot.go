package keyserver

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/keyserver/keyserver/protocol"
	"github.com/keyserver/keyserver/store"
)

// Forgot-password codes (spec 6.7, Product decision D8).
const (
	forgotTTL        = 15 * time.Minute
	forgotTries      = 3
	forgotCodeLength = 8
)

// forgotAnswer is the response of send_code and resend_code.
type forgotAnswer struct {
	ForgotPasswordToken string `json:"forgotPasswordToken"`
	TTL                 int    `json:"ttl"`
	CodeLength          int    `json:"codeLength"`
	Tries               int    `json:"tries"`
}

func (s *Server) forgotAnswer(tok *store.Token) forgotAnswer {
	return forgotAnswer{hexString(tok.Seed), s.ttl(tok), forgotCodeLength, tok.Tries}
}

// ttl is the token's remaining lifetime in seconds, rounded up.
func (s *Server) ttl(tok *store.Token) int {
	return max(0, ceilSeconds(tok.ExpiresAt.Sub(s.now())))
}

// forgotCode is a uniform random code in [10000000, 99999999] (D8).
func (s *Server) forgotCode() (string, error) {
	n, err := rand.Int(s.cfg.Rand, big.NewInt(90_000_000))
	if err != nil {
		return "", fmt.Errorf("random: %w", err)
	}
	return fmt.Sprint(10_000_000 + n.Int64()), nil
}

// validForgotCode: exactly 8 ASCII digits; anything else is 107 and costs
// no try (D8).
func validForgotCode(s string) bool {
	if len(s) != forgotCodeLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// POST /v1/password/forgot/send_code (spec 6.7): a new forgotPasswordToken,
// replacing the account's old one, and its code by mail. C19 limits it per
// client IP and per account; C5: if the mail cannot be handed over, the new
// token is deleted again and the answer is 503.
func (s *Server) forgotSendCode(req *request) (any, error) {
	ctx := req.r.Context()
	if err := s.throttle(ctx, forgotSendPerIP, clientIP(ctx)); err != nil {
		return nil, err
	}
	email, err := emailBody(req)
	if err != nil {
		return nil, err
	}
	a, err := s.accountByEmail(ctx, email)
	if err != nil {
		return nil, err
	}
	if err := s.throttle(ctx, forgotSendPerAccount, hexString(a.UID)); err != nil {
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
	err = s.store.WithTx(ctx, func(q store.Queries) error {
		if err := q.DeleteAccountTokens(ctx, a.UID, protocol.ForgotPasswordToken); err != nil {
			return err
		}
		return q.CreateToken(ctx, tok)
	})
	if err != nil {
		return nil, err
	}
	if err := s.cfg.Mailer.Send(ctx, forgotPasswordMail(a.Email, code)); err != nil {
		// The token is useless without its code: take it back.
		if derr := s.store.DeleteToken(context.WithoutCancel(ctx), protocol.ForgotPasswordToken, tok.ID); derr != nil && !errors.Is(derr, store.ErrNotFound) {
			s.log.ErrorContext(ctx, "forgot-password token of a failed mail not deleted", "uid", hexString(a.UID), "err", derr)
		}
		return nil, errUnavailable(fmt.Errorf("forgot-password mail not sent: %w", err))
	}
	if err := s.audit(ctx, s.store, event{action: "password.forgot.send_code", uid: a.UID}); err != nil {
		return nil, err
	}
	return s.forgotAnswer(tok), nil
}

// POST /v1/password/forgot/resend_code (Hawk forgotPasswordToken; spec
// 6.7): the same code again, to the stored address whatever email the body
// names; 503 when the mail cannot be handed over (the token stays).
func (s *Server) forgotResendCode(req *request) (any, error) {
	if _, err := emailBody(req); err != nil {
		return nil, err
	}
	ctx := req.r.Context()
	a, tok := req.account, req.token
	if err := s.throttle(ctx, forgotResendPerAccount, hexString(a.UID)); err != nil {
		return nil, err
	}
	if err := s.cfg.Mailer.Send(ctx, forgotPasswordMail(a.Email, tok.Code)); err != nil {
		return nil, errUnavailable(fmt.Errorf("forgot-password mail not sent: %w", err))
	}
	if err := s.audit(ctx, s.store, event{action: "password.forgot.resend_code", uid: a.UID}); err != nil {
		return nil, err
	}
	return s.forgotAnswer(tok), nil
}

// POST /v1/password/forgot/verify_code (Hawk forgotPasswordToken; spec 6.7,
// D8): the right code trades the token for an accountResetToken; a wrong
// one costs a try, and the last try deletes the token.
func (s *Server) forgotVerifyCode(req *request) (any, error) {
	o, err := parseObject(req.r, req.body)
	if err != nil {
		return nil, err
	}
	code, err := o.String("code", validForgotCode)
	if err != nil {
		return nil, err
	}
	if err := o.End(); err != nil {
		return nil, err
	}
	ctx := req.r.Context()
	a, tok := req.account, req.token
	ev := event{action: "password.forgot.verify_code", uid: a.UID}
	if !equalSecret([]byte(code), []byte(tok.Code)) {
		return nil, s.auditFailure(ctx, ev, s.wrongForgotCode(ctx, tok))
	}
	seed, art, err := s.newToken(protocol.AccountResetToken, a.UID)
	if err != nil {
		return nil, err
	}
	err = s.store.WithTx(ctx, func(q store.Queries) error {
		// Atomic with a concurrent wrong try: only a token that still
		// exists with tries left is traded.
		used, err := q.ConsumeToken(ctx, protocol.ForgotPasswordToken, tok.ID)
		if errors.Is(err, store.ErrNotFound) || (err == nil && used.Tries <= 0) {
			return errInvalidToken()
		} else if err != nil {
			return err
		}
		if err := q.DeleteAccountTokens(ctx, a.UID, protocol.AccountResetToken); err != nil {
			return err
		}
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

// wrongForgotCode takes a try from tok: 105 with the tries and ttl left,
// the token deleted when none is left; 110 when it is already gone.
// The decrement and the deletion are one transaction, so no token without
// tries (which resend_code would still serve) can be left behind.
func (s *Server) wrongForgotCode(ctx context.Context, tok *store.Token) error {
	var left int
	err := s.store.WithTx(ctx, func(q store.Queries) error {
		var err error
		if left, err = q.DecrementTries(ctx, tok.ID); err != nil || left > 0 {
			return err
		}
		return q.DeleteToken(ctx, protocol.ForgotPasswordToken, tok.ID)
	})
	if errors.Is(err, store.ErrNotFound) {
		return errInvalidToken()
	} else if err != nil {
		return err
	}
	return errInvalidCode().with("tries", left).with("ttl", s.ttl(tok))
}
