package e2e

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keyserver/keyserver/client"
	"github.com/keyserver/keyserver/internal/smtptest"
	"github.com/keyserver/keyserver/keywrap"
	"github.com/keyserver/keyserver/protocol"
)

// The recovery key of docs/recovery-key.md through the Go client against the
// real binary, on both backends: made while signed in, it gives kB back
// after a forgotten password so that the reset keeps kA and kB, and is used
// up by that reset; a password change keeps it; the data endpoint wants the
// right key of an account that has one, and an accountResetToken that is
// still live; the admin record and the audit trail show it, never its data.

// rkMailbox reads the test SMTP server's messages in order.
type rkMailbox struct {
	t    *testing.T
	m    *smtptest.Server
	seen []string // subjects skipped so far
}

// until returns the next message to email for which ok holds, skipping
// (and remembering) the others.
func (mb *rkMailbox) until(email, what string, ok func(*smtptest.Message) bool) *smtptest.Message {
	mb.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		msg := mb.m.Next(mb.t)
		if len(msg.To) == 1 && msg.To[0] == email && ok(msg) {
			return msg
		}
		mb.seen = append(mb.seen, msg.Get("Subject"))
	}
	mb.t.Fatalf("no mail to %s: %s (skipped %q)", email, what, mb.seen)
	return nil
}

// code is the code of the next forgot-password mail to email.
func (mb *rkMailbox) code(email string) string {
	mb.t.Helper()
	return mb.until(email, "a forgot-password code", func(m *smtptest.Message) bool { return m.Get("X-Recovery-Code") != "" }).Get("X-Recovery-Code")
}

// subject waits for a mail to email whose subject contains s.
func (mb *rkMailbox) subject(email, s string) {
	mb.t.Helper()
	mb.until(email, "subject "+s, func(m *smtptest.Message) bool { return strings.Contains(m.Get("Subject"), s) })
}

