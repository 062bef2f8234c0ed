// Package devices holds the rules of the device registry (spec 6.5, Product
// decision D10, Clarification C16) over the store: field validation,
// registration (idempotent per sessionToken, one device per session),
// updates, revocation and the coalesced last-access time.
//
// A device belongs to exactly one sessionToken. Destroying a device deletes
// that sessionToken, which cascades in the store to the device and to the
// unused keyFetchTokens issued with it, all in one transaction: a revoked
// device can neither call the API nor renew certificates.
//
// Every change runs in a transaction that also calls the caller's
// RecordFunc, so that an audit event commits or rolls back with it.
package devices

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/keyserver/keyserver/protocol"
	"github.com/keyserver/keyserver/store"
)

// TouchInterval is how stale a device's last-access time must be (more than
// this) before a use of its session writes a new one (spec 6.5 allows once a minute).
const TouchInterval = time.Minute

var (
	// ErrUnknownDevice: the device does not exist, or is not the caller's
	// (another account's, or for updates another session's). Callers must
	// not tell these apart (errno 123).
	ErrUnknownDevice = errors.New("devices: unknown device")
	// ErrSessionHasDevice: a registration without id from a session whose
	// device differs from the request (errno 124).
	ErrSessionHasDevice = errors.New("devices: session already registered a device")
)

// Change names what a registry call changed; the values are the audit
// actions of spec 10.4.
type Change string

// Changes reported to a RecordFunc.
const (
	Registered Change = "device.register"
	Updated    Change = "device.update"
	Destroyed  Change = "device.destroy"
)

// RecordFunc is called inside the transaction of a change, after the change,
// with the device as it now is (for Destroyed: as it was). An error rolls
// the change back.
type RecordFunc func(q store.Queries, c Change, d *store.Device) error

// Registry applies the rules to a store.
type Registry struct {
	st   store.Store
	now  func() time.Time
	rand io.Reader
}

// New returns a registry over st; now and rand give the clock and the
// source of device ids.
func New(st store.Store, now func() time.Time, rand io.Reader) *Registry {
	return &Registry{st: st, now: now, rand: rand}
}

// Save registers or updates the device of the session sessionID of account
// uid (POST /v1/account/device):
//
//   - id nil (Name and Type required): a session without a device gets a new
//     one; a session with one gets it back unchanged when every given field
//     equals the stored value (an idempotent retry), else ErrSessionHasDevice.
//   - id given: the session's own device takes the given fields; any other
//     id is ErrUnknownDevice.
//
// record is called only when something changed. Concurrent registrations
// by one session create exactly one device: the loser of the race sees the
// winner's device and applies the retry rule to it.
func (r *Registry) Save(ctx context.Context, uid, sessionID, id []byte, f Fields, record RecordFunc) (*store.Device, error) {
	if err := f.validate(id == nil); err != nil {
		return nil, err
	}
	if f.Rest != nil {
		if err := f.Rest(); err != nil {
			return nil, err
		}
	}
	for attempt := 0; ; attempt++ {
		var d *store.Device
		err := r.st.WithTx(ctx, func(q store.Queries) (err error) {
			d, err = r.save(ctx, q, uid, sessionID, id, f, record)
			return err
		})
		if errors.Is(err, store.ErrConflict) && attempt == 0 {
			continue // a concurrent registration of this session won
		}
		return d, err
	}
}

func (r *Registry) save(ctx context.Context, q store.Queries, uid, sessionID, id []byte, f Fields, record RecordFunc) (*store.Device, error) {
	if id != nil {
		d, err := q.Device(ctx, uid, id)
		if errors.Is(err, store.ErrNotFound) || (err == nil && !bytes.Equal(d.SessionID, sessionID)) {
			return nil, ErrUnknownDevice
		} else if err != nil {
			return nil, err
		}
		if f.matches(d) { // includes id alone: nothing changes
			return d, nil
		}
		f.apply(d)
		if err := q.UpdateDevice(ctx, d); err != nil {
			return nil, err
		}
		return d, record(q, Updated, d)
	}

	d, err := q.DeviceBySession(ctx, sessionID)
	switch {
	case err == nil && f.matches(d):
		return d, nil
	case err == nil:
		return nil, ErrSessionHasDevice
	case !errors.Is(err, store.ErrNotFound):
		return nil, err
	}
	newID := make([]byte, 16)
	if _, err := io.ReadFull(r.rand, newID); err != nil {
		return nil, fmt.Errorf("devices: random id: %w", err)
	}
	now := r.now()
	d = &store.Device{ID: newID, UID: uid, SessionID: sessionID, CreatedAt: now, LastAccessAt: now}
	f.apply(d)
	// ErrConflict when a concurrent request of this session inserted first;
	// ErrNotFound when the session has just been deleted.
	if err := q.CreateDevice(ctx, d); err != nil {
		return nil, err
	}
	return d, record(q, Registered, d)
}

// List returns every device of the account, ordered by creation time, then
// id.
func (r *Registry) List(ctx context.Context, uid []byte) ([]store.Device, error) {
	return r.st.Devices(ctx, uid)
}

// Destroy deletes the account's device id together with its sessionToken
// and that session's unused keyFetchTokens, in one transaction with record.
// ErrUnknownDevice when the account has no such device.
func (r *Registry) Destroy(ctx context.Context, uid, id []byte, record RecordFunc) (*store.Device, error) {
	var d *store.Device
	err := r.st.WithTx(ctx, func(q store.Queries) (err error) {
		if d, err = q.Device(ctx, uid, id); err != nil {
			return err
		}
		// The device and keyFetchTokens go with the session (store cascade).
		if err := q.DeleteToken(ctx, protocol.SessionToken, d.SessionID); err != nil {
			return err
		}
		return record(q, Destroyed, d)
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrUnknownDevice
	}
	return d, err
}

// Touch records an authenticated use of the session sessionID: the last
// access time of its device, if it has one, is written only when it is
// more than TouchInterval old, so most requests cost one read and no write.
// The write is ephemeral (package store): a crash may lose it.
func (r *Registry) Touch(ctx context.Context, sessionID []byte) error {
	d, err := r.st.DeviceBySession(ctx, sessionID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	now := r.now()
	if !d.LastAccessAt.Before(now.Add(-TouchInterval)) {
		return nil // the store's rule too: no write
	}
	_, err = r.st.TouchDevice(store.Ephemeral(ctx), d.ID, now, TouchInterval)
	return err
}
