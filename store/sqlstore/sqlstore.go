// Package sqlstore implements store.Store with sqlx over SQLite
// (modernc.org/sqlite) and PostgreSQL (lib/pq).
//
// Queries are written once with ? placeholders, rebound for PostgreSQL, and
// shared between the connection pool and transactions. Times are stored as
// BIGINT milliseconds since the Unix epoch and read back in UTC; a zero
// optional time is NULL. Every error passes through mapErr, which maps
// driver, network and deadline errors to the store sentinels with one
// function per dialect (dialect.classify); a canceled context stays
// context.Canceled.
//
// SQLite connections all get foreign_keys, busy_timeout, journal_mode=WAL
// and wal_autocheckpoint through DSN pragmas, and transactions begin
// IMMEDIATE: a writer waits for the lock up front instead of failing with
// SQLITE_BUSY when upgrading a read lock.
//
// Durability classes (see package store), for transactions and for
// statements outside one alike: on SQLite a Store holds two connection
// pools on the one database file, identical but for the synchronous
// pragma: FULL for durable work, NORMAL for ephemeral work, whose commits
// in WAL mode are not flushed (the next FULL commit or checkpoint flushes
// them too). Writers of both pools take the same file lock at BEGIN
// IMMEDIATE, waiting up to busy_timeout, and a commit of either is seen by
// the other at once, as between any two connections. On PostgreSQL there
// is one pool, and an ephemeral transaction begins with SET LOCAL
// synchronous_commit = off (transaction-scoped, so it also holds behind a
// transaction-pooling proxy such as PgBouncer); an ephemeral statement
// outside a transaction gets a transaction of its own for that. Durable
// work keeps the server's synchronous_commit (on by default).
//
// Health (SQLite): a new database file is created mode 0600 (its -wal and
// -shm files get the same mode from SQLite), and Open checks that the file
// takes a write. A transaction refuses to commit, and Ping fails, with
// store.ErrUnavailable once the path no longer names the file opened
// (deleted or replaced: device and inode differ). SQLITE_FULL,
// SQLITE_READONLY and SQLITE_IOERR are store.ErrUnavailable too, and fail
// Ping until a write succeeds again (Ping tries one itself every few
// seconds). On PostgreSQL, DurabilityWarnings reports fsync or
// synchronous_commit off.
//
// Secrets at rest: the secret columns (kA, wrapKb, the SRP verifier, the
// email code, the token keys, seeds and codes, the recovery keys' ids and
// data) are sealed under the key-encryption key ring of Options.KEK on every
// write and opened on every read (see sealing.go for the columns, their row
// bindings and the kek_id format marker of migrations 0004 and 0005);
// callers only ever see clear values. A value that does not open is an
// *UnsealError, none of the store sentinels. Reseal moves every row to the
// ring's current key (keyserver kek rotate) and seals the rows in clear from
// before sealing.
package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/lib/pq/pqerror"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/keyserver/keyserver/migrations"
	"github.com/keyserver/keyserver/sealing"
	"github.com/keyserver/keyserver/store"
)

func init() {
	sqlx.BindDriver("sqlite", sqlx.QUESTION)
}

// Options control Open.
type Options struct {
	// Migrate applies pending migrations; without it Open refuses a
	// database whose schema is older than this binary.
	Migrate bool
	// KEK is the key-encryption key ring that seals the secret columns:
	// its current key seals every write, every key of it opens. It is
	// required: cmd always passes the ring of --kek-file and --kek-retired.
	// Only in a test binary (testing.Testing) may it be nil, and the Store
	// then uses a random ring, one per process (so that a test may reopen
	// its database); outside tests Open refuses a nil KEK.
	KEK *sealing.Ring
}

// Store is a store.Store on SQLite or PostgreSQL.
type Store struct {
	queries // stmts on the durable pool, ephemeral on the ephemeral one
	db      *sqlx.DB
	// created is set when Open created the SQLite file.
	created bool
}

var _ store.Store = (*Store)(nil)

