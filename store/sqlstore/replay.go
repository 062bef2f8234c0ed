package sqlstore

import (
	"context"
	"time"
)

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
