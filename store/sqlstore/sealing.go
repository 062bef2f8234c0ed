package sqlstore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/keyserver/keyserver/sealing"
	"github.com/keyserver/keyserver/store"
)

// Secrets at rest (issue 13, design.md "Storage"). The secret columns are
// sealed with package sealing on every write and opened on every read, here
// and nowhere else, so that the rest of the server only ever sees clear
// values and the database only ever holds sealed ones:
//
//	column                 row binding
//	accounts.ka            uid
//	accounts.wrap_kb       uid
//	accounts.srp_verifier  uid
//	accounts.email_code    uid
//	tokens.auth_key        uid || token_id
//	tokens.bundle_key      uid || token_id  (a srpToken's SRP secret b)
//	tokens.seed            uid || token_id  (NULL stays NULL)
//	tokens.code            uid || token_id  (the UTF-8 code; NULL stays NULL)
//	unblock_codes.code     uid || id        (the UTF-8 code)
//	recovery_keys.key_id   uid              (the recoveryKeyId)
//	recovery_keys.data     uid              (the recoveryData)
//
// The column string of the binding is "table.column" as above. Salts, the
// public value B, ids and emails stay in clear: they are searched, or
// public. A recoveryKeyId is no such id: it proves the recovery key
// (RK.4) and is never searched (rows are found by uid).
//
// Each row of accounts, tokens, unblock_codes and recovery_keys records its
// format in kek_id (migrations 0004 and 0005): the id of the key-encryption
// key that sealed every secret column of the row, or NULL for a row written
// before sealing, whose secrets are all in clear and are read as they are.
// Every write seals every secret column of the row under the current key
// (SetCredentials re-seals kA and the email code with the new verifier and
// wrapKb; PutRecoveryKey writes both columns), so a row is never half sealed
// and kek_id is exact: Reseal finds the rows left to do by it, and
// SealStatus counts them.

// Column names of the row bindings.
const (
	colKA        = "accounts.ka"
	colWrapKb    = "accounts.wrap_kb"
	colVerifier  = "accounts.srp_verifier"
	colEmailCode = "accounts.email_code"
	colAuthKey   = "tokens.auth_key"
	colBundleKey = "tokens.bundle_key"
	colSeed      = "tokens.seed"
	colCode      = "tokens.code"
	// colUnblockCode is the code of an unblock code (customs.go).
	colUnblockCode = "unblock_codes.code"
	// The recoveryKeyId and recoveryData of a recovery key (recoverykeys.go).
	colRecoveryKeyID   = "recovery_keys.key_id"
	colRecoveryKeyData = "recovery_keys.data"
)

// UnsealError reports a sealed secret that does not open with the Store's
// key ring: the value was moved from another row or column or altered
// (sealing.ErrTampered), is sealed under a key that is not in the ring
// (sealing.ErrUnknownKey: the wrong --kek-file, or a --kek-retired
// missing), or is not a sealed value although its row says it is
// (sealing.ErrFormat). It is none of the store sentinels: the HTTP edge
// answers 500 (errno 999) and logs it. Its message names the table, the
// column and the account's uid, never a byte of the value.
type UnsealError struct {
	Table, Column string // "accounts", "ka"
	UID           []byte
	Err           error // wraps sealing.ErrTampered, ErrUnknownKey or ErrFormat
}

func (e *UnsealError) Error() string {
	hint := ""
	if errors.Is(e.Err, sealing.ErrUnknownKey) {
		hint = " (wrong --kek-file, or a --kek-retired missing?)"
	}
	return fmt.Sprintf("sqlstore: the sealed value of %s.%s of uid %x does not open%s: %v", e.Table, e.Column, e.UID, hint, e.Err)
}

func (e *UnsealError) Unwrap() error { return e.Err }

// sealer seals and opens the secret columns of one Store.
type sealer struct {
	ring *sealing.Ring
	rand io.Reader
	// id is ring.KeyID(), written to kek_id.
	id string
}

