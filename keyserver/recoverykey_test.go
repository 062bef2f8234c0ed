package keyserver_test

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/keyserver/keyserver/client"
	"github.com/keyserver/keyserver/keywrap"
	"github.com/keyserver/keyserver/protocol"
	"github.com/keyserver/keyserver/store"
)

// rawAs is raw with the credentials of a token of type typ.
func (f *apiFixture) rawAs(t *testing.T, typ protocol.TokenType, method, path, body string, seed []byte) (int, map[string]any) {
	t.Helper()
	req := &client.RawRequest{Method: method, Path: path, Cred: client.TokenCredentials(typ, seed)}
	if body != "" {
		req.Body, req.ContentType = []byte(body), "application/json"
	}
	resp, err := f.c.DoRaw(t.Context(), req, nil)
	if resp == nil {
		t.Fatalf("%s %s: no response: %v", method, path, err)
	}
	var out map[string]any
	if err := json.Unmarshal(resp.Body, &out); err != nil {
		t.Fatalf("%s %s: body is not JSON: %q", method, path, resp.Body)
	}
	return resp.Status, out
}

// resetToken signs in and starts a password change: an accountResetToken
// seed of the account.
func (f *apiFixture) resetToken(t *testing.T, email string) []byte {
	t.Helper()
	auth, err := f.c.SignIn(t.Context(), email, password)
	if err != nil {
		t.Fatal(err)
	}
	_, art, err := f.c.PasswordChangeStart(t.Context(), auth.AuthToken)
	if err != nil {
		t.Fatal(err)
	}
	return art
}

func randomHex(t *testing.T, n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hexOf(b)
}

