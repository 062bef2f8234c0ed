package e2e

import (
	"encoding/hex"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/keyserver/keyserver/client"
	"github.com/keyserver/keyserver/protocol"
)

// e2eAdminToken is the admin token of the servers started here.
const e2eAdminToken = "e2e-admin-token-0123456789abcdefghijkl"

// adminTokenFile writes content to a fresh file.
func adminTokenFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "admin-token")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// startAdminServer starts serve with the admin API on a second port.
func startAdminServer(t *testing.T, db string, extra ...string) (*server, *client.Admin, string) {
	t.Helper()
	tokenFile := adminTokenFile(t, e2eAdminToken+"\n")
	s := startServer(t, append([]string{"--db", db, "--dev", "--admin-listen", "127.0.0.1:0", "--admin-token-file", tokenFile}, extra...)...)
	if s.AdminURL == "" || s.AdminURL == s.URL {
		t.Fatalf("admin URL %q (public %q)", s.AdminURL, s.URL)
	}
	a, err := client.NewAdmin(s.AdminURL, e2eAdminToken)
	if err != nil {
		t.Fatal(err)
	}
	return s, a, tokenFile
}

// twoDevices signs in twice to a new account and registers a device for
// each session.
func twoDevices(t *testing.T, s *server, email string) (c *client.Client, uid string, a, b *client.Session, dA, dB *protocol.Device) {
	t.Helper()
	c, a = signIn(t, s, email, "pw")
	ctx := ctxT(t)
	b, err := c.Login(ctx, email, "pw")
	if err != nil {
		t.Fatal(err)
	}
	register := func(sess *client.Session, name, typ string) *protocol.Device {
		d, err := c.RegisterDevice(ctx, sess.SessionToken, client.DeviceFields{Name: &name, Type: &typ})
		if err != nil {
			t.Fatalf("register %s: %v", name, err)
		}
		return d
	}
	return c, hex.EncodeToString(a.UID), a, b, register(a, "Laptop", "desktop"), register(b, "Lost phone", "mobile")
}

