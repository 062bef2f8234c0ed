package sqlstore

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/keyserver/keyserver/protocol"
	"github.com/keyserver/keyserver/store"
)

// auth_key, bundle_key, seed and code are sealed (sealing.go); kek_id is
// the key that sealed them, NULL for a row in clear from before sealing.
const tokenCols = `token_id, type, uid, auth_key, bundle_key, created_at, expires_at,
	srp_b, session_id, seed, code, tries, kek_id`

var insertToken = insertSQL("tokens", tokenCols)

// token reads one row of tokenCols with query and opens its secrets.
func (q *queries) token(ctx context.Context, op, query string, args ...any) (*store.Token, error) {
	var r scannedToken
	if err := q.row(ctx, query, args...).Scan(r.dest()...); err != nil {
		return nil, q.fail(ctx, op, err)
	}
	return q.openTokenRow(op, &r)
}

// scannedToken is a row of tokenCols as scanned, its secrets still sealed.
type scannedToken struct {
	t       store.Token
	typ     string
	created int64
	expires sql.NullInt64
	code    []byte // sealed, or a clear code (UTF-8) of a row from before sealing
	kek     sql.NullString
}

// dest is the Scan destinations of tokenCols, in order.
func (r *scannedToken) dest() []any {
	t := &r.t
	return []any{&t.ID, &r.typ, &t.UID, &t.AuthKey, &t.BundleKey, &r.created, &r.expires,
		&t.SRPB, &t.SessionID, &t.Seed, &r.code, &t.Tries, &r.kek}
}

// openTokenRow converts a scanned row and opens its secrets.
func (q *queries) openTokenRow(op string, r *scannedToken) (*store.Token, error) {
	t := r.t
	t.Type, t.CreatedAt, t.ExpiresAt = protocol.TokenType(r.typ), fromMS(r.created), fromNullMS(r.expires)
	if err := q.seal.openToken(&t, r.code, r.kek); err != nil {
		return nil, fmt.Errorf("sqlstore: %s: %w", op, err)
	}
	return &t, nil
}

func (q *queries) CreateToken(ctx context.Context, t *store.Token) error {
	sealed, err := q.seal.sealToken(t)
	if err != nil {
		return fmt.Errorf("sqlstore: create token: %w", err)
	}
	_, err = q.exec(ctx, insertToken, t.ID, string(t.Type), t.UID, sealed[0], sealed[1], ms(t.CreatedAt), nullMS(t.ExpiresAt),
		nullBytes(t.SRPB), nullBytes(t.SessionID), nullBytes(sealed[2]), nullBytes(sealed[3]), t.Tries, q.seal.id)
	if err != nil {
		return q.fail(ctx, "create token", err)
	}
	return nil
}

func (q *queries) Token(ctx context.Context, typ protocol.TokenType, id []byte) (*store.Token, error) {
	return q.token(ctx, "token", "SELECT "+tokenCols+" FROM tokens WHERE type = ? AND token_id = ?", string(typ), id)
}

// ConsumeToken deletes and returns in one statement: of concurrent consumers
// only the one whose DELETE removed the row gets it back. A token whose
// secrets do not open is deleted all the same (rolled back inside WithTx
// when the caller returns the error).
func (q *queries) ConsumeToken(ctx context.Context, typ protocol.TokenType, id []byte) (*store.Token, error) {
	return q.token(ctx, "consume token", "DELETE FROM tokens WHERE type = ? AND token_id = ? RETURNING "+tokenCols, string(typ), id)
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