// dialect is what differs between the databases.
type dialect struct {
	name   string // migrations.SQLite or migrations.Postgres
	driver string
	// classify returns store.ErrConflict for a unique violation,
	// store.ErrNotFound for a foreign-key violation (the referenced account
	// or session does not exist), store.ErrUnavailable for a database that
	// cannot serve right now (see unavailable), else nil.
	classify func(error) error
	pool     func(*sqlx.DB)
	// beginEphemeral, when set, runs first in an ephemeral transaction (a
	// dialect without it has a pool of its own for them).
	beginEphemeral string
	// health is the health of one Store (each Store has its own copy of
	// the dialect); nil in the package-level dialects.
	health *health
}

// health is what a Store knows of its database beyond single errors: on
// SQLite, whether the file at the path is still the one it opened, and
// whether the last write failed for want of space, a read-only file or an
// I/O error. Ping (the heartbeat) fails while either holds.
type health struct {
	path string      // the SQLite file; "" on PostgreSQL
	file os.FileInfo // of path when opened
	// replaced is set, for good, once path no longer names file: what the
	// Store writes then goes to an unlinked file and is lost at restart.
	replaced atomic.Bool
	// writeFailed holds the error of the last failed write (SQLITE_FULL,
	// SQLITE_READONLY, SQLITE_IOERR) until a write succeeds.
	writeFailed atomic.Pointer[error]
	// lastTry is when a write last failed or Ping last tried one (Unix
	// ns): Ping tries a write of its own (probeWrite) at most every
	// probeEvery, so that the heartbeat stays 503 a while after a failure
	// (a one-page probe may fit where a transaction does not) and still
	// turns 200 without traffic once the file takes writes again.
	lastTry    atomic.Int64
	probeEvery time.Duration
}

// defaultProbeEvery is health.probeEvery outside tests.
const defaultProbeEvery = 5 * time.Second

// check returns an error wrapping store.ErrUnavailable when the database
// file was deleted or replaced since it was opened.
func (h *health) check() error {
	if h == nil || h.file == nil {
		return nil
	}
	if !h.replaced.Load() {
		fi, err := os.Stat(h.path)
		if err == nil && os.SameFile(fi, h.file) {
			return nil
		}
		h.replaced.Store(true)
	}
	return fmt.Errorf("sqlstore: the database file %s was deleted or replaced while the server runs (device and inode no longer match the path): %w; restart the server (what it wrote since is in the unlinked file)", h.path, store.ErrUnavailable)
}

// failedWrite returns the last failed write's error while no write has
// succeeded since, else nil.
func (h *health) failedWrite() error {
	if h == nil {
		return nil
	}
	if p := h.writeFailed.Load(); p != nil {
		return *p
	}
	return nil
}

// errWriteFailed marks the SQLite errors of a file that takes no writes
// now: a full disk, a read-only file or file system, an I/O error.
var errWriteFailed = errors.New("the database file takes no writes")

var sqliteDialect = &dialect{
	name:   migrations.SQLite,
	driver: "sqlite",
	classify: func(err error) error {
		if e, ok := errors.AsType[*sqlite.Error](err); ok {
			switch e.Code() {
			case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
				return store.ErrConflict
			case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
				return store.ErrNotFound
			}
			// Still locked after busy_timeout (extended codes keep the
			// primary code in the low byte); a disk full, a read-only
			// file or an I/O error: the database cannot serve writes now
			// (mapErr records those in the Store's health).
			switch e.Code() & 0xff {
			case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
				return store.ErrUnavailable
			case sqlite3.SQLITE_FULL, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_IOERR:
				return errWriteFailed
			}
		}
		return unavailable(err)
	},
	// WAL lets readers run beside the one writer; more connections than
	// this would only queue on the write lock.
	pool: func(db *sqlx.DB) {
		db.SetMaxOpenConns(8)
		db.SetMaxIdleConns(8)
	},
}

