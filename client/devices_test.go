package client

import (
	"context"
	"encoding/hex"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyserver/keyserver/keyserver"
	"github.com/keyserver/keyserver/store/sqlstore"
)

const adminTestToken = "client-admin-test-token-0123456789abcdef"

// newAdminServer starts the real server with its admin API and returns a
// protocol client and an admin client.
func newAdminServer(t *testing.T) (*Client, *Admin) {
	t.Helper()
	st, err := sqlstore.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "ks.db"), sqlstore.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	pub := httptest.NewUnstartedServer(nil)
	url := "http://" + pub.Listener.Addr().String()
	srv, err := keyserver.New(keyserver.Config{PublicURL: url, Dev: true, Mailer: &captureMailer{}}, st)
	if err != nil {
		t.Fatal(err)
	}
	pub.Config.Handler = srv.Handler()
	pub.Start()
	t.Cleanup(pub.Close)
	h, err := srv.AdminHandler([]byte(adminTestToken))
	if err != nil {
		t.Fatal(err)
	}
	adm := httptest.NewServer(h)
	t.Cleanup(adm.Close)
	a, err := NewAdmin(adm.URL, adminTestToken)
	if err != nil {
		t.Fatal(err)
	}
	return newTestClient(t, url), a
}

func ptr(s string) *string { return &s }

func TestDevicesAndAdmin(t *testing.T) {
	c, admin := newAdminServer(t)
	ctx := context.Background()
	uidBytes, err := c.CreateAccount(ctx, "dev@example.org", "pw", CreateOptions{PreVerified: true})
	if err != nil {
		t.Fatal(err)
	}
	uid := hex.EncodeToString(uidBytes)
	s1, _ := loginKeys(t, c, "dev@example.org", "pw")
	s2, err := c.Login(ctx, "dev@example.org", "pw")
	if err != nil {
		t.Fatal(err)
	}

	d1, err := c.RegisterDevice(ctx, s1.SessionToken, DeviceFields{Name: ptr("Laptop"), Type: ptr("desktop")})
	if err != nil || d1.Name != "Laptop" || !d1.Current() || d1.PushCallback != nil {
		t.Fatalf("register: %v %+v", err, d1)
	}
	d1, err = c.UpdateDevice(ctx, s1.SessionToken, d1.ID, DeviceFields{PushCallback: ptr("https://push.example.org/1")})
	if err != nil || d1.PushCallback == nil || *d1.PushCallback != "https://push.example.org/1" || d1.Name != "Laptop" {
		t.Fatalf("update: %v %+v", err, d1)
	}
	_, err = c.RegisterDevice(ctx, s1.SessionToken, DeviceFields{Name: ptr("Other"), Type: ptr("desktop")})
	wantErrno(t, "second registration", err, 124)
	d2, err := c.RegisterDevice(ctx, s2.SessionToken, DeviceFields{Name: ptr("Phone"), Type: ptr("mobile")})
	if err != nil {
		t.Fatal(err)
	}
	ds, err := c.Devices(ctx, s2.SessionToken)
	if err != nil || len(ds) != 2 || ds[0].Current() || !ds[1].Current() || ds[1].ID != d2.ID {
		t.Fatalf("devices: %v %+v", err, ds)
	}

	acct, err := admin.Account(ctx, uid)
	if err != nil || acct.SessionCount != 2 || acct.DeviceCount != 2 || acct.EmailString() != "dev@example.org" {
		t.Fatalf("admin account: %v %+v", err, acct)
	}
	accts, err := admin.AccountsByEmail(ctx, "DEV@example.org")
	if err != nil || len(accts) != 1 || accts[0].UID != uid {
		t.Fatalf("by email: %v %+v", err, accts)
	}
	ads, err := admin.Devices(ctx, uid)
	if err != nil || len(ads) != 2 || ads[0].Current() || ads[1].Current() {
		t.Fatalf("admin devices: %v %+v", err, ads)
	}
	if ads[0].IsCurrentDevice != nil || ads[1].IsCurrentDevice != nil {
		t.Fatalf("admin devices carry isCurrentDevice: %+v", ads)
	}
	if err := admin.RevokeDevice(ctx, uid, d2.ID); err != nil {
		t.Fatal(err)
	}
	_, err = c.Devices(ctx, s2.SessionToken)
	wantErrno(t, "revoked session", err, 110)
	wantErrno(t, "revoke again", admin.RevokeDevice(ctx, uid, d2.ID), 123)
	wantErrno(t, "path is escaped", admin.RevokeDevice(ctx, uid, "x?y#z"), 107)

	if err := admin.Disable(ctx, uid); err != nil {
		t.Fatal(err)
	}
	_, err = c.Devices(ctx, s1.SessionToken)
	wantErrno(t, "disabled", err, 127)
	if err := admin.Enable(ctx, uid); err != nil {
		t.Fatal(err)
	}
	evs, err := c.Events(ctx, s1.SessionToken)
	if err != nil || len(evs) == 0 || evs[0].Action != "admin.account.enable" || evs[0].IP != nil || evs[0].Actor != "admin" {
		t.Fatalf("events: %v %+v", err, evs)
	}
	if err := c.DestroyDevice(ctx, s1.SessionToken, d1.ID); err != nil {
		t.Fatal(err)
	}
	if err := admin.RevokeSessions(ctx, uid); err != nil {
		t.Fatal(err)
	}

	// Paging through the audit log with Next.
	var all []string
	for q := (&AuditQuery{UID: uid, Limit: 3}); q != nil; {
		page, err := admin.Audit(ctx, *q)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page.Events {
			all = append(all, e.Action)
		}
		q = page.Next(*q)
	}
	got := strings.Join(all, " ")
	for _, want := range []string{"device.register", "device.update", "admin.device.revoke", "device.destroy", "admin.sessions.revoke"} {
		if !strings.Contains(got, want) {
			t.Fatalf("audit lacks %s: %s", want, got)
		}
	}

	bad, err := NewAdmin(admin.c.BaseURL(), "wrong")
	if err != nil {
		t.Fatal(err)
	}
	_, err = bad.Audit(ctx, AuditQuery{})
	wantErrno(t, "wrong token", err, 110)
	if strings.Contains(err.Error(), "wrong") {
		t.Fatalf("token in the error: %v", err)
	}
}
