package keyserver_test

import (
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyserver/keyserver/client"
	"github.com/keyserver/keyserver/keyserver"
	"github.com/keyserver/keyserver/protocol"
	"github.com/keyserver/keyserver/store"
)

func str(s string) *string { return &s }

// Two devices on one account: each sees both with isCurrentDevice right; A
// destroys B, whose very next request fails with 110; A is unaffected.
func TestDeviceRevocation(t *testing.T) {
	f := newAPIFixture(t)
	ctx := t.Context()
	f.account(t, "owner@example.com")
	a, b := f.login(t, "owner@example.com"), f.login(t, "owner@example.com")
	dA := f.device(t, a, "Laptop", "desktop")
	dB := f.device(t, b, "Phone", "mobile")
	if !dA.Current() || dA.PushCallback != nil || dA.LastAccessTime != dA.CreatedAt || len(dA.ID) != 32 {
		t.Fatalf("registered %+v", dA)
	}

	for _, view := range []struct {
		s       *client.Session
		current string
	}{{a, dA.ID}, {b, dB.ID}} {
		ds, err := f.c.Devices(ctx, view.s.SessionToken)
		if err != nil || len(ds) != 2 || ds[0].ID != dA.ID || ds[1].ID != dB.ID {
			t.Fatalf("devices: %v %+v", err, ds)
		}
		for _, d := range ds {
			if d.Current() != (d.ID == view.current) {
				t.Fatalf("isCurrentDevice of %s seen from %s: %v", d.Name, view.current, d.Current())
			}
		}
	}
	// The wire form: every member, push fields null when unset.
	status, body := f.raw(t, "GET", "/v1/account/devices", "", a.SessionToken)
	rec := body["devices"].([]any)[1].(map[string]any)
	if status != 200 || len(rec) != 9 || rec["pushCallback"] != nil || rec["isCurrentDevice"] != false || rec["name"] != "Phone" {
		t.Fatalf("wire record: %d %v", status, body)
	}
	if _, present := rec["pushAuthKey"]; !present {
		t.Fatalf("pushAuthKey missing: %v", rec)
	}

	if err := f.c.DestroyDevice(ctx, a.SessionToken, dB.ID); err != nil {
		t.Fatalf("destroy B: %v", err)
	}
	_, err := f.c.Keys(ctx, b.KeyFetchToken, b.UnwrapBKey)
	wantErrno(t, "B's keys", err, 110)
	_, err = f.c.Devices(ctx, b.SessionToken)
	wantErrno(t, "B's device list", err, 110)
	_, _, err = f.c.RecoveryEmailStatus(ctx, b.SessionToken)
	wantErrno(t, "B's status", err, 110)
	_, err = f.c.RegisterDevice(ctx, b.SessionToken, client.DeviceFields{Name: str("Phone"), Type: str("mobile")})
	wantErrno(t, "B registering again", err, 110)

	if _, err := f.c.Keys(ctx, a.KeyFetchToken, a.UnwrapBKey); err != nil {
		t.Fatalf("A's keys: %v", err)
	}
	ds, err := f.c.Devices(ctx, a.SessionToken)
	if err != nil || len(ds) != 1 || ds[0].ID != dA.ID || !ds[0].Current() {
		t.Fatalf("A's devices after: %v %+v", err, ds)
	}
	err = f.c.DestroyDevice(ctx, a.SessionToken, dB.ID)
	wantErrno(t, "destroy B again", err, 123)

	// Destroying the current device ends the current session.
	if err := f.c.DestroyDevice(ctx, a.SessionToken, dA.ID); err != nil {
		t.Fatalf("destroy A: %v", err)
	}
	_, err = f.c.Devices(ctx, a.SessionToken)
	wantErrno(t, "A after destroying itself", err, 110)

	events := f.auditActions(t, "device.destroy")
	if len(events) != 2 || events[0].Actor != "user" || *events[0].DeviceID != dB.ID || *events[1].DeviceID != dA.ID ||
		*events[0].SessionID != hexOf(sessionID(a))[:16] {
		t.Fatalf("device.destroy events %+v", events)
	}
}

