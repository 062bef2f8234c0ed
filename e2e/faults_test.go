package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyserver/keyserver/client"
)

// Storage faults an operator sees (issue 14): the database file's mode, a
// file deleted or replaced under the server, a full file system, a file
// the server cannot write.

var faultAccounts int

// createFaultAccount creates a pre-verified account; it returns the
// client's error.
func createFaultAccount(t *testing.T, s *server) error {
	t.Helper()
	c, err := client.New(s.URL, client.WithStretching(cheap))
	if err != nil {
		t.Fatal(err)
	}
	faultAccounts++
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = c.CreateAccount(ctx, fmt.Sprintf("fault%d-%d@example.com", faultAccounts, time.Now().UnixNano()), "pw", client.CreateOptions{PreVerified: true})
	return err
}

// wantUnavailable checks that err is 503/201 with a Retry-After.
func wantUnavailable(t *testing.T, what string, err error) {
	t.Helper()
	var e *client.Error
	if !errors.As(err, &e) || e.Status != 503 || e.Errno != 201 || e.Header.Get("Retry-After") == "" {
		t.Fatalf("%s: %v; want 503/201 with Retry-After", what, err)
	}
}

func heartbeat(t *testing.T, s *server) int {
	t.Helper()
	status, _, _ := getJSON(t, s.URL+"/__heartbeat__")
	return status
}

// TestFaultsDatabaseFileMode: a new SQLite database, its WAL and SHM are
// 0600, and the creation is logged at warn level with the path.
func TestFaultsDatabaseFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keyserver.db")
	s := startServer(t, "--dev", "--db", "sqlite:"+path)
	if err := createFaultAccount(t, s); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm != 0o600 {
			t.Errorf("%s: mode %#o, want 0600", filepath.Base(f), perm)
		}
	}
	if !s.waitLog(`level=WARN msg="created a new, empty database file`) || !s.waitLog("path="+path) {
		t.Errorf("no warning naming the new file:\n%s", s.logs)
	}
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	again := startServer(t, "--dev", "--db", "sqlite:"+path)
	if err := createFaultAccount(t, again); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(again.logs.String(), "created a new, empty database file") {
		t.Error("an existing file was announced as created")
	}
}

// TestFaultsDatabaseDeleted: once the file is deleted or replaced under
// the server, writes answer 503/201 and the heartbeat 503 (no account is
// acknowledged into an unlinked file).
func TestFaultsDatabaseDeleted(t *testing.T) {
	for _, how := range []string{"deleted", "replaced"} {
		t.Run(how, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "keyserver.db")
			s := startServer(t, "--dev", "--db", "sqlite:"+path)
			if err := createFaultAccount(t, s); err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			if how == "replaced" {
				if err := os.WriteFile(path, nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			wantUnavailable(t, "account create after the file was "+how, createFaultAccount(t, s))
			if status := heartbeat(t, s); status != 503 {
				t.Errorf("heartbeat after the file was %s: %d, want 503", how, status)
			}
			if !s.waitLog("deleted or replaced") {
				t.Errorf("the log does not say the file was deleted or replaced:\n%s", s.logs)
			}
		})
	}
}