var postgresDialect = &dialect{
	name:   migrations.Postgres,
	driver: "postgres",
	classify: func(err error) error {
		if e, ok := errors.AsType[*pq.Error](err); ok {
			switch e.Code {
			case pqerror.UniqueViolation:
				return store.ErrConflict
			case pqerror.ForeignKeyViolation:
				return store.ErrNotFound
			}
			// Classes 08 (connection exception), 53 (insufficient
			// resources: too many connections) and 57 (operator
			// intervention: shutting down, starting up).
			if len(e.Code) == 5 {
				switch e.Code.Class() {
				case "08", "53", "57":
					return store.ErrUnavailable
				}
			}
		}
		return unavailable(err)
	},
	// Idle connections are recycled so that the pool recovers soon after
	// the server restarts.
	pool: func(db *sqlx.DB) {
		db.SetMaxOpenConns(20)
		db.SetMaxIdleConns(10)
		db.SetConnMaxIdleTime(5 * time.Minute)
		db.SetConnMaxLifetime(time.Hour)
	},
	beginEphemeral: "SET LOCAL synchronous_commit = off",
}

// walCheckpointPages is the WAL size, in pages, past which a commit copies
// the WAL back into the database file (SQLite's default is 1000). A
// sign-in writes about 40 pages, mostly the same few (index edges), so a
// larger WAL writes each of them back once for more sign-ins, and flushes
// less often: measured, about 10 % less CPU per sign-in. The WAL file
// stays at up to this many pages (40 MB of 4 KiB pages).
const walCheckpointPages = 10000

// sqliteDriverDSN returns the driver DSN of path whose connections get the
// synchronous mode sync (FULL or NORMAL). modernc.org/sqlite applies the
// pragmas on every new connection (busy_timeout first); _txlock=immediate
// makes BeginTx send BEGIN IMMEDIATE.
func sqliteDriverDSN(path, sync string) string {
	return path + "?" + url.Values{
		"_pragma": {"busy_timeout(10000)", "foreign_keys(1)", "journal_mode(WAL)", "synchronous(" + sync + ")",
			fmt.Sprintf("wal_autocheckpoint(%d)", walCheckpointPages)},
		"_txlock": {"immediate"},
	}.Encode()
}

// connect opens and pings the database named by dsn. Error messages never
// repeat the DSN, which may hold a password.
func connect(ctx context.Context, dsn string, ring *sealing.Ring) (*Store, error) {
	var d *dialect
	var driverDSN, ephemeralDSN string // ephemeralDSN: of the ephemeral pool, if any
	h := &health{probeEvery: defaultProbeEvery}
	switch {
	case strings.HasPrefix(dsn, "sqlite:"):
		path := strings.TrimPrefix(dsn, "sqlite:")
		if path == "" || strings.ContainsRune(path, '?') {
			return nil, errors.New("sqlstore: sqlite DSN must be sqlite:PATH with a PATH without '?'")
		}
		d, driverDSN, ephemeralDSN = sqliteDialect, sqliteDriverDSN(path, "FULL"), sqliteDriverDSN(path, "NORMAL")
		h.path = path
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		d, driverDSN = postgresDialect, dsn
	default:
		return nil, errors.New("sqlstore: unsupported database DSN: want sqlite:PATH or a postgres:// URL")
	}
	dc := *d // this Store's, with its health
	d = &dc
	d.health = h
	var created bool
	if h.path != "" {
		var err error
		if h.file, created, err = createSQLiteFile(h.path); err != nil {
			return nil, err
		}
	}
	db, err := openPool(ctx, d, driverDSN)
	if err != nil {
		return nil, err
	}
	var seal *sealer
	if ring != nil {
		seal = newSealer(ring)
	}
	s := &Store{queries: queries{stmts: &stmtCache{db: db}, d: d, seal: seal}, db: db, created: created}
	s.ephemeral = s.stmts
	if ephemeralDSN != "" {
		edb, err := openPool(ctx, d, ephemeralDSN)
		if err != nil {
			db.Close()
			return nil, err
		}
		s.ephemeral = &stmtCache{db: edb}
	}
	return s, nil
}

