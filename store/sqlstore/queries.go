package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/keyserver/keyserver/protocol"
	"github.com/keyserver/keyserver/store"
)

// queries implements store.Queries on the pool or, with tx set, in a
// transaction.
type queries struct {
	stmts *stmtCache
	tx    *sqlx.Tx
	// missed lists the queries a transaction ran before they were cached,
	// for WithTx to prepare on the pool once the transaction is over. A
	// transaction's queries run one at a time.
	missed []string
	d      *dialect
}

var _ store.Queries = (*queries)(nil)

// stmtCache holds a Store's prepared statements by query text (before
// Rebind: one Store has one dialect). database/sql prepares a statement on
// each connection the first time it runs there, also on the connection that
// replaces a broken one.
type stmtCache struct {
	db       *sqlx.DB
	m        sync.Map     // query → *sqlx.Stmt
	prepared atomic.Int64 // statements prepared on the pool, for tests
}

// get returns the statement for query, prepared on the pool on first use.
func (c *stmtCache) get(ctx context.Context, query string) (*sqlx.Stmt, error) {
	if st, ok := c.m.Load(query); ok {
		return st.(*sqlx.Stmt), nil
	}
	st, err := c.db.PreparexContext(ctx, c.db.Rebind(query))
	if err != nil {
		return nil, err
	}
	c.prepared.Add(1)
	if prev, loaded := c.m.LoadOrStore(query, st); loaded {
		st.Close() // a concurrent get won
		return prev.(*sqlx.Stmt), nil
	}
	return st, nil
}

// close closes the cached statements.
func (c *stmtCache) close() {
	c.m.Range(func(query, st any) bool {
		st.(*sqlx.Stmt).Close()
		c.m.Delete(query)
		return true
	})
}

// stmt returns the statement for query. A transaction only uses a cached
// statement: preparing on the pool would wait for a second connection while
// holding one, which deadlocks once every connection does the same. It
// prepares a miss on its own connection, for this use only, and leaves it
// to WithTx to cache.
func (q *queries) stmt(ctx context.Context, query string) (*sqlx.Stmt, error) {
	if q.tx == nil {
		return q.stmts.get(ctx, query)
	}
	if st, ok := q.stmts.m.Load(query); ok {
		return q.tx.StmtxContext(ctx, st.(*sqlx.Stmt)), nil
	}
	q.missed = append(q.missed, query)
	return q.tx.PreparexContext(ctx, q.tx.Rebind(query)) // closed with the transaction
}

func (q *queries) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st, err := q.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

func (q *queries) row(ctx context.Context, query string, args ...any) scanner {
	st, err := q.stmt(ctx, query)
	if err != nil {
		return errRow{err}
	}
	return st.QueryRowxContext(ctx, args...)
}

func (q *queries) rows(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := q.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// errRow is a row whose statement could not be prepared.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// fail wraps err from operation op, mapping it to a store sentinel where one
// applies. Driver messages name constraints, never values.
func (q *queries) fail(op string, err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("sqlstore: %s: %w", op, store.ErrNotFound)
	}
	if sentinel := q.d.classify(err); sentinel != nil {
		return fmt.Errorf("sqlstore: %s: %w: %w", op, sentinel, err)
	}
	return fmt.Errorf("sqlstore: %s: %w", op, err)
}

