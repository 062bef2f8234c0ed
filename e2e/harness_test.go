package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/keyserver/keyserver/store/sqlstore/pgtest"
)

// binary is the keyserver built once for the whole package; signingKey is
// an RS256 key file made with it, which startServer passes to every server.
var binary, signingKey, kekFile string

// buildArgs builds the server with the race detector when cgo, which it
// needs, is available (go env CGO_ENABLED), and without it otherwise.
func buildArgs(out string) []string {
	args := []string{"build", "-o", out}
	if env, err := exec.Command("go", "env", "CGO_ENABLED").Output(); err == nil && strings.TrimSpace(string(env)) == "1" {
		args = append(args, "-race")
	}
	return append(args, "../cmd/keyserver")
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "keyserver-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "keyserver")
	build := exec.Command("go", buildArgs(binary)...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building keyserver:", err)
		os.Exit(1)
	}
	signingKey = filepath.Join(dir, "signing.pem")
	if out, err := exec.Command(binary, "keys", "generate", "--out", signingKey).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "generating the signing key: %v\n%s", err, out)
		os.Exit(1)
	}
	kekFile = filepath.Join(dir, "kek")
	if out, err := exec.Command(binary, "kek", "generate", "--out", kekFile).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "generating the key-encryption key: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// server is a running `keyserver serve` process.
type server struct {
	URL      string
	AdminURL string // with --admin-listen: the admin API (second stdout line)
	cmd      *exec.Cmd
	logs     *syncBuffer
	done     chan error
}

// syncBuffer collects the server's log for assertions and failure reports.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startServer runs `keyserver serve --listen 127.0.0.1:0 --signing-key
// <signingKey> args...` (a later --signing-key wins), reads the
// bound address from its first stdout line and stops it (SIGTERM, expecting a
// clean exit) when the test ends.
func startServer(t *testing.T, args ...string) *server {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"serve", "--listen", "127.0.0.1:0", "--log-format", "text", "--signing-key", signingKey, "--kek-file", kekFile,
		// Shedding is tested in package keyserver; here a loaded CI machine
		// must not turn a slow request into a 503.
		"--heavy-wait", "30s", "--heavy-queue", "1000"}, args...)...)
	cmd.Env = cleanEnv()
	logs := &syncBuffer{}
	cmd.Stderr = logs
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, logs: logs, done: make(chan error, 1)}
	lines := make(chan string, 2) // the public address, then the admin one
	go func() {
		sc := bufio.NewScanner(stdout)
		for i := 0; i < 2 && sc.Scan(); i++ {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	go func() { s.done <- cmd.Wait() }()
	select {
	case addr, ok := <-lines:
		if !ok {
			<-s.done
			t.Fatalf("keyserver exited before listening:\n%s", logs)
		}
		s.URL = "http://" + addr
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("keyserver did not print its address:\n%s", logs)
	}
	for _, a := range args {
		if a == "--admin-listen" || strings.HasPrefix(a, "--admin-listen=") {
			s.AdminURL = "http://" + <-lines // printed with the first line
		}
	}
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("keyserver did not stop cleanly: %v\n%s", err, logs)
		}
		if t.Failed() {
			t.Logf("keyserver log:\n%s", logs)
		}
	})
	return s
}

// waitLog reports whether the server's log contains substr within a few
// seconds: the log arrives through a pipe, possibly after the response that
// caused it.
func (s *server) waitLog(substr string) bool {
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if strings.Contains(s.logs.String(), substr) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// stop sends SIGTERM and waits for the exit status (idempotent).
func (s *server) stop() error {
	if s.cmd.ProcessState != nil {
		return nil
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.done:
		return err
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		return fmt.Errorf("no exit 30 s after SIGTERM")
	}
}

// cleanEnv is the environment without KEYSERVER_* settings of the developer.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KEYSERVER_") {
			env = append(env, kv)
		}
	}
	return env
}

// runKeyserver runs a keyserver subcommand to completion.
func runKeyserver(t *testing.T, args ...string) (stdout, stderr string, exitCode int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = cleanEnv()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return out.String(), errb.String(), ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), 0
}

// getJSON fetches url and decodes a JSON body.
func getJSON(t *testing.T, url string) (int, map[string]any, http.Header) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("GET %s: status %d, body is not JSON: %v", url, resp.StatusCode, err)
	}
	return resp.StatusCode, body, resp.Header
}

// sqliteDB is a fresh SQLite database for one test.
func sqliteDB(t *testing.T) string {
	return "sqlite:" + filepath.Join(t.TempDir(), "keyserver.db")
}

// postgresDB is a fresh PostgreSQL schema for one test (skipped without a
// configured server, except under CI=true).
func postgresDB(t *testing.T) string { return pgtest.DSN(t) }

// backends runs fn once per database backend.
func backends(t *testing.T, fn func(t *testing.T, db string, extra ...string)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, sqliteDB(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, postgresDB(t), "--migrate") })
}

// proxy is a TCP forwarder whose upstream can be cut and restored, to make a
// database unreachable without stopping it for every other test.
type proxy struct {
	t        *testing.T
	addr     string
	upstream string
	mu       sync.Mutex
	ln       net.Listener
	conns    map[net.Conn]bool
}

func newProxy(t *testing.T, upstream string) *proxy {
	p := &proxy{t: t, upstream: upstream, conns: map[net.Conn]bool{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.cut)
	return p
}

func (p *proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.upstream)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns[c], p.conns[up] = true, true
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
}

// cut closes the listener and every forwarded connection: the database is
// gone as far as the server can tell.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	p.conns = map[net.Conn]bool{}
}

// restore listens again on the same address.
func (p *proxy) restore() {
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ {
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		p.t.Fatalf("proxy: listening again on %s: %v", p.addr, err)
	}
	p.serve(ln)
}