// sessionID is the tokenId of a session's sessionToken.
func sessionID(s *client.Session) []byte {
	id, _ := hex.DecodeString(client.TokenCredentials("sessionToken", s.SessionToken).ID)
	return id
}

// auditActions returns every event of the audit log with this action.
func (f *apiFixture) auditActions(t *testing.T, action string) []protocol.AuditEvent {
	t.Helper()
	page, err := f.admin.Audit(t.Context(), client.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var out []protocol.AuditEvent
	for _, e := range page.Events {
		if e.Action == action {
			out = append(out, e)
		}
	}
	return out
}

func pushKeys(t *testing.T) (pub, auth string) {
	t.Helper()
	k, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	auth16 := make([]byte, 16)
	_, _ = rand.Read(auth16)
	return base64.RawURLEncoding.EncodeToString(k.PublicKey().Bytes()), base64.RawURLEncoding.EncodeToString(auth16)
}

func TestDeviceRegisterRules(t *testing.T) {
	f := newAPIFixture(t)
	ctx := t.Context()
	f.account(t, "rules@example.com")
	f.account(t, "other@example.com")
	a, b := f.login(t, "rules@example.com"), f.login(t, "rules@example.com")
	o := f.login(t, "other@example.com")

	d := f.device(t, a, "Laptop", "desktop")
	again := f.device(t, a, "Laptop", "desktop")
	if again.ID != d.ID {
		t.Fatalf("idempotent retry gave another device: %s vs %s", again.ID, d.ID)
	}
	_, err := f.c.RegisterDevice(ctx, a.SessionToken, client.DeviceFields{Name: str("Other"), Type: str("desktop")})
	wantErrno(t, "second device for a session", err, 124)

	pub, auth := pushKeys(t)
	upd, err := f.c.UpdateDevice(ctx, a.SessionToken, strings.ToUpper(d.ID), client.DeviceFields{
		Name: str("Work laptop"), PushCallback: str("https://push.example.com/x"), PushPublicKey: &pub, PushAuthKey: &auth})
	if err != nil || upd.ID != d.ID || upd.Name != "Work laptop" || upd.Type != "desktop" || *upd.PushPublicKey != pub {
		t.Fatalf("update: %v %+v", err, upd)
	}
	same, err := f.c.UpdateDevice(ctx, a.SessionToken, d.ID, client.DeviceFields{})
	if err != nil || same.Name != "Work laptop" || *same.PushAuthKey != auth {
		t.Fatalf("id alone: %v %+v", err, same)
	}
	cleared, err := f.c.UpdateDevice(ctx, a.SessionToken, d.ID, client.DeviceFields{PushPublicKey: str(""), PushAuthKey: str("")})
	if err != nil || cleared.PushPublicKey != nil || cleared.PushAuthKey != nil || cleared.PushCallback == nil {
		t.Fatalf("clearing keys: %v %+v", err, cleared)
	}

	// Another session, of this account or another, cannot claim the id.
	for _, s := range []*client.Session{b, o} {
		_, err = f.c.UpdateDevice(ctx, s.SessionToken, d.ID, client.DeviceFields{Name: str("Mine")})
		wantErrno(t, "update another session's device", err, 123)
		_, err = f.c.UpdateDevice(ctx, s.SessionToken, d.ID, client.DeviceFields{})
		wantErrno(t, "claim another session's device by id alone", err, 123)
	}
	err = f.c.DestroyDevice(ctx, o.SessionToken, d.ID)
	wantErrno(t, "destroy another account's device", err, 123)
	dB := f.device(t, b, "Tablet", "tablet")
	if dB.ID == d.ID {
		t.Fatal("second session got the first session's device")
	}

	if got := f.auditActions(t, "device.register"); len(got) != 2 {
		t.Fatalf("device.register events: %d, want 2", len(got))
	}
	if got := f.auditActions(t, "device.update"); len(got) != 2 || *got[0].DeviceID != d.ID || got[0].Actor != "user" {
		t.Fatalf("device.update events: %+v", got)
	}
}

func TestDeviceValidation(t *testing.T) {
	f := newAPIFixture(t)
	f.account(t, "v@example.com")
	s := f.login(t, "v@example.com")
	pub, auth := pushKeys(t)
	unknown := strings.Repeat("ab", 16)
	cases := []struct {
		body   string
		status int
		errno  int
		param  string
	}{
		{`{}`, 400, 108, "name"},
		{`{"type":"phone"}`, 400, 108, "name"},
		{`{"name":"x"}`, 400, 108, "type"},
		{`{"name":"","type":"desktop"}`, 400, 107, "name"},
		{`{"name":"` + strings.Repeat("x", 256) + `","type":"desktop"}`, 400, 107, "name"},
		{`{"name":"a\u0007b","type":"desktop"}`, 400, 107, "name"},
		{`{"name":1,"type":"phone"}`, 400, 107, "name"},
		{`{"name":null,"type":"desktop"}`, 400, 107, "name"},
		{`{"name":"x","type":"phone"}`, 400, 107, "type"},
		{`{"name":"x","type":"desktop","pushCallback":"http://push.example.com/","foo":1}`, 400, 107, "pushCallback"},
		{`{"name":"x","type":"desktop","pushCallback":"https://p.example/` + strings.Repeat("a", 2048) + `"}`, 400, 107, "pushCallback"},
		{`{"name":"x","type":"desktop","pushPublicKey":"AAAA","pushAuthKey":"` + auth + `"}`, 400, 107, "pushPublicKey"},
		{`{"name":"x","type":"desktop","pushPublicKey":"` + pub + `","pushAuthKey":"AAAA"}`, 400, 107, "pushAuthKey"},
		{`{"name":"x","type":"desktop","pushPublicKey":"` + pub + `"}`, 400, 107, "pushAuthKey"},
		{`{"name":"x","type":"desktop","pushAuthKey":"` + auth + `"}`, 400, 107, "pushAuthKey"},
		{`{"name":"x","type":"desktop","pushPublicKey":"","pushAuthKey":"` + auth + `"}`, 400, 107, "pushAuthKey"},
		{`{"name":"x","type":"desktop","foo":1}`, 400, 107, "foo"},
		{`{"id":"zz","name":"x"}`, 400, 107, "id"},
		{`{"id":"` + unknown + `"}`, 400, 123, ""},
		{`{"id":"` + unknown + `","name":""}`, 400, 107, "name"},
		{`[]`, 400, 106, ""},
		{`{"name":"x","name":"y","type":"desktop"}`, 400, 106, ""},
	}
	for _, c := range cases {
		status, body := f.raw(t, "POST", "/v1/account/device", c.body, s.SessionToken)
		wantError(t, c.body[:min(len(c.body), 60)], status, body, c.status, c.errno, c.param)
	}
	// Destroy: id required and hex32.
	for _, c := range []struct {
		body  string
		errno int
		param string
	}{{`{}`, 108, "id"}, {`{"id":"xyz"}`, 107, "id"}, {`{"id":"` + unknown + `","x":1}`, 107, "x"}, {`{"id":"` + unknown + `"}`, 123, ""}} {
		status, body := f.raw(t, "POST", "/v1/account/device/destroy", c.body, s.SessionToken)
		wantError(t, "destroy "+c.body, status, body, 400, c.errno, c.param)
	}
	// A body needs a payload hash.
	_, err := f.c.DoRaw(t.Context(), &client.RawRequest{Method: "POST", Path: "/v1/account/device",
		Body: []byte(`{"name":"x","type":"cli"}`), ContentType: "application/json", NoHash: true,
		Cred: client.TokenCredentials("sessionToken", s.SessionToken)}, nil)
	wantErrno(t, "body without hash", err, 109)
	// A GET with a body is refused.
	status, body := f.raw(t, "GET", "/v1/account/devices", `{}`, s.SessionToken)
	wantError(t, "devices with a body", status, body, 400, 106, "")
	if ds, err := f.c.Devices(t.Context(), s.SessionToken); err != nil || len(ds) != 0 {
		t.Fatalf("a refused request registered a device: %v %v", err, ds)
	}
}

// Concurrent registrations with one session create exactly one device.
func TestDeviceConcurrentRegistration(t *testing.T) {
	f := newAPIFixture(t)
	f.account(t, "race@example.com")
	s := f.login(t, "race@example.com")
	const n = 12
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			d, err := f.c.RegisterDevice(t.Context(), s.SessionToken, client.DeviceFields{Name: str("Phone"), Type: str("mobile")})
			if err != nil {
				t.Errorf("registration %d: %v", i, err)
				return
			}
			ids[i] = d.ID
		})
	}
	wg.Wait()
	for i := range n {
		if ids[i] != ids[0] {
			t.Fatalf("registration %d got %s, first got %s", i, ids[i], ids[0])
		}
	}
	if ds, err := f.c.Devices(t.Context(), s.SessionToken); err != nil || len(ds) != 1 {
		t.Fatalf("devices: %v %d", err, len(ds))
	}
}