func TestRecoveryKeyE2E(t *testing.T) {
	backends(t, func(t *testing.T, db string, extra ...string) {
		mail := smtptest.Start(t)
		s, admin, _ := startAdminServer(t, db, append(smtpFlags(mail), extra...)...)
		mb := &rkMailbox{t: t, m: mail}
		c := newClient(t, s)
		ctx := ctxT(t)
		const email, pw, pw2, pw3, pw4 = "keeper@example.org", "first password", "second password", "third password", "fourth password"

		uid, err := c.CreateAccount(ctx, email, pw, client.CreateOptions{PreVerified: true})
		if err != nil {
			t.Fatal(err)
		}
		uidHex := hex.EncodeToString(uid)
		hasKey := func(want bool, what string) {
			t.Helper()
			acct, err := admin.Account(ctx, uidHex)
			if err != nil {
				t.Fatalf("%s: admin account: %v", what, err)
			}
			if acct.HasRecoveryKey != want {
				t.Fatalf("%s: admin record hasRecoveryKey %v, want %v", what, acct.HasRecoveryKey, want)
			}
		}
		status := func(sess *client.Session, want bool, what string) *protocol.RecoveryKeyStatus {
			t.Helper()
			st, err := c.RecoveryKeyStatus(ctx, sess.SessionToken)
			if err != nil {
				t.Fatalf("%s: status: %v", what, err)
			}
			if st.Exists != want || want != (st.CreatedAt > 0) {
				t.Fatalf("%s: status %+v, want exists %v", what, st, want)
			}
			return st
		}
		login := func(password string) (*client.Session, *client.Keys) {
			t.Helper()
			sess, err := c.Login(ctx, email, password)
			if err != nil {
				t.Fatalf("login: %v", err)
			}
			keys, err := c.Keys(ctx, sess.KeyFetchToken, sess.UnwrapBKey)
			if err != nil {
				t.Fatalf("keys: %v", err)
			}
			return sess, keys
		}
		forgot := func() []byte {
			t.Helper()
			ft, err := c.ForgotSendCode(ctx, email)
			if err != nil {
				t.Fatalf("send_code: %v", err)
			}
			token, err := c.ForgotVerifyCode(ctx, ft, mb.code(email))
			if err != nil {
				t.Fatalf("verify_code: %v", err)
			}
			return token
		}
		sameKeys := func(got, want *client.Keys, what string) {
			t.Helper()
			if !bytes.Equal(got.KA, want.KA) || !bytes.Equal(got.KB, want.KB) {
				t.Fatalf("%s: kA %x kB %x, want kA %x kB %x", what, got.KA, got.KB, want.KA, want.KB)
			}
		}

		// Made while signed in.
		s1, k1 := login(pw)
		status(s1, false, "new account")
		hasKey(false, "new account")
		before := time.Now().UnixMilli()
		key1, err := c.CreateRecoveryKey(ctx, s1.SessionToken, s1.UID, k1.KB)
		if err != nil {
			t.Fatalf("create: %v", err)
		}
		if st := status(s1, true, "after create"); st.CreatedAt < before-5000 || st.CreatedAt > time.Now().UnixMilli()+5000 {
			t.Fatalf("createdAt %d, made at about %d", st.CreatedAt, before)
		}
		hasKey(true, "after create")
		mb.subject(email, "recovery key was made")
		R1, err := keywrap.ParseRecoveryKey(key1)
		if err != nil {
			t.Fatal(err)
		}
		id1 := hex.EncodeToString(keywrap.RecoveryKeyID(R1))

		// Only an accountResetToken reads the data: a sessionToken (or any
		// other type) is unknown there.
		dataBody := []byte(`{"recoveryKeyId":"` + id1 + `"}`)
		for typ, seed := range map[protocol.TokenType][]byte{protocol.SessionToken: s1.SessionToken, protocol.KeyFetchToken: s1.KeyFetchToken} {
			_, err := c.DoRaw(ctx, &client.RawRequest{Method: http.MethodPost, Path: "/v1/recoveryKey/data", Body: dataBody,
				ContentType: "application/json", Cred: client.TokenCredentials(typ, seed)}, nil)
			wantStatus(t, err, 401, 110, "recoveryKey/data with a "+string(typ))
		}

		// Forgotten password: another valid key is refused (128) and
		// changes nothing; the right one gives kB, and the reset keeps it.
		reset1 := forgot()
		otherKey := keywrap.FormatRecoveryKey(bytes.Repeat([]byte{0xa5}, 32))
		_, err = c.RecoveryKB(ctx, reset1, otherKey)
		wantStatus(t, err, 400, protocol.ErrnoInvalidRecoveryKey, "another recovery key")
		status(s1, true, "after a wrong key")
		kB, err := c.RecoveryKB(ctx, reset1, key1)
		if err != nil {
			t.Fatalf("RecoveryKB with the right key after a wrong one: %v", err)
		}
		if !bytes.Equal(kB, k1.KB) {
			t.Fatalf("RecoveryKB: kB %x, want %x", kB, k1.KB)
		}
		if err := c.ResetAccountWithKB(ctx, reset1, email, pw2, kB); err != nil {
			t.Fatalf("reset keeping kB: %v", err)
		}
		// The reset consumed the token: neither endpoint takes it again.
		_, err = c.RecoveryKB(ctx, reset1, key1)
		wantStatus(t, err, 401, 110, "recoveryKey/data with a used accountResetToken")
		err = c.ResetAccount(ctx, reset1, email, pw3, nil)
		wantStatus(t, err, 401, 110, "account/reset with a used accountResetToken")
		_, err = c.Login(ctx, email, pw)
		wantErrno(t, err, protocol.ErrnoIncorrectPassword, "old password after the reset")
		s2, k2 := login(pw2)
		sameKeys(k2, k1, "after the reset with the recovery key")
		status(s2, false, "after the reset (the key is used up)")
		hasKey(false, "after the reset")

		// No key: 129, from any accountResetToken (here a password change's,
		// which this test then leaves unused).
		auth, err := c.SignIn(ctx, email, pw2)
		if err != nil {
			t.Fatal(err)
		}
		_, changeReset, err := c.PasswordChangeStart(ctx, auth.AuthToken)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.RecoveryKB(ctx, changeReset, key1)
		wantStatus(t, err, 400, protocol.ErrnoNoRecoveryKey, "an account without a recovery key")

		// A password change keeps the key, and so do disabling and
		// enabling the account; a recovery afterwards gives the current kB.
		s3, _ := login(pw2)
		key2, err := c.CreateRecoveryKey(ctx, s3.SessionToken, s3.UID, k2.KB)
		if err != nil {
			t.Fatal(err)
		}
		if key2 == key1 {
			t.Fatal("the same recovery key twice")
		}
		if err := c.ChangePassword(ctx, email, pw2, pw3); err != nil {
			t.Fatalf("change password: %v", err)
		}
		s4, k4 := login(pw3)
		sameKeys(k4, k1, "after the password change")
		status(s4, true, "after the password change")
		hasKey(true, "after the password change")
		if err := admin.Disable(ctx, uidHex); err != nil {
			t.Fatal(err)
		}
		_, err = c.RecoveryKeyStatus(ctx, s4.SessionToken)
		wantStatus(t, err, 400, protocol.ErrnoAccountDisabled, "status of a disabled account")
		if err := admin.Enable(ctx, uidHex); err != nil {
			t.Fatal(err)
		}
		status(s4, true, "after disable and enable")
		reset2 := forgot()
		_, err = c.RecoveryKB(ctx, reset2, key1)
		wantStatus(t, err, 400, protocol.ErrnoInvalidRecoveryKey, "the replaced recovery key")
		kB, err = c.RecoveryKB(ctx, reset2, key2)
		if err != nil || !bytes.Equal(kB, k4.KB) {
			t.Fatalf("RecoveryKB after the password change: %x, %v; want %x", kB, err, k4.KB)
		}
		if err := c.ResetAccountWithKB(ctx, reset2, email, pw4, kB); err != nil {
			t.Fatal(err)
		}
		s5, k5 := login(pw4)
		sameKeys(k5, k1, "after the second reset with a recovery key")
		status(s5, false, "after the second reset")

		// A new key replaces the old one, which then no longer matches;
		// the data endpoint does not consume its token.
		key3, err := c.CreateRecoveryKey(ctx, s5.SessionToken, s5.UID, k5.KB)
		if err != nil {
			t.Fatal(err)
		}
		key4, err := c.CreateRecoveryKey(ctx, s5.SessionToken, s5.UID, k5.KB)
		if err != nil {
			t.Fatal(err)
		}
		hasKey(true, "fourth key")
		auth, err = c.SignIn(ctx, email, pw4)
		if err != nil {
			t.Fatal(err)
		}
		_, changeReset, err = c.PasswordChangeStart(ctx, auth.AuthToken)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.RecoveryKB(ctx, changeReset, key3)
		wantStatus(t, err, 400, protocol.ErrnoInvalidRecoveryKey, "the replaced third key")
		for range 2 {
			if kB, err := c.RecoveryKB(ctx, changeReset, key4); err != nil || !bytes.Equal(kB, k1.KB) {
				t.Fatalf("the fourth key: %x, %v", kB, err)
			}
		}

		// Delete.
		if err := c.DeleteRecoveryKey(ctx, s5.SessionToken); err != nil {
			t.Fatalf("delete: %v", err)
		}
		status(s5, false, "after delete")
		hasKey(false, "after delete")
		mb.subject(email, "was deleted")
		if err := c.DeleteRecoveryKey(ctx, s5.SessionToken); err != nil {
			t.Fatalf("deleting again: %v", err)
		}

		// The audit trail: every recoveryKey action of RK.7, with its
		// details, and never a key, an id or the data.
		page, err := admin.Audit(ctx, client.AuditQuery{UID: uidHex})
		if err != nil {
			t.Fatal(err)
		}
		type seen struct{ action, outcome, details string }
		var got []seen
		for _, e := range page.Events {
			if strings.HasPrefix(e.Action, "recoveryKey.") {
				var d map[string]any
				if err := json.Unmarshal(e.Details, &d); err != nil {
					t.Fatalf("event %s details %s: %v", e.Action, e.Details, err)
				}
				det, _ := json.Marshal(d) // canonical member order
				got = append(got, seen{e.Action, e.Outcome, string(det)})
				if e.Actor != "user" {
					t.Errorf("event %s by %s, want user", e.Action, e.Actor)
				}
			}
		}
		want := []seen{
			{"recoveryKey.create", "success", `{}`},
			{"recoveryKey.data", "failure", `{"errno":128}`},
			{"recoveryKey.data", "success", `{}`},
			{"recoveryKey.destroy", "success", `{"reason":"reset"}`},
			{"recoveryKey.data", "failure", `{"errno":129}`},
			{"recoveryKey.create", "success", `{}`},
			{"recoveryKey.data", "failure", `{"errno":128}`},
			{"recoveryKey.data", "success", `{}`},
			{"recoveryKey.destroy", "success", `{"reason":"reset"}`},
			{"recoveryKey.create", "success", `{}`},
			{"recoveryKey.create", "success", `{"replaced":true}`},
			{"recoveryKey.data", "failure", `{"errno":128}`},
			{"recoveryKey.data", "success", `{}`},
			{"recoveryKey.data", "success", `{}`},
			{"recoveryKey.destroy", "success", `{}`},
		}
		if len(got) != len(want) {
			t.Fatalf("recoveryKey events\n got %v\nwant %v", got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("recoveryKey event %d: got %v, want %v\nall: %v", i, got[i], want[i], got)
			}
		}
		events, err := c.Events(ctx, s5.SessionToken)
		if err != nil {
			t.Fatal(err)
		}
		userActions := map[string]int{}
		for _, e := range events {
			userActions[e.Action+"/"+e.Outcome]++
		}
		for a, n := range map[string]int{"recoveryKey.create/success": 4, "recoveryKey.data/failure": 4, "recoveryKey.data/success": 4, "recoveryKey.destroy/success": 3} {
			if userActions[a] != n {
				t.Errorf("GET /v1/account/events: %d × %s, want %d (%v)", userActions[a], a, n, userActions)
			}
		}
		raw, _ := json.Marshal(page)
		logs := s.logs.String()
		for _, k := range []string{key1, key2, key3, key4} {
			R, _ := keywrap.ParseRecoveryKey(k)
			flat := strings.ReplaceAll(k, " ", "")
			for _, secret := range []string{flat, k[:14], hex.EncodeToString(R), hex.EncodeToString(keywrap.RecoveryKeyID(R))} {
				if strings.Contains(string(raw), secret) || strings.Contains(logs, secret) {
					t.Fatalf("the audit trail or the server log holds a recovery key or its id")
				}
			}
		}
	})
}
