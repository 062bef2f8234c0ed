package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keyserver/keyserver/client"
	"github.com/keyserver/keyserver/keyserver"
	"github.com/keyserver/keyserver/keywrap"
	"github.com/keyserver/keyserver/protocol"
	"github.com/keyserver/keyserver/store/sqlstore"
)

const testAdminToken = "cli-test-admin-token-0123456789abcdef"

// adminFixture is the real server with its admin API, one account with two
// signed-in devices, and a token file.
type adminFixture struct {
	adminURL  string
	tokenFile string
	c         *client.Client
	uid       string
	a, b      *client.Session
	dA, dB    *protocol.Device
}

func newAdminFixture(t *testing.T) *adminFixture {
	t.Helper()
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "ks.db"), sqlstore.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	pub := httptest.NewUnstartedServer(nil)
	url := "http://" + pub.Listener.Addr().String()
	srv, err := keyserver.New(keyserver.Config{PublicURL: url, Dev: true}, st)
	if err != nil {
		t.Fatal(err)
	}
	pub.Config.Handler = srv.Handler()
	pub.Start()
	t.Cleanup(pub.Close)
	h, err := srv.AdminHandler([]byte(testAdminToken))
	if err != nil {
		t.Fatal(err)
	}
	adm := httptest.NewServer(h)
	t.Cleanup(adm.Close)

	f := &adminFixture{adminURL: adm.URL, tokenFile: writeFile(t, "\n  "+testAdminToken+"\n")}
	f.c, err = client.New(url, client.WithStretching(keywrap.Params{PBKDF2Rounds1: 2, ScryptN: 16, ScryptR: 8, ScryptP: 1, PBKDF2Rounds2: 2}))
	if err != nil {
		t.Fatal(err)
	}
	uid, err := f.c.CreateAccount(ctx, "lost@example.com", "pw", client.CreateOptions{PreVerified: true})
	if err != nil {
		t.Fatal(err)
	}
	f.uid = hex.EncodeToString(uid)
	for _, dev := range []struct {
		s **client.Session
		d **protocol.Device
		n string
	}{{&f.a, &f.dA, "Desk"}, {&f.b, &f.dB, "Lost laptop"}} {
		if *dev.s, err = f.c.Login(ctx, "lost@example.com", "pw"); err != nil {
			t.Fatal(err)
		}
		typ := "desktop"
		if *dev.d, err = f.c.RegisterDevice(ctx, (*dev.s).SessionToken, client.DeviceFields{Name: &dev.n, Type: &typ}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond) // distinct creation times
	}
	return f
}

