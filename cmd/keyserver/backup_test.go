package main

import (
	"bytes"
	"crypto/rand"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyserver/keyserver/store"
	"github.com/keyserver/keyserver/store/sqlstore"
)

func rnd(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// newTestDB is a migrated SQLite database with n accounts.
func newTestDB(t *testing.T, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ks.db")
	st, err := sqlstore.Open(t.Context(), "sqlite:"+path, sqlstore.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now()
	for i := range n {
		email := fmt.Sprintf("user%d@example.com", i)
		if err := st.CreateAccount(t.Context(), &store.Account{
			UID: rnd(16), Email: email, NormalizedEmail: email,
			SRPType: "SRP-6a/SHA256/2048/v1", SRPVerifier: rnd(256), SRPSalt: rnd(32),
			Stretching: store.Stretching{Type: "PBKDF2/scrypt/PBKDF2/v1", PBKDF2Rounds1: 20000,
				ScryptN: 65536, ScryptR: 8, ScryptP: 1, PBKDF2Rounds2: 20000, Salt: rnd(32)},
			KA: rnd(32), WrapKb: rnd(32), EmailCode: rnd(16), CreatedAt: now, Generation: now,
		}); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

func runCmd(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// backup writes a checked copy, mode 0600, that verify accepts; it never
// overwrites.
func TestBackupAndVerify(t *testing.T) {
	db := newTestDB(t, 3)
	out := filepath.Join(t.TempDir(), "copy.db")
	code, stdout, stderr := runCmd("backup", "--db", "sqlite:"+db, "--out", out)
	if code != 0 || !strings.Contains(stdout, "integrity ok") || !strings.Contains(stdout, "3 accounts") {
		t.Fatalf("backup: exit %d, %q %q", code, stdout, stderr)
	}
	fi, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("backup mode %v, want 0600", fi.Mode().Perm())
	}
	entries, _ := os.ReadDir(filepath.Dir(out))
	if len(entries) != 1 {
		t.Errorf("files beside the backup: %v", entries)
	}
	code, stdout, stderr = runCmd("backup", "--verify", out)
	if code != 0 || !strings.HasPrefix(stdout, out+": ok: integrity ok, schema version ") || !strings.Contains(stdout, "3 accounts") {
		t.Fatalf("verify: exit %d, %q %q", code, stdout, stderr)
	}
	// The copy is a database the server opens.
	st, err := sqlstore.Open(t.Context(), "sqlite:"+out, sqlstore.Options{})
	if err != nil {
		t.Fatalf("opening the copy: %v", err)
	}
	if _, err := st.AccountByEmail(t.Context(), "user2@example.com"); err != nil {
		t.Errorf("account in the copy: %v", err)
	}
	st.Close()

	code, _, stderr = runCmd("backup", "--db", "sqlite:"+db, "--out", out)
	if code != 1 || !strings.Contains(stderr, "already exists") {
		t.Errorf("backup over an existing file: exit %d, %q", code, stderr)
	}
}

func TestBackupRefusals(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.db")
	garbage := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(garbage, bytes.Repeat([]byte("not a database "), 1000), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.db")
	edb, err := sql.Open("sqlite", empty)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := edb.Exec("CREATE TABLE t (x)"); err != nil {
		t.Fatal(err)
	}
	edb.Close()
	corrupt := filepath.Join(dir, "corrupt.db")
	data, err := os.ReadFile(newTestDB(t, 50))
	if err != nil {
		t.Fatal(err)
	}
	for i := 2 * 4096; i < len(data)-4096; i += 4096 { // every page but the first
		copy(data[i+200:], bytes.Repeat([]byte{0xa5}, 300))
	}
	if err := os.WriteFile(corrupt, data, 0o600); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"backup"}, 2, "backup needs --out FILE"},
		{[]string{"backup", "--out", filepath.Join(dir, "x"), "--verify", garbage}, 2, "exclude each other"},
		{[]string{"backup", "--db", "postgres://u:secret@db/ks", "--out", filepath.Join(dir, "x")}, 2, "pg_dump"},
		{[]string{"backup", "--db", "mysql://u:secret@db/ks", "--out", filepath.Join(dir, "x")}, 2, "want sqlite:PATH"},
		{[]string{"backup", "--db", "sqlite:" + missing, "--out", filepath.Join(dir, "x")}, 1, missing},
		{[]string{"backup", "--verify", missing}, 1, missing},
		{[]string{"backup", "--verify", garbage}, 1, "not a readable SQLite database"},
		{[]string{"backup", "--verify", empty}, 1, "holds no keyserver schema"},
		{[]string{"backup", "--verify", corrupt}, 1, corrupt},
		{[]string{"backup", "--verify", dir}, 1, "not a regular file"},
	} {
		code, _, stderr := runCmd(tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.msg) || strings.Contains(stderr, "secret") {
			t.Errorf("%q: exit %d, %q; want %d with %q", tc.args, code, stderr, tc.code, tc.msg)
		}
	}
	if _, err := os.Stat(missing); err == nil {
		t.Error("backup created the missing database")
	}
	if _, err := os.Stat(filepath.Join(dir, "x")); err == nil {
		t.Error("a failed backup left its output")
	}
}
