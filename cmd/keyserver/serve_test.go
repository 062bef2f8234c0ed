package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

func TestParseNets(t *testing.T) {
	nets, err := parseNets(" 10.0.0.1, 192.168.0.0/16 ,::1,")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.0.1/32", "192.168.0.0/16", "::1/128"}
	if len(nets) != len(want) {
		t.Fatalf("got %v", nets)
	}
	for i, n := range nets {
		if n.String() != want[i] {
			t.Errorf("net %d = %s, want %s", i, n, want[i])
		}
	}
	for _, bad := range []string{"10.0.0", "10.0.0.0/33", "proxy.example.com"} {
		if _, err := parseNets(bad); err == nil || !strings.Contains(err.Error(), "trusted-proxies") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestEnvName(t *testing.T) {
	if got := envName("public-url"); got != "KEYSERVER_PUBLIC_URL" {
		t.Fatal(got)
	}
}

func TestRedactDSN(t *testing.T) {
	for in, want := range map[string]string{
		"sqlite:keyserver.db":                                     "sqlite:keyserver.db",
		"sqlite:/var/lib/keyserver/pass:word.db":                  "sqlite:/var/lib/keyserver/pass:word.db",
		"postgres://ks@db.internal/ks":                            "postgres://ks@db.internal/ks",
		"postgres://ks:s3cret@db.internal:5432/ks?sslmode=verify": "postgres://ks:REDACTED@db.internal:5432/ks?sslmode=verify",
		"postgres://ks:p%40ss@db/ks":                              "postgres://ks:REDACTED@db/ks",
		"postgres://db/ks?user=ks&password=s3cret":                "postgres://db/ks?password=REDACTED&user=ks",
		"postgresql://db/ks?PassWord=s3cret&sslpassword=s3cret":   "postgresql://db/ks?PassWord=REDACTED&sslpassword=REDACTED",
		"postgres://ks:s3cret@db/ks?password=s3cret":              "postgres://ks:REDACTED@db/ks?password=REDACTED",
		"postgres://ks:s3cret@[::1/ks":                            "postgres://REDACTED",
		"host=db password=s3cret":                                 "REDACTED",
	} {
		got := redactDSN(in)
		if got != want || strings.Contains(got, "s3cret") {
			t.Errorf("redactDSN(%q) = %q, want %q", in, got, want)
		}
	}
}

// serve -h names the KEYSERVER_* variables; a bad --log-level names the
// valid values.
func TestServeHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"serve", "-h"}, &stdout, &stderr); code != 0 {
		t.Fatalf("serve -h: exit %d", code)
	}
	for _, want := range []string{"usage: keyserver serve [flags]", "-tls-cert", "-metrics-listen", "KEYSERVER_PUBLIC_URL", "environment variable"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("serve -h lacks %q:\n%s", want, stderr.String())
		}
	}
	stderr.Reset()
	if code := run([]string{"serve", "--log-level", "loud"}, &stdout, &stderr); code != 2 ||
		!strings.Contains(stderr.String(), "debug, info, warn or error") {
		t.Errorf("bad --log-level: exit %d, %q", code, stderr.String())
	}
}

// A fatal startup error is logged in the log's format (JSON) as well as
// printed; durations in JSON logs are strings.
func TestServeFatalErrorLogged(t *testing.T) {
	var stdout, stderr bytes.Buffer
	dir := t.TempDir()
	code := run([]string{"serve", "--dev", "--log-format", "json", "--listen", "127.0.0.1:0", "--db", "sqlite:" + filepath.Join(dir, "ks.db"),
		"--tls-cert", filepath.Join(dir, "missing.pem"), "--tls-key", filepath.Join(dir, "missing.key")}, &stdout, &stderr)
	if code != 1 {
		t.Fatalf("exit %d\n%s", code, stderr.String())
	}
	var logged bool
	for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil {
			if !strings.HasPrefix(line, "keyserver: error: ") || !strings.Contains(line, "missing.pem") {
				t.Errorf("not JSON, not the error line: %q", line)
			}
			continue
		}
		if rec["level"] == "ERROR" && strings.Contains(fmt.Sprint(rec["err"]), "missing.pem") {
			logged = true
		}
	}
	if !logged {
		t.Errorf("no JSON ERROR line naming the file:\n%s", stderr.String())
	}

	var buf bytes.Buffer
	logger, err := newLogger(&buf, "json", "info")
	if err != nil {
		t.Fatal(err)
	}
	logger.Info("x", "timeout", 30*time.Second, slog.Group("g", "d", 1500*time.Microsecond))
	if !strings.Contains(buf.String(), `"timeout":"30s"`) || !strings.Contains(buf.String(), `"d":"1.5ms"`) {
		t.Errorf("durations: %s", buf.String())
	}
}

