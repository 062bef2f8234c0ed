package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/keyserver/keyserver/accounts"
	"github.com/keyserver/keyserver/keyserver"
	"github.com/keyserver/keyserver/keywrap"
)

// codeMailer keeps the latest forgot-password code it was given.
type codeMailer struct {
	mu   sync.Mutex
	code string
}

func (m *codeMailer) Send(_ context.Context, msg *accounts.Message) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c := msg.Headers["X-Recovery-Code"]; c != "" {
		m.code = c
	}
	return nil
}

func (m *codeMailer) last() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.code
}

// stubCode answers the code prompt with the mailed code after wrong ones
// (or only wrong ones when right is false).
func stubCode(t *testing.T, m *codeMailer, wrong int, right bool) {
	t.Helper()
	old := promptCode
	promptCode = func(string) (string, error) {
		if wrong > 0 {
			wrong--
			if m.last() == "12345678" {
				return "87654321", nil
			}
			return "12345678", nil
		}
		if !right {
			t.Fatal("asked for a code once more")
		}
		return m.last(), nil
	}
	t.Cleanup(func() { promptCode = old })
}

func TestClientForgot(t *testing.T) {
	m := &codeMailer{}
	url := newClientTestServer(t, func(c *keyserver.Config) { c.Mailer = m })
	const email = "forgot@example.org"
	pw, newPw := writeFile(t, "old secret\n"), writeFile(t, "new secret\n")
	base := []string{"--url", url, "--email", email}
	if code, _, stderr := runClientCLI(append([]string{"create", "--password-file", pw, "--pre-verified"}, base...)...); code != 0 {
		t.Fatalf("create: %s", stderr)
	}
	_, out, _ := runClientCLI(append([]string{"keys", "--password-file", pw}, base...)...)
	before := keysRE.FindStringSubmatch(out)

	stubCode(t, m, 1, true)
	code, out, stderr := runClientCLI(append([]string{"forgot", "--new-password-file", newPw}, base...)...)
	if code != 0 {
		t.Fatalf("forgot: exit %d %s", code, stderr)
	}
	if !strings.Contains(out, "A 8-digit code was sent to "+email) || !strings.Contains(out, "Wrong code; 2 tries left.") {
		t.Fatalf("forgot printed %q", out)
	}
	after := keysRE.FindStringSubmatch(out[strings.Index(out, "uid: "):])
	if before == nil || after == nil || after[1] != before[1] || after[3] != before[3] || after[4] == before[4] {
		t.Fatalf("forgot: keys %q, before %q: want the same uid and kA, another kB", after, before)
	}
	if strings.Contains(out+stderr, m.last()) {
		t.Fatal("the code is printed")
	}
	if code, _, _ := runClientCLI(append([]string{"keys", "--password-file", newPw}, base...)...); code != 0 {
		t.Fatal("the new password does not work")
	}

	stubCode(t, m, 3, false)
	code, _, stderr = runClientCLI(append([]string{"forgot", "--new-password-file", pw}, base...)...)
	if code != 1 || !strings.Contains(stderr, "no try is left") {
		t.Fatalf("three wrong codes: exit %d %q", code, stderr)
	}
}

func TestClientRecoverUsage(t *testing.T) {
	stubPrompt(t)
	code, _, stderr := runClientCLI("recover", "--email", "a@b")
	if code != 2 || !strings.Contains(stderr, "--assertion-file is required") {
		t.Fatalf("exit %d %q", code, stderr)
	}
	code, _, stderr = runClientCLI("forgot", "--email", "a@b", "--password-file", "x")
	if code != 2 || !regexp.MustCompile(`flag provided but not defined: -password-file`).MatchString(stderr) {
		t.Fatalf("forgot --password-file: exit %d %q", code, stderr)
	}
}