// lastAccessTime follows the use of the session, written at most once a
// minute.
func TestDeviceLastAccess(t *testing.T) {
	f := newAPIFixture(t, func(c *keyserver.Config) { c.HawkSkew = time.Hour })
	f.account(t, "clock@example.com")
	s := f.login(t, "clock@example.com")
	d := f.device(t, s, "Laptop", "desktop")
	last := func() int64 {
		ds, err := f.c.Devices(t.Context(), s.SessionToken)
		if err != nil || len(ds) != 1 {
			t.Fatalf("devices: %v", err)
		}
		return ds[0].LastAccessTime
	}
	f.advance(30 * time.Second)
	if got := last(); got != d.CreatedAt {
		t.Fatalf("lastAccessTime moved after 30 s: %d -> %d", d.CreatedAt, got)
	}
	f.advance(31 * time.Second)
	got := last()
	if got < d.CreatedAt+61_000 || got > d.CreatedAt+70_000 {
		t.Fatalf("lastAccessTime after 61 s: %d, created %d", got, d.CreatedAt)
	}
	if again := last(); again != got {
		t.Fatalf("lastAccessTime rewritten within a minute: %d -> %d", got, again)
	}
}

// Password change and reset delete every device and session of the account,
// and nothing of other accounts.
func TestResetDeletesDevices(t *testing.T) {
	f := newAPIFixture(t)
	ctx := t.Context()
	uidX := f.account(t, "x@example.com")
	uidY := f.account(t, "y@example.com")
	y := f.login(t, "y@example.com")
	f.device(t, y, "Y phone", "mobile")

	check := func(what string, olds ...*client.Session) {
		t.Helper()
		for _, s := range olds {
			_, err := f.c.Devices(ctx, s.SessionToken)
			wantErrno(t, what+": old session", err, 110)
		}
		if ds, _ := f.st.Devices(ctx, uidX); len(ds) != 0 {
			t.Fatalf("%s: %d devices left", what, len(ds))
		}
		for _, typ := range protocol.TokenTypes {
			if n, _ := f.st.CountTokens(ctx, uidX, typ); n != 0 {
				t.Fatalf("%s: %d %s left", what, n, typ)
			}
		}
		if ds, _ := f.st.Devices(ctx, uidY); len(ds) != 1 {
			t.Fatalf("%s: other account has %d devices", what, len(ds))
		}
		if n, _ := f.st.CountTokens(ctx, uidY, protocol.SessionToken); n != 1 {
			t.Fatalf("%s: other account has %d sessions", what, n)
		}
		if _, err := f.c.Devices(ctx, y.SessionToken); err != nil {
			t.Fatalf("%s: other account's session: %v", what, err)
		}
	}

	s1, s2 := f.login(t, "x@example.com"), f.login(t, "x@example.com")
	f.device(t, s1, "X laptop", "desktop")
	f.device(t, s2, "X phone", "mobile")
	const newPassword = "a new password"
	if err := f.c.ChangePassword(ctx, "x@example.com", password, newPassword); err != nil {
		t.Fatal(err)
	}
	check("password change", s1, s2)

	// A reset with a fresh wrapKb (the forgot-password path's reset).
	s3, err := f.c.Login(ctx, "x@example.com", newPassword)
	if err != nil {
		t.Fatal(err)
	}
	f.device(t, s3, "X again", "desktop")
	auth, err := f.c.SignIn(ctx, "x@example.com", newPassword)
	if err != nil {
		t.Fatal(err)
	}
	_, art, err := f.c.PasswordChangeStart(ctx, auth.AuthToken)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.c.ResetAccount(ctx, art, "x@example.com", password, nil); err != nil {
		t.Fatal(err)
	}
	check("reset", s3)
}

