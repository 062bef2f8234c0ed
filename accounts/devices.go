package accounts

import (
	"context"
	"errors"

	"github.com/keyserver/keyserver/customs"
	"github.com/keyserver/keyserver/devices"
	"github.com/keyserver/keyserver/store"
)

// Devices lists the caller's account's devices (spec 6.5).
func (s *Service) Devices(ctx context.Context, c Caller) ([]store.Device, error) {
	return s.devices.List(ctx, c.Account.UID)
}

// SaveDevice registers the caller's session's device, or updates it when
// id is given (spec 6.5, C16; see devices.Registry.Save).
func (s *Service) SaveDevice(ctx context.Context, c Caller, id []byte, f devices.Fields) (*store.Device, error) {
	d, err := s.devices.Save(ctx, c.Account.UID, c.Token.ID, id, f, s.recordDevice(ctx, c))
	if err != nil {
		return nil, deviceError(err)
	}
	return d, nil
}

// DestroyDevice revokes a device of the caller's account: its session and
// that session's keyFetchTokens go with it.
func (s *Service) DestroyDevice(ctx context.Context, c Caller, id []byte) error {
	_, err := s.devices.Destroy(ctx, c.Account.UID, id, s.recordDevice(ctx, c))
	return deviceError(err)
}

// recordDevice audits a device change of the caller in its transaction.
func (s *Service) recordDevice(ctx context.Context, c Caller) devices.RecordFunc {
	return func(q store.Queries, ch devices.Change, d *store.Device) error {
		return s.audit(ctx, q, c, event{action: string(ch), uid: c.Account.UID, deviceID: d.ID, session: c.Token.ID})
	}
}

// IssueCertificate lets issue sign a certificate for the caller's verified
// account (104 otherwise), with the id of the session's device if it has
// one, and audits the issuance (spec 7.1) ephemerally.
func (s *Service) IssueCertificate(ctx context.Context, c Caller, issue func(deviceID []byte) (string, error)) (string, error) {
	if err := s.check(ctx, customs.CertSign, customs.Request{IP: c.IP, UID: c.Account.UID, Session: c.Token.ID}); err != nil {
		return "", err // R7 (spec 14.2)
	}
	if !c.Account.Verified {
		return "", ErrUnverified
	}
	ev := event{action: "certificate.sign", uid: c.Account.UID, session: c.Token.ID}
	if d, err := s.st.DeviceBySession(ctx, c.Token.ID); err == nil {
		ev.deviceID = d.ID
	} else if !errors.Is(err, store.ErrNotFound) {
		return "", err
	}
	cert, err := issue(ev.deviceID)
	if err != nil {
		return "", err
	}
	err = s.st.WithTx(store.Ephemeral(ctx), func(q store.Queries) error { return s.audit(ctx, q, c, ev) })
	if err != nil {
		return "", err
	}
	return cert, nil
}
