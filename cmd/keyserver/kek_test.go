package main

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/keyserver/keyserver/sealing"
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
