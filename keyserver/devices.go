package keyserver

import (
	"bytes"

	"github.com/keyserver/keyserver/devices"
	"github.com/keyserver/keyserver/protocol"
	"github.com/keyserver/keyserver/store"
)

// deviceOut is d as a record; current is nil for the admin view.
func deviceOut(d *store.Device, current *bool) protocol.Device {
	return protocol.Device{
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

// GET /v1/account/devices (Hawk sessionToken; spec 6.5).
func (s *Server) accountDevices(req *request) (any, error) {
	if err := noBody(req); err != nil {
		return nil, err
	}
	ds, err := s.accounts.Devices(req.r.Context(), req.caller)
	if err != nil {
		return nil, err
	}
	out := make([]protocol.Device, len(ds))
	for i := range ds {
		current := bytes.Equal(ds[i].SessionID, req.caller.Token.ID)
		out[i] = deviceOut(&ds[i], &current)
	}
	return map[string][]protocol.Device{"devices": out}, nil
}

// POST /v1/account/device (Hawk sessionToken; spec 6.5, C16): registers the
// session's device, or updates it when id is given. The registry validates
// the members (devices.Members), then lets End report unknown ones (C12).
func (s *Server) accountDevice(req *request) (any, error) {
	o, err := parseObject(req.r, req.body)
	if err != nil {
		return nil, err
	}
	idHex, hasID, err := o.OptionalString("id", func(v string) bool { _, ok := decodeHex(v, 16); return ok })
	if err != nil {
		return nil, err
	}
	f := devices.Fields{Rest: o.End}
	for _, m := range devices.Members {
		v, present, err := o.OptionalString(m.Name, nil)
		if err != nil {
			return nil, err
		}
		if present {
			m.Set(&f, v)
		}
	}
	var id []byte
	if hasID {
		id, _ = decodeHex(idHex, 16)
	}
	d, err := s.accounts.SaveDevice(req.r.Context(), req.caller, id, f)
	if err != nil {
		return nil, err
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
	return emptyObject, s.accounts.DestroyDevice(req.r.Context(), req.caller, id)
}

// GET /v1/account/events (Hawk sessionToken; spec 10.4): the account's
// events of the last 30 days, newest first, at most 100.
func (s *Server) accountEvents(req *request) (any, error) {
	if err := noBody(req); err != nil {
		return nil, err
	}
	es, err := s.accounts.UserEvents(req.r.Context(), req.caller)
	if err != nil {
		return nil, err
	}
	out := make([]protocol.UserEvent, len(es))
	for i, e := range es {
		ip := &e.IP
		if e.Actor == store.ActorAdmin {
			ip = nil
		}
		out[i] = protocol.UserEvent{Time: e.Time.UnixMilli(), Action: e.Action, Outcome: e.Outcome, Actor: e.Actor, DeviceID: nullHex(e.DeviceID), IP: ip}
	}
	return map[string][]protocol.UserEvent{"events": out}, nil
}
