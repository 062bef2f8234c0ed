package sqlstore

import (
	"context"
	"database/sql"

	"github.com/keyserver/keyserver/protocol"
	"github.com/keyserver/keyserver/store"
)

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
		return q.fail(ctx, "create token", err)
	}
	return nil
}

func (q *queries) Token(ctx context.Context, typ protocol.TokenType, id []byte) (*store.Token, error) {
	t, err := scanToken(q.row(ctx, "SELECT "+tokenCols+" FROM tokens WHERE type = ? AND token_id = ?", string(typ), id))
	if err != nil {
		return nil, q.fail(ctx, "token", err)
	}
	return t, nil
}

// ConsumeToken deletes and returns in one statement: of concurrent consumers
// only the one whose DELETE removed the row gets it back.
func (q *queries) ConsumeToken(ctx context.Context, typ protocol.TokenType, id []byte) (*store.Token, error) {
	t, err := scanToken(q.row(ctx, "DELETE FROM tokens WHERE type = ? AND token_id = ? RETURNING "+tokenCols, string(typ), id))
	if err != nil {
		return nil, q.fail(ctx, "consume token", err)
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
		return q.fail(ctx, "delete account tokens", err)
	}
	return nil
}

func (q *queries) CountTokens(ctx context.Context, uid []byte, typ protocol.TokenType) (int, error) {
	var n int
	if err := q.row(ctx, "SELECT COUNT(*) FROM tokens WHERE uid = ? AND type = ?", uid, string(typ)).Scan(&n); err != nil {
		return 0, q.fail(ctx, "count tokens", err)
	}
	return n, nil
}

func (q *queries) DecrementTries(ctx context.Context, id []byte) (int, error) {
	var n int
	err := q.row(ctx, "UPDATE tokens SET tries = tries - 1 WHERE type = ? AND token_id = ? AND tries > 0 RETURNING tries",
		string(protocol.ForgotPasswordToken), id).Scan(&n)
	if err != nil {
		return 0, q.fail(ctx, "decrement tries", err)
	}
	return n, nil
}
