package main

import (
	"bytes"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/keyserver/keyserver/protocol"
	"github.com/keyserver/keyserver/sealing"
	"github.com/keyserver/keyserver/store"
	"github.com/keyserver/keyserver/store/sqlstore"
)

func kekDiscardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// `kek generate` writes 64 hex digits and a newline, mode 0600, prints the
// key id, and the loader reads the file back without a warning.
func TestKEKGenerate(t *testing.T) {
	file := filepath.Join(t.TempDir(), "kek")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"kek", "generate", "--out", file}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	key, err := hex.DecodeString(strings.TrimSuffix(string(data), "\n"))
	if err != nil || len(key) != sealing.KeySize || len(data) != 65 {
		t.Fatalf("wrote %q", data)
	}
	id, _ := sealing.KeyID(key)
	if want := "wrote key-encryption key " + id + " to " + file + "\n"; stdout.String() != want {
		t.Errorf("stdout %q, want %q", stdout.String(), want)
	}
	if kekQuotes(stdout.String()+stderr.String(), hex.EncodeToString(key)) {
		t.Error("printed the key")
	}
	info, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && info.Mode().Perm() != 0o600 {
		t.Errorf("mode %#o, want 0600", info.Mode().Perm())
	}
	var log bytes.Buffer
	ring, err := loadKEKRing(file, nil, slog.New(slog.NewTextHandler(&log, nil)))
	if err != nil || ring.KeyID() != id {
		t.Fatalf("load: %v", err)
	}
	if strings.Contains(log.String(), "WARN") || !strings.Contains(log.String(), id) {
		t.Errorf("log:\n%s", log.String())
	}

	// Two runs give different keys.
	other := filepath.Join(t.TempDir(), "kek")
	if code := run([]string{"kek", "generate", "--out", other}, io.Discard, io.Discard); code != 0 {
		t.Fatal(code)
	}
	if data2, _ := os.ReadFile(other); bytes.Equal(data, data2) {
		t.Error("the same key twice")
	}
}

// `kek generate` never overwrites a file; its usage errors exit 2.
func TestKEKGenerateErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "kek")
	if err := os.WriteFile(file, []byte("precious\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	if code := run([]string{"kek", "generate", "--out", file}, io.Discard, &stderr); code != 1 || !strings.Contains(stderr.String(), "exists") {
		t.Errorf("existing file: exit %d, %s", code, stderr.String())
	}
	if data, _ := os.ReadFile(file); string(data) != "precious\n" {
		t.Errorf("overwrote the file: %q", data)
	}
	for _, args := range [][]string{{"kek"}, {"kek", "generate"}, {"kek", "burn"}, {"kek", "generate", "--out", file + "2", "extra"}} {
		stderr.Reset()
		if code := run(args, io.Discard, &stderr); code != 2 {
			t.Errorf("%q: exit %d, %s", args, code, stderr.String())
		}
	}
	if _, err := os.Stat(file + "2"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a usage error wrote a file: %v", err)
	}
	// The flag comes from the environment too.
	t.Setenv("KEYSERVER_OUT", filepath.Join(t.TempDir(), "env"))
	if code := run([]string{"kek", "generate"}, io.Discard, io.Discard); code != 0 {
		t.Errorf("KEYSERVER_OUT: exit %d", code)
	}
}

func writeKEKFile(t *testing.T, dir, name, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // past the umask
		t.Fatal(err)
	}
	return p
}

