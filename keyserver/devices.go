package keyserver

import (
	"bytes"
	"errors"
	"time"

	"github.com/keyserver/keyserver/devices"
	"github.com/keyserver/keyserver/store"
)

// deviceJSON is the device record of spec 6.5. IsCurrentDevice is nil in
// the admin API's listing (10.2), which omits it.
type deviceJSON struct {
	ID              string  `json:"id"`
	Name            string  `json:"name"`
	Type            string  `json:"type"`
	CreatedAt       int64   `json:"createdAt"`
	LastAccessTime  int64   `json:"lastAccessTime"`
	IsCurrentDevice *bool   `json:"isCurrentDevice,omitempty"`
	PushCallback    *string `json:"pushCallback"`
	PushPublicKey   *string `json:"pushPublicKey"`
	PushAuthKey     *string `json:"pushAuthKey"`
}

// deviceOut is d as a record; current is nil for the admin view.
func deviceOut(d *store.Device, current *bool) deviceJSON {
	return deviceJSON{
		ID: hexString(d.ID), Name: d.Name, Type: d.Type,
		CreatedAt: d.CreatedAt.UnixMilli(), LastAccessTime: d.LastAccessAt.UnixMilli(), IsCurrentDevice: current,
		PushCallback: nullString(d.PushCallback), PushPublicKey: nullString(d.PushPublicKey), PushAuthKey: nullString(d.PushAuthKey),
	}
}

// nullString is nil for "" (JSON null).
func nullString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// nullHex is the hex of b, or nil (JSON null) for none.
func nullHex(b []byte) *string {
	if b == nil {
		return nil
	}
	s := hexString(b)
	return &s
}

// deviceError maps the registry's errors to the spec's.
func deviceError(err error) error {
	var fe *devices.FieldError
	switch {
	case errors.As(err, &fe) && fe.Missing:
		return errMissingParam(fe.Field)
	case errors.As(err, &fe):
		return errInvalidParam(fe.Field)
	case errors.Is(err, devices.ErrUnknownDevice):
		return errUnknownDevice()
	case errors.Is(err, devices.ErrSessionHasDevice):
		return errDeviceExists()
	case errors.Is(err, store.ErrNotFound):
		return errInvalidToken() // the session ended meanwhile
	}
	return err
}

// GET /v1/account/devices (Hawk sessionToken; spec 6.5).
func (s *Server) accountDevices(req *request) (any, error) {
	if err := noBody(req); err != nil {
		return nil, err
	}
	ds, err := s.devices.List(req.r.Context(), req.account.UID)
	if err != nil {
		return nil, err
	}
	out := make([]deviceJSON, len(ds))
	for i := range ds {
		current := bytes.Equal(ds[i].SessionID, req.token.ID)
		out[i] = deviceOut(&ds[i], &current)
	}
	return map[string][]deviceJSON{"devices": out}, nil
}

// POST /v1/account/device (Hawk sessionToken; spec 6.5, C16): registers the
// session's device, or updates it when id is given.
func (s *Server) accountDevice(req *request) (any, error) {
	o, err := parseObject(req.r, req.body)
	if err != nil {
		return nil, err
	}
	idHex, hasID, err := o.OptionalString("id", func(v string) bool { _, ok := decodeHex(v, 16); return ok })
	if err != nil {
		return nil, err
	}
	var f devices.Fields
	register := !hasID // name and type are required to register
	members := []struct {
		name     string
		dst      **string
		valid    func(string) bool
		required bool
	}{
		{"name", &f.Name, devices.ValidName, register},
		{"type", &f.Type, devices.ValidType, register},
		{"pushCallback", &f.PushCallback, devices.ValidPushCallback, false},
		{"pushPublicKey", &f.PushPublicKey, devices.ValidPushPublicKey, false},
		{"pushAuthKey", &f.PushAuthKey, devices.ValidPushAuthKey, false},
	}
	for _, m := range members {
		var v string
		present := true
		if m.required {
			v, err = o.String(m.name, m.valid)
		} else {
			v, present, err = o.OptionalString(m.name, m.valid)
		}
		if err != nil {
			return nil, err
		}
		if present {
			*m.dst = &v
		}
	}
	if err := f.Validate(); err != nil { // the push key pairing
		return nil, deviceError(err)
	}
	if err := o.End(); err != nil {
		return nil, err
	}
	var id []byte
	if hasID {
		id, _ = decodeHex(idHex, 16)
	}
	ctx := req.r.Context()
	d, err := s.devices.Save(ctx, req.account.UID, req.token.ID, id, f, func(q store.Queries, c devices.Change, d *store.Device) error {
		return s.audit(ctx, q, event{action: string(c), uid: req.account.UID, deviceID: d.ID, session: req.token.ID})
	})
	if err != nil {
		return nil, deviceError(err)
	}
	current := true
	return deviceOut(d, &current), nil
}

// POST /v1/account/device/destroy (Hawk sessionToken; spec 6.5): the
// device, its session and that session's keyFetchTokens go at once.
func (s *Server) accountDeviceDestroy(req *request) (any, error) {
	o, err := parseObject(req.r, req.body)
	if err != nil {
		return nil, err
	}
	id, err := o.Hex("id", 16)
	if err != nil {
		return nil, err
	}
	if err := o.End(); err != nil {
		return nil, err
	}
	ctx := req.r.Context()
	_, err = s.devices.Destroy(ctx, req.account.UID, id, func(q store.Queries, c devices.Change, d *store.Device) error {
		return s.audit(ctx, q, event{action: string(c), uid: req.account.UID, deviceID: d.ID, session: req.token.ID})
	})
	if err != nil {
		return nil, deviceError(err)
	}
	return emptyObject, nil
}

// User view of the audit log (C18).
const (
	userEventsWindow = 30 * 24 * time.Hour
	userEventsLimit  = 100
)

// userEventJSON is an event as GET /v1/account/events shows it; ip is null
// for admin events.
type userEventJSON struct {
	Time     int64   `json:"time"`
	Action   string  `json:"action"`
	Outcome  string  `json:"outcome"`
	Actor    string  `json:"actor"`
	DeviceID *string `json:"deviceId"`
	IP       *string `json:"ip"`
}

// GET /v1/account/events (Hawk sessionToken; spec 10.4): the account's
// events of the last 30 days, newest first, at most 100.
func (s *Server) accountEvents(req *request) (any, error) {
	if err := noBody(req); err != nil {
		return nil, err
	}
	es, err := s.store.Events(req.r.Context(), store.EventQuery{
		UID: req.account.UID, Since: s.now().Add(-userEventsWindow), Limit: userEventsLimit, Newest: true,
	})
	if err != nil {
		return nil, err
	}
	out := make([]userEventJSON, len(es))
	for i, e := range es {
		ip := &e.IP
		if e.Actor == store.ActorAdmin {
			ip = nil
		}
		out[i] = userEventJSON{e.Time.UnixMilli(), e.Action, e.Outcome, e.Actor, nullHex(e.DeviceID), ip}
	}
	return map[string][]userEventJSON{"events": out}, nil
}