// GET /v1/account/events: the account's own recent events, newest first,
// admin events without ip.
func TestUserEvents(t *testing.T) {
	f := newAPIFixture(t)
	ctx := t.Context()
	// The clock moves between actions so that their order is that of time.
	tick := func() { f.advance(5 * time.Millisecond) }
	uid := f.account(t, "ev@example.com")
	f.account(t, "noise@example.com")
	f.login(t, "noise@example.com")
	tick()
	if _, err := f.c.Login(ctx, "ev@example.com", "wrong password"); !client.IsErrno(err, 103) {
		t.Fatalf("bad password: %v", err)
	}
	tick()
	auth, err := f.c.SignIn(ctx, "ev@example.com", password)
	if err != nil {
		t.Fatal(err)
	}
	tick() // login and session.create apart, not in one millisecond
	s, err := f.c.SessionCreate(ctx, auth.AuthToken)
	if err != nil {
		t.Fatal(err)
	}
	tick()
	d := f.device(t, s, "Laptop", "desktop")
	tick()
	if err := f.admin.Disable(ctx, hexOf(uid)); err != nil {
		t.Fatal(err)
	}
	tick()
	if err := f.admin.Enable(ctx, hexOf(uid)); err != nil {
		t.Fatal(err)
	}

	status, body := f.raw(t, "GET", "/v1/account/events", "", s.SessionToken)
	if status != 200 {
		t.Fatalf("events: %d %v", status, body)
	}
	var actions []string
	for _, raw := range body["events"].([]any) {
		e := raw.(map[string]any)
		if len(e) != 6 {
			t.Fatalf("event members: %v", e)
		}
		actions = append(actions, e["action"].(string))
		switch {
		case strings.HasPrefix(e["action"].(string), "admin."):
			if e["actor"] != "admin" || e["ip"] != nil || e["deviceId"] != nil {
				t.Fatalf("admin event: %v", e)
			}
		case e["action"] == "device.register":
			if e["actor"] != "user" || e["ip"] != "127.0.0.1" || e["deviceId"] != d.ID || e["outcome"] != "success" {
				t.Fatalf("device event: %v", e)
			}
		case e["actor"] != "user" || e["ip"] != "127.0.0.1" || e["deviceId"] != nil:
			t.Fatalf("user event: %v", e)
		}
	}
	want := "admin.account.enable admin.account.disable device.register session.create login login account.create"
	if got := strings.Join(actions, " "); got != want {
		t.Fatalf("actions (newest first):\n got %s\nwant %s", got, want)
	}
	evs, err := f.c.Events(ctx, s.SessionToken)
	if err != nil || len(evs) != 7 || evs[5].Outcome != "failure" || evs[4].Outcome != "success" {
		t.Fatalf("client events: %v %+v", err, evs)
	}

	// At most 100, none older than 30 days.
	for i := range 120 {
		at := time.Now().Add(-time.Duration(i) * time.Hour)
		if i == 119 {
			at = time.Now().Add(-31 * 24 * time.Hour)
		}
		id := make([]byte, 16)
		_, _ = rand.Read(id)
		if err := f.st.AppendEvent(ctx, &store.Event{ID: id, Time: at, Actor: "user", Action: "keys.fetch",
			Outcome: "success", UID: uid, IP: "192.0.2.1", Details: "{}"}); err != nil {
			t.Fatal(err)
		}
	}
	evs, err = f.c.Events(ctx, s.SessionToken)
	if err != nil || len(evs) != 100 {
		t.Fatalf("events capped: %v %d", err, len(evs))
	}
	for i := 1; i < len(evs); i++ {
		if evs[i].Time > evs[i-1].Time {
			t.Fatalf("not newest first at %d", i)
		}
	}
}