// createSQLiteFile creates the SQLite file at path with mode 0600 unless it
// exists (SQLite would create it 0644, and gives the -wal and -shm files
// the mode of the database file), and returns its FileInfo, the identity
// health.check compares the path with. A special name (":memory:",
// "file:" URIs) has no file: nil, false, nil.
func createSQLiteFile(path string) (fi os.FileInfo, created bool, err error) {
	if strings.HasPrefix(path, ":") || strings.HasPrefix(path, "file:") {
		return nil, false, nil
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case err == nil:
		created = true
		fi, err = f.Stat()
		f.Close()
	case errors.Is(err, os.ErrExist):
		fi, err = os.Stat(path)
	}
	if err != nil {
		return nil, false, fmt.Errorf("sqlstore: database file %s: %w", path, err)
	}
	return fi, created, nil
}

// openPool opens and pings one connection pool.
func openPool(ctx context.Context, d *dialect, driverDSN string) (*sqlx.DB, error) {
	db, err := sqlx.Open(d.driver, driverDSN)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: opening %s database: %w", d.name, err)
	}
	d.pool(db)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, mapErr(ctx, d, false, "connecting to "+d.name+" database", err)
	}
	return db, nil
}

// Open connects to dsn, "sqlite:PATH" (the file is created if absent) or a
// postgres:// (postgresql://) URL, and checks the schema version: a schema
// newer than this binary is always an error (*migrations.SchemaTooNewError);
// an older or empty one is migrated when opts.Migrate is set and an error
// otherwise. opts.KEK is required (see Options).
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	ring, err := ringOf(opts, testing.Testing())
	if err != nil {
		return nil, err
	}
	s, err := connect(ctx, dsn, ring)
	if err != nil {
		return nil, err
	}
	if err := s.checkSchema(ctx, opts.Migrate); err != nil {
		s.Close()
		return nil, err
	}
	if s.d.health.path != "" {
		if err := s.probeWrite(ctx); err != nil {
			s.Close()
			return nil, fmt.Errorf("sqlstore: the database file %s cannot be written: %w", s.d.health.path, err)
		}
	}
	return s, nil
}

// Created reports whether Open created the SQLite database file.
func (s *Store) Created() bool { return s.created }

// Path returns the SQLite database file, "" on PostgreSQL.
func (s *Store) Path() string { return s.d.health.path }

// probeWrite commits a write to the SQLite file that changes nothing (the
// user_version header field, rewritten with its value; no migration uses
// it), on the durable pool: it fails as any write would when the file
// takes no writes. A success clears the health's failed write.
func (s *Store) probeWrite(ctx context.Context) error {
	err := func() error {
		tx, err := s.db.BeginTxx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		var v int64
		if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", v)); err != nil {
			return err
		}
		return tx.Commit()
	}()
	if err != nil {
		return s.fail(ctx, "write probe", err)
	}
	s.d.health.writeFailed.Store(nil)
	return nil
}

// DurabilityWarnings returns, on PostgreSQL, a warning for each of fsync
// and synchronous_commit that the server runs with off (a crash may then
// lose or corrupt what was acknowledged); nil on SQLite.
func (s *Store) DurabilityWarnings(ctx context.Context) ([]string, error) {
	if s.d.name != migrations.Postgres {
		return nil, nil
	}
	var warnings []string
	for _, setting := range []string{"fsync", "synchronous_commit"} {
		var v string
		if err := s.db.QueryRowContext(ctx, "SHOW "+setting).Scan(&v); err != nil {
			return nil, s.fail(ctx, "SHOW "+setting, err)
		}
		if w := durabilityWarning(setting, v); w != "" {
			warnings = append(warnings, w)
		}
	}
	return warnings, nil
}

// durabilityWarning is the warning for a PostgreSQL setting's value, or "".
func durabilityWarning(setting, value string) string {
	if !strings.EqualFold(value, "off") {
		return ""
	}
	switch setting {
	case "fsync":
		return "PostgreSQL runs with fsync = off: a crash of its host can corrupt the database and lose acknowledged writes"
	case "synchronous_commit":
		return "PostgreSQL runs with synchronous_commit = off: a crash can lose recently acknowledged durable writes (accounts, password changes)"
	}
	return ""
}

