package accounts

import (
	"context"
	"errors"
	"time"

	"github.com/keyserver/keyserver/keywrap"
	"github.com/keyserver/keyserver/protocol"
	"github.com/keyserver/keyserver/srp"
	"github.com/keyserver/keyserver/store"
)

// PasswordChangeStart consumes the caller's authToken and returns the
// bundle of a new keyFetchToken seed and a new accountResetToken seed
// (spec 6.7); an older accountResetToken of the account is withdrawn.
func (s *Service) PasswordChangeStart(ctx context.Context, c Caller) ([]byte, error) {
	var bundle []byte
	err := s.consume(ctx, c, func(q store.Queries, c Caller) error {
		a := c.Account
		kfSeed, kf, err := s.newToken(protocol.KeyFetchToken, a.UID)
		if err != nil {
			return err
		}
		artSeed, art, err := s.newToken(protocol.AccountResetToken, a.UID)
		if err != nil {
			return err
		}
		kf.ExpiresAt, art.ExpiresAt = kf.CreatedAt.Add(TokenTTL), art.CreatedAt.Add(TokenTTL)
		if err := q.DeleteAccountTokens(ctx, a.UID, protocol.AccountResetToken); err != nil {
			return err
		}
		if err := q.CreateToken(ctx, kf); err != nil {
			return err
		}
		if err := q.CreateToken(ctx, art); err != nil {
			return err
		}
		if err := s.audit(ctx, q, c, event{action: "password.change.start", uid: a.UID}); err != nil {
			return err
		}
		bundle = keywrap.Bundle(c.Token.BundleKey, keywrap.ContextPasswordChange, append(kfSeed, artSeed...))
		return nil
	})
	return bundle, err
}

// NewPassword is what account/reset gives besides its bundle.
type NewPassword struct {
	SRPType    string
	SRPSalt    []byte
	Stretching store.Stretching
	// Bundle is wrapKb || verifier sealed under the accountResetToken.
	Bundle []byte
	// KeepRecoveryKey: the client re-wrapped the kB it holds, so the
	// account's recovery key still opens to it (docs/recovery-key.md,
	// RK.6). Otherwise, and always with an all-zero wrapKb (a new kB), the
	// reset deletes the recovery key.
	KeepRecoveryKey bool
}

// Reset sets new credentials with the caller's accountResetToken (spec
// 6.4, D13): every session and device of the account ends, kA survives, an
// all-zero wrapKb becomes a fresh random one. The reset commits only if the
// token still exists (C13), and the account holder is notified by mail.
// It clears R1 and R2 for the account and makes the ip of the verify_code
// or recover that made the token known (spec 14.2).
func (s *Service) Reset(ctx context.Context, c Caller, n NewPassword) error {
	plain, err := keywrap.Unbundle(c.Token.BundleKey, keywrap.ContextAccountReset, n.Bundle)
	if err != nil {
		return ErrInvalidSignature
	}
	wrapKb, verifier := plain[0:32:32], plain[32:]
	if srp.ValidatePublic(verifier) != nil {
		return InvalidParam("bundle")
	}
	keepRecoveryKey := n.KeepRecoveryKey
	if isZero(wrapKb) { // 4.3: all zero means a fresh random wrapKb
		if wrapKb, err = s.random(32); err != nil {
			return err
		}
		keepRecoveryKey = false // a new kB: the recovery key holds the old one
	}
	a := c.Account
	// D13: max(now_ms, generation + 1), in the whole milliseconds that are
	// stored, so that a reset within the generation's millisecond still
	// advances it.
	gen := time.UnixMilli(max(s.now().UnixMilli(), a.Generation.UnixMilli()+1)).UTC()
	creds := &store.Credentials{SRPType: n.SRPType, SRPVerifier: verifier, SRPSalt: n.SRPSalt,
		Stretching: n.Stretching, WrapKb: wrapKb, Generation: gen}
	err = s.st.WithTx(ctx, func(q store.Queries) error {
		resetIP, err := tokenIP(ctx, q, c.Token.ID)
		if err != nil {
			return err
		}
		if _, err := q.ConsumeToken(ctx, protocol.AccountResetToken, c.Token.ID); err != nil {
			return err
		}
		if err := q.SetCredentials(ctx, a.UID, creds); err != nil {
			return err
		}
		if err := s.customs.ResetSucceeded(ctx, q, a.NormalizedEmail, a.UID, resetIP); err != nil {
			return err
		}
		if err := q.DeleteDevices(ctx, a.UID); err != nil {
			return err
		}
		if err := q.DeleteAccountTokens(ctx, a.UID); err != nil {
			return err
		}
		if !keepRecoveryKey {
			if err := s.dropRecoveryKeyAtReset(ctx, q, c, a.UID); err != nil {
				return err
			}
		}
		return s.audit(ctx, q, c, event{action: "account.reset", uid: a.UID})
	})
	if errors.Is(err, store.ErrNotFound) {
		return ErrInvalidToken
	} else if err != nil {
		return err
	}
	s.notify(ctx, passwordChangedMail(a.Email))
	return nil
}

func isZero(b []byte) bool {
	var acc byte
	for _, c := range b {
		acc |= c
	}
	return acc == 0
}

// Destroy consumes the caller's authToken and deletes the account with its
// tokens and devices (spec 6.4); its audit events are kept.
func (s *Service) Destroy(ctx context.Context, c Caller) error {
	return s.consume(ctx, c, func(q store.Queries, c Caller) error {
		uid := c.Account.UID
		if err := q.DeleteAccount(ctx, uid); errors.Is(err, store.ErrNotFound) {
			return ErrInvalidToken
		} else if err != nil {
			return err
		}
		return s.audit(ctx, q, c, event{action: "account.destroy", uid: uid})
	})
}
