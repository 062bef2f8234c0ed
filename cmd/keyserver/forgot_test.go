package main

import (
	"context"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/keyserver/keyserver/accounts"
	"github.com/keyserver/keyserver/keyserver"
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