func TestVersionFrom(t *testing.T) {
	build := func(v string, settings ...debug.BuildSetting) *debug.BuildInfo {
		return &debug.BuildInfo{Main: debug.Module{Path: "github.com/keyserver/keyserver", Version: v}, Settings: settings}
	}
	rev := debug.BuildSetting{Key: "vcs.revision", Value: "4f1c0ffee4f1c0ffee4f1c0ffee4f1c0ffee4f1c"}
	for _, tc := range []struct {
		name                string
		info                *debug.BuildInfo
		ldVersion, ldCommit string
		version, commit     string
	}{
		{"no build info", nil, "dev", "", "dev", ""},
		{"go build in a checkout", build("(devel)", rev), "dev", "", "dev", rev.Value},
		{"go install @tag", build("v1.4.0"), "dev", "", "v1.4.0", ""},
		{"go install @commit", build("v0.0.0-20260102150405-0123456789ab"), "dev", "", "v0.0.0-20260102150405-0123456789ab", "0123456789ab"},
		{"pseudo-version after a tag", build("v1.4.1-0.20260102150405-0123456789ab+dirty"), "dev", "", "v1.4.1-0.20260102150405-0123456789ab+dirty", "0123456789ab"},
		{"prerelease, no pseudo-version", build("v1.5.0-rc.1"), "dev", "", "v1.5.0-rc.1", ""},
		{"ldflags win", build("v1.4.0", rev), "v1.4.0-deb1", "abc123", "v1.4.0-deb1", "abc123"},
	} {
		v := versionFrom(tc.info, tc.ldVersion, tc.ldCommit)
		if v.Version != tc.version || v.Commit != tc.commit || v.Source != "https://github.com/keyserver/keyserver" {
			t.Errorf("%s: %+v, want version %q commit %q", tc.name, v, tc.version, tc.commit)
		}
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"version", "--json"}, &stdout, &stderr); code != 0 {
		t.Fatalf("version --json: exit %d %s", code, stderr.String())
	}
	var got map[string]string
	if err := json.Unmarshal(stdout.Bytes(), &got); err != nil || got["version"] == "" || got["source"] == "" || len(got) != 3 {
		t.Errorf("version --json: %q %v", stdout.String(), err)
	}
}

// A bad duration, on the command line or in the environment, is answered
// with the format.
func TestDurationFlagMessages(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"serve", "--hawk-skew", "5"}, &stdout, &stderr); code != 2 ||
		!strings.Contains(stderr.String(), `-hawk-skew: "5" is not a duration: want a number with a unit, such as 500ms, 90s, 15m or 2h30m`) {
		t.Errorf("--hawk-skew 5: exit %d, %q", code, stderr.String())
	}
	stderr.Reset()
	t.Setenv("KEYSERVER_SHUTDOWN_TIMEOUT", "soon")
	if code := run([]string{"serve"}, &stdout, &stderr); code != 2 ||
		!strings.Contains(stderr.String(), `KEYSERVER_SHUTDOWN_TIMEOUT: "soon" is not a duration`) {
		t.Errorf("KEYSERVER_SHUTDOWN_TIMEOUT=soon: exit %d, %q", code, stderr.String())
	}
	var d time.Duration
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	durationFlag(fs, &d, "wait", 90*time.Second, "how long")
	if d != 90*time.Second {
		t.Errorf("default %v", d)
	}
	if err := fs.Parse([]string{"--wait", "2h30m"}); err != nil || d != 150*time.Minute {
		t.Errorf("--wait 2h30m: %v %v", d, err)
	}
}

// An SQLite database that cannot be opened names the path and the reason.
func TestSQLiteOpenMessage(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		path, want string
	}{
		{filepath.Join(dir, "missing", "ks.db"), "its directory " + filepath.Join(dir, "missing") + " cannot be used: no such file or directory"},
		{dir, dir + " is a directory"},
	} {
		var stdout, stderr bytes.Buffer
		code := run([]string{"serve", "--dev", "--listen", "127.0.0.1:0", "--db", "sqlite:" + tc.path}, &stdout, &stderr)
		if code != 1 || !strings.Contains(stderr.String(), "keyserver: error: opening database sqlite:"+tc.path+": "+tc.want) {
			t.Errorf("%s: exit %d, %q", tc.path, code, stderr.String())
		}
	}
	if os.Geteuid() != 0 { // root opens any file
		ro := filepath.Join(dir, "ro.db")
		if err := os.WriteFile(ro, nil, 0o400); err != nil {
			t.Fatal(err)
		}
		if got := sqlitePathProblem(ro); !strings.Contains(got, "cannot be opened for writing: permission denied") {
			t.Errorf("read-only file: %q", got)
		}
	}
	if got := sqlitePathProblem(filepath.Join(dir, "new.db")); got != "" {
		t.Errorf("a file to create: %q", got)
	}
	if err := openError("postgres://ks:s3cret@db/ks", errors.New("down")); strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "postgres://ks:REDACTED@db/ks: down") {
		t.Errorf("postgres: %v", err)
	}
}
