package accounts

import (
	"context"
	"errors"

	"github.com/keyserver/keyserver/devices"
	"github.com/keyserver/keyserver/protocol"
	"github.com/keyserver/keyserver/store"
)

// AccountRecord is an account as the admin API shows it (spec 10.2).
type AccountRecord struct {
	*store.Account
	Sessions, Devices int
	HasRecoveryKey    bool // docs/recovery-key.md, RK.7
}

// AdminAccount returns the account uid with its counts; 102 when none.
func (s *Service) AdminAccount(ctx context.Context, uid []byte) (*AccountRecord, error) {
	a, err := s.account(ctx, uid)
	if err != nil {
		return nil, err
	}
	return s.record(ctx, a)
}

// account returns the account uid; 102 when none. Every admin operation
// checks its target with it first.
func (s *Service) account(ctx context.Context, uid []byte) (*store.Account, error) {
	a, err := s.st.AccountByUID(ctx, uid)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrUnknownAccount
	}
	return a, err
}

// AdminFind returns the accounts whose email folds like email: none or
// one.
func (s *Service) AdminFind(ctx context.Context, email string) ([]*AccountRecord, error) {
	a, err := s.st.AccountByEmail(ctx, Fold(email))
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	rec, err := s.record(ctx, a)
	if err != nil {
		return nil, err
	}
	return []*AccountRecord{rec}, nil
}

func (s *Service) record(ctx context.Context, a *store.Account) (*AccountRecord, error) {
	sessions, err := s.st.CountTokens(ctx, a.UID, protocol.SessionToken)
	if err != nil {
		return nil, err
	}
	ds, err := s.devices.List(ctx, a.UID)
	if err != nil {
		return nil, err
	}
	_, err = s.st.RecoveryKey(ctx, a.UID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	return &AccountRecord{Account: a, Sessions: sessions, Devices: len(ds), HasRecoveryKey: err == nil}, nil
}

// AdminDevices lists the devices of account uid.
func (s *Service) AdminDevices(ctx context.Context, uid []byte) ([]store.Device, error) {
	if _, err := s.account(ctx, uid); err != nil {
		return nil, err
	}
	return s.devices.List(ctx, uid)
}

// adminEvent is the audit event of an admin action on account uid.
func adminEvent(action string, uid []byte) event {
	return event{action: action, uid: uid, actor: store.ActorAdmin}
}

// AdminRevokeDevice revokes device id of account uid as the user's
// device/destroy does.
func (s *Service) AdminRevokeDevice(ctx context.Context, c Caller, uid, id []byte) error {
	if _, err := s.account(ctx, uid); err != nil {
		return err
	}
	_, err := s.devices.Destroy(ctx, uid, id, func(q store.Queries, _ devices.Change, d *store.Device) error {
		e := adminEvent("admin.device.revoke", uid)
		e.deviceID, e.session = d.ID, d.SessionID
		return s.audit(ctx, q, c, e)
	})
	return deviceError(err)
}

// AdminRevokeSessions deletes every token and device of account uid.
func (s *Service) AdminRevokeSessions(ctx context.Context, c Caller, uid []byte) error {
	if _, err := s.account(ctx, uid); err != nil {
		return err
	}
	return s.st.WithTx(ctx, func(q store.Queries) error {
		if err := q.DeleteDevices(ctx, uid); err != nil {
			return err
		}
		if err := q.DeleteAccountTokens(ctx, uid); err != nil {
			return err
		}
		return s.audit(ctx, q, c, adminEvent("admin.sessions.revoke", uid))
	})
}

// AdminSetDisabled disables or enables account uid (idempotent; spec 10.3).
func (s *Service) AdminSetDisabled(ctx context.Context, c Caller, uid []byte, disabled bool) error {
	action := "admin.account.enable"
	if disabled {
		action = "admin.account.disable"
	}
	if _, err := s.account(ctx, uid); err != nil {
		return err
	}
	return s.st.WithTx(ctx, func(q store.Queries) error {
		if err := q.SetDisabled(ctx, uid, disabled); err != nil {
			return err
		}
		return s.audit(ctx, q, c, adminEvent(action, uid))
	})
}

// Audit returns the events q selects (spec 10.4).
func (s *Service) Audit(ctx context.Context, q store.EventQuery) ([]store.Event, error) {
	return s.st.Events(ctx, q)
}