// mountTmpfs mounts a tmpfs of size at a new directory, unmounted when the
// test ends (after the servers it holds stopped: register it first). It
// skips the test, saying so, when mounting is not possible (not root, no
// mount(8), no CAP_SYS_ADMIN).
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", dir).CombinedOutput()
	if err != nil {
		t.Skipf("SKIPPED: cannot mount a %s tmpfs for the storage fault (%v: %s); this case is not tested here", size, err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// TestFaultsDiskFull fills a small tmpfs under a running server: the write
// that finds no space answers 503/201 with Retry-After, the heartbeat 503
// until space is freed, then both recover without a restart.
func TestFaultsDiskFull(t *testing.T) {
	dir := mountTmpfs(t, "2m")
	path := filepath.Join(dir, "keyserver.db")
	s := startServer(t, "--dev", "--db", "sqlite:"+path)
	if err := createFaultAccount(t, s); err != nil {
		t.Fatal(err)
	}
	// Ballast: leave about 48 KiB free.
	var fs syscall.Statfs_t
	if err := syscall.Statfs(dir, &fs); err != nil {
		t.Fatal(err)
	}
	free := int64(fs.Bavail) * int64(fs.Bsize)
	ballast := filepath.Join(dir, "ballast")
	if n := free - 48<<10; n > 0 {
		if err := os.WriteFile(ballast, make([]byte, n), 0o600); err != nil && !errors.Is(err, syscall.ENOSPC) {
			t.Fatal(err)
		}
	}
	var err error
	for i := 0; i < 200; i++ {
		if err = createFaultAccount(t, s); err != nil {
			break
		}
	}
	if err == nil {
		t.Fatal("200 accounts fit in 48 KiB: the file system did not fill")
	}
	wantUnavailable(t, "account create on a full file system", err)
	if status := heartbeat(t, s); status != 503 {
		t.Errorf("heartbeat on a full file system: %d, want 503", status)
	}
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	// The heartbeat tries a write of its own at most every 5 s.
	status := 0
	for deadline := time.Now().Add(15 * time.Second); status != 200 && time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		status = heartbeat(t, s)
	}
	if status != 200 {
		t.Errorf("heartbeat once space is free: %d, want 200 within 15 s", status)
	}
	if err := createFaultAccount(t, s); err != nil {
		t.Errorf("account create once space is free: %v", err)
	}
}

// TestFaultsReadOnlyDatabase: serve refuses to start on a database file it
// cannot write, naming it: as root (who may write any file) on a tmpfs
// remounted read-only, otherwise on a file of mode 0400. (A running
// server's failing writes, SQLITE_READONLY among them, are covered by
// TestFaultsDiskFull here and by the store's TestSQLiteWriteFailure.)
func TestFaultsReadOnlyDatabase(t *testing.T) {
	var path string
	if os.Geteuid() == 0 {
		dir := mountTmpfs(t, "4m")
		path = filepath.Join(dir, "keyserver.db")
		s := startServer(t, "--dev", "--db", "sqlite:"+path)
		if err := createFaultAccount(t, s); err != nil {
			t.Fatal(err)
		}
		if err := s.stop(); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("mount", "-o", "remount,ro", dir).CombinedOutput(); err != nil {
			t.Fatalf("remount ro: %v: %s", err, out)
		}
		t.Cleanup(func() { _ = exec.Command("mount", "-o", "remount,rw", dir).Run() })
	} else {
		path = filepath.Join(t.TempDir(), "keyserver.db")
		s := startServer(t, "--dev", "--db", "sqlite:"+path)
		if err := s.stop(); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, 0o400); err != nil {
			t.Fatal(err)
		}
	}
	_, stderr, code := runKeyserver(t, "serve", "--listen", "127.0.0.1:0", "--signing-key", signingKey, "--kek-file", kekFile, "--log-format", "text", "--db", "sqlite:"+path)
	if code == 0 || !strings.Contains(stderr, "keyserver: error: opening database sqlite:"+path) {
		t.Fatalf("serve on a read-only database: exit %d, stderr:\n%s", code, stderr)
	}
	t.Logf("refused: %s", stderr[strings.LastIndex(stderr, "keyserver: error:"):])
}

// TestFaultsPostgresDurabilityWarning: serve warns at startup when
// PostgreSQL runs with synchronous_commit off (here for its session,
// through the DSN).
func TestFaultsPostgresDurabilityWarning(t *testing.T) {
	db := postgresDB(t) + "&synchronous_commit=off"
	s := startServer(t, "--dev", "--migrate", "--db", db)
	if !s.waitLog(`level=WARN msg="PostgreSQL runs with synchronous_commit = off`) {
		t.Errorf("no warning about synchronous_commit:\n%s", s.logs)
	}
}
