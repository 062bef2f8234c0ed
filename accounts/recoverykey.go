package accounts

import (
	"context"
	"crypto/subtle"
	"errors"

	"github.com/keyserver/keyserver/store"
)

// Recovery keys (docs/recovery-key.md): the server keeps, per account, the
// recoveryKeyId and recoveryData a client made from a key only the user
// holds. It cannot check that the data holds kB; it only gives it back to
// the holder of an accountResetToken who proves the id.

// CreateRecoveryKey stores id and data as the recovery key of the caller's
// verified account (104 otherwise), replacing the one it had, and mails
// the account holder (RK.4).
func (s *Service) CreateRecoveryKey(ctx context.Context, c Caller, id, data []byte) error {
	a := c.Account
	if !a.Verified {
		return ErrUnverified
	}
	k := &store.RecoveryKey{UID: a.UID, ID: id, Data: data, CreatedAt: s.now()}
	err := s.st.WithTx(ctx, func(q store.Queries) error {
		replaced, err := q.PutRecoveryKey(ctx, k)
		if err != nil {
			return err
		}
		ev := event{action: "recoveryKey.create", uid: a.UID, session: c.Token.ID}
		if replaced {
			ev.details = `{"replaced":true}`
		}
		return s.audit(ctx, q, c, ev)
	})
	if errors.Is(err, store.ErrNotFound) { // the account went in the meantime
		return ErrInvalidToken
	} else if err != nil {
		return err
	}
	s.notify(ctx, recoveryKeyMail(a.Email, true))
	return nil
}

// RecoveryKey returns the caller's account's recovery key, or nil when it
// has none. The caller shows only whether there is one, and since when.
func (s *Service) RecoveryKey(ctx context.Context, c Caller) (*store.RecoveryKey, error) {
	k, err := s.st.RecoveryKey(ctx, c.Account.UID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return k, err
}

// DestroyRecoveryKey deletes the caller's account's recovery key, if it has
// one, and then mails the account holder.
func (s *Service) DestroyRecoveryKey(ctx context.Context, c Caller) error {
	a := c.Account
	err := s.st.WithTx(ctx, func(q store.Queries) error {
		if err := q.DeleteRecoveryKey(ctx, a.UID); err != nil {
			return err
		}
		return s.audit(ctx, q, c, event{action: "recoveryKey.destroy", uid: a.UID, session: c.Token.ID})
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil // none: nothing to do, nothing to tell
	} else if err != nil {
		return err
	}
	s.notify(ctx, recoveryKeyMail(a.Email, false))
	return nil
}

// RecoveryData returns the recovery key of the caller's account to the
// holder of an accountResetToken who proves its id (RK.4): 129 when the
// account has none, 128 when id is not its id. Every outcome is audited.
func (s *Service) RecoveryData(ctx context.Context, c Caller, id []byte) (*store.RecoveryKey, error) {
	ev := event{action: "recoveryKey.data", uid: c.Account.UID}
	k, err := s.st.RecoveryKey(ctx, c.Account.UID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, s.auditFailure(ctx, c, ev, ErrNoRecoveryKey)
	} else if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare(k.ID, id) != 1 {
		return nil, s.auditFailure(ctx, c, ev, ErrInvalidRecoveryKey)
	}
	if err := s.audit(ctx, s.st, c, ev); err != nil {
		return nil, err
	}
	return k, nil
}

// dropRecoveryKeyAtReset deletes the account's recovery key in the reset's
// transaction q (RK.6) and audits it, if there was one.
func (s *Service) dropRecoveryKeyAtReset(ctx context.Context, q store.Queries, c Caller, uid []byte) error {
	if err := q.DeleteRecoveryKey(ctx, uid); errors.Is(err, store.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	return s.audit(ctx, q, c, event{action: "recoveryKey.destroy", uid: uid, details: `{"reason":"reset"}`})
}
