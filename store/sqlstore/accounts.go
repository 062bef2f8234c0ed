package sqlstore

import (
	"context"

	"github.com/keyserver/keyserver/store"
)

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
		return q.fail(ctx, "create account", err)
	}
	return nil
}

func (q *queries) account(ctx context.Context, op, where string, arg any) (*store.Account, error) {
	a, err := scanAccount(q.row(ctx, "SELECT "+accountCols+" FROM accounts WHERE "+where, arg))
	if err != nil {
		return nil, q.fail(ctx, op, err)
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
