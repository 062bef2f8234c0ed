package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" driver, for the raw scans

	"github.com/keyserver/keyserver/client"
	"github.com/keyserver/keyserver/protocol"
	"github.com/keyserver/keyserver/store/storetest"
)

// needKEKFlags skips the test when the binary's serve has no --kek-file:
// the flags of cmd/keyserver/kek.go (kekFlags) are not wired into
// cmd/keyserver/serve.go yet.
func needKEKFlags(t *testing.T) {
	t.Helper()
	out, _ := exec.Command(binary, "serve", "-h").CombinedOutput()
	if !strings.Contains(string(out), "-kek-file") {
		t.Skip("keyserver serve has no --kek-file flag: the KEK flags (kekFlags.register, serveRing, sqlstore.Options.KEK) are not wired into cmd/keyserver/serve.go yet")
	}
}

// genKEK writes a new key-encryption key file with `keyserver kek
// generate` and returns it and its key id.
func genKEK(t *testing.T, name string) (file, id string) {
	t.Helper()
	file = filepath.Join(t.TempDir(), name)
	out, errOut, code := runKeyserver(t, "kek", "generate", "--out", file)
	if code != 0 {
		t.Fatalf("kek generate: exit %d: %s", code, errOut)
	}
	f := strings.Fields(out) // wrote key-encryption key ID to FILE
	if len(f) < 4 {
		t.Fatalf("kek generate printed %q", out)
	}
	return file, f[3]
}

// rawDB is a plain connection to the database of a --db value.
func rawDB(t *testing.T, db string) (*sql.DB, string) {
	t.Helper()
	driver, dialect, dsn := "postgres", "postgres", db
	if path, ok := strings.CutPrefix(db, "sqlite:"); ok {
		driver, dialect, dsn = "sqlite", "sqlite", path+"?_pragma=busy_timeout(10000)"
	}
	conn, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn, dialect
}

// signedIn is an account of the test with what its client knows.
type signedIn struct {
	email   string
	keys    *client.Keys
	secrets map[string][]byte // kA, wrapKb, the token keys of its last sign-in
}

// signInAll signs every account in, fetches its keys and checks them.
func signInAll(t *testing.T, c *client.Client, accounts []*signedIn) {
	t.Helper()
	ctx := ctxT(t)
	for _, a := range accounts {
		sess, err := c.Login(ctx, a.email, "correct horse")
		if err != nil {
			t.Fatalf("sign-in of %s: %v", a.email, err)
		}
		keys, err := c.Keys(ctx, sess.KeyFetchToken, sess.UnwrapBKey)
		if err != nil {
			t.Fatalf("keys of %s: %v", a.email, err)
		}
		if a.keys != nil && (!bytes.Equal(keys.KA, a.keys.KA) || !bytes.Equal(keys.WrapKb, a.keys.WrapKb)) {
			t.Fatalf("%s: kA or wrapKb changed", a.email)
		}
		a.keys = keys
		sc := client.TokenCredentials(protocol.SessionToken, sess.SessionToken)
		a.secrets = map[string][]byte{
			a.email + " kA": keys.KA, a.email + " wrapKb": keys.WrapKb,
			a.email + " sessionToken authKey": sc.Key, a.email + " sessionToken bundleKey": sc.BundleKey,
		}
	}
}

// noSecretInClear scans every column of every table for the accounts'
// secrets as their clients know them.
func noSecretInClear(t *testing.T, db string, accounts []*signedIn) {
	t.Helper()
	conn, dialect := rawDB(t, db)
	secrets := map[string][]byte{}
	for _, a := range accounts {
		for k, v := range a.secrets {
			secrets[k] = v
		}
	}
	for _, f := range storetest.FindInClear(t, conn, dialect, secrets) {
		t.Errorf("found %s", f)
	}
}

// kekStatus returns the lines of `keyserver kek status`.
func kekStatus(t *testing.T, db string, kek ...string) string {
	t.Helper()
	out, errOut, code := runKeyserver(t, append([]string{"kek", "status", "--db", db}, kek...)...)
	if code != 0 {
		t.Fatalf("kek status: exit %d: %s", code, errOut)
	}
	return out
}