// The loader accepts hex and every base64 of exactly 32 bytes with white
// space around, and refuses anything else naming the file and the format
// but not the content.
func TestKEKLoad(t *testing.T) {
	dir := t.TempDir()
	key := make([]byte, 32)
	rand.Read(key)
	id, _ := sealing.KeyID(key)
	for name, text := range map[string]string{
		"hex":        hex.EncodeToString(key) + "\n",
		"HEX":        "  \t" + strings.ToUpper(hex.EncodeToString(key)) + "\r\n\n",
		"base64":     base64.StdEncoding.EncodeToString(key),
		"raw base64": "\n" + base64.RawStdEncoding.EncodeToString(key) + " \n",
		"url base64": base64.URLEncoding.EncodeToString(key) + "\n",
		"raw url":    base64.RawURLEncoding.EncodeToString(key),
	} {
		ring, err := loadKEKRing(writeKEKFile(t, dir, "good", text, 0o600), nil, kekDiscardLogger())
		if err != nil || ring.KeyID() != id {
			t.Errorf("%s: %v", name, err)
		}
	}

	short := make([]byte, 31)
	rand.Read(short)
	long := make([]byte, 48)
	rand.Read(long)
	for name, text := range map[string]string{
		"empty":           "",
		"white space":     " \n\t\n",
		"31 bytes hex":    hex.EncodeToString(short) + "\n",
		"33 bytes hex":    hex.EncodeToString(append(bytes.Clone(key), 7)),
		"31 bytes base64": base64.StdEncoding.EncodeToString(short),
		"48 bytes base64": base64.StdEncoding.EncodeToString(long), // 64 characters
		"raw bytes":       string(key),
		"not hex":         strings.Repeat("zq", 32),
		"two keys":        hex.EncodeToString(key) + "\n" + hex.EncodeToString(key) + "\n",
		"garbage":         "this is not a key at all!",
		"large":           strings.Repeat("a", maxKEKFile+1),
		"PEM":             "-----BEGIN PRIVATE KEY-----\n" + base64.StdEncoding.EncodeToString(long) + "\n-----END PRIVATE KEY-----\n",
	} {
		file := writeKEKFile(t, dir, "bad", text, 0o600)
		_, err := loadKEKRing(file, nil, kekDiscardLogger())
		if err == nil {
			t.Errorf("%s: loaded", name)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, file) || !strings.Contains(msg, "--kek-file") ||
			name != "large" && !strings.Contains(msg, "32 bytes as 64 hex digits or 44 base64 characters") {
			t.Errorf("%s: %v", name, err)
		}
		if kekQuotes(msg, strings.TrimSpace(text)) {
			t.Errorf("%s: the message quotes the file: %s", name, msg)
		}
	}
	for name, file := range map[string]string{"missing": filepath.Join(dir, "none"), "directory": dir} {
		if _, err := loadKEKRing(file, nil, kekDiscardLogger()); err == nil || !strings.Contains(err.Error(), file) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := loadKEKRing("", nil, kekDiscardLogger()); !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "kek generate") {
		t.Errorf("no file: %v", err)
	}
}

// kekQuotes reports whether msg contains 8 consecutive characters of secret.
func kekQuotes(msg, secret string) bool {
	for i := 0; i+8 <= len(secret); i++ {
		if strings.Contains(msg, secret[i:i+8]) {
			return true
		}
	}
	return false
}

// A KEK file that group or others may read loads with a warning naming it.
func TestKEKPermissions(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no permission bits")
	}
	dir := t.TempDir()
	key := make([]byte, 32)
	rand.Read(key)
	for mode, warn := range map[os.FileMode]bool{0o600: false, 0o400: false, 0o640: true, 0o604: true, 0o644: true} {
		file := writeKEKFile(t, dir, "kek", hex.EncodeToString(key), mode)
		var log bytes.Buffer
		if _, err := loadKEKRing(file, nil, slog.New(slog.NewTextHandler(&log, nil))); err != nil {
			t.Fatalf("%#o: %v", mode, err)
		}
		warned := strings.Contains(log.String(), "level=WARN") && strings.Contains(log.String(), "readable by group or others") &&
			strings.Contains(log.String(), file)
		if warned != warn || kekQuotes(log.String(), hex.EncodeToString(key)) {
			t.Errorf("%#o: log\n%s", mode, log.String())
		}
		os.Remove(file)
	}
	// A retired file is checked too.
	current := writeKEKFile(t, dir, "current", hex.EncodeToString(key), 0o600)
	other := make([]byte, 32)
	rand.Read(other)
	retired := writeKEKFile(t, dir, "retired", hex.EncodeToString(other), 0o644)
	var log bytes.Buffer
	if _, err := loadKEKRing(current, []string{retired}, slog.New(slog.NewTextHandler(&log, nil))); err != nil ||
		!strings.Contains(log.String(), "level=WARN") || !strings.Contains(log.String(), retired) {
		t.Errorf("retired 0644: %v\n%s", err, log.String())
	}
}

