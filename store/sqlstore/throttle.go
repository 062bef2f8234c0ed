package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/keyserver/keyserver/store"
)

// errThrottled rolls back a Throttle transaction that must count nothing.
var errThrottled = errors.New("throttled")

// Throttle implements store.Store. Writing the name's throttle_keys row first
// serializes concurrent counts of one name: PostgreSQL holds the row lock of
// the upsert until commit, and SQLite's BEGIN IMMEDIATE serializes all
// writers anyway. A refused request is rolled back, so it is not counted.
// The transaction is of ctx's class (store.Ephemeral).
func (s *Store) Throttle(ctx context.Context, name string, now time.Time, window time.Duration, limit int) (time.Duration, error) {
	var retryAfter time.Duration
	err := s.WithTx(ctx, func(tq store.Queries) error {
		q := tq.(*queries)
		expires := ms(now.Add(window))
		if _, err := q.exec(ctx, `INSERT INTO throttle_keys (name, expires_at) VALUES (?, ?)
			ON CONFLICT (name) DO UPDATE SET expires_at = excluded.expires_at`, name, expires); err != nil {
			return q.fail(ctx, "throttle", err)
		}
		// The limit-th most recent request in the window decides: once it
		// leaves the window there is room for one more.
		var oldest int64
		err := q.row(ctx, `SELECT hit_at FROM throttle_hits WHERE name = ? AND hit_at > ?
			ORDER BY hit_at DESC LIMIT 1 OFFSET ?`, name, ms(now.Add(-window)), limit-1).Scan(&oldest)
		switch {
		case err == nil:
			retryAfter = fromMS(oldest).Add(window).Sub(now)
			return errThrottled
		case !errors.Is(err, sql.ErrNoRows):
			return q.fail(ctx, "throttle", err)
		}
		if _, err := q.exec(ctx, "INSERT INTO throttle_hits (name, hit_at, expires_at) VALUES (?, ?, ?)",
			name, ms(now), expires); err != nil {
			return q.fail(ctx, "throttle", err)
		}
		return nil
	})
	if errors.Is(err, errThrottled) {
		return max(retryAfter, time.Millisecond), nil
	}
	return 0, err
}
