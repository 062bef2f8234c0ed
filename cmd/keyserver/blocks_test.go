package main

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/keyserver/keyserver/accounts"
	"github.com/keyserver/keyserver/client"
	"github.com/keyserver/keyserver/customs"
	"github.com/keyserver/keyserver/keyserver"
)

// unblockMailer keeps the latest unblock code it was given.
type unblockMailer struct {
	mu   sync.Mutex
	code string
}

func (m *unblockMailer) Send(_ context.Context, msg *accounts.Message) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c := msg.Headers["X-Unblock-Code"]; c != "" {
		m.code = c
	}
	return nil
}

func (m *unblockMailer) last() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.code
}

// keyserver client login, blocked by R2 (400/125), has an unblock code
// mailed, asks for it and signs in with it; a 429 tells the wait.
func TestClientLoginUnblock(t *testing.T) {
	m := &unblockMailer{}
	url := newClientTestServer(t, func(c *keyserver.Config) {
		c.Mailer = m
		c.Limits = customs.DefaultRules()
		if err := customs.ParseLimitList("R2=2/24h,R1=3/15m", c.Limits); err != nil {
			t.Fatal(err)
		}
	})
	const email = "blocked@example.org"
	pw := writeFile(t, "secret\n")
	if code, _, stderr := runClientCLI("create", "--url", url, "--email", email, "--password-file", pw, "--pre-verified"); code != 0 {
		t.Fatalf("create: %s", stderr)
	}
	c, err := client.New(url, clientOptions...)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := c.SignIn(t.Context(), email, "wrong"); !client.IsErrno(err, 103) {
			t.Fatalf("wrong password: %v", err)
		}
	}
	var prompts []string
	old := promptCode
	promptCode = func(p string) (string, error) { prompts = append(prompts, p); return m.last(), nil }
	t.Cleanup(func() { promptCode = old })
	code, stdout, stderr := runClientCLI("login", "--url", url, "--email", email, "--password-file", pw)
	if code != 0 || !strings.HasPrefix(stdout, "uid: ") || len(prompts) != 1 || !strings.Contains(prompts[0], "unblock code was sent to "+email) {
		t.Fatalf("login: %d %q %q, prompts %q", code, stdout, stderr, prompts)
	}
	// R1 (3 in 15 min, the unblock code does not lift it): the wait is
	// told.
	if _, err := c.SignIn(t.Context(), email, "wrong"); !client.IsErrno(err, 103) {
		t.Fatal(err)
	}
	for range 2 {
		_, _ = c.SignIn(t.Context(), email, "wrong")
	}
	code, _, stderr = runClientCLI("login", "--url", url, "--email", email, "--password-file", pw)
	if code != 1 || !strings.Contains(stderr, "429/114") || !strings.Contains(stderr, "try again in 15 minutes") {
		t.Fatalf("login under R1: %d %q", code, stderr)
	}
}

// keyserver admin blocks list and clear.
func TestAdminBlocks(t *testing.T) {
	f := newAdminFixture(t)
	for range 5 {
		if _, err := f.c.SignIn(t.Context(), "lost@example.com", "wrong"); !client.IsErrno(err, 103) {
			t.Fatalf("wrong password: %v", err)
		}
	}
	code, stdout, stderr := f.admin("blocks", "list", "--uid", f.uid)
	if code != 0 || !strings.Contains(stdout, "RULE") || !strings.Contains(stdout, "R1") ||
		!strings.Contains(stdout, "127.0.0.1") || !strings.Contains(stdout, "lost@example.com") {
		t.Fatalf("blocks list: %d %q %q", code, stdout, stderr)
	}
	code, stdout, _ = f.admin("--json", "blocks", "list", "--ip", "192.0.2.1")
	if code != 0 || strings.TrimSpace(stdout) != `{
  "blocks": []
}` {
		t.Fatalf("blocks list --json of another ip: %d %q", code, stdout)
	}
	if code, _, stderr := f.admin("blocks", "clear"); code != 2 || !strings.Contains(stderr, "--uid or --ip") {
		t.Fatalf("blocks clear without a key: %d %q", code, stderr)
	}
	code, stdout, stderr = f.admin("blocks", "clear", "--uid", f.uid, "--rule", "R1")
	if code != 0 || !strings.Contains(stdout, "cleared R1 for account "+f.uid) {
		t.Fatalf("blocks clear: %d %q %q", code, stdout, stderr)
	}
	if _, err := f.c.SignIn(t.Context(), "lost@example.com", "pw"); err != nil {
		t.Fatalf("sign-in after clear: %v", err)
	}
	if code, stdout, _ := f.admin("blocks", "list"); code != 0 || strings.Contains(stdout, "R1") {
		t.Fatalf("blocks after clear: %q", stdout)
	}
}
