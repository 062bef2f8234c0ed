package main

import (
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/keyserver/keyserver/client"
	"github.com/keyserver/keyserver/keyserver"
	"github.com/keyserver/keyserver/keywrap"
	"github.com/keyserver/keyserver/store/sqlstore"
)

// runClientCLI runs "keyserver client args..." in-process.
func runClientCLI(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(append([]string{"client"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

// stubPrompt makes the terminal prompt answer with answers in turn (or fail
// like a missing terminal when they run out) and records the prompts.
func stubPrompt(t *testing.T, answers ...string) *[]string {
	t.Helper()
	var prompts []string
	old := promptPassword
	promptPassword = func(prompt string) (string, error) {
		prompts = append(prompts, prompt)
		if len(answers) == 0 {
			return "", errors.Join(errUsage, errors.New("no terminal"))
		}
		a := answers[0]
		answers = answers[1:]
		return a, nil
	}
	t.Cleanup(func() { promptPassword = old })
	return &prompts
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestClientUsageErrors(t *testing.T) {
	stubPrompt(t) // no terminal
	pw := writeFile(t, "pw\n")
	empty := writeFile(t, "\nsecond line\n")
	tests := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"no command", nil, 2, "client needs a command"},
		{"unknown command", []string{"bogus"}, 2, `unknown client command "bogus"`},
		{"help", []string{"-h"}, 0, "usage: keyserver client"},
		{"command help", []string{"login", "-h"}, 0, "usage: keyserver client login"},
		{"unknown flag", []string{"login", "--nope"}, 2, "flag provided but not defined"},
		{"flag of another command", []string{"login", "--pre-verified"}, 2, "flag provided but not defined"},
		{"extra argument", []string{"login", "--email", "a@b", "x"}, 2, `unexpected argument "x"`},
		{"no email", []string{"login", "--password-file", pw}, 2, "--email is required"},
		{"bad url", []string{"login", "--email", "a@b", "--url", "127.0.0.1:9000", "--password-file", pw}, 2, "--url"},
		{"no terminal", []string{"login", "--email", "a@b"}, 2, "no terminal"},
		{"empty password", []string{"destroy", "--email", "a@b", "--password-file", empty}, 2, "empty password"},
		{"missing password file", []string{"keys", "--email", "a@b", "--password-file", filepath.Join(t.TempDir(), "none")}, 1, "reading password file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runClientCLI(tt.args...)
			if code != tt.code || !strings.Contains(stderr, tt.msg) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr, tt.code, tt.msg)
			}
			if stdout != "" {
				t.Errorf("stdout %q", stdout)
			}
		})
	}
}

func TestClientNewPasswordMismatch(t *testing.T) {
	prompts := stubPrompt(t, "one", "two")
	code, _, stderr := runClientCLI("create", "--email", "a@b", "--url", "http://127.0.0.1:1")
	if code != 1 || !strings.Contains(stderr, "do not match") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	if want := []string{"Password: ", "Repeat password: "}; strings.Join(*prompts, "|") != strings.Join(want, "|") {
		t.Errorf("prompts %q", *prompts)
	}
}

// newClientTestServer starts the real server (development mode, SQLite;
// configure may change its config) and makes the CLI stretch cheaply.
func newClientTestServer(t *testing.T, configure ...func(*keyserver.Config)) string {
	t.Helper()
	st, err := sqlstore.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "ks.db"), sqlstore.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ts := httptest.NewUnstartedServer(nil)
	url := "http://" + ts.Listener.Addr().String()
	cfg := keyserver.Config{PublicURL: url, Dev: true}
	for _, c := range configure {
		c(&cfg)
	}
	srv, err := keyserver.New(cfg, st)
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = srv.Handler()
	ts.Start()
	t.Cleanup(ts.Close)

	old := clientOptions
	clientOptions = []client.Option{client.WithStretching(keywrap.Params{PBKDF2Rounds1: 2, ScryptN: 16, ScryptR: 8, ScryptP: 1, PBKDF2Rounds2: 2})}
	t.Cleanup(func() { clientOptions = old })
	return url
}

var keysRE = regexp.MustCompile(`^uid: ([0-9a-f]{32})\n(verified: true\n)?kA: ([0-9a-f]{64})\nkB: ([0-9a-f]{64})\n$`)