// TestClientForgotRecoveryKey: forgot with the account's recovery key keeps
// kA and kB and uses the key up; another key (128) or none (129) resets
// nothing; the key may come from a file, the flag or standard input.
func TestClientForgotRecoveryKey(t *testing.T) {
	m := &codeMailer{}
	url := newClientTestServer(t, func(c *keyserver.Config) { c.Mailer = m })
	pw, pw2, pw3 := writeFile(t, "old secret\n"), writeFile(t, "new secret\n"), writeFile(t, "third secret\n")
	run := func(t *testing.T, base []string, wantCode int, args ...string) (stdout, stderr string) {
		t.Helper()
		code, stdout, stderr := runClientCLI(append(args, base...)...)
		if code != wantCode {
			t.Fatalf("%v: exit %d, stdout %q, stderr %q", args, code, stdout, stderr)
		}
		return stdout, stderr
	}
	account := func(t *testing.T, email string) (base []string, keys []string, key string) {
		t.Helper()
		base = []string{"--url", url, "--email", email}
		run(t, base, 0, "create", "--password-file", pw, "--pre-verified")
		out, _ := run(t, base, 0, "keys", "--password-file", pw)
		if keys = keysRE.FindStringSubmatch(out); keys == nil {
			t.Fatalf("keys printed %q", out)
		}
		key, _ = createRecoveryKey(t, base, pw)
		return base, keys, key
	}

	t.Run("kept", func(t *testing.T) {
		base, before, key := account(t, "kept@example.org")
		// As typed by someone: lower case, hyphens, a trailing newline.
		keyFile := writeFile(t, strings.ToLower(strings.ReplaceAll(key, " ", "-"))+"\n")
		stubCode(t, m, 0, true)
		out, stderr := run(t, base, 0, "forgot", "--recovery-key-file", keyFile, "--new-password-file", pw2)
		if !strings.Contains(out, "The recovery key is right: the reset keeps kB.") || !strings.Contains(out, "kA and kB are kept") ||
			!strings.Contains(out, "recovery-key create") {
			t.Fatalf("forgot printed %q", out)
		}
		after := keysRE.FindStringSubmatch(out[strings.Index(out, "uid: "):])
		if after == nil || after[1] != before[1] || after[3] != before[3] || after[4] != before[4] {
			t.Fatalf("forgot with the recovery key: keys %q, before %q: want the same uid, kA and kB", after, before)
		}
		if flat := strings.ReplaceAll(key, " ", ""); strings.Contains(strings.ToUpper(out+stderr), flat[:12]) {
			t.Fatal("forgot shows the recovery key")
		}
		if out, _ := run(t, base, 0, "recovery-key", "status", "--password-file", pw2); out != "recovery key: none\n" {
			t.Fatalf("status after the reset: %q (the reset uses the key up)", out)
		}
		// The key is used up: the next forgot finds none, and resets nothing.
		stubCode(t, m, 0, true)
		_, stderr = run(t, base, 1, "forgot", "--recovery-key", key, "--new-password-file", pw3)
		if !strings.Contains(stderr, "kept@example.org has no recovery key; nothing was reset") {
			t.Fatalf("forgot without a key on the account: %q", stderr)
		}
		run(t, base, 0, "keys", "--password-file", pw2)
	})

	t.Run("another key", func(t *testing.T) {
		base, before, key := account(t, "other@example.org")
		other := keywrap.FormatRecoveryKey(bytes.Repeat([]byte{0x5a}, 32))
		stubCode(t, m, 0, true)
		_, stderr := run(t, base, 1, "forgot", "--recovery-key", other, "--new-password-file", pw2)
		if !strings.Contains(stderr, "this recovery key is not the one of other@example.org; nothing was reset") {
			t.Fatalf("forgot with another key: %q", stderr)
		}
		// Nothing changed: the old password and the key still work.
		run(t, base, 0, "keys", "--password-file", pw)
		if out, _ := run(t, base, 0, "recovery-key", "status", "--password-file", pw); !strings.HasPrefix(out, "recovery key: yes") {
			t.Fatalf("status after a wrong key: %q", out)
		}
		// The key from standard input (--recovery-key-file -).
		old := promptRecoveryKey
		promptRecoveryKey = func(string) (string, error) { return key, nil }
		t.Cleanup(func() { promptRecoveryKey = old })
		stubCode(t, m, 0, true)
		out, _ := run(t, base, 0, "forgot", "--recovery-key-file", "-", "--new-password-file", pw2)
		after := keysRE.FindStringSubmatch(out[strings.Index(out, "uid: "):])
		if after == nil || after[3] != before[3] || after[4] != before[4] {
			t.Fatalf("forgot with the key from stdin: %q, before %q", after, before)
		}
	})

	t.Run("password change keeps the key", func(t *testing.T) {
		base, before, key := account(t, "change@example.org")
		run(t, base, 0, "change-password", "--password-file", pw, "--new-password-file", pw2)
		if out, _ := run(t, base, 0, "recovery-key", "status", "--password-file", pw2); !strings.HasPrefix(out, "recovery key: yes") {
			t.Fatalf("status after change-password: %q", out)
		}
		t.Setenv("KEYSERVER_RECOVERY_KEY", key)
		stubCode(t, m, 0, true)
		out, _ := run(t, base, 0, "forgot", "--new-password-file", pw3)
		after := keysRE.FindStringSubmatch(out[strings.Index(out, "uid: "):])
		if after == nil || after[3] != before[3] || after[4] != before[4] {
			t.Fatalf("forgot after change-password: %q, before %q", after, before)
		}
	})
}