func newSealer(ring *sealing.Ring) *sealer {
	return &sealer{ring: ring, rand: rand.Reader, id: ring.KeyID()}
}

// testRing is the ring of a Store opened without Options.KEK in a test
// binary: random, one per process, so that a test can reopen a database it
// wrote.
var testRing = sync.OnceValues(func() (*sealing.Ring, error) {
	key := make([]byte, sealing.KeySize)
	if _, err := io.ReadFull(rand.Reader, key); err != nil {
		return nil, err
	}
	defer clear(key)
	return sealing.NewRing(key)
})

// ringOf returns the ring of opts: opts.KEK, or in a test binary
// (testBinary: testing.Testing()) only the process's random test ring.
// Outside tests a Store without a KEK is refused.
func ringOf(opts Options, testBinary bool) (*sealing.Ring, error) {
	if opts.KEK != nil {
		return opts.KEK, nil
	}
	if !testBinary {
		return nil, errors.New("sqlstore: no key-encryption key (Options.KEK): the secret columns are sealed under one; give keyserver serve --kek-file FILE (create it with 'keyserver kek generate --out FILE')")
	}
	ring, err := testRing()
	if err != nil {
		return nil, fmt.Errorf("sqlstore: test key ring: %w", err)
	}
	return ring, nil
}

func tokenRow(uid, id []byte) []byte {
	return append(append(make([]byte, 0, len(uid)+len(id)), uid...), id...)
}

// unblockRow is the row binding of an unblock code: uid || id.
func unblockRow(uid, id []byte) []byte { return tokenRow(uid, id) }

// seal seals v for row and column; nil stays nil (NULL).
func (s *sealer) seal(v, row []byte, column string) ([]byte, error) {
	if v == nil {
		return nil, nil
	}
	out, err := s.ring.Seal(s.rand, v, row, column)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: sealing %s: %w", column, err)
	}
	return out, nil
}

// open opens the sealed v of row and column in place; nil stays nil.
// uid names the account in the error.
func (s *sealer) open(v *[]byte, uid, row []byte, column string) error {
	if *v == nil {
		return nil
	}
	plain, err := s.ring.Open(*v, row, column)
	if err != nil {
		table, col, _ := strings.Cut(column, ".")
		return &UnsealError{Table: table, Column: col, UID: uid, Err: err}
	}
	*v = plain
	return nil
}

// sealAccount returns the sealed ka, wrap_kb, srp_verifier and email_code
// of a.
func (s *sealer) sealAccount(uid, ka, wrapKb, verifier, emailCode []byte) (out [4][]byte, err error) {
	for i, c := range []struct {
		v   []byte
		col string
	}{{ka, colKA}, {wrapKb, colWrapKb}, {verifier, colVerifier}, {emailCode, colEmailCode}} {
		if out[i], err = s.seal(c.v, uid, c.col); err != nil {
			return out, err
		}
	}
	return out, nil
}

// openAccount opens the secret columns of a, read from a row whose kek_id
// is kek: a NULL kek_id is a row from before sealing, in clear.
func (s *sealer) openAccount(a *store.Account, kek sql.NullString) error {
	if !kek.Valid {
		return nil
	}
	for _, c := range []struct {
		v   *[]byte
		col string
	}{{&a.KA, colKA}, {&a.WrapKb, colWrapKb}, {&a.SRPVerifier, colVerifier}, {&a.EmailCode, colEmailCode}} {
		if err := s.open(c.v, a.UID, a.UID, c.col); err != nil {
			return err
		}
	}
	return nil
}

// sealToken returns the sealed auth_key, bundle_key, seed and code of t.
func (s *sealer) sealToken(t *store.Token) (out [4][]byte, err error) {
	row := tokenRow(t.UID, t.ID)
	var code []byte
	if t.Code != "" {
		code = []byte(t.Code)
	}
	for i, c := range []struct {
		v   []byte
		col string
	}{{t.AuthKey, colAuthKey}, {t.BundleKey, colBundleKey}, {t.Seed, colSeed}, {code, colCode}} {
		if out[i], err = s.seal(c.v, row, c.col); err != nil {
			return out, err
		}
	}
	return out, nil
}

