package sqlstore

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/keyserver/keyserver/store"
)

// ka, wrap_kb, srp_verifier and email_code are sealed (sealing.go); kek_id
// is the key that sealed them, NULL for a row in clear from before sealing.
const accountCols = `uid, email, normalized_email, srp_type, srp_verifier, srp_salt,
	stretch_type, pbkdf2_rounds_1, scrypt_n, scrypt_r, scrypt_p, pbkdf2_rounds_2, stretch_salt,
	ka, wrap_kb, verified, email_code, disabled, created_at, generation, kek_id`

var insertAccount = insertSQL("accounts", accountCols)

// scanAccount scans a row of accountCols, its secrets still sealed, and
// the row's kek_id.
func scanAccount(r scanner) (*store.Account, sql.NullString, error) {
	var a store.Account
	st := &a.Stretching
	var created, generation int64
	var kek sql.NullString
	err := r.Scan(&a.UID, &a.Email, &a.NormalizedEmail, &a.SRPType, &a.SRPVerifier, &a.SRPSalt,
		&st.Type, &st.PBKDF2Rounds1, &st.ScryptN, &st.ScryptR, &st.ScryptP, &st.PBKDF2Rounds2, &st.Salt,
		&a.KA, &a.WrapKb, &a.Verified, &a.EmailCode, &a.Disabled, &created, &generation, &kek)
	if err != nil {
		return nil, kek, err
	}
	a.CreatedAt, a.Generation = fromMS(created), fromMS(generation)
	return &a, kek, nil
}

func (q *queries) CreateAccount(ctx context.Context, a *store.Account) error {
	sealed, err := q.seal.sealAccount(a.UID, a.KA, a.WrapKb, a.SRPVerifier, a.EmailCode)
	if err != nil {
		return fmt.Errorf("sqlstore: create account: %w", err)
	}
	st := &a.Stretching
	_, err = q.exec(ctx, insertAccount, a.UID, a.Email, a.NormalizedEmail, a.SRPType, sealed[2], a.SRPSalt,
		st.Type, st.PBKDF2Rounds1, st.ScryptN, st.ScryptR, st.ScryptP, st.PBKDF2Rounds2, st.Salt,
		sealed[0], sealed[1], a.Verified, sealed[3], a.Disabled, ms(a.CreatedAt), ms(a.Generation), q.seal.id)
	if err != nil {
		return q.fail(ctx, "create account", err)
	}
	return nil
}

func (q *queries) account(ctx context.Context, op, where string, arg any) (*store.Account, error) {
	a, kek, err := scanAccount(q.row(ctx, "SELECT "+accountCols+" FROM accounts WHERE "+where, arg))
	if err != nil {
		return nil, q.fail(ctx, op, err)
	}
	if err := q.seal.openAccount(a, kek); err != nil {
		return nil, fmt.Errorf("sqlstore: %s: %w", op, err)
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

// SetCredentials seals the new verifier and wrapKb and seals kA and the
// email code again with them, under the current key, so that every secret
// of the row is under the key its kek_id names. kA and the email code never
// change after the account's creation (a concurrent Reseal only seals them
// again), so reading them first needs no lock.
func (q *queries) SetCredentials(ctx context.Context, uid []byte, c *store.Credentials) error {
	const op = "set credentials"
	a := store.Account{UID: uid}
	var kek sql.NullString
	err := q.row(ctx, "SELECT ka, email_code, kek_id FROM accounts WHERE uid = ?", uid).Scan(&a.KA, &a.EmailCode, &kek)
	if err != nil {
		return q.fail(ctx, op, err)
	}
	if err := q.seal.openAccount(&a, kek); err != nil {
		return fmt.Errorf("sqlstore: %s: %w", op, err)
	}
	sealed, err := q.seal.sealAccount(uid, a.KA, c.WrapKb, c.SRPVerifier, a.EmailCode)
	clear(a.KA)
	if err != nil {
		return fmt.Errorf("sqlstore: %s: %w", op, err)
	}
	st := &c.Stretching
	return q.mustAffect(ctx, op, `UPDATE accounts SET srp_type = ?, srp_verifier = ?, srp_salt = ?,
		stretch_type = ?, pbkdf2_rounds_1 = ?, scrypt_n = ?, scrypt_r = ?, scrypt_p = ?, pbkdf2_rounds_2 = ?, stretch_salt = ?,
		wrap_kb = ?, generation = ?, ka = ?, email_code = ?, kek_id = ? WHERE uid = ?`,
		c.SRPType, sealed[2], c.SRPSalt,
		st.Type, st.PBKDF2Rounds1, st.ScryptN, st.ScryptR, st.ScryptP, st.PBKDF2Rounds2, st.Salt,
		sealed[1], ms(c.Generation), sealed[0], sealed[3], q.seal.id, uid)
}

func (q *queries) DeleteAccount(ctx context.Context, uid []byte) error {
	return q.mustAffect(ctx, "delete account", "DELETE FROM accounts WHERE uid = ?", uid)
}