// admin runs "keyserver admin --url ... --token-file ... args..." in-process.
func (f *adminFixture) admin(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(append([]string{"admin", "--url", f.adminURL, "--token-file", f.tokenFile}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestAdminCLI(t *testing.T) {
	f := newAdminFixture(t)
	ctx := context.Background()

	code, out, errOut := f.admin("devices", "list", f.uid)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 3 || !regexp.MustCompile(`^ID +NAME +TYPE +CREATED +LAST ACCESS +PUSH$`).MatchString(lines[0]) ||
		!strings.HasPrefix(lines[1], f.dA.ID+"  ") || !strings.Contains(lines[2], `"Lost laptop"`) {
		t.Fatalf("devices list: %d\n%s%s", code, out, errOut)
	}

	code, out, _ = f.admin("--json", "devices", "list", f.uid)
	var listed struct{ Devices []map[string]any }
	if err := json.Unmarshal([]byte(out), &listed); code != 0 || err != nil || len(listed.Devices) != 2 ||
		listed.Devices[1]["id"] != f.dB.ID || listed.Devices[1]["pushCallback"] != nil {
		t.Fatalf("devices list --json: %d %v\n%s", code, err, out)
	}
	if _, present := listed.Devices[0]["isCurrentDevice"]; present {
		t.Fatalf("admin listing has isCurrentDevice: %s", out)
	}

	// Revoke the lost laptop: its next request fails, the other device is fine.
	code, out, errOut = f.admin("devices", "revoke", f.uid, f.dB.ID)
	if code != 0 || !strings.Contains(out, "revoked device "+f.dB.ID) {
		t.Fatalf("devices revoke: %d %q %q", code, out, errOut)
	}
	if _, err := f.c.Keys(ctx, f.b.KeyFetchToken, nil); !client.IsErrno(err, 110) {
		t.Fatalf("revoked device's keys: %v", err)
	}
	if _, err := f.c.Devices(ctx, f.b.SessionToken); !client.IsErrno(err, 110) {
		t.Fatalf("revoked device's list: %v", err)
	}
	if ds, err := f.c.Devices(ctx, f.a.SessionToken); err != nil || len(ds) != 1 {
		t.Fatalf("other device: %v %v", err, ds)
	}
	code, _, errOut = f.admin("devices", "revoke", f.uid, f.dB.ID)
	if code != 1 || !strings.Contains(errOut, "400/123 Unknown device") {
		t.Fatalf("revoke again: %d %q", code, errOut)
	}

	// account show by uid and by email (any case).
	for _, who := range []string{f.uid, "LOST@example.com"} {
		code, out, errOut = f.admin("account", "show", who)
		if code != 0 || !regexp.MustCompile(`(?m)^uid +`+f.uid+`\nemail +"lost@example.com"\nverified +true\ndisabled +false\n`).MatchString(out) ||
			!regexp.MustCompile(`(?m)^sessions +1\ndevices +1$`).MatchString(out) {
			t.Fatalf("account show %s: %d\n%s%s", who, code, out, errOut)
		}
	}
	code, _, errOut = f.admin("account", "show", "nobody@example.com")
	if code != 1 || !strings.Contains(errOut, `no account with email "nobody@example.com"`) {
		t.Fatalf("unknown email: %d %q", code, errOut)
	}

	// disable / enable / revoke-sessions, JSON and text.
	code, out, _ = f.admin("account", "disable", f.uid)
	if code != 0 || !strings.Contains(out, "disabled account "+f.uid) {
		t.Fatalf("disable: %d %q", code, out)
	}
	if _, err := f.c.Devices(ctx, f.a.SessionToken); !client.IsErrno(err, 127) {
		t.Fatalf("session of a disabled account: %v", err)
	}
	code, out, _ = f.admin("account", "show", "--json", f.uid)
	var acct protocol.AdminAccount
	if err := json.Unmarshal([]byte(out), &acct); code != 0 || err != nil || !acct.Disabled || acct.UID != f.uid {
		t.Fatalf("show --json: %d %v %s", code, err, out)
	}
	if code, out, _ = f.admin("--json", "account", "enable", f.uid); code != 0 || strings.TrimSpace(out) != "{}" {
		t.Fatalf("enable --json: %d %q", code, out)
	}
	if _, err := f.c.Devices(ctx, f.a.SessionToken); err != nil {
		t.Fatalf("session after enable: %v", err)
	}
	if code, out, _ = f.admin("account", "revoke-sessions", f.uid); code != 0 || !strings.Contains(out, "revoked every session") {
		t.Fatalf("revoke-sessions: %d %q", code, out)
	}
	if _, err := f.c.Devices(ctx, f.a.SessionToken); !client.IsErrno(err, 110) {
		t.Fatalf("session after revoke-sessions: %v", err)
	}

	// audit: the table, filters, JSON and the paging hint.
	code, out, _ = f.admin("audit", "--uid", f.uid)
	for _, want := range []string{"admin.device.revoke", "admin.account.disable", "admin.account.enable", "admin.sessions.revoke", "device.register"} {
		if code != 0 || !regexp.MustCompile(`(?m)^\S+ +(user|admin) +`+regexp.QuoteMeta(want)+` +success +`+f.uid).MatchString(out) {
			t.Fatalf("audit lacks %s: %d\n%s", want, code, out)
		}
	}
	if !regexp.MustCompile(`(?m) admin +admin\.device\.revoke +success +` + f.uid + ` +` + f.dB.ID + ` `).MatchString(out) {
		t.Fatalf("revoke event row:\n%s", out)
	}
	code, out, errOut = f.admin("audit", "--since", "1h", "--limit", "2", "--json")
	var page client.AuditPage
	if err := json.Unmarshal([]byte(out), &page); code != 0 || err != nil || len(page.Events) != 2 || !page.Truncated {
		t.Fatalf("audit --json --limit 2: %d %v %s %s", code, err, out, errOut)
	}
	code, _, errOut = f.admin("audit", "--limit", "2")
	hint := regexp.MustCompile(`more events: keyserver admin audit --since (\d+) --after ([0-9a-f]{32}) --limit 2`).FindStringSubmatch(errOut)
	if code != 0 || hint == nil {
		t.Fatalf("no paging hint: %d %q", code, errOut)
	}
	code, out, _ = f.admin("audit", "--since", hint[1], "--after", hint[2], "--limit", "2", "--json")
	var next client.AuditPage
	if err := json.Unmarshal([]byte(out), &next); code != 0 || err != nil || len(next.Events) == 0 || next.Events[0].ID == page.Events[1].ID {
		t.Fatalf("next page: %d %v %s", code, err, out)
	}
}

func TestAdminCLIUsage(t *testing.T) {
	f := newAdminFixture(t)
	short := writeFile(t, "   \n")
	tests := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"no command", []string{}, 2, "admin needs a command"},
		{"help", []string{"help"}, 0, "usage: keyserver admin"},
		{"-h", []string{"-h"}, 0, "devices revoke UID DEVICEID"},
		{"unknown", []string{"devices", "burn"}, 2, `unknown admin devices command "burn" (want list or revoke)`},
		{"unknown group", []string{"burn"}, 2, `unknown admin command "burn"`},
		{"devices help", []string{"devices", "-h"}, 0, "devices revoke UID DEVICEID"},
		{"account help", []string{"account", "--help"}, 0, "account revoke-sessions UID"},
		{"account alone", []string{"account"}, 2, "admin account needs a command: show, disable, enable or revoke-sessions"},
		{"missing argument", []string{"devices", "revoke", f.uid}, 2, "usage: keyserver admin devices revoke [flags] UID DEVICEID"},
		{"missing argument message", []string{"devices", "revoke", f.uid}, 2, "keyserver: error: admin devices revoke takes UID DEVICEID after the flags"},
		{"extra argument", []string{"account", "show", f.uid, "x"}, 2, "usage: keyserver admin account show [flags] UID|EMAIL"},
		{"audit flag elsewhere", []string{"devices", "list", "--limit", "3", f.uid}, 2, "flag provided but not defined: -limit"},
		{"audit help", []string{"audit", "-h"}, 0, "-since"},
		{"bad since", []string{"audit", "--since", "yesterday"}, 2, "--since"},
		{"bad uid", []string{"account", "show", "xyz"}, 1, "400/107"},
		{"unknown uid", []string{"account", "disable", strings.Repeat("0", 32)}, 1, "400/102 Unknown account"},
		{"empty token file", []string{"--token-file", short, "audit"}, 2, "token file is empty"},
		{"missing token file", []string{"--token-file", filepath.Join(t.TempDir(), "none"), "audit"}, 1, "reading the admin token file"},
		{"wrong token", []string{"--token-file", writeFile(t, strings.Repeat("x", 40)), "audit"}, 1, "401/110 Invalid admin token"},
		{"bad url", []string{"--url", "127.0.0.1:9001", "audit"}, 2, "--url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := f.admin(tt.args...)
			if code != tt.code || !strings.Contains(stderr, tt.msg) {
				t.Fatalf("exit %d (want %d), stdout %q, stderr %q (want %q)", code, tt.code, stdout, stderr, tt.msg)
			}
			if strings.Contains(stdout+stderr, testAdminToken) {
				t.Fatal("the token was printed")
			}
		})
	}
	// No token file at all.
	var out, errOut bytes.Buffer
	if code := run([]string{"admin", "--url", f.adminURL, "audit"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "--token-file is required") {
		t.Fatalf("no token file: %d %q", code, errOut.String())
	}
	// The environment fills what the command line does not set; the command
	// line wins.
	t.Setenv("KEYSERVER_ADMIN_URL", f.adminURL)
	t.Setenv("KEYSERVER_ADMIN_TOKEN_FILE", f.tokenFile)
	t.Setenv("KEYSERVER_ADMIN_JSON", "true")
	out.Reset()
	if code := run([]string{"admin", "account", "show", f.uid}, &out, &errOut); code != 0 || !strings.HasPrefix(out.String(), "{") {
		t.Fatalf("from the environment: %d %q", code, out.String())
	}
	out.Reset()
	if code := run([]string{"admin", "--json=false", "account", "show", f.uid}, &out, &errOut); code != 0 || !strings.HasPrefix(out.String(), "uid ") {
		t.Fatalf("command line over environment: %d %q", code, out.String())
	}
}

func TestParseSince(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_000)
	for in, want := range map[string]int64{
		"0":                           0,
		"1699999999999":               1_699_999_999_999,
		"24h":                         now.Add(-24 * time.Hour).UnixMilli(),
		"2023-11-14T22:13:20Z":        1_700_000_000_000,
		"2023-11-14T23:13:20.5+01:00": 1_700_000_000_500,
	} {
		if got, err := parseSince(in, now); err != nil || got != want {
			t.Errorf("parseSince(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "-5", "-1h", "yesterday", "2023-11-14"} {
		if _, err := parseSince(bad, now); err == nil {
			t.Errorf("parseSince(%q) accepted", bad)
		}
	}
}