// Two devices on one account; B is revoked through the user API, the admin
// API or the CLI; B's very next request (keys, certificate, device list)
// gets 401/110 and A is unaffected. Each revocation is audited with its
// actor, and no event holds a secret.
func TestDeviceRevocationE2E(t *testing.T) {
	backends(t, func(t *testing.T, db string, extra ...string) {
		s, admin, tokenFile := startAdminServer(t, db, extra...)
		ctx := ctxT(t)
		channels := []struct {
			name, action, actor string
			revoke              func(c *client.Client, uid string, a *client.Session, dB *protocol.Device)
		}{
			{"user", "device.destroy", "user", func(c *client.Client, _ string, a *client.Session, dB *protocol.Device) {
				if err := c.DestroyDevice(ctx, a.SessionToken, dB.ID); err != nil {
					t.Fatal(err)
				}
			}},
			{"admin", "admin.device.revoke", "admin", func(_ *client.Client, uid string, _ *client.Session, dB *protocol.Device) {
				if err := admin.RevokeDevice(ctx, uid, dB.ID); err != nil {
					t.Fatal(err)
				}
			}},
			{"cli", "admin.device.revoke", "admin", func(_ *client.Client, uid string, _ *client.Session, dB *protocol.Device) {
				out, errOut, code := runKeyserver(t, "admin", "--url", s.AdminURL, "--token-file", tokenFile, "devices", "revoke", uid, dB.ID)
				if code != 0 || !strings.Contains(out, "revoked device "+dB.ID) {
					t.Fatalf("CLI revoke: exit %d %q %q", code, out, errOut)
				}
			}},
		}
		for _, ch := range channels {
			t.Run(ch.name, func(t *testing.T) {
				c, uid, a, b, dA, dB := twoDevices(t, s, ch.name+"@example.com")
				for _, view := range []*client.Session{a, b} {
					ds, err := c.Devices(ctx, view.SessionToken)
					if err != nil || len(ds) != 2 || ds[0].ID != dA.ID || ds[1].ID != dB.ID ||
						ds[0].Current() != (view == a) || ds[1].Current() != (view == b) {
						t.Fatalf("devices seen by %x: %v %+v", view.SessionToken[:4], err, ds)
					}
				}
				if ch.name == "cli" {
					out, _, code := runKeyserver(t, "admin", "--url", s.AdminURL, "--token-file", tokenFile, "devices", "list", uid)
					if code != 0 || !strings.Contains(out, dA.ID) || !strings.Contains(out, `"Lost phone"`) {
						t.Fatalf("CLI devices list: exit %d\n%s", code, out)
					}
				}

				ch.revoke(c, uid, a, dB)

				_, err := c.Keys(ctx, b.KeyFetchToken, b.UnwrapBKey)
				wantErrno(t, err, 110, "B's keys")
				_, err = c.CertificateSign(ctx, b.SessionToken, certClientKey(), 60_000)
				wantErrno(t, err, 110, "B's certificate")
				_, err = c.Devices(ctx, b.SessionToken)
				wantErrno(t, err, 110, "B's device list")

				keys, err := c.Keys(ctx, a.KeyFetchToken, a.UnwrapBKey)
				if err != nil {
					t.Fatalf("A's keys: %v", err)
				}
				if _, err := c.CertificateSign(ctx, a.SessionToken, certClientKey(), 60_000); err != nil {
					t.Fatalf("A's certificate: %v", err)
				}
				ds, err := c.Devices(ctx, a.SessionToken)
				if err != nil || len(ds) != 1 || ds[0].ID != dA.ID || !ds[0].Current() {
					t.Fatalf("A's devices: %v %+v", err, ds)
				}

				page, err := admin.Audit(ctx, client.AuditQuery{UID: uid})
				if err != nil {
					t.Fatal(err)
				}
				var revokes int
				for _, e := range page.Events {
					if e.Action == ch.action {
						revokes++
						if e.Actor != ch.actor || e.DeviceID == nil || *e.DeviceID != dB.ID || e.IP != "127.0.0.1" {
							t.Fatalf("revocation event %+v", e)
						}
					}
				}
				if revokes != 1 {
					t.Fatalf("%d %s events", revokes, ch.action)
				}
				raw, _ := json.Marshal(page)
				secrets := [][]byte{keys.KA, keys.WrapKb, a.SessionToken, b.SessionToken, a.KeyFetchToken, b.KeyFetchToken,
					client.TokenCredentials(protocol.SessionToken, a.SessionToken).Key,
					client.TokenCredentials(protocol.SessionToken, b.SessionToken).Key}
				for i, secret := range secrets {
					if strings.Contains(string(raw), hex.EncodeToString(secret)) {
						t.Fatalf("secret %d in the audit log", i)
					}
				}
				if strings.Contains(s.logs.String(), e2eAdminToken) {
					t.Fatal("admin token in the server log")
				}
			})
		}
	})
}

// Concurrent registrations with one sessionToken create exactly one device;
// a second session cannot claim the first session's device id.
func TestDeviceRegistrationRaceE2E(t *testing.T) {
	backends(t, func(t *testing.T, db string, extra ...string) {
		s, admin, _ := startAdminServer(t, db, extra...)
		c, a := signIn(t, s, "race@example.com", "pw")
		ctx := ctxT(t)
		const n = 10
		ids := make([]string, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				name, typ := "Phone", "mobile"
				d, err := c.RegisterDevice(ctx, a.SessionToken, client.DeviceFields{Name: &name, Type: &typ})
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
				t.Fatalf("registration %d: %q vs %q", i, ids[i], ids[0])
			}
		}
		acct, err := admin.Account(ctx, hex.EncodeToString(a.UID))
		if err != nil || acct.DeviceCount != 1 {
			t.Fatalf("account: %v %+v", err, acct)
		}
		b, err := c.Login(ctx, "race@example.com", "pw")
		if err != nil {
			t.Fatal(err)
		}
		name := "Mine now"
		_, err = c.UpdateDevice(ctx, b.SessionToken, ids[0], client.DeviceFields{Name: &name})
		wantErrno(t, err, 123, "claim another session's device")
		_, err = c.UpdateDevice(ctx, b.SessionToken, ids[0], client.DeviceFields{})
		wantErrno(t, err, 123, "claim another session's device by id alone")
		if ds, err := c.Devices(ctx, a.SessionToken); err != nil || len(ds) != 1 || ds[0].Name != "Phone" || !ds[0].Current() {
			t.Fatalf("after the claims: %v %+v", err, ds)
		}
	})
}

