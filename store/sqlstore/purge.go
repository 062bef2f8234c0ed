package sqlstore

import (
	"context"
	"time"
)

// Purge implements store.Store.
func (s *Store) Purge(ctx context.Context, now, eventsBefore time.Time) (int64, error) {
	steps := []struct {
		query  string
		before time.Time
	}{
		{"DELETE FROM hawk_nonces WHERE expires_at < ?", now},
		{"DELETE FROM assertion_hashes WHERE expires_at < ?", now},
		{"DELETE FROM tokens WHERE expires_at < ?", now},
		{"DELETE FROM throttle_hits WHERE expires_at < ?", now},
		{"DELETE FROM throttle_keys WHERE expires_at < ?", now},
		{"DELETE FROM customs_counts WHERE expires_at < ?", now},
		{"DELETE FROM customs_blocks WHERE until < ?", now},
		{"DELETE FROM known_ips WHERE expires_at < ?", now},
		{"DELETE FROM unblock_codes WHERE expires_at < ?", now},
		{"DELETE FROM audit_events WHERE time < ?", eventsBefore},
	}
	var total int64
	for _, st := range steps {
		n, err := affected(s.exec(ctx, st.query, ms(st.before)))
		if err != nil {
			return total, s.fail(ctx, "purge", err)
		}
		total += n
	}
	return total, nil
}