func TestClientCLI(t *testing.T) {
	url := newClientTestServer(t)
	const email, oldPw, newPw = "cli@example.org", "old secret", "new secret"
	oldFile := writeFile(t, oldPw+"\r\nignored\n")
	newFile := writeFile(t, newPw)
	base := []string{"--url", url, "--email", email}
	cli := func(t *testing.T, wantCode int, args ...string) string {
		t.Helper()
		code, stdout, stderr := runClientCLI(append(args[:1:1], append(base, args[1:]...)...)...)
		if code != wantCode {
			t.Fatalf("%v: exit %d, stderr %q", args, code, stderr)
		}
		for _, secret := range []string{oldPw, newPw} {
			if strings.Contains(stdout+stderr, secret) {
				t.Fatalf("%v: output shows a password", args)
			}
		}
		return stdout + stderr
	}

	out := cli(t, 0, "create", "--password-file", oldFile, "--pre-verified")
	m := regexp.MustCompile(`^uid: ([0-9a-f]{32})\n$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("create printed %q", out)
	}
	uid := m[1]

	login := keysRE.FindStringSubmatch(cli(t, 0, "login", "--password-file", oldFile))
	keys := keysRE.FindStringSubmatch(cli(t, 0, "keys", "--password-file", oldFile))
	if login == nil || keys == nil || login[2] == "" || keys[2] != "" {
		t.Fatalf("login %q, keys %q", login, keys)
	}
	if login[1] != uid || keys[1] != uid || login[3] != keys[3] || login[4] != keys[4] {
		t.Fatal("login and keys disagree")
	}

	changed := keysRE.FindStringSubmatch(cli(t, 0, "change-password", "--password-file", oldFile, "--new-password-file", newFile))
	if changed == nil || changed[1] != uid || changed[3] != keys[3] || changed[4] != keys[4] {
		t.Fatalf("change-password printed %q; want the same uid and keys", changed)
	}
	if out := cli(t, 1, "keys", "--password-file", oldFile); !strings.Contains(out, "/103 Incorrect password") {
		t.Fatalf("old password: %q", out)
	}

	// Passwords from the terminal prompt.
	prompts := stubPrompt(t, newPw)
	cli(t, 0, "keys")
	if len(*prompts) != 1 {
		t.Errorf("prompts %q", *prompts)
	}

	if out := cli(t, 0, "destroy", "--password-file", newFile); out != "destroyed: "+email+"\n" {
		t.Fatalf("destroy printed %q", out)
	}
	if out := cli(t, 1, "login", "--password-file", newFile); !strings.Contains(out, "/102 Unknown account") {
		t.Fatalf("login after destroy: %q", out)
	}
}

// TestClientCLIEnvAndUnverified: flags from the environment, and login on an
// unverified account prints no keys while keys fails with 104.
func TestClientCLIEnvAndUnverified(t *testing.T) {
	url := newClientTestServer(t)
	t.Setenv("KEYSERVER_URL", url)
	t.Setenv("KEYSERVER_EMAIL", "env@example.org")
	t.Setenv("KEYSERVER_PASSWORD_FILE", writeFile(t, "pw\n"))
	stubPrompt(t)

	code, stdout, stderr := runClientCLI("create")
	if code != 0 || !strings.HasPrefix(stdout, "uid: ") {
		t.Fatalf("create: exit %d, %q %q", code, stdout, stderr)
	}
	uid := strings.TrimSpace(strings.TrimPrefix(stdout, "uid: "))
	code, stdout, stderr = runClientCLI("login")
	if code != 0 || stdout != "uid: "+uid+"\nverified: false\n" {
		t.Fatalf("login: exit %d, %q %q", code, stdout, stderr)
	}
	code, _, stderr = runClientCLI("keys")
	if code != 1 || !strings.Contains(stderr, "/104 Unverified account") {
		t.Fatalf("keys: exit %d, %q", code, stderr)
	}
	// A flag beats the environment.
	code, _, stderr = runClientCLI("login", "--email", "other@example.org")
	if code != 1 || !strings.Contains(stderr, "/102 ") {
		t.Fatalf("login --email: exit %d, %q", code, stderr)
	}
}

var recoveryKeyRE = regexp.MustCompile(`(?m)^recovery key: ((?:[0-9A-Z]{4} ){12}[0-9A-Z]{5})$`)

// createRecoveryKey runs "client recovery-key create" and returns the key
// string it printed.
func createRecoveryKey(t *testing.T, base []string, pwFile string) (key, out string) {
	t.Helper()
	code, out, stderr := runClientCLI(append([]string{"recovery-key", "create", "--password-file", pwFile}, base...)...)
	if code != 0 {
		t.Fatalf("recovery-key create: exit %d %q", code, stderr)
	}
	m := recoveryKeyRE.FindStringSubmatch(out)
	if m == nil || !strings.Contains(out, "only time") || !strings.Contains(out, "store it safely") {
		t.Fatalf("recovery-key create printed %q", out)
	}
	if _, err := keywrap.ParseRecoveryKey(m[1]); err != nil {
		t.Fatalf("printed key %q: %v", m[1], err)
	}
	return m[1], out
}

func TestClientRecoveryKeyCLI(t *testing.T) {
	url := newClientTestServer(t)
	const email, pw = "rk@example.org", "rk secret"
	pwFile := writeFile(t, pw+"\n")
	base := []string{"--url", url, "--email", email}
	cli := func(t *testing.T, wantCode int, args ...string) string {
		t.Helper()
		code, stdout, stderr := runClientCLI(append(args, base...)...)
		if code != wantCode {
			t.Fatalf("%v: exit %d, stdout %q, stderr %q", args, code, stdout, stderr)
		}
		if strings.Contains(stdout+stderr, pw) {
			t.Fatalf("%v: output shows the password", args)
		}
		return stdout + stderr
	}
	// An unverified account has no kB to protect: 104.
	cli(t, 0, "create", "--password-file", pwFile)
	if out := cli(t, 1, "recovery-key", "create", "--password-file", pwFile); !strings.Contains(out, "/104 ") {
		t.Fatalf("create on an unverified account: %q", out)
	}
	cli(t, 0, "destroy", "--password-file", pwFile)
	cli(t, 0, "create", "--password-file", pwFile, "--pre-verified")

	if out := cli(t, 0, "recovery-key", "status", "--password-file", pwFile); out != "recovery key: none\n" {
		t.Fatalf("status before: %q", out)
	}
	key1, out := createRecoveryKey(t, base, pwFile)
	if strings.Contains(out, "replaces") {
		t.Fatalf("first key: %q", out)
	}
	status := regexp.MustCompile(`^recovery key: yes, made 20\d\d-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\n$`)
	if out := cli(t, 0, "recovery-key", "status", "--password-file", pwFile); !status.MatchString(out) {
		t.Fatalf("status after create: %q", out)
	}
	key2, out := createRecoveryKey(t, base, pwFile)
	if key2 == key1 || !strings.Contains(out, "It replaces the recovery key made 20") {
		t.Fatalf("second key %q after %q: %q", key2, key1, out)
	}
	// The password comes from the terminal too.
	prompts := stubPrompt(t, pw)
	if out := cli(t, 0, "recovery-key", "status"); !status.MatchString(out) || len(*prompts) != 1 {
		t.Fatalf("status with a prompted password: %q, prompts %q", out, *prompts)
	}
	if out := cli(t, 0, "recovery-key", "delete", "--password-file", pwFile); !strings.HasPrefix(out, "deleted the recovery key made 20") {
		t.Fatalf("delete: %q", out)
	}
	if out := cli(t, 0, "recovery-key", "status", "--password-file", pwFile); out != "recovery key: none\n" {
		t.Fatalf("status after delete: %q", out)
	}
	if out := cli(t, 0, "recovery-key", "delete", "--password-file", pwFile); out != "recovery key: none (nothing to delete)\n" {
		t.Fatalf("second delete: %q", out)
	}
	if out := cli(t, 1, "recovery-key", "status", "--password-file", writeFile(t, "wrong\n")); !strings.Contains(out, "/103 ") {
		t.Fatalf("wrong password: %q", out)
	}
}

func TestClientRecoveryKeyUsage(t *testing.T) {
	stubPrompt(t) // no terminal
	key := keywrap.FormatRecoveryKey(make([]byte, 32))
	flat := strings.ReplaceAll(key, " ", "")
	// Nothing listens on port 1: a usage or key error must come before any
	// request.
	base := []string{"--email", "a@b", "--url", "http://127.0.0.1:1", "--new-password-file", writeFile(t, "pw\n")}
	tests := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"no subcommand", []string{"recovery-key"}, 2, "client recovery-key needs a command: create, status or delete"},
		{"unknown subcommand", []string{"recovery-key", "show"}, 2, `unknown client recovery-key command "show"`},
		{"subcommand help", []string{"recovery-key", "create", "-h"}, 0, "usage: keyserver client recovery-key create"},
		{"no email", []string{"recovery-key", "status"}, 2, "--email is required"},
		{"no new password flag", []string{"recovery-key", "create", "--new-password-file", "x"}, 2, "flag provided but not defined"},
		{"recovery key flag elsewhere", []string{"keys", "--recovery-key", key}, 2, "flag provided but not defined"},
		{"both key flags", append([]string{"forgot", "--recovery-key", key, "--recovery-key-file", "x"}, base...), 2, "not both"},
		{"short key", append([]string{"forgot", "--recovery-key", flat[:52]}, base...), 1, "keyserver: error: a recovery key has 53 characters, not 52 (nothing was sent)"},
		{"bad character", append([]string{"recover", "--assertion-file", "x", "--recovery-key", "U" + flat[1:]}, base...), 1, "character 1, 'U', is not a recovery key character"},
		{"mistyped", append([]string{"forgot", "--recovery-key-file", writeFile(t, flat[:52]+"1\n")}, base...), 1, "a character is mistyped (nothing was sent)"},
		{"empty key file", append([]string{"forgot", "--recovery-key-file", writeFile(t, "\n"+key+"\n")}, base...), 1, "has 53 characters, not 0"},
		{"missing key file", append([]string{"forgot", "--recovery-key-file", filepath.Join(t.TempDir(), "none")}, base...), 1, "reading the recovery key file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runClientCLI(tt.args...)
			if code != tt.code || !strings.Contains(stderr, tt.msg) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr, tt.code, tt.msg)
			}
			if strings.Contains(stdout+stderr, flat[1:20]) {
				t.Errorf("output shows the key: %q %q", stdout, stderr)
			}
		})
	}
}
