package keyserver_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/keyserver/keyserver/client"
	"github.com/keyserver/keyserver/keyserver"
	"github.com/keyserver/keyserver/protocol"
	"github.com/keyserver/keyserver/store"
	"github.com/keyserver/keyserver/store/sqlstore"
)

func TestAdminTokenLength(t *testing.T) {
	st, err := sqlstore.Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "ks.db"), sqlstore.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	srv, err := keyserver.New(keyserver.Config{PublicURL: "http://127.0.0.1:9000"}, st)
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{"", strings.Repeat("x", 31), strings.Repeat("é", 31), "\xff" + strings.Repeat("x", 40)} {
		if _, err := srv.AdminHandler([]byte(tok)); err == nil {
			t.Errorf("token of %d bytes accepted", len(tok))
		}
	}
	if _, err := srv.AdminHandler([]byte(strings.Repeat("é", 32))); err != nil {
		t.Errorf("32-character token refused: %v", err)
	}
}

// No token, a wrong token, a user's session token and the public listener
// all fail to reach the admin routes.
func TestAdminAuthz(t *testing.T) {
	f := newAPIFixture(t)
	uid := hexOf(f.account(t, "authz@example.com"))
	s := f.login(t, "authz@example.com")
	seed := hexOf(s.SessionToken)
	cred := client.TokenCredentials(protocol.SessionToken, s.SessionToken)
	paths := []struct{ method, path string }{
		{"GET", "/admin/v1/accounts?email=" + hexOf([]byte("authz@example.com"))},
		{"GET", "/admin/v1/accounts/" + uid},
		{"GET", "/admin/v1/accounts/" + uid + "/devices"},
		{"POST", "/admin/v1/accounts/" + uid + "/devices/" + strings.Repeat("0", 32) + "/revoke"},
		{"POST", "/admin/v1/accounts/" + uid + "/sessions/revoke"},
		{"POST", "/admin/v1/accounts/" + uid + "/disable"},
		{"GET", "/admin/v1/audit"},
		{"GET", "/admin/v1/nope"},
	}
	auths := map[string]string{
		"none":                   "",
		"wrong token":            "Bearer " + strings.Repeat("x", len(adminToken)),
		"token prefix":           "Bearer " + adminToken[:32],
		"token and more":         "Bearer " + adminToken + "x",
		"no scheme":              adminToken,
		"basic":                  "Basic " + adminToken,
		"session seed":           "Bearer " + seed,
		"session id":             "Bearer " + cred.ID,
		"bearer without token":   "Bearer ",
		"token with extra space": "Bearer  " + adminToken,
	}
	for name, auth := range auths {
		for _, p := range paths {
			status, body := f.adminRaw(t, p.method, p.path, "", auth)
			if status != 401 || body["errno"] != 110.0 || body["message"] != "Invalid admin token" || body["error"] != "Unauthorized" {
				t.Fatalf("%s: %s %s: %d %v", name, p.method, p.path, status, body)
			}
		}
	}
	// The user's Hawk header is no admin credential either.
	hawkReq := &client.RawRequest{Method: "GET", Path: "/admin/v1/accounts/" + uid, Cred: cred}
	hc, _ := client.New(f.adminURL)
	_, err := hc.DoRaw(t.Context(), hawkReq, nil)
	wantErrno(t, "Hawk session header", err, 110)
	// Two Authorization headers, one of them right.
	req, _ := http.NewRequest("GET", f.adminURL+"/admin/v1/accounts/"+uid, nil)
	req.Header.Add("Authorization", "Bearer "+adminToken)
	req.Header.Add("Authorization", "Bearer wrong")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 401 {
		t.Fatalf("two Authorization headers: %v %v", err, resp)
	}
	// The scheme is case-insensitive.
	if status, body := f.adminRaw(t, "GET", "/admin/v1/accounts/"+uid, "", "bearer "+adminToken); status != 200 {
		t.Fatalf("lower-case scheme: %d %v", status, body)
	}

	// The public listener has no admin routes, even with the right token.
	for _, p := range paths {
		req, _ := http.NewRequest(p.method, f.url+p.path, nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != 404 || body["errno"] != 999.0 {
			t.Fatalf("public %s %s: %d %v", p.method, p.path, resp.StatusCode, body)
		}
	}
	// Nothing changed: the account is enabled with its session.
	if a, err := f.admin.Account(t.Context(), uid); err != nil || a.Disabled || a.SessionCount != 1 {
		t.Fatalf("account after refused requests: %v %+v", err, a)
	}
	if strings.Contains(f.logs.String(), adminToken) {
		t.Fatal("the admin token is in the log")
	}
}

func TestAdminNoCORS(t *testing.T) {
	f := newAPIFixture(t)
	for _, method := range []string{"GET", "OPTIONS"} {
		req, _ := http.NewRequest(method, f.adminURL+"/admin/v1/audit", nil)
		req.Header.Set("Origin", "https://evil.example")
		req.Header.Set("Access-Control-Request-Method", "GET")
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if h := resp.Header.Get("Access-Control-Allow-Origin"); h != "" || resp.StatusCode == 204 {
			t.Fatalf("%s: CORS answer %d %q", method, resp.StatusCode, h)
		}
	}
}

func TestAdminAccounts(t *testing.T) {
	f := newAPIFixture(t)
	ctx := t.Context()
	uidB := f.account(t, "André@Example.org")
	uid := hexOf(uidB)
	s1, s2 := f.login(t, "André@Example.org"), f.login(t, "André@Example.org")
	f.device(t, s1, "Laptop", "desktop")
	_ = s2
	auth := "Bearer " + adminToken

	accts, err := f.admin.AccountsByEmail(ctx, "andré@example.ORG")
	if err != nil || len(accts) != 1 || accts[0].UID != uid || accts[0].EmailString() != "André@Example.org" {
		t.Fatalf("lookup by fold: %v %+v", err, accts)
	}
	if a := accts[0]; !a.Verified || a.Disabled || a.SessionCount != 2 || a.DeviceCount != 1 || a.CreatedAt == 0 || a.Generation == 0 {
		t.Fatalf("record %+v", a)
	}
	// Exactly the members of spec 10.2 and hasRecoveryKey (docs/recovery-key.md):
	// no keys, verifier, codes or recovery data.
	status, body := f.adminRaw(t, "GET", "/admin/v1/accounts/"+uid, "", auth)
	var keys []string
	for k := range body {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if status != 200 || strings.Join(keys, ",") != "createdAt,deviceCount,disabled,email,generation,hasRecoveryKey,sessionCount,uid,verified" {
		t.Fatalf("record members: %d %v", status, keys)
	}
	if none, err := f.admin.AccountsByEmail(ctx, "nobody@example.org"); err != nil || len(none) != 0 {
		t.Fatalf("unknown email: %v %v", err, none)
	}
	errs := []struct {
		method, path, body string
		status, errno      int
		param              string
	}{
		{"GET", "/admin/v1/accounts", "", 400, 108, "email"},
		{"GET", "/admin/v1/accounts?email=zz", "", 400, 107, "email"},
		{"GET", "/admin/v1/accounts?email=", "", 400, 107, "email"},
		{"GET", "/admin/v1/accounts?email=" + hexOf([]byte("no-at-sign")), "", 400, 107, "email"},
		{"GET", "/admin/v1/accounts?email=6140622e6364&email=6140622e6364", "", 400, 107, "email"},
		{"GET", "/admin/v1/accounts/xyz", "", 400, 107, "uid"},
		{"GET", "/admin/v1/accounts/" + strings.Repeat("0", 32), "", 400, 102, ""},
		{"GET", "/admin/v1/accounts/" + strings.Repeat("0", 32) + "/devices", "", 400, 102, ""},
		{"POST", "/admin/v1/accounts/" + strings.Repeat("0", 32) + "/disable", "", 400, 102, ""},
		{"POST", "/admin/v1/accounts/" + uid + "/devices/xyz/revoke", "", 400, 107, "deviceId"},
		{"POST", "/admin/v1/accounts/" + uid + "/devices/" + strings.Repeat("0", 32) + "/revoke", "", 400, 123, ""},
		{"POST", "/admin/v1/accounts/" + uid + "/disable", `{"force":true}`, 400, 107, "force"},
		{"POST", "/admin/v1/accounts/" + uid + "/disable", `nope`, 400, 106, ""},
		{"GET", "/admin/v1/accounts/" + uid + "/", "", 404, 999, ""},
		{"GET", "/admin/v1/accounts/" + uid + "/disable", "", 404, 999, ""},
		{"DELETE", "/admin/v1/accounts/" + uid, "", 404, 999, ""},
		{"GET", "/v1/account/devices", "", 404, 999, ""},
	}
	for _, e := range errs {
		status, body := f.adminRaw(t, e.method, e.path, e.body, auth)
		wantError(t, e.method+" "+e.path, status, body, e.status, e.errno, e.param)
	}
	if a, _ := f.admin.Account(ctx, uid); a.Disabled {
		t.Fatal("a refused disable disabled the account")
	}
	// A POST with {} is fine.
	if status, body := f.adminRaw(t, "POST", "/admin/v1/accounts/"+uid+"/enable", "{}", auth); status != 200 || len(body) != 0 {
		t.Fatalf("enable with {}: %d %v", status, body)
	}
}

// Revocation through the admin API: device revoke, sessions revoke,
// disable and enable, each audited with actor admin.
func TestAdminRevocation(t *testing.T) {
	f := newAPIFixture(t)
	ctx := t.Context()
	uid := hexOf(f.account(t, "lost@example.com"))
	otherUID := f.account(t, "keep@example.com")
	other := f.login(t, "keep@example.com")
	f.device(t, other, "Other", "desktop")
	a, b := f.login(t, "lost@example.com"), f.login(t, "lost@example.com")
	dA := f.device(t, a, "Laptop", "desktop")
	dB := f.device(t, b, "Lost laptop", "desktop")

	ds, err := f.admin.Devices(ctx, uid)
	if err != nil || len(ds) != 2 || ds[0].ID != dA.ID || ds[1].ID != dB.ID {
		t.Fatalf("admin devices: %v %+v", err, ds)
	}
	status, body := f.adminRaw(t, "GET", "/admin/v1/accounts/"+uid+"/devices", "", "Bearer "+adminToken)
	if rec := body["devices"].([]any)[0].(map[string]any); status != 200 || len(rec) != 8 || rec["isCurrentDevice"] != nil {
		t.Fatalf("admin device record: %v", body)
	}
	// Path parameters are validated before any lookup: a bad deviceId is
	// 107 deviceId even for an unknown uid.
	unknownUID := strings.Repeat("0", 32)
	for _, c := range []struct {
		uid, device string
		errno       int
		param       string
	}{
		{unknownUID, "zz", 107, "deviceId"},
		{"zz", "zz", 107, "uid"},
		{uid, strings.Repeat("0", 31), 107, "deviceId"},
		{unknownUID, strings.Repeat("0", 32), 102, ""},
	} {
		status, body := f.adminRaw(t, "POST", "/admin/v1/accounts/"+c.uid+"/devices/"+c.device+"/revoke", "", "Bearer "+adminToken)
		wantError(t, "revoke "+c.uid+"/"+c.device, status, body, 400, c.errno, c.param)
	}
	// Another account's device is not this uid's.
	od, _ := f.st.Devices(ctx, otherUID)
	wantErrno(t, "revoke another account's device", f.admin.RevokeDevice(ctx, uid, hexOf(od[0].ID)), 123)

	if err := f.admin.RevokeDevice(ctx, uid, dB.ID); err != nil {
		t.Fatal(err)
	}
	_, err = f.c.Keys(ctx, b.KeyFetchToken, b.UnwrapBKey)
	wantErrno(t, "B's keys after admin revoke", err, 110)
	_, err = f.c.Devices(ctx, b.SessionToken)
	wantErrno(t, "B's devices after admin revoke", err, 110)
	if ds, err := f.c.Devices(ctx, a.SessionToken); err != nil || len(ds) != 1 {
		t.Fatalf("A after admin revoke: %v %d", err, len(ds))
	}

	// Disable: sign-in and every token refused with 127 (a consuming token
	// is consumed); enable: surviving tokens work again.
	if err := f.admin.Disable(ctx, uid); err != nil {
		t.Fatal(err)
	}
	if err := f.admin.Disable(ctx, uid); err != nil { // idempotent
		t.Fatal(err)
	}
	_, err = f.c.AuthStart(ctx, "lost@example.com")
	wantErrno(t, "auth/start of a disabled account", err, 127)
	_, err = f.c.Devices(ctx, a.SessionToken)
	wantErrno(t, "session of a disabled account", err, 127)
	_, err = f.c.Keys(ctx, a.KeyFetchToken, a.UnwrapBKey)
	wantErrno(t, "keyFetchToken of a disabled account", err, 127)
	if acct, _ := f.admin.Account(ctx, uid); !acct.Disabled {
		t.Fatal("record not disabled")
	}
	if err := f.admin.Enable(ctx, uid); err != nil {
		t.Fatal(err)
	}
	if _, err := f.c.Devices(ctx, a.SessionToken); err != nil {
		t.Fatalf("session after enable: %v", err)
	}
	_, err = f.c.Keys(ctx, a.KeyFetchToken, a.UnwrapBKey)
	wantErrno(t, "keyFetchToken consumed while disabled", err, 110)

	// Sessions revoke: every token and device of the account, nothing else.
	auth, err := f.c.SignIn(ctx, "lost@example.com", password)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.admin.RevokeSessions(ctx, uid); err != nil {
		t.Fatal(err)
	}
	_, err = f.c.Devices(ctx, a.SessionToken)
	wantErrno(t, "session after revoke-sessions", err, 110)
	_, err = f.c.SessionCreate(ctx, auth.AuthToken)
	wantErrno(t, "authToken after revoke-sessions", err, 110)
	if acct, _ := f.admin.Account(ctx, uid); acct.SessionCount != 0 || acct.DeviceCount != 0 {
		t.Fatalf("after revoke-sessions: %+v", acct)
	}
	if _, err := f.c.Devices(ctx, other.SessionToken); err != nil {
		t.Fatalf("other account's session: %v", err)
	}
	f.login(t, "lost@example.com") // the password still works

	page, err := f.admin.Audit(ctx, client.AuditQuery{UID: uid})
	if err != nil {
		t.Fatal(err)
	}
	var admin []string
	for _, e := range page.Events {
		if e.Actor == "admin" {
			admin = append(admin, e.Action)
			if e.IP != "127.0.0.1" || *e.UID != uid || e.Outcome != "success" || string(e.Details) != "{}" {
				t.Fatalf("admin event %+v", e)
			}
			if e.Action == "admin.device.revoke" && (*e.DeviceID != dB.ID || e.SessionID == nil || *e.SessionID != hexOf(sessionID(b))[:16]) {
				t.Fatalf("revoke event %+v", e)
			}
		} else if strings.HasPrefix(e.Action, "admin.") {
			t.Fatalf("admin action with actor %s", e.Actor)
		}
	}
	want := "admin.device.revoke admin.account.disable admin.account.disable admin.account.enable admin.sessions.revoke"
	if got := strings.Join(admin, " "); got != want {
		t.Fatalf("admin events: %s", got)
	}
}

func TestAdminAuditPaging(t *testing.T) {
	f := newAPIFixture(t)
	ctx := t.Context()
	uid := f.account(t, "page@example.com")
	base := time.Now().Add(-time.Hour)
	// 7 events of uid (3 at one time, to exercise the id tie-break) and 3
	// of nobody.
	for i := range 10 {
		e := &store.Event{ID: bytes.Repeat([]byte{byte(i)}, 16), Time: base.Add(time.Duration(i/3) * time.Second),
			Actor: "user", Action: "keys.fetch", Outcome: "success", IP: "192.0.2.1", Details: "{}"}
		if i%4 != 3 {
			e.UID = uid
		}
		if err := f.st.AppendEvent(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	full, err := f.admin.Audit(ctx, client.AuditQuery{})
	if err != nil || full.Truncated || len(full.Events) != 11 { // + account.create
		t.Fatalf("full: %v %d %v", err, len(full.Events), full.Truncated)
	}
	for _, uidFilter := range []string{"", hexOf(uid)} {
		for _, limit := range []int{1, 2, 3, 1000} {
			q := &client.AuditQuery{UID: uidFilter, Limit: limit, Since: base.UnixMilli()}
			var got []string
			for pages := 0; q != nil; pages++ {
				if pages > 20 {
					t.Fatal("paging does not end")
				}
				page, err := f.admin.Audit(ctx, *q)
				if err != nil || len(page.Events) > limit {
					t.Fatalf("page: %v %d", err, len(page.Events))
				}
				for _, e := range page.Events {
					got = append(got, e.ID)
				}
				q = page.Next(*q)
			}
			var want []string
			for _, e := range full.Events {
				if e.Time >= base.UnixMilli() && (uidFilter == "" || (e.UID != nil && *e.UID == uidFilter)) {
					want = append(want, e.ID)
				}
			}
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Fatalf("uid %q limit %d:\n got %v\nwant %v", uidFilter, limit, got, want)
			}
		}
	}
	// Paged and ordered by (time, id): the three equal times by id.
	if full.Events[0].ID != hex.EncodeToString(bytes.Repeat([]byte{0}, 16)) || full.Events[2].ID != hex.EncodeToString(bytes.Repeat([]byte{2}, 16)) {
		t.Fatalf("order: %v %v", full.Events[0].ID, full.Events[2].ID)
	}
	page, err := f.admin.Audit(ctx, client.AuditQuery{Since: base.Add(2 * time.Second).UnixMilli(), Limit: 4})
	if err != nil || len(page.Events) != 4 || !page.Truncated || page.Events[0].Time != base.Add(2*time.Second).UnixMilli() {
		t.Fatalf("since: %v %+v", err, page)
	}

	auth := "Bearer " + adminToken
	for _, c := range []struct{ query, param string }{
		{"uid=zz", "uid"}, {"uid=" + strings.Repeat("0", 30), "uid"}, {"since=-1", "since"}, {"since=1.5", "since"},
		{"since=abc", "since"}, {"since=01", "since"}, {"limit=0", "limit"}, {"limit=1001", "limit"}, {"limit=1&limit=2", "limit"},
		{"after=xyz", "after"}, {"since=1&since=1", "since"},
	} {
		status, body := f.adminRaw(t, "GET", "/admin/v1/audit?"+c.query, "", auth)
		wantError(t, c.query, status, body, 400, 107, c.param)
	}
	if status, body := f.adminRaw(t, "GET", "/admin/v1/audit?limit=1000&other=x", "", auth); status != 200 || body["truncated"] != false {
		t.Fatalf("unknown parameter ignored: %d %v", status, body)
	}
}

// No audit event (nor the log) ever holds a token seed or key, kA, wrapKb,
// the verifier or a code.
func TestAuditHoldsNoSecrets(t *testing.T) {
	f := newAPIFixture(t)
	ctx := context.Background()
	uid := f.account(t, "secret@example.com")
	acct, err := f.st.AccountByUID(ctx, uid)
	if err != nil {
		t.Fatal(err)
	}
	secrets := map[string][]byte{"kA": acct.KA, "wrapKb": acct.WrapKb, "verifier": acct.SRPVerifier, "email code": acct.EmailCode}
	addToken := func(name string, typ protocol.TokenType, seed []byte) {
		cred := client.TokenCredentials(typ, seed)
		secrets[name+" seed"], secrets[name+" authKey"], secrets[name+" bundleKey"] = seed, cred.Key, cred.BundleKey
	}
	if _, err := f.c.Login(ctx, "secret@example.com", "wrong"); err == nil {
		t.Fatal("wrong password accepted")
	}
	a, b := f.login(t, "secret@example.com"), f.login(t, "secret@example.com")
	addToken("session A", protocol.SessionToken, a.SessionToken)
	addToken("session B", protocol.SessionToken, b.SessionToken)
	addToken("keyFetch B", protocol.KeyFetchToken, b.KeyFetchToken)
	keys, err := f.c.Keys(ctx, a.KeyFetchToken, a.UnwrapBKey)
	if err != nil {
		t.Fatal(err)
	}
	secrets["kB"] = keys.KB
	pub, authKey := pushKeys(t)
	dA := f.device(t, a, "Laptop", "desktop")
	if _, err := f.c.UpdateDevice(ctx, a.SessionToken, dA.ID, client.DeviceFields{PushPublicKey: &pub, PushAuthKey: &authKey}); err != nil {
		t.Fatal(err)
	}
	dB := f.device(t, b, "Phone", "mobile")
	if err := f.c.DestroyDevice(ctx, a.SessionToken, dB.ID); err != nil {
		t.Fatal(err)
	}
	if err := f.admin.Disable(ctx, hexOf(uid)); err != nil {
		t.Fatal(err)
	}
	if err := f.admin.Enable(ctx, hexOf(uid)); err != nil {
		t.Fatal(err)
	}
	if err := f.c.ChangePassword(ctx, "secret@example.com", password, "new password"); err != nil {
		t.Fatal(err)
	}
	after, err := f.st.AccountByUID(ctx, uid)
	if err != nil {
		t.Fatal(err)
	}
	secrets["new wrapKb"], secrets["new verifier"] = after.WrapKb, after.SRPVerifier
	if err := f.admin.RevokeSessions(ctx, hexOf(uid)); err != nil {
		t.Fatal(err)
	}

	page, err := f.admin.Audit(ctx, client.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range page.Events {
		seen[e.Action+"/"+e.Outcome] = true
	}
	for _, want := range []string{"account.create/success", "login/failure", "login/success", "session.create/success",
		"keys.fetch/success", "device.register/success", "device.update/success", "device.destroy/success",
		"admin.account.disable/success", "admin.account.enable/success", "password.change.start/success",
		"account.reset/success", "admin.sessions.revoke/success"} {
		if !seen[want] {
			t.Errorf("no %s event", want)
		}
	}
	auditJSON, _ := json.Marshal(page)
	stored, err := f.st.Events(ctx, store.EventQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var storedText strings.Builder
	for _, e := range stored {
		storedText.WriteString(e.Details + e.IP + hexOf(e.UID) + hexOf(e.DeviceID) + hexOf(e.SessionID) + "\n")
	}
	for name, s := range secrets {
		h := hexOf(s)
		for where, text := range map[string]string{"audit API": string(auditJSON), "stored events": storedText.String(), "log": f.logs.String()} {
			if len(s) > 0 && strings.Contains(strings.ToLower(text), h) {
				t.Errorf("%s contains %s", where, name)
			}
		}
	}
	for _, s := range []string{pub, authKey, adminToken} {
		if strings.Contains(string(auditJSON), s) || strings.Contains(f.logs.String(), s) {
			t.Error("push key or admin token in the audit log or the server log")
		}
	}
}