// openToken opens the secret columns of t and its code, read from a row
// whose kek_id is kek.
func (s *sealer) openToken(t *store.Token, code []byte, kek sql.NullString) error {
	if kek.Valid {
		row := tokenRow(t.UID, t.ID)
		for _, c := range []struct {
			v   *[]byte
			col string
		}{{&t.AuthKey, colAuthKey}, {&t.BundleKey, colBundleKey}, {&t.Seed, colSeed}, {&code, colCode}} {
			if err := s.open(c.v, t.UID, row, c.col); err != nil {
				return err
			}
		}
	}
	t.Code = string(code)
	return nil
}

// sealRecoveryKey returns the sealed key_id and data of k.
func (s *sealer) sealRecoveryKey(k *store.RecoveryKey) (id, data []byte, err error) {
	if id, err = s.seal(k.ID, k.UID, colRecoveryKeyID); err != nil {
		return nil, nil, err
	}
	if data, err = s.seal(k.Data, k.UID, colRecoveryKeyData); err != nil {
		return nil, nil, err
	}
	return id, data, nil
}

// openRecoveryKey opens the secret columns of k, read from a row whose
// kek_id is kek.
func (s *sealer) openRecoveryKey(k *store.RecoveryKey, kek sql.NullString) error {
	if !kek.Valid {
		return nil
	}
	if err := s.open(&k.ID, k.UID, k.UID, colRecoveryKeyID); err != nil {
		return err
	}
	return s.open(&k.Data, k.UID, k.UID, colRecoveryKeyData)
}

// KEKCount is how many rows of a table have their secrets sealed under one
// key-encryption key.
type KEKCount struct {
	Table string // "accounts", "tokens", "unblock_codes" or "recovery_keys"
	// KEKID is the key's id (sealing.KeyID), "" for rows from before
	// sealing, whose secrets are in clear.
	KEKID string
	Rows  int64
}

// SealStatus counts the rows of each table with secret columns by the key
// that sealed them (KEKID "" for rows in clear), ordered by table, then
// key id. A rotation is over when every row is under the current key.
func (s *Store) SealStatus(ctx context.Context) ([]KEKCount, error) {
	var out []KEKCount
	for _, t := range resealTables {
		table := t.table
		rows, err := s.db.QueryContext(ctx, "SELECT COALESCE(kek_id, ''), COUNT(*) FROM "+table+" GROUP BY kek_id ORDER BY 1")
		if err != nil {
			return nil, s.fail(ctx, "seal status", err)
		}
		counts, err := collect(rows, func(r scanner) (*KEKCount, error) {
			c := KEKCount{Table: table}
			return &c, r.Scan(&c.KEKID, &c.Rows)
		})
		if err != nil {
			return nil, s.fail(ctx, "seal status", err)
		}
		out = append(out, counts...)
	}
	return out, nil
}

// SealStatusDSN is SealStatus of the database named by dsn (as for Open),
// without a key ring: it opens nothing.
func SealStatusDSN(ctx context.Context, dsn string) ([]KEKCount, error) {
	s, err := connect(ctx, dsn, nil)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	if err := s.checkSchema(ctx, false); err != nil {
		return nil, err
	}
	return s.SealStatus(ctx)
}

// KEKID returns the id of the key that seals the Store's writes.
func (s *Store) KEKID() string { return s.seal.id }

// ResealOptions control Reseal.
type ResealOptions struct {
	// Batch is the number of rows re-sealed per transaction (default 500).
	Batch int
	// Progress, when set, is called after every batch that read rows
	// (Left is not set yet: Reseal's result has it).
	Progress func(ResealProgress)
	// Pause is a rest between batches, leaving the database to the
	// server's own writes (SQLite has one writer at a time).
	Pause time.Duration
}

