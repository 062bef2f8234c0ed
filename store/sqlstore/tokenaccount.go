package sqlstore

import (
	"context"
	"fmt"
	"strings"

	"github.com/keyserver/keyserver/protocol"
	"github.com/keyserver/keyserver/store"
)

// prefixed qualifies each of the comma-separated cols with table alias t.
func prefixed(t, cols string) string {
	parts := strings.Split(cols, ",")
	for i, c := range parts {
		parts[i] = t + "." + strings.TrimSpace(c)
	}
	return strings.Join(parts, ", ")
}

// tokenWithAccountSQL reads a token and its account in one statement (a
// token's uid always names an account: ON DELETE CASCADE).
var tokenWithAccountSQL = "SELECT " + prefixed("t", tokenCols) + ", " + prefixed("a", accountCols) +
	" FROM tokens t JOIN accounts a ON a.uid = t.uid WHERE t.type = ? AND t.token_id = ?"

// joined scans the columns before dest into head, then dest, in one Scan:
// scanAccount reads its columns after the token's.
type joined struct {
	row  scanner
	head []any
}

func (j joined) Scan(dest ...any) error {
	return j.row.Scan(append(j.head[:len(j.head):len(j.head)], dest...)...)
}

func (q *queries) TokenWithAccount(ctx context.Context, typ protocol.TokenType, id []byte) (*store.Token, *store.Account, error) {
	const op = "token with account"
	var r scannedToken
	a, kek, err := scanAccount(joined{q.row(ctx, tokenWithAccountSQL, string(typ), id), r.dest()})
	if err != nil {
		return nil, nil, q.fail(ctx, op, err)
	}
	t, err := q.openTokenRow(op, &r)
	if err != nil {
		return nil, nil, err
	}
	if err := q.seal.openAccount(a, kek); err != nil {
		return nil, nil, fmt.Errorf("sqlstore: %s: %w", op, err)
	}
	return t, a, nil
}
