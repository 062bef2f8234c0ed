package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/keyserver/keyserver/sealing"
	"github.com/keyserver/keyserver/store/sqlstore"
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

// serveRing returns the ring serve seals with: that of --kek-file and
// --kek-retired. Without --kek-file, development mode (--dev) on SQLite uses
// the development KEK file next to the database (PATH.kek, see devKEKFile),
// created on the first start and announced loudly (where it cannot be
// created, an ephemeral key, announced as loudly: the database there is
// most likely unusable too, and opening it says why); production, and --dev
// on PostgreSQL, refuse to start.
func (f *kekFlags) serveRing(logger *slog.Logger, dev bool, db string) (*sealing.Ring, error) {
	if f.file != "" {
		return f.load(logger)
	}
	if !dev {
		return nil, fmt.Errorf("%w: no --kek-file: the secret columns of the database are sealed under a key-encryption key; create one with 'keyserver kek generate --out FILE' and keep a copy apart from the database backups (or run with --dev for a development key)", errUsage)
	}
	file, created, err := devKEKFile(db)
	if errors.Is(err, errUsage) {
		return nil, err
	} else if err != nil {
		// The database next to it cannot be used either, most likely: let
		// opening it say why. Whatever it writes is lost with the key.
		logger.Warn("DEVELOPMENT MODE: no --kek-file and the development key-encryption key cannot be created: sealing with an EPHEMERAL key; what this server writes is unreadable once it stops", "err", err)
		key := make([]byte, sealing.KeySize)
		defer clear(key)
		if _, err := io.ReadFull(rand.Reader, key); err != nil {
			return nil, err
		}
		return sealing.NewRing(key)
	}
	if created {
		logger.Warn("DEVELOPMENT MODE: no --kek-file, CREATED a development key-encryption key next to the database; the database is unreadable without it: never use it in production", "file", file)
	} else {
		logger.Warn("DEVELOPMENT MODE: no --kek-file, sealing secrets with the development key-encryption key next to the database", "file", file)
	}
	return loadKEKRing(file, f.retired, logger)
}

// devKEKFile returns the development KEK file of a SQLite database,
// PATH.kek, creating it (mode 0600) if it does not exist yet.
func devKEKFile(db string) (file string, created bool, err error) {
	path, ok := strings.CutPrefix(db, "sqlite:")
	if !ok {
		return "", false, fmt.Errorf("%w: --dev without --kek-file keeps a development key-encryption key next to a SQLite database only: give --kek-file with PostgreSQL", errUsage)
	}
	file = path + ".kek"
	if _, err := os.Stat(file); err == nil {
		return file, false, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", false, err
	}
	if _, err := createKEKFile(file); err != nil {
		if errors.Is(err, os.ErrExist) { // a concurrent first start
			return file, false, nil
		}
		return "", false, fmt.Errorf("creating the development key-encryption key: %w", err)
	}
	return file, true, nil
}

