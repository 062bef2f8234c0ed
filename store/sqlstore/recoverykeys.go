package sqlstore

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/keyserver/keyserver/store"
)

// Recovery keys (docs/recovery-key.md, migration 0005): one row per account
// at most. key_id and data are sealed (sealing.go), bound to the uid; kek_id
// is the key that sealed them, NULL for a row in clear.

// putRecoveryKeyTries bounds the rounds of PutRecoveryKey. A round writes
// nothing only when a concurrent DeleteRecoveryKey removed the row between
// its insert and its update: a second round is already rare.
const putRecoveryKeyTries = 8

// PutRecoveryKey inserts the row or, when the account has one, updates it;
// each statement is atomic on its own, so concurrent Puts of one account
// never fail with a unique violation: the one whose insert lost updates,
// and reports replaced. The insert selects the account's row, so for an
// unknown account it writes nothing and fails nothing (a PostgreSQL
// transaction stays usable); the foreign key still refuses an account
// deleted meanwhile (store.ErrNotFound too).
func (q *queries) PutRecoveryKey(ctx context.Context, k *store.RecoveryKey) (bool, error) {
	const op = "put recovery key"
	id, data, err := q.seal.sealRecoveryKey(k)
	if err != nil {
		return false, fmt.Errorf("sqlstore: %s: %w", op, err)
	}
	created := ms(k.CreatedAt)
	for range putRecoveryKeyTries {
		n, err := affected(q.exec(ctx, `INSERT INTO recovery_keys (uid, key_id, data, created_at, kek_id)
			SELECT uid, ?, ?, ?, ? FROM accounts WHERE uid = ? ON CONFLICT (uid) DO NOTHING`,
			id, data, created, q.seal.id, k.UID))
		if err != nil {
			return false, q.fail(ctx, op, err)
		}
		if n > 0 {
			return false, nil
		}
		n, err = affected(q.exec(ctx, "UPDATE recovery_keys SET key_id = ?, data = ?, created_at = ?, kek_id = ? WHERE uid = ?",
			id, data, created, q.seal.id, k.UID))
		if err != nil {
			return false, q.fail(ctx, op, err)
		}
		if n > 0 {
			return true, nil
		}
		// Neither wrote: no such account, or its recovery key was deleted
		// between the two statements.
		var one int
		if err := q.row(ctx, "SELECT 1 FROM accounts WHERE uid = ?", k.UID).Scan(&one); err != nil {
			return false, q.fail(ctx, op, err) // sql.ErrNoRows: store.ErrNotFound
		}
	}
	return false, fmt.Errorf("sqlstore: %s: %w: the row changed under every one of %d tries", op, store.ErrUnavailable, putRecoveryKeyTries)
}

func (q *queries) RecoveryKey(ctx context.Context, uid []byte) (*store.RecoveryKey, error) {
	const op = "recovery key"
	var k store.RecoveryKey
	var created int64
	var kek sql.NullString
	err := q.row(ctx, "SELECT uid, key_id, data, created_at, kek_id FROM recovery_keys WHERE uid = ?", uid).
		Scan(&k.UID, &k.ID, &k.Data, &created, &kek)
	if err != nil {
		return nil, q.fail(ctx, op, err)
	}
	k.CreatedAt = fromMS(created)
	if err := q.seal.openRecoveryKey(&k, kek); err != nil {
		return nil, fmt.Errorf("sqlstore: %s: %w", op, err)
	}
	return &k, nil
}

func (q *queries) DeleteRecoveryKey(ctx context.Context, uid []byte) error {
	return q.mustAffect(ctx, "delete recovery key", "DELETE FROM recovery_keys WHERE uid = ?", uid)
}