// Rotation of the key-encryption key under live sign-in load (issue 13):
// `keyserver kek rotate` re-seals every row under the new key while a
// server with the new key and the old one retired serves sign-ins, none of
// which fails; afterwards the new key alone opens everything, and no
// column of any table holds a secret in clear.
func TestSealingRotationUnderLoad(t *testing.T) {
	needKEKFlags(t)
	backends(t, func(t *testing.T, db string, extra ...string) {
		oldKEK, oldID := genKEK(t, "old.kek")
		newKEK, newID := genKEK(t, "new.kek")

		// Accounts and sign-ins under the old key.
		s := startServer(t, append([]string{"--db", db, "--dev", "--kek-file", oldKEK}, extra...)...)
		c := newClient(t, s)
		ctx := ctxT(t)
		// Fewer accounts than abuse protection lets one ip create in an
		// hour (R5, 30).
		const n = 20
		var accounts []*signedIn
		for i := range n {
			a := &signedIn{email: fmt.Sprintf("rotate%d@example.org", i)}
			if _, err := c.CreateAccount(ctx, a.email, "correct horse", client.CreateOptions{PreVerified: true}); err != nil {
				t.Fatal(err)
			}
			accounts = append(accounts, a)
		}
		signInAll(t, c, accounts)
		noSecretInClear(t, db, accounts)
		if st := kekStatus(t, db); !strings.Contains(st, "accounts "+oldID+" "+fmt.Sprint(n)+"\n") {
			t.Fatalf("status under the old key:\n%s", st)
		}
		if err := s.stop(); err != nil {
			t.Fatal(err)
		}

		// The server restarted with the new key, the old one retired.
		s = startServer(t, append([]string{"--db", db, "--dev", "--kek-file", newKEK, "--kek-retired", oldKEK}, extra...)...)
		if !s.waitLog("rows sealed under a retired key-encryption key") {
			t.Errorf("the server does not log the rows under the retired key:\n%s", s.logs)
		}
		c = newClient(t, s)

		// Sign-in load: whole sign-ins with key fetches, on every account,
		// until the rotation is over and a little after.
		var (
			stop                  = make(chan struct{})
			wg                    sync.WaitGroup
			ok, failed, duringRot atomic.Int64
			rotating              atomic.Bool
			firstErr              atomic.Value
			loadCtx, cancelLoad   = context.WithTimeout(context.Background(), 3*time.Minute)
		)
		defer cancelLoad()
		for w := range 3 {
			wg.Go(func() {
				for i := w; ; i += 3 {
					select {
					case <-stop:
						return
					default:
					}
					a := accounts[i%n]
					began := rotating.Load()
					sess, err := c.Login(loadCtx, a.email, "correct horse")
					var keys *client.Keys
					if err == nil {
						keys, err = c.Keys(loadCtx, sess.KeyFetchToken, sess.UnwrapBKey)
					}
					if err == nil && (!bytes.Equal(keys.KA, a.keys.KA) || !bytes.Equal(keys.WrapKb, a.keys.WrapKb)) {
						err = errors.New("kA or wrapKb changed")
					}
					if err == nil {
						err = c.SessionDestroy(loadCtx, sess.SessionToken)
					}
					if err != nil {
						failed.Add(1)
						firstErr.CompareAndSwap(nil, fmt.Errorf("%s: %w", a.email, err))
						continue
					}
					ok.Add(1)
					if began || rotating.Load() {
						duringRot.Add(1)
					}
				}
			})
		}
		time.Sleep(300 * time.Millisecond) // the load is under way
		rotating.Store(true)
		start := time.Now()
		out, errOut, code := runKeyserver(t, "kek", "rotate", "--db", db, "--kek-file", newKEK, "--kek-retired", oldKEK,
			"--batch", "1", "--pause", "20ms", "--progress", "0")
		rotation := time.Since(start)
		rotating.Store(false)
		time.Sleep(300 * time.Millisecond)
		close(stop)
		wg.Wait()
		if code != 0 {
			t.Fatalf("kek rotate: exit %d\n%s\n%s", code, out, errOut)
		}
		var summary []string
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, "done:") || strings.HasPrefix(line, "every row") {
				summary = append(summary, line)
			}
		}
		t.Logf("rotation of %d accounts and their tokens took %s beside %d sign-ins (%d during the rotation):\n%s",
			n, rotation.Round(time.Millisecond), ok.Load(), duringRot.Load(), strings.Join(summary, "\n"))
		if f := failed.Load(); f != 0 {
			t.Errorf("%d of %d sign-ins failed during the rotation; the first: %v", f, f+ok.Load(), firstErr.Load())
		}
		if duringRot.Load() == 0 {
			t.Errorf("no sign-in ran during the rotation: the test proves nothing")
		}
		if !strings.Contains(out, "every row is sealed under key "+newID) || !strings.Contains(out, "no row needs the retired key "+oldID) {
			t.Errorf("kek rotate output:\n%s", out)
		}
		st := kekStatus(t, db, "--kek-file", newKEK)
		if strings.Contains(st, oldID) || strings.Contains(st, "clear") || !strings.Contains(st, "accounts "+newID) || !strings.Contains(st, "tokens   "+newID) {
			t.Errorf("status after the rotation:\n%s", st)
		}
		if err := s.stop(); err != nil {
			t.Fatal(err)
		}

		// The new key alone opens everything; nothing is in clear.
		s = startServer(t, append([]string{"--db", db, "--dev", "--kek-file", newKEK}, extra...)...)
		signInAll(t, newClient(t, s), accounts)
		noSecretInClear(t, db, accounts)
	})
}

// A server with the wrong key-encryption key refuses every sign-in (500,
// errno 999, no key returned) and logs why, at its start and for each
// refusal.
func TestSealingWrongKEK(t *testing.T) {
	needKEKFlags(t)
	db := sqliteDB(t)
	right, rightID := genKEK(t, "right.kek")
	wrong, _ := genKEK(t, "wrong.kek")
	s := startServer(t, "--db", db, "--dev", "--kek-file", right)
	c := newClient(t, s)
	ctx := ctxT(t)
	if _, err := c.CreateAccount(ctx, "alice@example.org", "correct horse", client.CreateOptions{PreVerified: true}); err != nil {
		t.Fatal(err)
	}
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}

	s = startServer(t, "--db", db, "--dev", "--kek-file", wrong)
	if !s.waitLog("not in the key ring") || !strings.Contains(s.logs.String(), rightID) {
		t.Errorf("no startup log of the rows under a key the ring lacks:\n%s", s.logs)
	}
	for range 3 {
		_, err := newClient(t, s).Login(ctx, "alice@example.org", "correct horse")
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Status != 500 || ce.Errno != 999 {
			t.Fatalf("sign-in with the wrong KEK: %v; want 500/999", err)
		}
	}
	if !s.waitLog("accounts.ka of uid") {
		t.Errorf("the refusals' cause is not logged:\n%s", s.logs)
	}
}