// affected returns the rows affected by an exec.
func affected(res sql.Result, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// mustAffect runs an exec that must change a row: none is ErrNotFound.
func (q *queries) mustAffect(ctx context.Context, op, query string, args ...any) error {
	n, err := affected(q.exec(ctx, query, args...))
	if err != nil {
		return q.fail(op, err)
	}
	if n == 0 {
		return fmt.Errorf("sqlstore: %s: %w", op, store.ErrNotFound)
	}
	return nil
}

// insertOnce runs an INSERT ... ON CONFLICT DO NOTHING: a row already there
// is ErrConflict. Unlike a unique-violation error, this leaves a PostgreSQL
// transaction usable.
func (q *queries) insertOnce(ctx context.Context, op, query string, args ...any) error {
	n, err := affected(q.exec(ctx, query, args...))
	if err != nil {
		return q.fail(op, err)
	}
	if n == 0 {
		return fmt.Errorf("sqlstore: %s: %w", op, store.ErrConflict)
	}
	return nil
}

// scanner is *sql.Row, *sqlx.Row or *sql.Rows.
type scanner interface {
	Scan(dest ...any) error
}

// insertSQL returns an INSERT of the comma-separated cols into table.
func insertSQL(table, cols string) string {
	return "INSERT INTO " + table + " (" + cols + ") VALUES (" + marks(strings.Count(cols, ",")+1) + ")"
}

// marks returns n comma-separated ? placeholders.
func marks(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// Conversions at the database boundary.

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

// nullMS stores a zero time as NULL.
func nullMS(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return ms(t)
}

func fromNullMS(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return fromMS(v.Int64)
}

// nullBytes stores a nil slice as NULL.
func nullBytes(b []byte) any {
	if b == nil {
		return nil
	}
	return b
}

// nullString stores "" as NULL.
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// Accounts.

const accountCols = `uid, email, normalized_email, srp_type, srp_verifier, srp_salt,
	stretch_type, pbkdf2_rounds_1, scrypt_n, scrypt_r, scrypt_p, pbkdf2_rounds_2, stretch_salt,
	ka, wrap_kb, verified, email_code, disabled, created_at, generation`

var insertAccount = insertSQL("accounts", accountCols)

func scanAccount(r scanner) (*store.Account, error) {
	var a store.Account
	st := &a.Stretching
	var created, generation int64
	err := r.Scan(&a.UID, &a.Email, &a.NormalizedEmail, &a.SRPType, &a.SRPVerifier, &a.SRPSalt,
		&st.Type, &st.PBKDF2Rounds1, &st.ScryptN, &st.ScryptR, &st.ScryptP, &st.PBKDF2Rounds2, &st.Salt,
		&a.KA, &a.WrapKb, &a.Verified, &a.EmailCode, &a.Disabled, &created, &generation)
	if err != nil {
		return nil, err
	}
	a.CreatedAt, a.Generation = fromMS(created), fromMS(generation)
	return &a, nil
}

func (q *queries) CreateAccount(ctx context.Context, a *store.Account) error {
	st := &a.Stretching
	_, err := q.exec(ctx, insertAccount, a.UID, a.Email, a.NormalizedEmail, a.SRPType, a.SRPVerifier, a.SRPSalt,
		st.Type, st.PBKDF2Rounds1, st.ScryptN, st.ScryptR, st.ScryptP, st.PBKDF2Rounds2, st.Salt,
		a.KA, a.WrapKb, a.Verified, a.EmailCode, a.Disabled, ms(a.CreatedAt), ms(a.Generation))
	if err != nil {
		return q.fail("create account", err)
	}
	return nil
}

func (q *queries) account(ctx context.Context, op, where string, arg any) (*store.Account, error) {
	a, err := scanAccount(q.row(ctx, "SELECT "+accountCols+" FROM accounts WHERE "+where, arg))
	if err != nil {
		return nil, q.fail(op, err)
	}
	return a, nil
}

func (q *queries) AccountByUID(ctx context.Context, uid []byte) (*store.Account, error) {
	return q.account(ctx, "account by uid", "uid = ?", uid)
}

func (q *queries) AccountByEmail(ctx context.Context, normalizedEmail string) (*store.Account, error) {
	return q.account(ctx, "account by email", "normalized_email = ?", normalizedEmail)
}

func (q *queries) SetVerified(ctx context.Context, uid []byte) error {
	return q.mustAffect(ctx, "set verified", "UPDATE accounts SET verified = ? WHERE uid = ?", true, uid)
}

func (q *queries) SetDisabled(ctx context.Context, uid []byte, disabled bool) error {
	return q.mustAffect(ctx, "set disabled", "UPDATE accounts SET disabled = ? WHERE uid = ?", disabled, uid)
}

func (q *queries) SetCredentials(ctx context.Context, uid []byte, c *store.Credentials) error {
	st := &c.Stretching
	return q.mustAffect(ctx, "set credentials", `UPDATE accounts SET srp_type = ?, srp_verifier = ?, srp_salt = ?,
		stretch_type = ?, pbkdf2_rounds_1 = ?, scrypt_n = ?, scrypt_r = ?, scrypt_p = ?, pbkdf2_rounds_2 = ?, stretch_salt = ?,
		wrap_kb = ?, generation = ? WHERE uid = ?`,
		c.SRPType, c.SRPVerifier, c.SRPSalt,
		st.Type, st.PBKDF2Rounds1, st.ScryptN, st.ScryptR, st.ScryptP, st.PBKDF2Rounds2, st.Salt,
		c.WrapKb, ms(c.Generation), uid)
}

func (q *queries) DeleteAccount(ctx context.Context, uid []byte) error {
	return q.mustAffect(ctx, "delete account", "DELETE FROM accounts WHERE uid = ?", uid)
}

// Tokens.

const tokenCols = `token_id, type, uid, auth_key, bundle_key, created_at, expires_at,
	srp_b, session_id, seed, code, tries`

var insertToken = insertSQL("tokens", tokenCols)

func scanToken(r scanner) (*store.Token, error) {
	var t store.Token
	var typ string
	var created int64
	var expires sql.NullInt64
	var code sql.NullString
	err := r.Scan(&t.ID, &typ, &t.UID, &t.AuthKey, &t.BundleKey, &created, &expires,
		&t.SRPB, &t.SessionID, &t.Seed, &code, &t.Tries)
	if err != nil {
		return nil, err
	}
	t.Type, t.CreatedAt, t.ExpiresAt, t.Code = protocol.TokenType(typ), fromMS(created), fromNullMS(expires), code.String
	return &t, nil
}

func (q *queries) CreateToken(ctx context.Context, t *store.Token) error {
	_, err := q.exec(ctx, insertToken, t.ID, string(t.Type), t.UID, t.AuthKey, t.BundleKey, ms(t.CreatedAt), nullMS(t.ExpiresAt),
		nullBytes(t.SRPB), nullBytes(t.SessionID), nullBytes(t.Seed), nullString(t.Code), t.Tries)
	if err != nil {
		return q.fail("create token", err)
	}
	return nil
}

func (q *queries) Token(ctx context.Context, typ protocol.TokenType, id []byte) (*store.Token, error) {
	t, err := scanToken(q.row(ctx, "SELECT "+tokenCols+" FROM tokens WHERE type = ? AND token_id = ?", string(typ), id))
	if err != nil {
		return nil, q.fail("token", err)
	}
	return t, nil
}

// ConsumeToken deletes and returns in one statement: of concurrent consumers
// only the one whose DELETE removed the row gets it back.
func (q *queries) ConsumeToken(ctx context.Context, typ protocol.TokenType, id []byte) (*store.Token, error) {
	t, err := scanToken(q.row(ctx, "DELETE FROM tokens WHERE type = ? AND token_id = ? RETURNING "+tokenCols, string(typ), id))
	if err != nil {
		return nil, q.fail("consume token", err)
	}
	return t, nil
}

func (q *queries) DeleteToken(ctx context.Context, typ protocol.TokenType, id []byte) error {
	return q.mustAffect(ctx, "delete token", "DELETE FROM tokens WHERE type = ? AND token_id = ?", string(typ), id)
}

func (q *queries) DeleteAccountTokens(ctx context.Context, uid []byte, types ...protocol.TokenType) error {
	query := "DELETE FROM tokens WHERE uid = ?"
	args := []any{uid}
	if len(types) > 0 {
		query += " AND type IN (" + marks(len(types)) + ")"
		for _, t := range types {
			args = append(args, string(t))
		}
	}
	if _, err := q.exec(ctx, query, args...); err != nil {
		return q.fail("delete account tokens", err)
	}
	return nil
}

func (q *queries) CountTokens(ctx context.Context, uid []byte, typ protocol.TokenType) (int, error) {
	var n int
	if err := q.row(ctx, "SELECT COUNT(*) FROM tokens WHERE uid = ? AND type = ?", uid, string(typ)).Scan(&n); err != nil {
		return 0, q.fail("count tokens", err)
	}
	return n, nil
}

func (q *queries) DecrementTries(ctx context.Context, id []byte) (int, error) {
	var n int
	err := q.row(ctx, "UPDATE tokens SET tries = tries - 1 WHERE type = ? AND token_id = ? AND tries > 0 RETURNING tries",
		string(protocol.ForgotPasswordToken), id).Scan(&n)
	if err != nil {
		return 0, q.fail("decrement tries", err)
	}
	return n, nil
}

// Devices.

const deviceCols = `id, uid, session_id, name, type, push_callback, push_public_key, push_auth_key,
	created_at, last_access_at`

var insertDevice = insertSQL("devices", deviceCols)

func scanDevice(r scanner) (*store.Device, error) {
	var d store.Device
	var callback, publicKey, authKey sql.NullString
	var created, lastAccess int64
	err := r.Scan(&d.ID, &d.UID, &d.SessionID, &d.Name, &d.Type, &callback, &publicKey, &authKey, &created, &lastAccess)
	if err != nil {
		return nil, err
	}
	d.PushCallback, d.PushPublicKey, d.PushAuthKey = callback.String, publicKey.String, authKey.String
	d.CreatedAt, d.LastAccessAt = fromMS(created), fromMS(lastAccess)
	return &d, nil
}

func (q *queries) CreateDevice(ctx context.Context, d *store.Device) error {
	_, err := q.exec(ctx, insertDevice, d.ID, d.UID, d.SessionID, d.Name, d.Type,
		nullString(d.PushCallback), nullString(d.PushPublicKey), nullString(d.PushAuthKey), ms(d.CreatedAt), ms(d.LastAccessAt))
	if err != nil {
		return q.fail("create device", err)
	}
	return nil
}

func (q *queries) device(ctx context.Context, op, where string, args ...any) (*store.Device, error) {
	d, err := scanDevice(q.row(ctx, "SELECT "+deviceCols+" FROM devices WHERE "+where, args...))
	if err != nil {
		return nil, q.fail(op, err)
	}
	return d, nil
}

func (q *queries) Device(ctx context.Context, uid, id []byte) (*store.Device, error) {
	return q.device(ctx, "device", "uid = ? AND id = ?", uid, id)
}

func (q *queries) DeviceBySession(ctx context.Context, sessionID []byte) (*store.Device, error) {
	return q.device(ctx, "device by session", "session_id = ?", sessionID)
}

func (q *queries) UpdateDevice(ctx context.Context, d *store.Device) error {
	return q.mustAffect(ctx, "update device",
		"UPDATE devices SET name = ?, type = ?, push_callback = ?, push_public_key = ?, push_auth_key = ? WHERE id = ?",
		d.Name, d.Type, nullString(d.PushCallback), nullString(d.PushPublicKey), nullString(d.PushAuthKey), d.ID)
}

// TouchDevice reports false, not an error, for an unknown device.
func (q *queries) TouchDevice(ctx context.Context, id []byte, at time.Time, minAge time.Duration) (bool, error) {
	n, err := affected(q.exec(ctx, "UPDATE devices SET last_access_at = ? WHERE id = ? AND last_access_at < ?",
		ms(at), id, ms(at.Add(-minAge))))
	if err != nil {
		return false, q.fail("touch device", err)
	}
	return n > 0, nil
}

func (q *queries) Devices(ctx context.Context, uid []byte) ([]store.Device, error) {
	rows, err := q.rows(ctx, "SELECT "+deviceCols+" FROM devices WHERE uid = ? ORDER BY created_at, id", uid)
	if err != nil {
		return nil, q.fail("devices", err)
	}
	ds, err := collect(rows, scanDevice)
	if err != nil {
		return nil, q.fail("devices", err)
	}
	return ds, nil
}

func (q *queries) DeleteDevices(ctx context.Context, uid []byte) error {
	if _, err := q.exec(ctx, "DELETE FROM devices WHERE uid = ?", uid); err != nil {
		return q.fail("delete devices", err)
	}
	return nil
}

// collect scans every row with scan and closes rows.
func collect[T any](rows *sql.Rows, scan func(scanner) (*T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *v)
	}
	return out, rows.Err()
}

// Replay records.

func (q *queries) UseNonce(ctx context.Context, tokenID []byte, ts int64, nonce string, expires time.Time) error {
	return q.insertOnce(ctx, "use nonce",
		"INSERT INTO hawk_nonces (token_id, ts, nonce, expires_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
		tokenID, ts, nonce, ms(expires))
}

func (q *queries) UseAssertion(ctx context.Context, hash []byte, expires time.Time) error {
	return q.insertOnce(ctx, "use assertion",
		"INSERT INTO assertion_hashes (hash, expires_at) VALUES (?, ?) ON CONFLICT DO NOTHING",
		hash, ms(expires))
}

// Audit events.

const eventCols = `id, time, actor, action, outcome, uid, device_id, session_id, ip, details`

var insertEvent = insertSQL("audit_events", eventCols)

func scanEvent(r scanner) (*store.Event, error) {
	var e store.Event
	var t int64
	err := r.Scan(&e.ID, &t, &e.Actor, &e.Action, &e.Outcome, &e.UID, &e.DeviceID, &e.SessionID, &e.IP, &e.Details)
	if err != nil {
		return nil, err
	}
	e.Time = fromMS(t)
	return &e, nil
}

func (q *queries) AppendEvent(ctx context.Context, e *store.Event) error {
	_, err := q.exec(ctx, insertEvent, e.ID, ms(e.Time), e.Actor, e.Action, e.Outcome,
		nullBytes(e.UID), nullBytes(e.DeviceID), nullBytes(e.SessionID), e.IP, e.Details)
	if err != nil {
		return q.fail("append event", err)
	}
	return nil
}

func (q *queries) Events(ctx context.Context, eq store.EventQuery) ([]store.Event, error) {
	query := "SELECT " + eventCols + " FROM audit_events WHERE "
	var args []any
	if eq.After != nil {
		// time >= Since, skipping (Since, id <= After): a row-value
		// comparison that an index on (time, id) serves directly.
		query += "(time, id) > (?, ?)"
		args = append(args, ms(eq.Since), eq.After)
	} else {
		query += "time >= ?"
		args = append(args, ms(eq.Since))
	}
	if eq.UID != nil {
		query += " AND uid = ?"
		args = append(args, eq.UID)
	}
	if eq.Newest {
		query += " ORDER BY time DESC, id DESC"
	} else {
		query += " ORDER BY time, id"
	}
	if eq.Limit > 0 {
		query += " LIMIT ?"
		args = append(args, eq.Limit)
	}
	rows, err := q.rows(ctx, query, args...)
	if err != nil {
		return nil, q.fail("events", err)
	}
	es, err := collect(rows, scanEvent)
	if err != nil {
		return nil, q.fail("events", err)
	}
	return es, nil
}
