package main

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"

	"github.com/keyserver/keyserver/sealing"
)

// A KEK file holds one key-encryption key of sealing.KeySize (32) bytes:
// 64 hex digits (what 'keyserver kek generate' writes, with a newline) or
// its standard or URL-safe base64, padded or not. Surrounding white space is
// ignored.
const kekFormat = "32 bytes as 64 hex digits or 44 base64 characters (as 'keyserver kek generate' writes)"

// maxKEKFile bounds what is read of a KEK file: generous for a key and
// white space, small enough that a wrong file name fails fast.
const maxKEKFile = 4096

// kekFlags are the serve flags of sealing secrets at rest.
type kekFlags struct {
	file    string
	retired fileList
}

func (f *kekFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.file, "kek-file", "", "key-encryption key file (from 'keyserver kek generate') that seals the secret columns of the database; keep a backup: without it they are lost")
	fs.Var(&f.retired, "kek-retired", "key-encryption key file of an earlier --kek-file, to open values sealed before a rotation; repeatable; remove it once no value is sealed under it")
}

// load reads the key ring of the flags (see loadKEKRing).
func (f *kekFlags) load(logger *slog.Logger) (*sealing.Ring, error) {
	return loadKEKRing(f.file, f.retired, logger)
}

// loadKEKRing reads the current KEK file and the retired ones into a ring.
// It warns about a file that group or others may read, and refuses a file
// that is not exactly one key (naming the file and the format, never its
// content).
func loadKEKRing(current string, retired []string, logger *slog.Logger) (*sealing.Ring, error) {
	if current == "" {
		return nil, fmt.Errorf("%w: no --kek-file: create one with 'keyserver kek generate --out FILE'", errUsage)
	}
	key, err := readKEKFile(current, logger)
	if err != nil {
		return nil, fmt.Errorf("--kek-file: %w", err)
	}
	defer clear(key)
	var old [][]byte
	defer func() {
		for _, k := range old {
			clear(k)
		}
	}()
	for _, file := range retired {
		k, err := readKEKFile(file, logger)
		if err != nil {
			return nil, fmt.Errorf("--kek-retired: %w", err)
		}
		old = append(old, k)
	}
	ring, err := sealing.NewRing(key, old...)
	if err != nil {
		return nil, fmt.Errorf("--kek-file, --kek-retired: %w", err)
	}
	logger.Info("sealing secrets at rest", "kek_id", ring.KeyID(), "file", current)
	for i, file := range retired {
		id, _ := sealing.KeyID(old[i])
		logger.Info("opening values sealed under a retired key", "kek_id", id, "file", file)
	}
	return ring, nil
}

// readKEKFile reads and decodes one KEK file.
func readKEKFile(name string, logger *slog.Logger) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", name)
	}
	// Windows has no such permission bits: its modes say nothing here.
	if perm := info.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		logger.Warn("key-encryption key file is readable by group or others: chmod 600 it", "file", name, "mode", fmt.Sprintf("%#o", perm))
	}
	// One buffer, zeroed after use (io.ReadAll's reallocations would not be).
	buf := make([]byte, maxKEKFile+1)
	defer clear(buf)
	n, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, err
	}
	data := buf[:n]
	if n > maxKEKFile {
		return nil, fmt.Errorf("%s: larger than %d bytes: not a key-encryption key, want %s", name, maxKEKFile, kekFormat)
	}
	key, err := decodeKEK(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %v: want %s", name, err, kekFormat)
	}
	return key, nil
}

// decodeKEK decodes a KEK file's content. Its errors never quote the
// content. A text of 64 characters is hex (as base64 it would be 48 bytes),
// anything else base64. Buffers that held the key are zeroed (best effort:
// the runtime may have copied them).
func decodeKEK(data []byte) ([]byte, error) {
	text := bytes.TrimSpace(data)
	if len(text) == 0 {
		return nil, errors.New("empty")
	}
	key := make([]byte, max(hex.DecodedLen(len(text)), base64.StdEncoding.DecodedLen(len(text)), base64.RawStdEncoding.DecodedLen(len(text))))
	n := -1
	if len(text) == 2*sealing.KeySize {
		var err error
		if n, err = hex.Decode(key, text); err != nil {
			clear(key)
			return nil, errors.New("64 characters but not hex digits")
		}
	} else {
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			if m, err := enc.Decode(key, text); err == nil {
				n = m
				break
			}
		}
		if n < 0 {
			clear(key)
			return nil, fmt.Errorf("%d characters of neither hex nor base64", len(text))
		}
	}
	if n != sealing.KeySize {
		clear(key)
		return nil, fmt.Errorf("decodes to %d bytes, not %d", n, sealing.KeySize)
	}
	return key[:n:n], nil
}

// runKEK is "keyserver kek generate".
func runKEK(args []string, stdout, stderr io.Writer) error {
	return (&commandTable{name: "kek", synopsis: "usage: keyserver kek <command> [flags]", width: 21,
		footer: "\nRun 'keyserver kek generate -h' for its flags.", missing: "kek needs the command generate",
		commands: []command{{"generate", "--out FILE", "generate a key-encryption key for secrets at rest", runKEKGenerate}},
	}).run(args, stdout, stderr)
}

func runKEKGenerate(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("kek generate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "file to create with the key as 64 hex digits (mode 0600; an existing file is never overwritten)")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("%w: --out FILE is required", errUsage)
	}
	key := make([]byte, sealing.KeySize)
	defer clear(key)
	if _, err := io.ReadFull(rand.Reader, key); err != nil {
		return err
	}
	id, err := sealing.KeyID(key)
	if err != nil {
		return err
	}
	text := []byte(hex.EncodeToString(key) + "\n")
	defer clear(text)
	file, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err = file.Write(text); err == nil {
		err = file.Sync()
	}
	if cerr := file.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(*out)
		return err
	}
	fmt.Fprintf(stdout, "wrote key-encryption key %s to %s\n", id, *out)
	fmt.Fprintln(stderr, "keep a copy of it apart from the database backups: the sealed secrets cannot be opened without it")
	return nil
}
