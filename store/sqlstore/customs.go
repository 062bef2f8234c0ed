package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keyserver/keyserver/migrations"
	"github.com/keyserver/keyserver/protocol"
	"github.com/keyserver/keyserver/store"
)

// The data of abuse protection (store.CustomsQueries; spec 14, package
// customs): migrations 0003_customs.sql.

// nthCountSQL is the scalar subquery of one probe: the At of the N-th most
// recent count, NULL when there are fewer. The index (counter, fold, ip,
// at) serves it backwards.
const nthCountSQL = `(SELECT at FROM customs_counts WHERE counter = ? AND fold = ? AND ip = ? AND at > ?
	ORDER BY at DESC LIMIT 1 OFFSET ?)`

// NthCounts answers every probe in one statement.
func (q *queries) NthCounts(ctx context.Context, probes []store.CountProbe) ([]time.Time, error) {
	out := make([]time.Time, len(probes))
	if len(probes) == 0 {
		return out, nil
	}
	var b strings.Builder
	args := make([]any, 0, 5*len(probes))
	for i, p := range probes {
		if i > 0 {
			b.WriteString(" UNION ALL ")
		}
		b.WriteString("SELECT " + strconv.Itoa(i) + " AS i, " + nthCountSQL)
		args = append(args, p.Counter, p.Key.Fold, p.Key.IP, ms(p.Since), max(p.N, 1)-1)
	}
	rows, err := q.rows(ctx, b.String(), args...)
	if err != nil {
		return nil, q.fail(ctx, "nth counts", err)
	}
	defer rows.Close()
	for rows.Next() {
		var i int
		var at sql.NullInt64
		if err := rows.Scan(&i, &at); err != nil {
			return nil, q.fail(ctx, "nth counts", err)
		}
		if i >= 0 && i < len(out) {
			out[i] = fromNullMS(at)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, q.fail(ctx, "nth counts", err)
	}
	return out, nil
}

func (q *queries) AddCounts(ctx context.Context, counts ...store.Count) error {
	for _, c := range counts {
		_, err := q.exec(ctx, "INSERT INTO customs_counts (counter, fold, ip, at, expires_at) VALUES (?, ?, ?, ?, ?)",
			c.Counter, c.Key.Fold, c.Key.IP, ms(c.At), ms(c.ExpiresAt))
		if err != nil {
			return q.fail(ctx, "add counts", err)
		}
	}
	return nil
}

// countWhere is the WHERE clause of f over the columns counterCol, fold and
// ip (with since when withSince).
func countWhere(f store.CountFilter, counterCol string, withSince bool) (string, []any) {
	conds := []string{"1 = 1"}
	var args []any
	if len(f.Counters) > 0 {
		conds = append(conds, counterCol+" IN ("+marks(len(f.Counters))+")")
		for _, c := range f.Counters {
			args = append(args, c)
		}
	}
	if f.Fold != "" {
		conds = append(conds, "fold = ?")
		args = append(args, f.Fold)
	}
	if f.IP != "" {
		conds = append(conds, "ip = ?")
		args = append(args, f.IP)
	}
	if withSince && !f.Since.IsZero() {
		conds = append(conds, "at > ?")
		args = append(args, ms(f.Since))
	}
	return strings.Join(conds, " AND "), args
}

func (q *queries) Counts(ctx context.Context, f store.CountFilter) ([]store.Count, error) {
	where, args := countWhere(f, "counter", true)
	rows, err := q.rows(ctx, "SELECT counter, fold, ip, at, expires_at FROM customs_counts WHERE "+where+
		" ORDER BY counter, fold, ip, at DESC", args...)
	if err != nil {
		return nil, q.fail(ctx, "counts", err)
	}
	cs, err := collect(rows, func(r scanner) (*store.Count, error) {
		var c store.Count
		var at, exp int64
		if err := r.Scan(&c.Counter, &c.Key.Fold, &c.Key.IP, &at, &exp); err != nil {
			return nil, err
		}
		c.At, c.ExpiresAt = fromMS(at), fromMS(exp)
		return &c, nil
	})
	if err != nil {
		return nil, q.fail(ctx, "counts", err)
	}
	return cs, nil
}

func (q *queries) DeleteCounts(ctx context.Context, f store.CountFilter) (int64, error) {
	where, args := countWhere(f, "counter", false)
	n, err := affected(q.exec(ctx, "DELETE FROM customs_counts WHERE "+where, args...))
	if err != nil {
		return 0, q.fail(ctx, "delete counts", err)
	}
	return n, nil
}

// countLockClass namespaces the advisory locks of LockCounts.
const countLockClass = 0x6b73 // "ks"

// LockCounts takes a PostgreSQL transaction-level advisory lock per key, in
// a fixed order so that two transactions never wait on each other in a
// cycle. On SQLite every write transaction already holds the database's one
// write lock from BEGIN IMMEDIATE, so there is nothing to do.
func (q *queries) LockCounts(ctx context.Context, keys ...store.CountKey) error {
	if q.tx == nil || q.d.name != migrations.Postgres {
		return nil
	}
	ids := make([]int32, 0, len(keys))
	for _, k := range keys {
		h := fnv.New32a()
		h.Write([]byte(k.Fold))
		h.Write([]byte{0})
		h.Write([]byte(k.IP))
		ids = append(ids, int32(h.Sum32()))
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	// One statement: PostgreSQL evaluates the arguments of CONCAT in order.
	calls := make([]string, len(ids))
	args := make([]any, 0, 2*len(ids))
	for i, id := range ids {
		calls[i] = "CAST(pg_advisory_xact_lock(?, ?) AS TEXT)"
		args = append(args, countLockClass, id)
	}
	var ok string
	if err := q.row(ctx, "SELECT CONCAT("+strings.Join(calls, ", ")+")", args...).Scan(&ok); err != nil {
		return q.fail(ctx, "lock counts", err)
	}
	return nil
}

func (q *queries) MarkBlocked(ctx context.Context, rule string, key store.CountKey, now, until time.Time) (bool, error) {
	n, err := affected(q.exec(ctx, `INSERT INTO customs_blocks (rule, fold, ip, until) VALUES (?, ?, ?, ?)
		ON CONFLICT (rule, fold, ip) DO UPDATE SET until = excluded.until WHERE customs_blocks.until <= ?`,
		rule, key.Fold, key.IP, ms(until), ms(now)))
	if err != nil {
		return false, q.fail(ctx, "mark blocked", err)
	}
	return n > 0, nil
}

func (q *queries) DeleteBlocks(ctx context.Context, f store.CountFilter) error {
	where, args := countWhere(f, "rule", false)
	if _, err := q.exec(ctx, "DELETE FROM customs_blocks WHERE "+where, args...); err != nil {
		return q.fail(ctx, "delete blocks", err)
	}
	return nil
}

func (q *queries) KnownIP(ctx context.Context, uid []byte, ip string, now time.Time) (bool, error) {
	var n int
	err := q.row(ctx, "SELECT COUNT(*) FROM known_ips WHERE uid = ? AND ip = ? AND expires_at > ?", uid, ip, ms(now)).Scan(&n)
	if err != nil {
		return false, q.fail(ctx, "known ip", err)
	}
	return n > 0, nil
}

func (q *queries) AddKnownIP(ctx context.Context, uid []byte, ip string, expires, renewBefore time.Time) error {
	_, err := q.exec(ctx, `INSERT INTO known_ips (uid, ip, expires_at) VALUES (?, ?, ?)
		ON CONFLICT (uid, ip) DO UPDATE SET expires_at = excluded.expires_at WHERE known_ips.expires_at < ?`,
		uid, ip, ms(expires), ms(renewBefore))
	if err != nil {
		return q.fail(ctx, "add known ip", err)
	}
	return nil
}

func (q *queries) SetTokenOrigin(ctx context.Context, o *store.TokenOrigin) error {
	_, err := q.exec(ctx, `INSERT INTO token_origins (token_id, ip, unblocked) VALUES (?, ?, ?)
		ON CONFLICT (token_id) DO UPDATE SET ip = excluded.ip, unblocked = excluded.unblocked`, o.TokenID, o.IP, o.Unblocked)
	if err != nil {
		return q.fail(ctx, "set token origin", err)
	}
	return nil
}

func (q *queries) TokenOrigin(ctx context.Context, id []byte) (*store.TokenOrigin, error) {
	o := store.TokenOrigin{TokenID: id}
	var exp sql.NullInt64
	err := q.row(ctx, `SELECT o.ip, o.unblocked, t.expires_at FROM token_origins o JOIN tokens t ON t.token_id = o.token_id
		WHERE o.token_id = ?`, id).Scan(&o.IP, &o.Unblocked, &exp)
	if err != nil {
		return nil, q.fail(ctx, "token origin", err)
	}
	o.ExpiresAt = fromNullMS(exp)
	return &o, nil
}

func (q *queries) TokenOrigins(ctx context.Context, uid []byte, typ protocol.TokenType) ([]store.TokenOrigin, error) {
	rows, err := q.rows(ctx, `SELECT t.token_id, COALESCE(o.ip, ''), CASE WHEN o.unblocked THEN 1 ELSE 0 END, t.expires_at
		FROM tokens t LEFT JOIN token_origins o ON o.token_id = t.token_id
		WHERE t.uid = ? AND t.type = ? ORDER BY t.created_at, t.token_id`, uid, string(typ))
	if err != nil {
		return nil, q.fail(ctx, "token origins", err)
	}
	origins, err := collect(rows, func(r scanner) (*store.TokenOrigin, error) {
		var o store.TokenOrigin
		var unblocked int
		var exp sql.NullInt64
		if err := r.Scan(&o.TokenID, &o.IP, &unblocked, &exp); err != nil {
			return nil, err
		}
		o.Unblocked, o.ExpiresAt = unblocked == 1, fromNullMS(exp)
		return &o, nil
	})
	if err != nil {
		return nil, q.fail(ctx, "token origins", err)
	}
	return origins, nil
}

func (q *queries) SetTokensExpiry(ctx context.Context, uid []byte, typ protocol.TokenType, expires time.Time) error {
	_, err := q.exec(ctx, "UPDATE tokens SET expires_at = ? WHERE uid = ? AND type = ? AND expires_at IS NULL",
		ms(expires), uid, string(typ))
	if err != nil {
		return q.fail(ctx, "set tokens expiry", err)
	}
	return nil
}

// CreateUnblockCode seals the code (sealing.go).
func (q *queries) CreateUnblockCode(ctx context.Context, c *store.UnblockCode) error {
	code, err := q.seal.seal([]byte(c.Code), unblockRow(c.UID, c.ID), colUnblockCode)
	if err != nil {
		return fmt.Errorf("sqlstore: create unblock code: %w", err)
	}
	_, err = q.exec(ctx, "INSERT INTO unblock_codes (id, uid, code, created_at, expires_at, kek_id) VALUES (?, ?, ?, ?, ?, ?)",
		c.ID, c.UID, code, ms(c.CreatedAt), ms(c.ExpiresAt), q.seal.id)
	if err != nil {
		return q.fail(ctx, "create unblock code", err)
	}
	return nil
}

func (q *queries) UnblockCodes(ctx context.Context, uid []byte, now time.Time) ([]store.UnblockCode, error) {
	rows, err := q.rows(ctx, `SELECT id, uid, code, created_at, expires_at, kek_id FROM unblock_codes
		WHERE uid = ? AND expires_at > ? ORDER BY created_at, id`, uid, ms(now))
	if err != nil {
		return nil, q.fail(ctx, "unblock codes", err)
	}
	type sealedCode struct {
		store.UnblockCode
		code []byte
		kek  sql.NullString
	}
	scs, err := collect(rows, func(r scanner) (*sealedCode, error) {
		var c sealedCode
		var created, exp int64
		if err := r.Scan(&c.ID, &c.UID, &c.code, &created, &exp, &c.kek); err != nil {
			return nil, err
		}
		c.CreatedAt, c.ExpiresAt = fromMS(created), fromMS(exp)
		return &c, nil
	})
	if err != nil {
		return nil, q.fail(ctx, "unblock codes", err)
	}
	cs := make([]store.UnblockCode, 0, len(scs))
	for _, c := range scs {
		if c.kek.Valid { // else a clear code from before sealing
			if err := q.seal.open(&c.code, c.UID, unblockRow(c.UID, c.ID), colUnblockCode); err != nil {
				return nil, fmt.Errorf("sqlstore: unblock codes: %w", err)
			}
		}
		c.Code = string(c.code)
		cs = append(cs, c.UnblockCode)
	}
	return cs, nil
}

func (q *queries) DeleteUnblockCode(ctx context.Context, id []byte) error {
	return q.mustAffect(ctx, "delete unblock code", "DELETE FROM unblock_codes WHERE id = ?", id)
}

func (q *queries) UnverifiedAccounts(ctx context.Context, createdBefore time.Time, limit int) ([][]byte, error) {
	rows, err := q.rows(ctx, `SELECT uid FROM accounts WHERE NOT verified AND NOT disabled AND created_at < ?
		ORDER BY created_at LIMIT ?`, ms(createdBefore), limit)
	if err != nil {
		return nil, q.fail(ctx, "unverified accounts", err)
	}
	defer rows.Close()
	var uids [][]byte
	for rows.Next() {
		var uid []byte
		if err := rows.Scan(&uid); err != nil {
			return nil, q.fail(ctx, "unverified accounts", err)
		}
		uids = append(uids, uid)
	}
	if err := rows.Err(); err != nil {
		return nil, q.fail(ctx, "unverified accounts", err)
	}
	return uids, nil
}

func (q *queries) DeleteUnverifiedAccount(ctx context.Context, uid []byte, createdBefore time.Time) error {
	return q.mustAffect(ctx, "delete unverified account",
		"DELETE FROM accounts WHERE uid = ? AND NOT verified AND NOT disabled AND created_at < ?", uid, ms(createdBefore))
}