func (s *Store) checkSchema(ctx context.Context, migrate bool) error {
	cur, latest, err := migrations.Status(ctx, s.db.DB, s.d.name)
	if err != nil {
		return fmt.Errorf("sqlstore: %w", err)
	}
	switch {
	case cur > latest:
		return &migrations.SchemaTooNewError{Current: cur, Latest: latest}
	case cur == latest:
		return nil
	case !migrate:
		return fmt.Errorf("sqlstore: database schema version %d is older than this keyserver (%d): run `keyserver migrate` or pass --migrate", cur, latest)
	}
	if _, err := migrations.Apply(ctx, s.db.DB, s.d.name); err != nil {
		return fmt.Errorf("sqlstore: %w", err)
	}
	return nil
}

// MigrateDSN applies the pending migrations to the database named by dsn
// (as for Open) and returns the versions applied.
func MigrateDSN(ctx context.Context, dsn string) (applied []int, err error) {
	s, err := connect(ctx, dsn, nil) // no secret is read or written
	if err != nil {
		return nil, err
	}
	defer s.Close()
	applied, err = migrations.Apply(ctx, s.db.DB, s.d.name)
	if err != nil {
		return applied, fmt.Errorf("sqlstore: %w", err)
	}
	return applied, nil
}

// Dialect returns "sqlite" or "postgres".
func (s *Store) Dialect() string { return s.d.name }

// WithTx implements store.Store: an ephemeral transaction (ctx from
// store.Ephemeral) runs on the ephemeral pool, or begins with the dialect's
// beginEphemeral. fn's error is returned as is.
func (s *Store) WithTx(ctx context.Context, fn func(q store.Queries) error) error {
	return s.queries.withTx(ctx, fn)
}

// withTx runs fn in a transaction on q's pools (q is a Store's own
// queries), of ctx's class.
func (q *queries) withTx(ctx context.Context, fn func(q store.Queries) error) error {
	ephemeral := store.IsEphemeral(ctx)
	tq := &queries{stmts: q.stmts, d: q.d, seal: q.seal}
	if ephemeral {
		tq.stmts = q.ephemeral
	}
	err := tq.inTx(ctx, ephemeral, fn)
	// With the transaction's connection back in its pool, cache what it
	// missed. A failure here only means preparing again next time.
	for _, query := range tq.missed {
		_, _ = tq.stmts.get(ctx, query)
	}
	return err
}

// inTx runs fn on tq in a new transaction on tq's pool.
func (tq *queries) inTx(ctx context.Context, ephemeral bool, fn func(q store.Queries) error) error {
	tx, err := tq.stmts.db.BeginTxx(ctx, nil)
	if err != nil {
		return tq.fail(ctx, "begin", err)
	}
	committed := false
	defer func() {
		// Also runs while a panic in fn unwinds; the panic then goes on.
		if !committed {
			_ = tx.Rollback()
		}
	}()
	if ephemeral && tq.d.beginEphemeral != "" {
		if _, err := tx.ExecContext(ctx, tq.d.beginEphemeral); err != nil {
			return tq.fail(ctx, "begin", err)
		}
	}
	tq.tx = tx
	if err := fn(tq); err != nil {
		return err
	}
	// An ended context rolls back. database/sql checks too, but on a context
	// derived from ctx, which may not yet have seen ctx end.
	if err := ctx.Err(); err != nil {
		return tq.fail(ctx, "commit", err)
	}
	if err := tq.d.health.check(); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return tq.fail(ctx, "commit", err)
	}
	committed = true
	if tq.d.health != nil {
		tq.d.health.writeFailed.Store(nil)
	}
	return nil
}

