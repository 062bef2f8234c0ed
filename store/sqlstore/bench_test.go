package sqlstore

import (
	"context"
	"database/sql"
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

// BenchmarkSealingPerSignIn measures the seals and opens of one whole
// sign-in (auth/start, auth/finish, session/create, account/keys) on their
// own, without the database: 6 account reads (4 opens each: kA, wrapKb,
// verifier, email code), 6 token reads (2 opens each: authKey, bundleKey)
// and 4 token writes (2 seals each), as the accounts package does them.
func BenchmarkSealingPerSignIn(b *testing.B) {
	ring, _ := newRing(b)
	s := newSealer(ring)
	a := testAccount("alice@example.org")
	sealedAcct, err := s.sealAccount(a.UID, a.KA, a.WrapKb, a.SRPVerifier, a.EmailCode)
	if err != nil {
		b.Fatal(err)
	}
	tok := testTokens(a.UID)[1]
	sealedTok, err := s.sealToken(tok)
	if err != nil {
		b.Fatal(err)
	}
	kek := sql.NullString{String: s.id, Valid: true}
	for b.Loop() {
		for range 6 {
			got := store.Account{UID: a.UID, KA: sealedAcct[0], WrapKb: sealedAcct[1], SRPVerifier: sealedAcct[2], EmailCode: sealedAcct[3]}
			if err := s.openAccount(&got, kek); err != nil {
				b.Fatal(err)
			}
		}
		for range 6 {
			got := store.Token{ID: tok.ID, UID: tok.UID, AuthKey: sealedTok[0], BundleKey: sealedTok[1]}
			if err := s.openToken(&got, nil, kek); err != nil {
				b.Fatal(err)
			}
		}
		for range 4 {
			if _, err := s.sealToken(tok); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/sign-in")
}

// BenchmarkSignInStoreOps runs the store operations of one whole sign-in
// (as BenchmarkSealingPerSignIn counts them), sealing included: compare
// with the same benchmark on a keyserver before sealing for the share of
// the seals and opens.
func BenchmarkSignInStoreOps(b *testing.B) {
	for _, d := range dialects {
		b.Run(d.name, func(b *testing.B) {
			s := mustOpen(b, d.dsn(b), Options{Migrate: true})
			ctx := b.Context()
			a := testAccount("alice@example.org")
			if err := s.CreateAccount(ctx, a); err != nil {
				b.Fatal(err)
			}
			eph := store.Ephemeral(ctx)
			newTok := func(typ protocol.TokenType) *store.Token {
				return &store.Token{ID: rnd(32), Type: typ, UID: a.UID, AuthKey: rnd(32), BundleKey: rnd(32), CreatedAt: time.Now()}
			}
			must := func(err error) {
				if err != nil {
					b.Fatal(err)
				}
			}
			// consume is a Hawk request that consumes its token: lookup,
			// account, then the consumption with the account again.
			consume := func(tok *store.Token, then func(q store.Queries) error) {
				_, err := s.Token(ctx, tok.Type, tok.ID)
				must(err)
				_, err = s.AccountByUID(ctx, a.UID)
				must(err)
				must(s.WithTx(eph, func(q store.Queries) error {
					if _, err := q.ConsumeToken(ctx, tok.Type, tok.ID); err != nil {
						return err
					}
					if _, err := q.AccountByUID(ctx, a.UID); err != nil {
						return err
					}
					return then(q)
				}))
			}
			for b.Loop() {
				// auth/start
				_, err := s.AccountByEmail(ctx, a.NormalizedEmail)
				must(err)
				srpTok := newTok(protocol.SRPToken)
				srpTok.SRPB = rnd(256)
				must(s.WithTx(eph, func(q store.Queries) error { return q.CreateToken(ctx, srpTok) }))
				// auth/finish
				_, err = s.Token(ctx, protocol.SRPToken, srpTok.ID)
				must(err)
				_, err = s.AccountByUID(ctx, a.UID)
				must(err)
				authTok := newTok(protocol.AuthToken)
				must(s.WithTx(eph, func(q store.Queries) error {
					if _, err := q.ConsumeToken(ctx, protocol.SRPToken, srpTok.ID); err != nil {
						return err
					}
					return q.CreateToken(ctx, authTok)
				}))
				// session/create
				sess, kf := newTok(protocol.SessionToken), newTok(protocol.KeyFetchToken)
				kf.SessionID = sess.ID
				consume(authTok, func(q store.Queries) error {
					if err := q.CreateToken(ctx, sess); err != nil {
						return err
					}
					return q.CreateToken(ctx, kf)
				})
				// account/keys
				consume(kf, func(store.Queries) error { return nil })
				must(s.DeleteToken(ctx, protocol.SessionToken, sess.ID))
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/sign-in")
		})
	}
}
