package sqlstore

import (
	"context"
	"testing"
	"time"

	"github.com/keyserver/keyserver/protocol"
	"github.com/keyserver/keyserver/store"
)

// BenchmarkSignInHotPath measures the store's part of a sign-in: create a
// token, consume it, read the account by uid.
func BenchmarkSignInHotPath(b *testing.B) {
	for _, d := range dialects {
		b.Run(d.name, func(b *testing.B) {
			s := mustOpen(b, d.dsn(b), Options{Migrate: true})
			ctx := b.Context()
			a := &store.Account{UID: rnd(16), Email: "alice@example.org", NormalizedEmail: "alice@example.org",
				SRPVerifier: rnd(256), SRPSalt: rnd(32), KA: rnd(32), WrapKb: rnd(32), EmailCode: rnd(16),
				Stretching: store.Stretching{Salt: rnd(32)}, CreatedAt: time.Now(), Generation: time.Now()}
			if err := s.CreateAccount(ctx, a); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				tok := &store.Token{ID: rnd(32), Type: protocol.AuthToken, UID: a.UID, AuthKey: rnd(32), BundleKey: rnd(32), CreatedAt: time.Now()}
				if err := s.CreateToken(ctx, tok); err != nil {
					b.Fatal(err)
				}
				if _, err := s.ConsumeToken(ctx, protocol.AuthToken, tok.ID); err != nil {
					b.Fatal(err)
				}
				if _, err := s.AccountByUID(ctx, a.UID); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
		})
	}
}

// BenchmarkTxClasses measures one sign-in token's life in transactions of
// each durability class: one commit creates it, a second consumes it.
func BenchmarkTxClasses(b *testing.B) {
	classes := []struct {
		name  string
		class func(context.Context) context.Context
	}{{"durable", func(ctx context.Context) context.Context { return ctx }}, {"ephemeral", store.Ephemeral}}
	for _, d := range dialects {
		for _, c := range classes {
			b.Run(d.name+"/"+c.name, func(b *testing.B) {
				s := mustOpen(b, d.dsn(b), Options{Migrate: true})
				ctx := b.Context()
				a := &store.Account{UID: rnd(16), Email: "alice@example.org", NormalizedEmail: "alice@example.org",
					SRPVerifier: rnd(256), SRPSalt: rnd(32), KA: rnd(32), WrapKb: rnd(32), EmailCode: rnd(16),
					Stretching: store.Stretching{Salt: rnd(32)}, CreatedAt: time.Now(), Generation: time.Now()}
				if err := s.CreateAccount(ctx, a); err != nil {
					b.Fatal(err)
				}
				for b.Loop() {
					tok := &store.Token{ID: rnd(32), Type: protocol.AuthToken, UID: a.UID, AuthKey: rnd(32), BundleKey: rnd(32), CreatedAt: time.Now()}
					if err := s.WithTx(c.class(ctx), func(q store.Queries) error { return q.CreateToken(ctx, tok) }); err != nil {
						b.Fatal(err)
					}
					err := s.WithTx(c.class(ctx), func(q store.Queries) error {
						_, err := q.ConsumeToken(ctx, protocol.AuthToken, tok.ID)
						return err
					})
					if err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
			})
		}
	}
}