// Password change deletes every device and session of the account and
// nothing of other accounts; the admin API sees the counts.
func TestPasswordChangeDevicesE2E(t *testing.T) {
	backends(t, func(t *testing.T, db string, extra ...string) {
		s, admin, _ := startAdminServer(t, db, extra...)
		ctx := ctxT(t)
		c, uidX, a, b, _, _ := twoDevices(t, s, "x@example.com")
		_, uidY, y, _, _, _ := twoDevices(t, s, "y@example.com")
		if err := c.ChangePassword(ctx, "x@example.com", "pw", "new pw"); err != nil {
			t.Fatal(err)
		}
		for _, sess := range []*client.Session{a, b} {
			_, err := c.Devices(ctx, sess.SessionToken)
			wantErrno(t, err, 110, "old session after password change")
		}
		if x, err := admin.Account(ctx, uidX); err != nil || x.SessionCount != 0 || x.DeviceCount != 0 {
			t.Fatalf("changed account: %v %+v", err, x)
		}
		if y2, err := admin.Account(ctx, uidY); err != nil || y2.SessionCount != 2 || y2.DeviceCount != 2 {
			t.Fatalf("other account: %v %+v", err, y2)
		}
		if _, err := c.Devices(ctx, y.SessionToken); err != nil {
			t.Fatalf("other account's session: %v", err)
		}
	})
}

// No token, a wrong token, a user's session token and the public listener
// all fail to reach admin routes; serve refuses short tokens.
func TestAdminAuthzE2E(t *testing.T) {
	s, _, _ := startAdminServer(t, sqliteDB(t))
	_, sess := signIn(t, s, "authz@example.com", "pw")
	uid := hex.EncodeToString(sess.UID)
	for name, auth := range map[string]string{
		"none":          "",
		"wrong":         "Bearer " + strings.Repeat("y", len(e2eAdminToken)),
		"session token": "Bearer " + hex.EncodeToString(sess.SessionToken),
	} {
		req, _ := http.NewRequest("GET", s.AdminURL+"/admin/v1/accounts/"+uid, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != 401 || body["errno"] != 110.0 || body["message"] != "Invalid admin token" {
			t.Fatalf("%s: %d %v", name, resp.StatusCode, body)
		}
	}
	req, _ := http.NewRequest("GET", s.URL+"/admin/v1/accounts/"+uid, nil)
	req.Header.Set("Authorization", "Bearer "+e2eAdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("admin route on the public listener: %d", resp.StatusCode)
	}

	db := sqliteDB(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for name, c := range map[string]struct {
		args []string
		code int
		msg  string
	}{
		"short token":    {[]string{"--admin-listen", "127.0.0.1:0", "--admin-token-file", adminTokenFile(t, "  "+strings.Repeat("z", 31)+"\n")}, 1, "at least 32 characters"},
		"no token file":  {[]string{"--admin-listen", "127.0.0.1:0"}, 2, "--admin-listen needs --admin-token-file"},
		"missing file":   {[]string{"--admin-listen", "127.0.0.1:0", "--admin-token-file", filepath.Join(t.TempDir(), "none")}, 1, "admin token file"},
		"address in use": {[]string{"--admin-listen", busy.Addr().String(), "--admin-token-file", adminTokenFile(t, e2eAdminToken)}, 1, "admin API"},
	} {
		_, errOut, code := runKeyserver(t, append([]string{"serve", "--listen", "127.0.0.1:0", "--db", db, "--signing-key", signingKey, "--kek-file", kekFile}, c.args...)...)
		if code != c.code || !strings.Contains(errOut, c.msg) {
			t.Fatalf("%s: exit %d, %q", name, code, errOut)
		}
		if strings.Contains(errOut, strings.Repeat("z", 31)) {
			t.Fatal("the token was printed")
		}
	}
}
