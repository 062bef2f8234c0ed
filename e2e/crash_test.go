package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyserver/keyserver/client"

	_ "modernc.org/sqlite" // the driver sqlstore uses, to check the file
)

// crashRounds kill/restart cycles, each with crashLoad of load before the
// SIGKILL (or crashChanges acknowledged password changes, whichever first;
// at most crashMaxLoad while waiting for both loads to make progress).
const (
	crashRounds  = 2
	crashLoad    = 3 * time.Second
	crashMaxLoad = 30 * time.Second
	crashChanges = 12
)

// crashAccount is an account of the account-changing load: acked is the
// password of its last acknowledged change (or creation), pending one whose
// change was under way when the server died (it may or may not stand).
type crashAccount struct {
	email   string
	acked   string
	pending string
	kB      []byte // unchanged by every password change
}

// TestCrashDurability kills the server with SIGKILL during a sign-in load
// and an account-changing load (password changes and account creations),
// restarts it on the same database and checks that no acknowledged durable
// write was lost: every account whose creation or password change was
// answered 200 is there, with its new password and its unchanged kB. On
// SQLite the file opens after the crash and passes PRAGMA integrity_check
// and foreign_key_check. On PostgreSQL only the keyserver is killed.
func TestCrashDurability(t *testing.T) {
	backends(t, func(t *testing.T, db string, extra ...string) {
		args := append([]string{"--db", db, "--dev", "--rate-limit-exempt", "127.0.0.0/8"}, extra...)
		s := startServer(t, args...)
		ctx := ctxT(t)

		// The sign-in load's accounts and the changers' accounts.
		signers := []string{"signer0@example.org", "signer1@example.org", "signer2@example.org"}
		for _, e := range signers {
			if _, err := newClient(t, s).CreateAccount(ctx, e, "pw", client.CreateOptions{PreVerified: true}); err != nil {
				t.Fatal(err)
			}
		}
		var changers []*crashAccount
		for i := 0; i < 3; i++ {
			a := &crashAccount{email: fmt.Sprintf("changer%d@example.org", i), acked: "pw"}
			c := newClient(t, s)
			if _, err := c.CreateAccount(ctx, a.email, a.acked, client.CreateOptions{PreVerified: true}); err != nil {
				t.Fatal(err)
			}
			a.kB = crashKB(t, ctx, c, a.email, a.acked)
			changers = append(changers, a)
		}
		var created []string // acknowledged creations, password "pw"
		var createdMu sync.Mutex

		for round := 0; round < crashRounds; round++ {
			var (
				wg      sync.WaitGroup
				killed  = make(chan struct{})
				changes atomic.Int64
				signins atomic.Int64
			)
			dead := func() bool {
				select {
				case <-killed:
					return true
				default:
					return false
				}
			}
			for _, e := range signers {
				wg.Add(1)
				go func(email string) {
					defer wg.Done()
					c := newClient(t, s)
					for !dead() {
						if _, err := c.Login(ctx, email, "pw"); err == nil {
							signins.Add(1)
						}
					}
				}(e)
			}
			for _, a := range changers {
				wg.Add(1)
				go func(a *crashAccount) {
					defer wg.Done()
					c := newClient(t, s)
					for k := 0; !dead(); k++ {
						next := fmt.Sprintf("pw-%d-%d", round, k)
						a.pending = next
						err := c.ChangePassword(ctx, a.email, a.acked, next)
						if err == nil {
							a.acked, a.pending = next, ""
							changes.Add(1)
						} else if _, answered := err.(*client.Error); answered {
							a.pending = "" // refused (e.g. shed with 503): unchanged
						} else {
							// No answer (the server is being killed): the
							// change may have committed. Stop here, so that
							// pending stays the one password it may be.
							return
						}
					}
				}(a)
			}
			for i := 0; i < 2; i++ {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					c := newClient(t, s)
					for k := 0; !dead(); k++ {
						email := fmt.Sprintf("new-%d-%d-%d@example.org", round, i, k)
						if _, err := c.CreateAccount(ctx, email, "pw", client.CreateOptions{PreVerified: true}); err == nil {
							createdMu.Lock()
							created = append(created, email)
							createdMu.Unlock()
						}
					}
				}(i)
			}

			// crashLoad or crashChanges, but not before both loads made
			// progress (within crashMaxLoad, on a busy machine).
			for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
				progress := changes.Load() > 0 && signins.Load() > 0
				if el := time.Since(start); el > crashMaxLoad || progress && (el > crashLoad || changes.Load() >= crashChanges) {
					break
				}
			}
			if err := s.cmd.Process.Kill(); err != nil { // SIGKILL
				t.Fatal(err)
			}
			<-s.done
			close(killed)
			wg.Wait()
			createdMu.Lock()
			t.Logf("round %d: killed after %d sign-ins, %d password changes, %d accounts created in all", round, signins.Load(), changes.Load(), len(created))
			createdMu.Unlock()
			if changes.Load() == 0 || signins.Load() == 0 {
				t.Fatalf("round %d: the load made no progress before the kill:\n%s", round, s.logs)
			}

			if file, ok := strings.CutPrefix(db, "sqlite:"); ok {
				checkSQLiteIntegrity(t, file)
			}

			s = startServer(t, args...)
			c := newClient(t, s)
			for _, a := range changers {
				pw := a.acked
				if _, err := c.SignIn(ctx, a.email, pw); err != nil && a.pending != "" {
					pw = a.pending // the change under way at the kill committed
				}
				kB := crashKB(t, ctx, c, a.email, pw)
				if !bytes.Equal(kB, a.kB) {
					t.Fatalf("%s: kB changed across the crash", a.email)
				}
				a.acked, a.pending = pw, ""
			}
			for _, email := range created {
				if _, err := c.SignIn(ctx, email, "pw"); err != nil {
					t.Fatalf("acknowledged account %s lost in the crash: %v", email, err)
				}
			}
		}
	})
}

// crashKB signs in with email and password (failing the test when the
// password is not the account's) and returns kB.
func crashKB(t *testing.T, ctx context.Context, c *client.Client, email, password string) []byte {
	t.Helper()
	sess, err := c.Login(ctx, email, password)
	if err != nil {
		t.Fatalf("%s: signing in with the acknowledged password: %v", email, err)
	}
	keys, err := c.Keys(ctx, sess.KeyFetchToken, sess.UnwrapBKey)
	if err != nil {
		t.Fatalf("%s: keys: %v", email, err)
	}
	return keys.KB
}

// checkSQLiteIntegrity opens the database a killed server left (its WAL
// included) and requires PRAGMA integrity_check to answer "ok" and
// foreign_key_check to find nothing.
func checkSQLiteIntegrity(t *testing.T, file string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+file+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var res []string
	rows, err := db.Query("PRAGMA integrity_check")
	if err != nil {
		t.Fatalf("opening the database after the crash: %v", err)
	}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		res = append(res, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	if len(res) != 1 || res[0] != "ok" {
		t.Fatalf("integrity_check after the crash: %v", res)
	}
	fk, err := db.Query("PRAGMA foreign_key_check")
	if err != nil {
		t.Fatal(err)
	}
	defer fk.Close()
	if fk.Next() {
		t.Fatal("foreign_key_check after the crash found rows referring to missing rows")
	}
}