// logSealStatus logs, at serve's start, how the rows of the database are
// sealed: rows in clear from before sealing (kek seal-existing seals them),
// rows under a retired key (kek rotate), and rows under a key that is not
// in the ring, which every read of them refuses (500): the wrong
// --kek-file, or a --kek-retired missing. It counts every row of accounts
// and tokens once.
func logSealStatus(ctx context.Context, st *sqlstore.Store, ring *sealing.Ring, logger *slog.Logger) error {
	counts, err := st.SealStatus(ctx)
	if err != nil {
		return err
	}
	retired := ring.RetiredKeyIDs()
	for _, c := range counts {
		switch {
		case c.KEKID == ring.KeyID():
		case c.KEKID == "":
			logger.Warn("rows in clear from before sealing: seal them with 'keyserver kek seal-existing'", "table", c.Table, "rows", c.Rows)
		case slices.Contains(retired, c.KEKID):
			logger.Warn("rows sealed under a retired key-encryption key: move them with 'keyserver kek rotate'", "table", c.Table, "rows", c.Rows, "kek_id", c.KEKID)
		default:
			logger.Error("rows sealed under a key-encryption key that is not in the key ring: they cannot be read (wrong --kek-file, or a --kek-retired missing?)", "table", c.Table, "rows", c.Rows, "kek_id", c.KEKID)
		}
	}
	return nil
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

// runKEK is "keyserver kek generate|rotate|seal-existing|status".
func runKEK(args []string, stdout, stderr io.Writer) error {
	return (&commandTable{name: "kek", synopsis: "usage: keyserver kek <command> [flags]", width: 53,
		footer: "\nRun 'keyserver kek <command> -h' for its flags.", missing: "kek needs a command: generate, rotate, seal-existing or status",
		commands: []command{
			{"generate", "--out FILE", "generate a key-encryption key for secrets at rest", runKEKGenerate},
			{"rotate", "--db DSN --kek-file NEW --kek-retired OLD", "re-seal every row under the new key (the server may keep running)", runKEKRotate("kek rotate")},
			{"seal-existing", "--db DSN --kek-file FILE", "seal the rows in clear from before sealing (the same pass as rotate)", runKEKRotate("kek seal-existing")},
			{"status", "--db DSN [--kek-file FILE --kek-retired OLD]", "count the rows under each key", runKEKStatus},
		},
	}).run(args, stdout, stderr)
}

// runKEKRotate is "keyserver kek rotate" and its alias "kek seal-existing":
// one pass of sqlstore.Reseal, reporting progress on stdout.
func runKEKRotate(name string) func(args []string, stdout, stderr io.Writer) error {
	return func(args []string, stdout, stderr io.Writer) error {
		fs := flag.NewFlagSet(name, flag.ContinueOnError)
		fs.SetOutput(stderr)
		db := fs.String("db", defaultDB, "database: sqlite:PATH or a postgres:// URL")
		migrate := fs.Bool("migrate", false, "apply pending migrations first")
		batch := fs.Int("batch", 500, "rows re-sealed per transaction")
		every := fs.Duration("progress", 2*time.Second, "how often to print progress (0: after every batch)")
		pause := fs.Duration("pause", 0, "rest between batches, to leave the database to the servers (e.g. 10ms)")
		var kf kekFlags
		kf.register(fs)
		if _, err := parseFlags(fs, args); err != nil {
			return err
		}
		if *batch <= 0 {
			return fmt.Errorf("%w: --batch must be positive", errUsage)
		}
		logger := slog.New(slog.NewTextHandler(stderr, nil))
		ring, err := kf.load(logger)
		if err != nil {
			return err
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		st, err := sqlstore.Open(ctx, *db, sqlstore.Options{Migrate: *migrate, KEK: ring})
		if err != nil {
			return fmt.Errorf("opening database: %w", err)
		}
		defer st.Close()
		start := time.Now()
		var last time.Time
		res, err := st.Reseal(ctx, sqlstore.ResealOptions{Batch: *batch, Pause: *pause, Progress: func(p sqlstore.ResealProgress) {
			if now := time.Now(); now.Sub(last) >= *every {
				last = now
				fmt.Fprintf(stdout, "%s: %d of %d rows re-sealed (%d changed meanwhile, %d do not open)\n", p.Table, p.Resealed, p.Todo, p.Changed, p.Failed)
			}
		}})
		left := int64(0)
		for _, p := range res {
			fmt.Fprintf(stdout, "%s: done: %d rows re-sealed under key %s, %d do not open, %d left\n", p.Table, p.Resealed, ring.KeyID(), p.Failed, p.Left)
			left += p.Left
		}
		if err != nil {
			if errors.Is(err, context.Canceled) {
				return fmt.Errorf("interrupted: run %s again to go on where it stopped", name)
			}
			return err
		}
		if left > 0 {
			return fmt.Errorf("%d rows are still not under key %s (the server rewrote them under another key?): run %s again", left, ring.KeyID(), name)
		}
		fmt.Fprintf(stdout, "every row is sealed under key %s (%s)", ring.KeyID(), time.Since(start).Round(time.Millisecond))
		if ids := ring.RetiredKeyIDs(); len(ids) > 0 {
			slices.Sort(ids)
			fmt.Fprintf(stdout, "; no row needs the retired key %s any more: drop its --kek-retired from the servers, and keep the file until no backup needs it", strings.Join(ids, ", "))
		}
		fmt.Fprintln(stdout)
		return nil
	}
}

// runKEKStatus is "keyserver kek status": the rows of each table by key,
// labelled current, retired or NOT IN THE RING when --kek-file is given.
func runKEKStatus(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("kek status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	db := fs.String("db", defaultDB, "database: sqlite:PATH or a postgres:// URL")
	var kf kekFlags
	kf.register(fs)
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	var ring *sealing.Ring
	if kf.file != "" {
		var err error
		if ring, err = kf.load(slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
			return err
		}
	}
	counts, err := sqlstore.SealStatusDSN(context.Background(), *db)
	if err != nil {
		return err
	}
	for _, c := range counts {
		id, label := c.KEKID, ""
		switch {
		case id == "":
			id, label = "clear", " (from before sealing: kek seal-existing)"
		case ring == nil:
		case id == ring.KeyID():
			label = " (current)"
		case slices.Contains(ring.RetiredKeyIDs(), id):
			label = " (retired: kek rotate)"
		default:
			label = " (NOT IN THE RING: unreadable)"
		}
		fmt.Fprintf(stdout, "%-8s %-8s %d%s\n", c.Table, id, c.Rows, label)
	}
	return nil
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
	id, err := createKEKFile(*out)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote key-encryption key %s to %s\n", id, *out)
	fmt.Fprintln(stderr, "keep a copy of it apart from the database backups: the sealed secrets cannot be opened without it")
	return nil
}

// createKEKFile creates file (mode 0600, never overwriting one) with a new
// random key as 64 hex digits and a newline, and returns the key's id.
func createKEKFile(name string) (string, error) {
	key := make([]byte, sealing.KeySize)
	defer clear(key)
	if _, err := io.ReadFull(rand.Reader, key); err != nil {
		return "", err
	}
	id, err := sealing.KeyID(key)
	if err != nil {
		return "", err
	}
	text := []byte(hex.EncodeToString(key) + "\n")
	defer clear(text)
	file, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", err
	}
	if _, err = file.Write(text); err == nil {
		err = file.Sync()
	}
	if cerr := file.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(name)
		return "", err
	}
	return id, nil
}
