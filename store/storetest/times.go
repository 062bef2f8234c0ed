package storetest

import (
	"testing"
	"time"

	"github.com/keyserver/keyserver/protocol"
	"github.com/keyserver/keyserver/store"
)

func testTimeRoundTrip(t *testing.T, s store.Store) {
	ctx := t.Context()
	msTime := time.Date(2023, 1, 2, 3, 4, 5, 678_000_000, time.UTC)
	nsTime := time.Date(2023, 1, 2, 3, 4, 5, 678_901_234, time.UTC)
	zoned := time.Date(2023, 1, 2, 8, 4, 5, 678_000_000, time.FixedZone("UTC+5", 5*3600))

	a := newAccount("alice@example.org")
	a.CreatedAt, a.Generation = msTime, nsTime
	if err := s.CreateAccount(ctx, a); err != nil {
		t.Fatalf("CreateAccount: %v", err)
	}
	got, err := s.AccountByUID(ctx, a.UID)
	if err != nil {
		t.Fatalf("AccountByUID: %v", err)
	}
	if !got.CreatedAt.Equal(msTime) || got.CreatedAt.Location() != time.UTC {
		t.Errorf("ms-precision time came back as %v, want %v", got.CreatedAt, msTime)
	}
	if want := nsTime.Truncate(time.Millisecond); !got.Generation.Equal(want) || got.Generation.Location() != time.UTC {
		t.Errorf("ns-precision time came back as %v, want %v (truncated to ms)", got.Generation, want)
	}

	withExpiry := newToken(protocol.SRPToken, a.UID)
	withExpiry.ExpiresAt = zoned
	noExpiry := newToken(protocol.AuthToken, a.UID)
	for _, tok := range []*store.Token{withExpiry, noExpiry} {
		mustToken(t, s, tok)
		got, err := s.Token(ctx, tok.Type, tok.ID)
		if err != nil {
			t.Fatalf("Token: %v", err)
		}
		if !got.ExpiresAt.Equal(tok.ExpiresAt) || got.ExpiresAt.IsZero() != tok.ExpiresAt.IsZero() || got.ExpiresAt.Location() != time.UTC {
			t.Errorf("ExpiresAt %v came back as %v, want an equal time in UTC", tok.ExpiresAt, got.ExpiresAt)
		}
	}
}