// ResealProgress is the state of Reseal in one table.
type ResealProgress struct {
	Table string
	// Todo is how many rows needed re-sealing when the table's pass began.
	Todo int64
	// Resealed counts the rows re-sealed so far: clear rows sealed and rows
	// of other keys sealed again under the current key.
	Resealed int64
	// Changed counts the rows skipped because they changed between their
	// read and their update (the server rewrote them under the current key,
	// or deleted them); a later sweep of the pass takes those still to do.
	Changed int64
	// Failed counts the rows whose secrets do not open (see UnsealError);
	// they are left as they are.
	Failed int64
	// Left is how many rows of the table are still not under the current
	// key, counted at the end of the table's pass (in Reseal's result).
	Left int64
}

// maxSweeps bounds the sweeps of one table in a Reseal: a sweep after the
// first only takes the rows that changed under the one before.
const maxSweeps = 5

// Reseal seals every row of accounts, tokens, unblock_codes and
// recovery_keys whose secrets are not under the ring's current key: rows in
// clear from before sealing are sealed, rows of retired keys are opened and
// sealed again. It works in
// transactions of opts.Batch rows in primary-key order, so the server keeps
// serving meanwhile (with a ring that opens both keys, every row stays
// readable throughout), and it can be stopped at any time and run again: the
// rows' kek_id records what is done. A row the server rewrites meanwhile is
// left to the server (its write seals under the current key). It returns
// the progress of each table and, if rows failed to open, an error naming
// the first of them; the other rows are resealed all the same.
func (s *Store) Reseal(ctx context.Context, opts ResealOptions) ([]ResealProgress, error) {
	if opts.Batch <= 0 {
		opts.Batch = 500
	}
	var out []ResealProgress
	var failures []error
	for _, t := range resealTables {
		p := ResealProgress{Table: t.table}
		if err := s.countLeft(ctx, t.table, &p.Todo); err != nil {
			return out, err
		}
		for sweep := 0; sweep < maxSweeps; sweep++ {
			changed := p.Changed
			after := []byte{}
			for {
				var n int
				var err error
				n, after, err = s.resealBatch(ctx, t, after, opts.Batch, &p, &failures)
				if err != nil {
					return append(out, p), err
				}
				if opts.Progress != nil && n > 0 {
					opts.Progress(p)
				}
				if n < opts.Batch {
					break
				}
				if opts.Pause > 0 {
					select {
					case <-ctx.Done():
						return append(out, p), ctx.Err()
					case <-time.After(opts.Pause):
					}
				}
			}
			if p.Changed == changed {
				break
			}
		}
		if err := s.countLeft(ctx, t.table, &p.Left); err != nil {
			return append(out, p), err
		}
		out = append(out, p)
	}
	if len(failures) > 0 {
		return out, fmt.Errorf("sqlstore: reseal: %d rows do not open and were left as they are; the first: %w", len(failures), failures[0])
	}
	return out, nil
}

// countLeft counts the rows of table not sealed under the current key.
func (s *Store) countLeft(ctx context.Context, table string, n *int64) error {
	err := s.db.QueryRowContext(ctx, s.db.Rebind("SELECT COUNT(*) FROM "+table+" WHERE kek_id IS NULL OR kek_id <> ?"), s.seal.id).Scan(n)
	if err != nil {
		return s.fail(ctx, "reseal", err)
	}
	return nil
}

// resealTable is how Reseal visits one table.
type resealTable struct {
	table string
	// selectSQL reads a batch: (current key id, after, limit).
	selectSQL string
	// updateSQL writes one row: the sealed columns, the current key id,
	// then the primary key and the compare-and-set of scan's old values.
	updateSQL string
	// reseal scans one row of selectSQL and returns its primary key, the
	// account's uid (for errors) and updateSQL's arguments.
	reseal func(s *sealer, r scanner) (pk, uid []byte, args []any, err error)
}