// Retired KEK files open what they sealed; the current file seals.
func TestKEKRetired(t *testing.T) {
	dir := t.TempDir()
	gen := func(name string) (string, string) {
		file := filepath.Join(dir, name)
		var out bytes.Buffer
		if code := run([]string{"kek", "generate", "--out", file}, &out, io.Discard); code != 0 {
			t.Fatal(code)
		}
		return file, strings.Fields(out.String())[3]
	}
	f1, id1 := gen("k1")
	f2, id2 := gen("k2")
	old, err := loadKEKRing(f1, nil, kekDiscardLogger())
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := old.Seal(rand.Reader, []byte("kA"), []byte("uid"), "accounts.ka")
	if err != nil {
		t.Fatal(err)
	}

	// The flags, from the environment as a comma-separated list.
	t.Setenv("KEYSERVER_KEK_RETIRED", f1+", "+f1+"x")
	var f kekFlags
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	f.register(fs)
	if _, err := parseFlags(fs, []string{"--kek-file", f2}); err != nil {
		t.Fatal(err)
	}
	if f.file != f2 || len(f.retired) != 2 {
		t.Fatalf("flags %+v", f)
	}
	if _, err := f.load(kekDiscardLogger()); err == nil || !strings.Contains(err.Error(), "--kek-retired") || !strings.Contains(err.Error(), f1+"x") {
		t.Fatalf("missing retired file: %v", err)
	}
	f.retired = f.retired[:1]
	var log bytes.Buffer
	ring, err := f.load(slog.New(slog.NewTextHandler(&log, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if ring.KeyID() != id2 || !strings.Contains(log.String(), id1) || !strings.Contains(log.String(), id2) {
		t.Errorf("ring %s, log\n%s", ring.KeyID(), log.String())
	}
	if got, err := ring.Open(sealed, []byte("uid"), "accounts.ka"); err != nil || string(got) != "kA" || !ring.NeedsReseal(sealed) {
		t.Errorf("retired key: %q, %v", got, err)
	}

	// The same key as current and retired is refused.
	if _, err := loadKEKRing(f1, []string{f1}, kekDiscardLogger()); err == nil || !strings.Contains(err.Error(), id1) {
		t.Errorf("the same file twice: %v", err)
	}
}

// genKEK runs 'kek generate' into dir and returns the file and key id.
func genKEK(t *testing.T, dir, name string) (file, id string) {
	t.Helper()
	file = filepath.Join(dir, name)
	var out bytes.Buffer
	if code := run([]string{"kek", "generate", "--out", file}, &out, io.Discard); code != 0 {
		t.Fatal(code)
	}
	return file, strings.Fields(out.String())[3]
}

func kekRnd(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// kekAccounts creates n accounts with a session token each on the SQLite
// database db, sealed under ring.
func kekAccounts(t *testing.T, db string, ring *sealing.Ring, n int) []*store.Account {
	t.Helper()
	st, err := sqlstore.Open(t.Context(), db, sqlstore.Options{Migrate: true, KEK: ring})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var as []*store.Account
	for range n {
		email := fmt.Sprintf("%x@example.org", kekRnd(8))
		a := &store.Account{UID: kekRnd(16), Email: email, NormalizedEmail: email,
			SRPType: "SRP-6a/SHA256/2048/v1", SRPVerifier: kekRnd(256), SRPSalt: kekRnd(32), KA: kekRnd(32), WrapKb: kekRnd(32), EmailCode: kekRnd(16),
			Stretching: store.Stretching{Salt: kekRnd(32)}}
		if err := st.CreateAccount(t.Context(), a); err != nil {
			t.Fatal(err)
		}
		tok := &store.Token{ID: kekRnd(32), Type: protocol.SessionToken, UID: a.UID, AuthKey: kekRnd(32), BundleKey: kekRnd(32)}
		if err := st.CreateToken(t.Context(), tok); err != nil {
			t.Fatal(err)
		}
		as = append(as, a)
	}
	return as
}

// readAll checks that a store under ring opens every account.
func readAll(t *testing.T, db string, ring *sealing.Ring, as []*store.Account) error {
	t.Helper()
	st, err := sqlstore.Open(t.Context(), db, sqlstore.Options{KEK: ring})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, a := range as {
		got, err := st.AccountByUID(t.Context(), a.UID)
		if err != nil {
			return err
		}
		if !bytes.Equal(got.KA, a.KA) || !bytes.Equal(got.SRPVerifier, a.SRPVerifier) {
			t.Fatalf("account %x read back differently", a.UID)
		}
	}
	return nil
}

// kek rotate moves every row to the new key, reporting progress; kek
// status shows it; the new key alone then opens everything.
func TestKEKRotate(t *testing.T) {
	dir := t.TempDir()
	db := "sqlite:" + filepath.Join(dir, "ks.db")
	oldFile, oldID := genKEK(t, dir, "old")
	newFile, newID := genKEK(t, dir, "new")
	oldRing, err := loadKEKRing(oldFile, nil, kekDiscardLogger())
	if err != nil {
		t.Fatal(err)
	}
	as := kekAccounts(t, db, oldRing, 7)

	var stdout, stderr bytes.Buffer
	if code := run([]string{"kek", "status", "--db", db, "--kek-file", newFile, "--kek-retired", oldFile}, &stdout, &stderr); code != 0 {
		t.Fatalf("status: exit %d: %s", code, stderr.String())
	}
	for _, want := range []string{"accounts " + oldID + " 7 (retired: kek rotate)", "tokens   " + oldID + " 7 (retired: kek rotate)"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("status:\n%s\nwant %q", stdout.String(), want)
		}
	}

	stdout.Reset()
	stderr.Reset()
	if code := run([]string{"kek", "rotate", "--db", db, "--kek-file", newFile, "--kek-retired", oldFile, "--batch", "3", "--pause", "1ms", "--progress", "0"}, &stdout, &stderr); code != 0 {
		t.Fatalf("rotate: exit %d: %s", code, stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{
		"accounts: 3 of 7 rows re-sealed", "accounts: 6 of 7 rows re-sealed", "accounts: done: 7 rows re-sealed under key " + newID + ", 0 do not open, 0 left",
		"tokens: done: 7 rows re-sealed", "every row is sealed under key " + newID, "no row needs the retired key " + oldID + " any more",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("rotate output:\n%s\nwant %q", out, want)
		}
	}
	stdout.Reset()
	if code := run([]string{"kek", "status", "--db", db, "--kek-file", newFile}, &stdout, &stderr); code != 0 {
		t.Fatal(code)
	}
	if want := "accounts " + newID + " 7 (current)\ntokens   " + newID + " 7 (current)\n"; stdout.String() != want {
		t.Errorf("status after the rotation:\n%s\nwant\n%s", stdout.String(), want)
	}
	newRing, err := loadKEKRing(newFile, nil, kekDiscardLogger())
	if err != nil {
		t.Fatal(err)
	}
	if err := readAll(t, db, newRing, as); err != nil {
		t.Errorf("new key alone: %v", err)
	}
	if err := readAll(t, db, oldRing, as); !errors.Is(err, sealing.ErrUnknownKey) {
		t.Errorf("old key alone after the rotation: %v; want ErrUnknownKey", err)
	}

	// Again: nothing to do.
	stdout.Reset()
	if code := run([]string{"kek", "rotate", "--db", db, "--kek-file", newFile}, &stdout, &stderr); code != 0 ||
		!strings.Contains(stdout.String(), "accounts: done: 0 rows re-sealed") {
		t.Errorf("rotate again: exit %d\n%s", code, stdout.String())
	}

	// A key that is not the one of the rows: nothing opens, nothing is
	// changed, the rows are named.
	otherFile, otherID := genKEK(t, dir, "other")
	stdout.Reset()
	stderr.Reset()
	code := run([]string{"kek", "rotate", "--db", db, "--kek-file", otherFile}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "14 rows do not open") || !strings.Contains(stderr.String(), "accounts.ka of uid") ||
		!strings.Contains(stdout.String(), "7 do not open, 7 left") {
		t.Errorf("rotate with the wrong key: exit %d\n%s\n%s", code, stdout.String(), stderr.String())
	}
	stdout.Reset()
	if code := run([]string{"kek", "status", "--db", db, "--kek-file", otherFile}, &stdout, &stderr); code != 0 ||
		!strings.Contains(stdout.String(), newID+" 7 (NOT IN THE RING: unreadable)") || strings.Contains(stdout.String(), otherID) {
		t.Errorf("status with the wrong key:\n%s", stdout.String())
	}
	if err := readAll(t, db, newRing, as); err != nil {
		t.Errorf("after the failed rotation: %v", err)
	}
}

// kek seal-existing seals rows in clear from before sealing.
func TestKEKSealExisting(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ks.db")
	db := "sqlite:" + path
	file, id := genKEK(t, dir, "kek")
	ring, err := loadKEKRing(file, nil, kekDiscardLogger())
	if err != nil {
		t.Fatal(err)
	}
	as := kekAccounts(t, db, ring, 3)
	// Made clear, as a keyserver before sealing wrote them.
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	for _, a := range as {
		if _, err := raw.Exec("UPDATE accounts SET ka = ?, wrap_kb = ?, srp_verifier = ?, email_code = ?, kek_id = NULL WHERE uid = ?",
			a.KA, a.WrapKb, a.SRPVerifier, a.EmailCode, a.UID); err != nil {
			t.Fatal(err)
		}
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"kek", "status", "--db", db}, &stdout, &stderr); code != 0 ||
		!strings.Contains(stdout.String(), "accounts clear    3 (from before sealing: kek seal-existing)") {
		t.Errorf("status: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	stdout.Reset()
	if code := run([]string{"kek", "seal-existing", "--db", db, "--kek-file", file}, &stdout, &stderr); code != 0 ||
		!strings.Contains(stdout.String(), "accounts: done: 3 rows re-sealed under key "+id) ||
		!strings.Contains(stdout.String(), "every row is sealed under key "+id) {
		t.Errorf("seal-existing: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	var n int
	if err := raw.QueryRow("SELECT COUNT(*) FROM accounts WHERE kek_id IS NULL OR length(ka) <> 32 + ?", sealing.Overhead).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d rows not sealed, %v", n, err)
	}
	if err := readAll(t, db, ring, as); err != nil {
		t.Error(err)
	}
}

// The usage errors of rotate exit 2; an old schema is refused unless
// --migrate.
func TestKEKRotateErrors(t *testing.T) {
	dir := t.TempDir()
	file, _ := genKEK(t, dir, "kek")
	db := "sqlite:" + filepath.Join(dir, "ks.db")
	for _, args := range [][]string{
		{"kek", "rotate", "--db", db},
		{"kek", "rotate", "--db", db, "--kek-file", file, "--batch", "0"},
		{"kek", "seal-existing", "--db", db, "--kek-file", file, "extra"},
	} {
		var stderr bytes.Buffer
		if code := run(args, io.Discard, &stderr); code != 2 {
			t.Errorf("%q: exit %d, %s", args, code, stderr.String())
		}
	}
	var stderr bytes.Buffer
	if code := run([]string{"kek", "rotate", "--db", db, "--kek-file", file}, io.Discard, &stderr); code != 1 || !strings.Contains(stderr.String(), "--migrate") {
		t.Errorf("empty database: exit %d, %s", code, stderr.String())
	}
	if code := run([]string{"kek", "rotate", "--db", db, "--kek-file", file, "--migrate"}, io.Discard, &stderr); code != 0 {
		t.Errorf("--migrate: exit %d, %s", code, stderr.String())
	}
	// The flags come from the environment too.
	t.Setenv("KEYSERVER_DB", db)
	t.Setenv("KEYSERVER_KEK_FILE", file)
	if code := run([]string{"kek", "rotate"}, io.Discard, &stderr); code != 0 {
		t.Errorf("from the environment: exit %d, %s", code, stderr.String())
	}
}

// serve's ring: --kek-file; without it a development key next to a SQLite
// database in --dev mode only.
func TestKEKServeRing(t *testing.T) {
	dir := t.TempDir()
	db := "sqlite:" + filepath.Join(dir, "ks.db")
	var f kekFlags
	if _, err := f.serveRing(kekDiscardLogger(), false, db); !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "--kek-file") {
		t.Errorf("production without --kek-file: %v", err)
	}
	if _, err := f.serveRing(kekDiscardLogger(), true, "postgres://db.example/ks"); !errors.Is(err, errUsage) {
		t.Errorf("--dev on PostgreSQL without --kek-file: %v", err)
	}
	var log bytes.Buffer
	r1, err := f.serveRing(slog.New(slog.NewTextHandler(&log, nil)), true, db)
	if err != nil {
		t.Fatal(err)
	}
	devFile := filepath.Join(dir, "ks.db.kek")
	if !strings.Contains(log.String(), "level=WARN") || !strings.Contains(log.String(), "CREATED a development key-encryption key") ||
		!strings.Contains(log.String(), devFile) {
		t.Errorf("first --dev start log:\n%s", log.String())
	}
	if info, err := os.Stat(devFile); err != nil || runtime.GOOS != "windows" && info.Mode().Perm() != 0o600 {
		t.Errorf("development KEK file: %v", err)
	}
	log.Reset()
	r2, err := f.serveRing(slog.New(slog.NewTextHandler(&log, nil)), true, db)
	if err != nil || r2.KeyID() != r1.KeyID() || strings.Contains(log.String(), "CREATED") || !strings.Contains(log.String(), "DEVELOPMENT MODE") {
		t.Errorf("second --dev start: %v, same key %v, log:\n%s", err, r2.KeyID() == r1.KeyID(), log.String())
	}
	// A directory that does not exist: an ephemeral key, loudly (opening
	// the database there fails next).
	log.Reset()
	if _, err := f.serveRing(slog.New(slog.NewTextHandler(&log, nil)), true, "sqlite:"+filepath.Join(dir, "missing", "ks.db")); err != nil ||
		!strings.Contains(log.String(), "EPHEMERAL") {
		t.Errorf("--dev in a missing directory: %v, log:\n%s", err, log.String())
	}
	file, id := genKEK(t, dir, "kek")
	f.file = file
	if r, err := f.serveRing(kekDiscardLogger(), false, db); err != nil || r.KeyID() != id {
		t.Errorf("--kek-file: %v", err)
	}
}

// At serve's start the log says which rows are in clear, under a retired
// key, or under a key the ring lacks.
func TestKEKLogSealStatus(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ks.db")
	db := "sqlite:" + path
	f1, id1 := genKEK(t, dir, "k1")
	f2, id2 := genKEK(t, dir, "k2")
	f3, id3 := genKEK(t, dir, "k3")
	ring := func(current string, retired ...string) *sealing.Ring {
		r, err := loadKEKRing(current, retired, kekDiscardLogger())
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	kekAccounts(t, db, ring(f1), 2)
	kekAccounts(t, db, ring(f2), 1)
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec("UPDATE tokens SET kek_id = NULL WHERE rowid IN (SELECT rowid FROM tokens LIMIT 1)"); err != nil {
		t.Fatal(err)
	}
	r := ring(f3, f2)
	st, err := sqlstore.Open(t.Context(), db, sqlstore.Options{KEK: r})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var log bytes.Buffer
	if err := logSealStatus(t.Context(), st, r, slog.New(slog.NewTextHandler(&log, nil))); err != nil {
		t.Fatal(err)
	}
	out := log.String()
	for _, want := range []string{
		"level=ERROR msg=\"rows sealed under a key-encryption key that is not in the key ring", "kek_id=" + id1,
		"level=WARN msg=\"rows sealed under a retired key-encryption key", "kek_id=" + id2,
		"level=WARN msg=\"rows in clear from before sealing",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log:\n%s\nwant %q", out, want)
		}
	}
	if strings.Contains(out, id3) {
		t.Errorf("the current key's rows are logged:\n%s", out)
	}
}