// actions lists the account's audit events as "action outcome details".
func (f *apiFixture) actions(t *testing.T, uid []byte) []string {
	t.Helper()
	evs, err := f.st.Events(t.Context(), store.EventQuery{UID: uid, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		out = append(out, e.Action+" "+e.Outcome+" "+e.Details)
	}
	return out
}

func hasAction(list []string, want string) bool {
	for _, a := range list {
		if a == want {
			return true
		}
	}
	return false
}

// The recovery-key endpoints of docs/recovery-key.md on the wire: create,
// replace, status, data with the accountResetToken only, 128 and 129, and
// the reset that uses the key up.
func TestRecoveryKeyEndpoints(t *testing.T) {
	f := newAPIFixture(t)
	const email = "rk@example.com"
	uid := f.account(t, email)
	s := f.login(t, email)
	sess := protocol.SessionToken

	status, body := f.rawAs(t, sess, "GET", "/v1/recoveryKey", "", s.SessionToken)
	if status != 200 || len(body) != 1 || body["exists"] != false {
		t.Fatalf("status before: %d %v", status, body)
	}
	id, data := randomHex(t, 16), randomHex(t, 60)
	for _, c := range []struct {
		body, param string
		errno       int
	}{
		{`{"recoveryData":"` + data + `"}`, "recoveryKeyId", 108},
		{`{"recoveryKeyId":"` + id + `"}`, "recoveryData", 108},
		{`{"recoveryKeyId":"` + id[:30] + `","recoveryData":"` + data + `"}`, "recoveryKeyId", 107},
		{`{"recoveryKeyId":"` + id + `","recoveryData":"` + data + `00"}`, "recoveryData", 107},
		{`{"recoveryKeyId":"` + id + `","recoveryData":"` + data + `","kB":"00"}`, "kB", 107},
	} {
		status, body := f.rawAs(t, sess, "POST", "/v1/recoveryKey", c.body, s.SessionToken)
		wantError(t, c.body, status, body, 400, c.errno, c.param)
	}
	create := fmt.Sprintf(`{"recoveryKeyId":%q,"recoveryData":%q}`, id, data)
	if status, body := f.rawAs(t, sess, "POST", "/v1/recoveryKey", create, s.SessionToken); status != 200 || len(body) != 0 {
		t.Fatalf("create: %d %v", status, body)
	}
	status, body = f.rawAs(t, sess, "GET", "/v1/recoveryKey", "", s.SessionToken)
	if status != 200 || len(body) != 2 || body["exists"] != true || body["createdAt"].(float64) < 1e12 {
		t.Fatalf("status after create: %d %v", status, body)
	}
	// Replaced: the new values win.
	id2, data2 := randomHex(t, 16), randomHex(t, 60)
	create2 := fmt.Sprintf(`{"recoveryKeyId":%q,"recoveryData":%q}`, id2, data2)
	if status, body := f.rawAs(t, sess, "POST", "/v1/recoveryKey", create2, s.SessionToken); status != 200 {
		t.Fatalf("replace: %d %v", status, body)
	}
	rec, err := f.admin.Account(t.Context(), hexOf(uid))
	if err != nil || !rec.HasRecoveryKey {
		t.Fatalf("admin record: %v %+v", err, rec)
	}

	art := f.resetToken(t, email)
	reset := protocol.AccountResetToken
	// Not readable with a sessionToken, nor without the right id.
	status, body = f.rawAs(t, sess, "POST", "/v1/recoveryKey/data", `{"recoveryKeyId":"`+id2+`"}`, s.SessionToken)
	wantError(t, "data with a sessionToken", status, body, 401, 110, "")
	status, body = f.rawAs(t, reset, "POST", "/v1/recoveryKey/data", `{"recoveryKeyId":"`+id+`"}`, art)
	wantError(t, "data with the replaced id", status, body, 400, 128, "")
	status, body = f.rawAs(t, reset, "POST", "/v1/recoveryKey/data", `{}`, art)
	wantError(t, "data without id", status, body, 400, 108, "recoveryKeyId")
	status, body = f.rawAs(t, reset, "POST", "/v1/recoveryKey/data", `{"recoveryKeyId":"`+id2+`"}`, art)
	if status != 200 || len(body) != 2 || body["uid"] != hexOf(uid) || body["recoveryData"] != data2 {
		t.Fatalf("data: %d %v", status, body)
	}
	// Asking twice is fine: the token is not consumed.
	if status, _ := f.rawAs(t, reset, "POST", "/v1/recoveryKey/data", `{"recoveryKeyId":"`+id2+`"}`, art); status != 200 {
		t.Fatalf("data again: %d", status)
	}

	// A reset without keepRecoveryKey uses the key up.
	if err := f.c.ResetAccount(t.Context(), art, email, password, nil); err != nil {
		t.Fatal(err)
	}
	status, body = f.rawAs(t, reset, "POST", "/v1/recoveryKey/data", `{"recoveryKeyId":"`+id2+`"}`, art)
	wantError(t, "data with a used accountResetToken", status, body, 401, 110, "")
	s = f.login(t, email)
	status, body = f.rawAs(t, sess, "GET", "/v1/recoveryKey", "", s.SessionToken)
	if status != 200 || body["exists"] != false {
		t.Fatalf("status after reset: %d %v", status, body)
	}
	status, body = f.rawAs(t, reset, "POST", "/v1/recoveryKey/data", `{"recoveryKeyId":"`+id2+`"}`, f.resetToken(t, email))
	wantError(t, "data without a key", status, body, 400, 129, "")
	if rec, err := f.admin.Account(t.Context(), hexOf(uid)); err != nil || rec.HasRecoveryKey {
		t.Fatalf("admin record after reset: %v %+v", err, rec)
	}

	acts := f.actions(t, uid)
	for _, want := range []string{
		"recoveryKey.create success {}",
		`recoveryKey.create success {"replaced":true}`,
		"recoveryKey.data failure {\"errno\":128}",
		"recoveryKey.data success {}",
		`recoveryKey.destroy success {"reason":"reset"}`,
		"recoveryKey.data failure {\"errno\":129}",
	} {
		if !hasAction(acts, want) {
			t.Errorf("no audit event %q in %q", want, acts)
		}
	}
}

// Destroy deletes the key, and says {} also when there is none; an
// unverified account cannot make one.
func TestRecoveryKeyDestroyAndRefusals(t *testing.T) {
	f := newAPIFixture(t)
	const email = "rk2@example.com"
	uid := f.account(t, email)
	s := f.login(t, email)
	sess := protocol.SessionToken
	create := fmt.Sprintf(`{"recoveryKeyId":%q,"recoveryData":%q}`, randomHex(t, 16), randomHex(t, 60))
	if status, body := f.rawAs(t, sess, "POST", "/v1/recoveryKey", create, s.SessionToken); status != 200 {
		t.Fatalf("create: %d %v", status, body)
	}
	for i := range 2 {
		if status, body := f.rawAs(t, sess, "POST", "/v1/recoveryKey/destroy", "", s.SessionToken); status != 200 || len(body) != 0 {
			t.Fatalf("destroy %d: %d %v", i, status, body)
		}
	}
	if status, body := f.rawAs(t, sess, "GET", "/v1/recoveryKey", "", s.SessionToken); body["exists"] != false {
		t.Fatalf("status after destroy: %d %v", status, body)
	}
	n := 0
	for _, a := range f.actions(t, uid) {
		if a == "recoveryKey.destroy success {}" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d destroy events, want 1 (the second destroy had nothing to delete)", n)
	}
	status, body := f.rawAs(t, sess, "POST", "/v1/recoveryKey/destroy", `{"x":1}`, s.SessionToken)
	wantError(t, "destroy with a member", status, body, 400, 107, "x")

	// Unverified: 104.
	const other = "unverified@example.com"
	if _, err := f.c.CreateAccount(t.Context(), other, password, client.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	u := f.login(t, other)
	status, body = f.rawAs(t, sess, "POST", "/v1/recoveryKey", create, u.SessionToken)
	wantError(t, "unverified create", status, body, 400, 104, "")
}

// rawReset is the body of /v1/account/reset for the accountResetToken seed
// art, with wrapKb, any verifier below N and the members extra (raw JSON
// members, or "").
func rawReset(t *testing.T, art, wrapKb []byte, extra string) string {
	t.Helper()
	_, _, bundleKey := keywrap.DeriveToken(string(protocol.AccountResetToken), art)
	verifier := bytes.Repeat([]byte{1}, 256)
	p := keywrap.DefaultParams()
	st, err := json.Marshal(protocol.Stretching{
		Type: keywrap.StretchType, PBKDF2Rounds1: p.PBKDF2Rounds1, ScryptN: p.ScryptN, ScryptR: p.ScryptR,
		ScryptP: p.ScryptP, PBKDF2Rounds2: p.PBKDF2Rounds2, Salt: randomHex(t, 32),
	})
	if err != nil {
		t.Fatal(err)
	}
	bundle := keywrap.Bundle(bundleKey, keywrap.ContextAccountReset, append(append([]byte{}, wrapKb...), verifier...))
	body := fmt.Sprintf(`{"bundle":%q,"srp":{"type":"SRP-6a/SHA256/2048/v1","salt":%q},"passwordStretching":%s`,
		hexOf(bundle), randomHex(t, 32), st)
	if extra != "" {
		body += "," + extra
	}
	return body + "}"
}

// keepRecoveryKey: a boolean; true keeps the key at a reset that sends a
// wrapKb, but not at one that asks for a new kB (32 zero bytes); false or
// absent deletes it.
func TestResetKeepRecoveryKey(t *testing.T) {
	f := newAPIFixture(t)
	reset := protocol.AccountResetToken
	kept := bytes.Repeat([]byte{7}, 32)
	for i, c := range []struct {
		wrapKb []byte
		extra  string
		keep   bool
	}{
		{kept, `"keepRecoveryKey":true`, true},
		{make([]byte, 32), `"keepRecoveryKey":true`, false},
		{kept, `"keepRecoveryKey":false`, false},
		{kept, "", false},
	} {
		email := fmt.Sprintf("keep%d@example.com", i)
		uid := f.account(t, email)
		body := fmt.Sprintf(`{"recoveryKeyId":%q,"recoveryData":%q}`, randomHex(t, 16), randomHex(t, 60))
		if status, out := f.rawAs(t, protocol.SessionToken, "POST", "/v1/recoveryKey", body, f.login(t, email).SessionToken); status != 200 {
			t.Fatalf("create: %d %v", status, out)
		}
		art := f.resetToken(t, email)
		if i == 0 {
			for _, v := range []string{`"yes"`, `1`, `null`} {
				status, body := f.rawAs(t, reset, "POST", "/v1/account/reset", rawReset(t, art, kept, `"keepRecoveryKey":`+v), art)
				wantError(t, "keepRecoveryKey "+v, status, body, 400, 107, "keepRecoveryKey")
			}
		}
		if status, out := f.rawAs(t, reset, "POST", "/v1/account/reset", rawReset(t, art, c.wrapKb, c.extra), art); status != 200 {
			t.Fatalf("reset %d: %d %v", i, status, out)
		}
		_, err := f.st.RecoveryKey(t.Context(), uid)
		if has := err == nil; has != c.keep || (err != nil && !errors.Is(err, store.ErrNotFound)) {
			t.Errorf("reset with wrapKb %x… and {%s}: recovery key kept %v (%v), want %v", c.wrapKb[:2], c.extra, has, err, c.keep)
		}
	}
}