// resealValue returns v sealed under the current key: sealed if the row is
// in clear (kek is NULL), else opened and sealed again.
func (s *sealer) resealValue(v []byte, kek sql.NullString, uid, row []byte, column string) ([]byte, error) {
	if v == nil {
		return nil, nil
	}
	if !kek.Valid {
		return s.seal(v, row, column)
	}
	out, err := s.ring.Reseal(s.rand, v, row, column)
	if err != nil {
		if errors.Is(err, sealing.ErrTampered) || errors.Is(err, sealing.ErrUnknownKey) || errors.Is(err, sealing.ErrFormat) {
			table, col, _ := strings.Cut(column, ".")
			return nil, &UnsealError{Table: table, Column: col, UID: uid, Err: err}
		}
		return nil, err
	}
	return out, nil
}

// The compare-and-set of an update: the row still has the kek_id read and
// the value of a column every writer rewrites with a fresh nonce (a clear
// one from an older keyserver included), so a concurrent write or delete
// makes it affect nothing instead of being undone.
var accountsReseal = &resealTable{
	table: "accounts",
	selectSQL: `SELECT uid, kek_id, ka, wrap_kb, srp_verifier, email_code FROM accounts
		WHERE (kek_id IS NULL OR kek_id <> ?) AND uid > ? ORDER BY uid LIMIT ?`,
	updateSQL: `UPDATE accounts SET ka = ?, wrap_kb = ?, srp_verifier = ?, email_code = ?, kek_id = ?
		WHERE uid = ? AND kek_id IS NOT DISTINCT FROM ? AND srp_verifier = ? AND wrap_kb = ?`,
	reseal: func(s *sealer, r scanner) ([]byte, []byte, []any, error) {
		var uid, ka, wrapKb, verifier, emailCode []byte
		var kek sql.NullString
		if err := r.Scan(&uid, &kek, &ka, &wrapKb, &verifier, &emailCode); err != nil {
			return nil, nil, nil, err
		}
		args := make([]any, 0, 9)
		for _, c := range []struct {
			v   []byte
			col string
		}{{ka, colKA}, {wrapKb, colWrapKb}, {verifier, colVerifier}, {emailCode, colEmailCode}} {
			v, err := s.resealValue(c.v, kek, uid, uid, c.col)
			if err != nil {
				return uid, uid, nil, err
			}
			args = append(args, v)
		}
		return uid, uid, append(args, s.id, uid, kek, verifier, wrapKb), nil
	},
}

var tokensReseal = &resealTable{
	table: "tokens",
	selectSQL: `SELECT token_id, uid, kek_id, auth_key, bundle_key, seed, code FROM tokens
		WHERE (kek_id IS NULL OR kek_id <> ?) AND token_id > ? ORDER BY token_id LIMIT ?`,
	updateSQL: `UPDATE tokens SET auth_key = ?, bundle_key = ?, seed = ?, code = ?, kek_id = ?
		WHERE token_id = ? AND kek_id IS NOT DISTINCT FROM ? AND auth_key = ?`,
	reseal: func(s *sealer, r scanner) ([]byte, []byte, []any, error) {
		var id, uid, authKey, bundleKey, seed, code []byte
		var kek sql.NullString
		if err := r.Scan(&id, &uid, &kek, &authKey, &bundleKey, &seed, &code); err != nil {
			return nil, nil, nil, err
		}
		row := tokenRow(uid, id)
		args := make([]any, 0, 8)
		for _, c := range []struct {
			v   []byte
			col string
		}{{authKey, colAuthKey}, {bundleKey, colBundleKey}, {seed, colSeed}, {code, colCode}} {
			v, err := s.resealValue(c.v, kek, uid, row, c.col)
			if err != nil {
				return id, uid, nil, err
			}
			args = append(args, nullBytes(v))
		}
		return id, uid, append(args, s.id, id, kek, authKey), nil
	},
}

