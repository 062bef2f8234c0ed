package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" driver

	"github.com/keyserver/keyserver/migrations"
)

// runBackup is `keyserver backup --db sqlite:PATH --out FILE`, a consistent
// online copy of an SQLite database (VACUUM INTO, one read transaction: a
// running server goes on writing meanwhile), and `keyserver backup --verify
// FILE`, a check of such a copy.
func runBackup(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	db := fs.String("db", defaultDB, "database to copy: sqlite:PATH (for PostgreSQL use pg_dump)")
	out := fs.String("out", "", "file to write the copy to (mode 0600; never overwritten)")
	verify := fs.String("verify", "", "check this copy instead: integrity, foreign keys and schema version")
	var timeout time.Duration
	durationFlag(fs, &timeout, "timeout", 10*time.Minute, "longest time the copy or the check may take")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	switch {
	case *verify != "" && *out != "":
		return fmt.Errorf("%w: --out and --verify exclude each other", errUsage)
	case *verify != "":
		info, err := verifyBackup(ctx, *verify)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: ok: %s\n", *verify, info)
		return nil
	case *out == "":
		return fmt.Errorf("%w: backup needs --out FILE (or --verify FILE)", errUsage)
	}
	path, ok := strings.CutPrefix(*db, "sqlite:")
	if !ok {
		if strings.HasPrefix(*db, "postgres://") || strings.HasPrefix(*db, "postgresql://") {
			return fmt.Errorf("%w: backup copies SQLite databases; back up PostgreSQL with pg_dump (see the README)", errUsage)
		}
		return fmt.Errorf("%w: --db %q: want sqlite:PATH", errUsage, redactDSN(*db))
	}
	info, err := backupSQLite(ctx, path, *out)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: backup of %s written: %s\n", *out, path, info)
	return nil
}

// backupInfo is what a check found in a copy.
type backupInfo struct {
	schema, latest int
	accounts       int64
	bytes          int64
}

func (b backupInfo) String() string {
	s := fmt.Sprintf("integrity ok, schema version %d", b.schema)
	if b.schema < b.latest {
		s += fmt.Sprintf(" (older than this keyserver's %d: serve --migrate upgrades it)", b.latest)
	}
	return s + fmt.Sprintf(", %d accounts, %d bytes", b.accounts, b.bytes)
}

// sqliteURI is the driver DSN of the file path with SQLite URI parameters
// (mode=rw and mode=ro refuse to create a missing file) and a busy
// timeout.
func sqliteURI(path, mode string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	q := url.Values{"mode": {mode}, "_pragma": {"busy_timeout(10000)"}}
	return (&url.URL{Scheme: "file", Path: filepath.ToSlash(abs), OmitHost: true, RawQuery: q.Encode()}).String(), nil
}

// backupSQLite copies the database at path to out: VACUUM INTO a
// temporary file beside out (mode 0600), flushed, checked, then renamed to
// out. out must not exist.
func backupSQLite(ctx context.Context, path, out string) (backupInfo, error) {
	if _, err := os.Stat(path); err != nil {
		return backupInfo{}, fmt.Errorf("database %s: %w", path, err)
	}
	if _, err := os.Lstat(out); err == nil {
		return backupInfo{}, fmt.Errorf("%s already exists: backup never overwrites a file", out)
	} else if !errors.Is(err, os.ErrNotExist) {
		return backupInfo{}, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".tmp-*") // mode 0600
	if err != nil {
		return backupInfo{}, fmt.Errorf("creating the backup file: %w", err)
	}
	tmpName := tmp.Name()
	tmp.Close()
	done := false
	defer func() {
		if !done {
			os.Remove(tmpName)
		}
	}()

	dsn, err := sqliteURI(path, "rw")
	if err != nil {
		return backupInfo{}, err
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return backupInfo{}, err
	}
	defer db.Close()
	// VACUUM INTO needs an empty (or absent) target: the temporary file is
	// empty, and keeps its mode.
	if _, err := db.ExecContext(ctx, "VACUUM INTO ?", tmpName); err != nil {
		return backupInfo{}, fmt.Errorf("copying %s: %w", path, err)
	}
	db.Close()
	if err := syncFile(tmpName); err != nil {
		return backupInfo{}, err
	}
	info, err := verifyBackup(ctx, tmpName)
	if err != nil {
		return backupInfo{}, fmt.Errorf("the copy fails its check: %w", err)
	}
	if err := os.Rename(tmpName, out); err != nil {
		return backupInfo{}, err
	}
	done = true
	return info, syncFile(filepath.Dir(out))
}

// syncFile flushes a file or directory to stable storage.
func syncFile(name string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("flushing %s: %w", name, err)
	}
	return nil
}

// verifyBackup checks the SQLite database file, read-only: PRAGMA
// integrity_check and foreign_key_check find nothing, and its schema
// version is one this keyserver can serve (itself or after migrating).
func verifyBackup(ctx context.Context, file string) (backupInfo, error) {
	st, err := os.Stat(file)
	if err != nil {
		return backupInfo{}, err
	}
	if !st.Mode().IsRegular() {
		return backupInfo{}, fmt.Errorf("%s is not a regular file", file)
	}
	dsn, err := sqliteURI(file, "ro")
	if err != nil {
		return backupInfo{}, err
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return backupInfo{}, err
	}
	defer db.Close()
	problems, err := pragmaRows(ctx, db, "PRAGMA integrity_check")
	if err != nil {
		return backupInfo{}, fmt.Errorf("%s is not a readable SQLite database: %w", file, err)
	}
	if len(problems) != 1 || problems[0] != "ok" {
		return backupInfo{}, fmt.Errorf("integrity check of %s failed: %s", file, strings.Join(first(problems, 5), "; "))
	}
	if problems, err = pragmaRows(ctx, db, "PRAGMA foreign_key_check"); err != nil {
		return backupInfo{}, err
	} else if len(problems) > 0 {
		return backupInfo{}, fmt.Errorf("foreign key check of %s failed: %d rows refer to missing rows (table, rowid, parent, key: %s)", file, len(problems), strings.Join(first(problems, 5), "; "))
	}
	info := backupInfo{bytes: st.Size()}
	if info.schema, info.latest, err = migrations.Status(ctx, db, migrations.SQLite); err != nil {
		return backupInfo{}, err
	}
	switch {
	case info.schema == 0:
		return backupInfo{}, fmt.Errorf("%s holds no keyserver schema", file)
	case info.schema > info.latest:
		return backupInfo{}, fmt.Errorf("%s has schema version %d, newer than this keyserver's %d: check it with the keyserver that wrote it", file, info.schema, info.latest)
	}
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM accounts").Scan(&info.accounts); err != nil {
		return backupInfo{}, fmt.Errorf("counting accounts: %w", err)
	}
	return info, nil
}

// pragmaRows runs a PRAGMA and returns its rows, columns joined by ", ".
func pragmaRows(ctx context.Context, db *sql.DB, pragma string) ([]string, error) {
	rows, err := db.QueryContext(ctx, pragma)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var out []string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		parts := make([]string, len(vals))
		for i, v := range vals {
			parts[i] = v.String
		}
		out = append(out, strings.Join(parts, ", "))
	}
	return out, rows.Err()
}

func first(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], fmt.Sprintf("… %d more", len(s)-n))
	}
	return s
}
