package main

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyserver/keyserver/internal/smtptest"
	"github.com/keyserver/keyserver/mail"
)

func TestCheckAdminAddress(t *testing.T) {
	for addr, ok := range map[string]bool{
		"127.0.0.1:9001":   true,
		"[::1]:9001":       true,
		"localhost:9001":   true,
		"10.1.2.3:9001":    true,
		"192.168.1.5:9001": true,
		"172.16.0.1:9001":  true,
		"[fd00::1]:9001":   true,
		"169.254.1.1:9001": true,
		"[fe80::1]:9001":   true,
		":9001":            false,
		"0.0.0.0:9001":     false,
		"[::]:9001":        false,
		"8.8.8.8:9001":     false,
		"[2001:db8::1]:1":  false,
	} {
		if err := checkAdminAddress(addr); (err == nil) != ok {
			t.Errorf("%s: %v, want allowed %v", addr, err, ok)
		}
	}
}

// serve refuses a public --admin-listen unless --admin-listen-public.
func TestServeRefusesPublicAdmin(t *testing.T) {
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte(strings.Repeat("t", 40)), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := run([]string{"serve", "--dev", "--listen", "127.0.0.1:0", "--db", "sqlite:" + filepath.Join(dir, "ks.db"),
		"--admin-listen", "0.0.0.0:0", "--admin-token-file", token}, &stdout, &stderr)
	want := "keyserver: error: --admin-listen 0.0.0.0:0: 0.0.0.0 listens on every interface; pass --admin-listen-public to serve the admin API there anyway"
	if code != 2 || !strings.Contains(stderr.String(), want) {
		t.Errorf("exit %d, stderr %q; want 2 and %q", code, stderr.String(), want)
	}
}

// Secret files readable by group or others are warned about.
func TestWarnIfShared(t *testing.T) {
	dir := t.TempDir()
	shared, private := filepath.Join(dir, "shared"), filepath.Join(dir, "private")
	if err := os.WriteFile(shared, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(shared, 0o644); err != nil { // past the umask
		t.Fatal(err)
	}
	if err := os.WriteFile(private, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, nil))
	warnIfShared(logger, "admin token file", private)
	if buf.Len() != 0 {
		t.Errorf("0600 file warned: %s", buf.String())
	}
	warnIfShared(logger, "admin token file", shared)
	if !strings.Contains(buf.String(), `msg="admin token file is readable by group or others: chmod 600 it"`) || !strings.Contains(buf.String(), "mode=0644") {
		t.Errorf("0644 file: %q", buf.String())
	}
	// The signing key of serve.
	buf.Reset()
	key := filepath.Join(dir, "signing.pem")
	var out bytes.Buffer
	if code := run([]string{"keys", "generate", "--alg", "eddsa", "--out", key}, &out, &out); code != 0 {
		t.Fatal(out.String())
	}
	if err := os.Chmod(key, 0o640); err != nil {
		t.Fatal(err)
	}
	sf := signingFlags{signingKey: key}
	if _, _, err := sf.load(logger, false); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "signing key file is readable by group or others") {
		t.Errorf("signing key 0640: %q", buf.String())
	}
}

// --smtp-starttls mandatory against a server without STARTTLS: the log
// says so, and the mailer is still made.
func TestSMTPStartTLSCheck(t *testing.T) {
	srv := smtptest.Start(t)
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, nil))
	f := recoveryFlags{smtpHost: srv.Host, smtpPort: srv.Port, smtpStartTLS: mail.StartTLSMandatory, mailFrom: "ks <ks@example.org>"}
	m, err := f.mailer(logger, false)
	if err != nil || m == nil {
		t.Fatalf("mailer: %v %v", m, err)
	}
	if !strings.Contains(buf.String(), "level=WARN") || !strings.Contains(buf.String(), "the SMTP server does not offer STARTTLS") {
		t.Errorf("log: %q", buf.String())
	}
	buf.Reset()
	f.smtpStartTLS = mail.StartTLSOpportunistic
	if _, err := f.mailer(logger, false); err != nil || strings.Contains(buf.String(), "STARTTLS;") {
		t.Errorf("opportunistic: %v %q", err, buf.String())
	}
}

// The messages of issue 14: no "error: usage:", --alg values, certs
// verify -h layout, the admin CLI with nothing listening.
func TestOperatorMessages(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"keys", "generate", "--alg", "ecdsa", "--out", filepath.Join(dir, "k.pem")}, 2, "keyserver: error: --alg \"ecdsa\": want rs256 or eddsa\n"},
		{[]string{"certs", "verify", "-h"}, 0, "usage: keyserver certs verify --jwks URL|FILE [--audience AUD] [--issuer DOMAIN] [flags] CERT_OR_ASSERTION|-\n  -audience string\n"},
		{[]string{"admin", "--url", "http://127.0.0.1:1", "--token-file", writeFile(t, strings.Repeat("x", 40)), "audit"}, 1,
			"nothing listens at http://127.0.0.1:1: start the admin API with 'keyserver serve --admin-listen"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(c.args, &stdout, &stderr)
		if code != c.code || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("%q: exit %d, stderr %q; want %d and %q", c.args, code, stderr.String(), c.code, c.want)
		}
		if strings.Contains(stderr.String(), "--alg: certs:") || strings.Contains(stderr.String(), "unsupported key") {
			t.Errorf("%q: internal prefix in %q", c.args, stderr.String())
		}
		if strings.Contains(stderr.String(), "Usage of") {
			t.Errorf("%q: flag package layout in %q", c.args, stderr.String())
		}
	}
	var stdout, stderr bytes.Buffer
	for _, args := range [][]string{{"bogus"}, {"version", "x"}, {"admin", "devices"}, {"serve", "--log-level", "loud"}} {
		stderr.Reset()
		if code := run(args, &stdout, &stderr); code != 2 || strings.Contains(stderr.String(), "error: usage:") {
			t.Errorf("%q: exit %d, stderr %q", args, code, stderr.String())
		}
	}
}