var unblockCodesReseal = &resealTable{
	table: "unblock_codes",
	selectSQL: `SELECT id, uid, kek_id, code FROM unblock_codes
		WHERE (kek_id IS NULL OR kek_id <> ?) AND id > ? ORDER BY id LIMIT ?`,
	// An unblock code is never updated, only deleted: the kek_id read is
	// compare-and-set enough (and a clear code from before sealing is TEXT
	// on SQLite, which equals no BLOB).
	updateSQL: `UPDATE unblock_codes SET code = ?, kek_id = ? WHERE id = ? AND kek_id IS NOT DISTINCT FROM ?`,
	reseal: func(s *sealer, r scanner) ([]byte, []byte, []any, error) {
		var id, uid, code []byte
		var kek sql.NullString
		if err := r.Scan(&id, &uid, &kek, &code); err != nil {
			return nil, nil, nil, err
		}
		v, err := s.resealValue(code, kek, uid, unblockRow(uid, id), colUnblockCode)
		if err != nil {
			return id, uid, nil, err
		}
		return id, uid, []any{v, s.id, id, kek}, nil
	},
}

var recoveryKeysReseal = &resealTable{
	table: "recovery_keys",
	selectSQL: `SELECT uid, kek_id, key_id, data FROM recovery_keys
		WHERE (kek_id IS NULL OR kek_id <> ?) AND uid > ? ORDER BY uid LIMIT ?`,
	// PutRecoveryKey rewrites data with a fresh nonce.
	updateSQL: `UPDATE recovery_keys SET key_id = ?, data = ?, kek_id = ?
		WHERE uid = ? AND kek_id IS NOT DISTINCT FROM ? AND data = ?`,
	reseal: func(s *sealer, r scanner) ([]byte, []byte, []any, error) {
		var uid, id, data []byte
		var kek sql.NullString
		if err := r.Scan(&uid, &kek, &id, &data); err != nil {
			return nil, nil, nil, err
		}
		sealedID, err := s.resealValue(id, kek, uid, uid, colRecoveryKeyID)
		if err != nil {
			return uid, uid, nil, err
		}
		sealedData, err := s.resealValue(data, kek, uid, uid, colRecoveryKeyData)
		if err != nil {
			return uid, uid, nil, err
		}
		return uid, uid, []any{sealedID, sealedData, s.id, uid, kek, data}, nil
	},
}

// resealTables are the tables with secret columns, in the order Reseal and
// SealStatus visit them.
var resealTables = []*resealTable{accountsReseal, tokensReseal, unblockCodesReseal, recoveryKeysReseal}

// resealBatch re-seals up to limit rows of t after the primary key after,
// in one durable transaction. It returns the number of rows read and the
// last primary key.
func (s *Store) resealBatch(ctx context.Context, t *resealTable, after []byte, limit int, p *ResealProgress, failures *[]error) (int, []byte, error) {
	var (
		n                         int
		last                      []byte
		resealed, changed, failed int64
		errs                      []error
	)
	err := s.WithTx(ctx, func(sq store.Queries) error {
		q := sq.(*queries)
		n, last, resealed, changed, failed, errs = 0, after, 0, 0, 0, nil
		rows, err := q.rows(ctx, t.selectSQL, s.seal.id, after, limit)
		if err != nil {
			return q.fail(ctx, "reseal "+t.table, err)
		}
		var updates [][]any
		for rows.Next() {
			n++
			pk, _, args, err := t.reseal(s.seal, rows)
			if pk != nil {
				last = pk
			}
			if _, ok := errors.AsType[*UnsealError](err); ok {
				failed++
				errs = append(errs, err)
			} else if err != nil {
				rows.Close()
				return q.fail(ctx, "reseal "+t.table, err)
			} else {
				updates = append(updates, args)
			}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return q.fail(ctx, "reseal "+t.table, err)
		}
		// The statements run once the rows are closed: a PostgreSQL
		// connection runs one at a time.
		for _, args := range updates {
			m, err := affected(q.exec(ctx, t.updateSQL, args...))
			if err != nil {
				return q.fail(ctx, "reseal "+t.table, err)
			}
			if m == 0 {
				changed++
			} else {
				resealed++
			}
		}
		return nil
	})
	if err != nil {
		return 0, after, err
	}
	p.Resealed += resealed
	p.Changed += changed
	p.Failed += failed
	*failures = append(*failures, errs...)
	return n, last, nil
}