// Ping implements store.Store. A pooled connection that broke while the
// database was down answers driver.ErrBadConn once and is discarded, so Ping
// moves on to the next one until a fresh connection answers or fails to
// connect.
//
// On SQLite Ping also fails, with store.ErrUnavailable, once the database
// file was deleted or replaced under the Store, and while the last write
// failed for want of space, a read-only file or an I/O error: it then
// tries a write itself (probeWrite), which ends that state when it
// succeeds.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.d.health.check(); err != nil {
		return err
	}
	if h := s.d.health; h.failedWrite() != nil {
		now := time.Now().UnixNano()
		if last := h.lastTry.Load(); now-last < int64(h.probeEvery) || !h.lastTry.CompareAndSwap(last, now) {
			return fmt.Errorf("sqlstore: ping: writes fail: %w", h.failedWrite())
		}
		if err := s.probeWrite(ctx); err != nil {
			return fmt.Errorf("sqlstore: ping: writes fail: %w", err)
		}
	}
	for _, c := range s.caches() {
		var err error
		for range c.db.Stats().MaxOpenConnections + 1 {
			if err = c.db.PingContext(ctx); !errors.Is(err, driver.ErrBadConn) {
				break
			}
		}
		if err != nil {
			return s.fail(ctx, "ping", err)
		}
	}
	return nil
}

// caches returns the statement cache of each connection pool.
func (s *Store) caches() []*stmtCache {
	if s.ephemeral == s.stmts {
		return []*stmtCache{s.stmts}
	}
	return []*stmtCache{s.stmts, s.ephemeral}
}

// Close closes the prepared statements and the connection pools. Afterwards
// every operation fails with store.ErrUnavailable; closing again does
// nothing.
func (s *Store) Close() error {
	var errs []error
	for _, c := range s.caches() {
		c.closed.Store(true)
		c.close()
		errs = append(errs, c.db.Close())
	}
	return errors.Join(errs...)
}

// unavailable returns store.ErrUnavailable for the errors of a database that
// did not answer, whatever the dialect: a network error, a connection the
// driver or database/sql found broken, an expired deadline; else nil.
func unavailable(err error) error {
	if _, ok := errors.AsType[net.Error](err); ok ||
		errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) ||
		errors.Is(err, context.DeadlineExceeded) {
		return store.ErrUnavailable
	}
	return nil
}

// fail is mapErr for operation op of q's Store.
func (q *queries) fail(ctx context.Context, op string, err error) error {
	return mapErr(ctx, q.d, q.stmts.closed.Load(), op, err)
}

// mapErr wraps err, the failure of operation op under ctx, with %w, keeping
// it as the cause: sql.ErrNoRows becomes store.ErrNotFound, other errors get
// the sentinel d.classify finds. Once ctx has ended, that decides, whatever
// the driver made of it (lib/pq reports a canceled query as its own error):
// a deadline is ErrUnavailable, a cancellation (the caller gave up)
// context.Canceled with no sentinel. After Close every error is
// ErrUnavailable. Driver messages name constraints, never values.
func mapErr(ctx context.Context, d *dialect, closed bool, op string, err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("sqlstore: %s: %w", op, store.ErrNotFound)
	}
	sentinel := d.classify(err)
	if sentinel == errWriteFailed {
		sentinel = store.ErrUnavailable
		if d.health != nil && ctx.Err() == nil {
			e := fmt.Errorf("sqlstore: %s: %w: %w", op, store.ErrUnavailable, err)
			d.health.writeFailed.Store(&e)
			d.health.lastTry.Store(time.Now().UnixNano())
		}
	}
	if sentinel != store.ErrConflict && sentinel != store.ErrNotFound {
		if ctxErr := ctx.Err(); ctxErr != nil {
			if !errors.Is(err, ctxErr) {
				err = fmt.Errorf("%w: %w", ctxErr, err)
			}
			sentinel = nil
			if errors.Is(ctxErr, context.DeadlineExceeded) {
				sentinel = store.ErrUnavailable
			}
		} else if closed {
			sentinel = store.ErrUnavailable
		}
	}
	if sentinel == nil {
		return fmt.Errorf("sqlstore: %s: %w", op, err)
	}
	return fmt.Errorf("sqlstore: %s: %w: %w", op, sentinel, err)
}
