package storetest

import (
	"testing"
	"time"

	"github.com/keyserver/keyserver/protocol"
	"github.com/keyserver/keyserver/store"
)

func testDevices(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := mustAccount(t, s, "alice@example.org")
	b := mustAccount(t, s, "bob@example.org")
	sessions := make([]*store.Token, 4)
	for i := range sessions {
		sessions[i] = mustToken(t, s, newToken(protocol.SessionToken, a.UID))
	}

	d := newDevice(a.UID, sessions[0].ID)
	d.PushCallback, d.PushPublicKey, d.PushAuthKey = "https://push.example.org/x", "BPub", "auth"
	mustDevice(t, s, d)
	got, err := s.Device(ctx, a.UID, d.ID)
	if err != nil {
		t.Fatalf("Device: %v", err)
	}
	sameRecord(t, got, d)
	got, err = s.DeviceBySession(ctx, sessions[0].ID)
	if err != nil {
		t.Fatalf("DeviceBySession: %v", err)
	}
	sameRecord(t, got, d)
	_, err = s.Device(ctx, b.UID, d.ID)
	wantErr(t, "Device(other account's uid)", err, store.ErrNotFound)
	_, err = s.Device(ctx, a.UID, rnd(16))
	wantErr(t, "Device(unknown)", err, store.ErrNotFound)
	_, err = s.DeviceBySession(ctx, sessions[1].ID)
	wantErr(t, "DeviceBySession(session without device)", err, store.ErrNotFound)

	wantErr(t, "CreateDevice(second for one session)", s.CreateDevice(ctx, newDevice(a.UID, sessions[0].ID)), store.ErrConflict)
	dup := newDevice(a.UID, sessions[1].ID)
	dup.ID = d.ID
	wantErr(t, "CreateDevice(id taken)", s.CreateDevice(ctx, dup), store.ErrConflict)

	// UpdateDevice replaces name, type and push fields; "" clears.
	d.Name, d.Type, d.PushCallback, d.PushPublicKey, d.PushAuthKey = "Phone ✓", "mobile", "", "", ""
	if err := s.UpdateDevice(ctx, d); err != nil {
		t.Fatalf("UpdateDevice: %v", err)
	}
	got, err = s.Device(ctx, a.UID, d.ID)
	if err != nil {
		t.Fatalf("Device: %v", err)
	}
	sameRecord(t, got, d)
	wantErr(t, "UpdateDevice(unknown)", s.UpdateDevice(ctx, newDevice(a.UID, sessions[1].ID)), store.ErrNotFound)

	// Devices are ordered by CreatedAt, then ID.
	later, early1, early2 := newDevice(a.UID, sessions[1].ID), newDevice(a.UID, sessions[2].ID), newDevice(a.UID, sessions[3].ID)
	later.CreatedAt = t0.Add(time.Hour)
	early1.CreatedAt, early2.CreatedAt = t0.Add(-time.Hour), t0.Add(-time.Hour)
	early1.ID[0], early2.ID[0] = 0xff, 0x00
	for _, dev := range []*store.Device{later, early1, early2} {
		mustDevice(t, s, dev)
	}
	ds, err := s.Devices(ctx, a.UID)
	if err != nil {
		t.Fatalf("Devices: %v", err)
	}
	want := []*store.Device{early2, early1, d, later}
	if len(ds) != len(want) {
		t.Fatalf("Devices returned %d, want %d", len(ds), len(want))
	}
	for i := range want {
		sameRecord(t, &ds[i], want[i])
	}
	if ds, err := s.Devices(ctx, b.UID); err != nil || len(ds) != 0 {
		t.Errorf("Devices(account without devices) = %d, %v; want none", len(ds), err)
	}

	if err := s.DeleteDevices(ctx, a.UID); err != nil {
		t.Fatalf("DeleteDevices: %v", err)
	}
	if ds, err := s.Devices(ctx, a.UID); err != nil || len(ds) != 0 {
		t.Errorf("Devices after DeleteDevices = %d, %v; want none", len(ds), err)
	}
	if n := countTokens(t, s, a.UID, protocol.SessionToken); n != len(sessions) {
		t.Errorf("DeleteDevices deleted sessions: %d left, want %d", n, len(sessions))
	}
}

func testTouchDevice(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := mustAccount(t, s, "alice@example.org")
	d := mustDevice(t, s, newDevice(a.UID, mustToken(t, s, newToken(protocol.SessionToken, a.UID)).ID))
	lastAccess := func() time.Time {
		t.Helper()
		got, err := s.Device(ctx, a.UID, d.ID)
		if err != nil {
			t.Fatalf("Device: %v", err)
		}
		return got.LastAccessAt
	}

	wrote, err := s.TouchDevice(ctx, d.ID, t0.Add(30*time.Second), time.Minute)
	if err != nil || wrote {
		t.Errorf("TouchDevice(30s later, minAge 1m) = %v, %v; want false", wrote, err)
	}
	if got := lastAccess(); !got.Equal(t0) {
		t.Errorf("LastAccessAt = %v after a no-op touch, want %v", got, t0)
	}
	at := t0.Add(61 * time.Second)
	wrote, err = s.TouchDevice(ctx, d.ID, at, time.Minute)
	if err != nil || !wrote {
		t.Errorf("TouchDevice(61s later, minAge 1m) = %v, %v; want true", wrote, err)
	}
	if got := lastAccess(); !got.Equal(at) {
		t.Errorf("LastAccessAt = %v, want %v", got, at)
	}
	wrote, err = s.TouchDevice(ctx, d.ID, at.Add(time.Second), 0)
	if err != nil || !wrote {
		t.Errorf("TouchDevice(1s later, minAge 0) = %v, %v; want true", wrote, err)
	}
}
