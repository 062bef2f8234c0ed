package accounts

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/keyserver/keyserver/customs"
	"github.com/keyserver/keyserver/devices"
	"github.com/keyserver/keyserver/keywrap"
	"github.com/keyserver/keyserver/protocol"
	"github.com/keyserver/keyserver/srp"
	"github.com/keyserver/keyserver/store"
	"github.com/keyserver/keyserver/store/sqlstore"
)

// classStore records the durability class of each transaction and Throttle
// call, and of the writes run outside a transaction (of their context's
// class too). The abuse-protection counts (spec 14) are written in
// transactions: the send_code step shows R9 and R8 counting the request,
// then R6 the mail, each ephemeral.
type classStore struct {
	store.Store
	mu  sync.Mutex
	log []string
}

func (s *classStore) add(what string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = append(s.log, what)
}

// take returns the record so far and starts a new one.
func (s *classStore) take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	log := s.log
	s.log = nil
	return log
}

func className(ctx context.Context) string {
	if store.IsEphemeral(ctx) {
		return "ephemeral"
	}
	return "durable"
}

func (s *classStore) WithTx(ctx context.Context, fn func(q store.Queries) error) error {
	s.add(className(ctx) + " tx")
	return s.Store.WithTx(ctx, fn)
}

func (s *classStore) Throttle(ctx context.Context, name string, now time.Time, window time.Duration, limit int) (time.Duration, error) {
	s.add(className(ctx) + " Throttle")
	return s.Store.Throttle(ctx, name, now, window, limit)
}

func (s *classStore) CreateToken(ctx context.Context, t *store.Token) error {
	s.add(className(ctx) + " CreateToken")
	return s.Store.CreateToken(ctx, t)
}

func (s *classStore) ConsumeToken(ctx context.Context, typ protocol.TokenType, id []byte) (*store.Token, error) {
	s.add(className(ctx) + " ConsumeToken")
	return s.Store.ConsumeToken(ctx, typ, id)
}

func (s *classStore) DeleteToken(ctx context.Context, typ protocol.TokenType, id []byte) error {
	s.add(className(ctx) + " DeleteToken")
	return s.Store.DeleteToken(ctx, typ, id)
}

func (s *classStore) UseNonce(ctx context.Context, tokenID []byte, ts int64, nonce string, expires time.Time) error {
	s.add(className(ctx) + " UseNonce")
	return s.Store.UseNonce(ctx, tokenID, ts, nonce, expires)
}

func (s *classStore) TouchDevice(ctx context.Context, id []byte, at time.Time, minAge time.Duration) (bool, error) {
	s.add(className(ctx) + " TouchDevice")
	return s.Store.TouchDevice(ctx, id, at, minAge)
}

func (s *classStore) AppendEvent(ctx context.Context, e *store.Event) error {
	s.add(className(ctx) + " AppendEvent")
	return s.Store.AppendEvent(ctx, e)
}

type okMailer struct{}

func (okMailer) Send(context.Context, *Message) error { return nil }

// TestDurabilityClasses runs each kind of operation once and checks the
// classes of the writes it makes: sign-in state ephemeral, account changes
// and revocations durable (package store).
func TestDurabilityClasses(t *testing.T) {
	ctx := t.Context()
	sq, err := sqlstore.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "ks.db"), sqlstore.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sq.Close() })
	st := &classStore{Store: sq}
	var mu sync.Mutex
	now := time.Now().UTC()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	svc := New(Config{Dev: true, SRPTokenTTL: 5 * time.Minute, NonceTTL: time.Minute, Mailer: okMailer{},
		VerificationURL: "http://127.0.0.1/verify", Logger: slog.New(slog.DiscardHandler), Now: clock, Rand: rand.Reader}, st)

	const email = "alice@example.org"
	pw, salt := rnd(t, 32), rnd(t, 32)
	c := Caller{IP: "192.0.2.1"}
	nonce := 0
	// hawk is the caller of a request signed with the token of seed.
	hawk := func(typ protocol.TokenType, seed []byte) Caller {
		t.Helper()
		id, _, _ := keywrap.DeriveToken(string(typ), seed)
		tok, err := svc.Token(ctx, typ, id)
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		nonce++
		return Caller{IP: c.IP, Hawk: &Hawk{Token: tok, Timestamp: clock().Unix(), Nonce: fmt.Sprint(nonce)}}
	}
	var authSeed, kfSeed, sessSeed []byte
	var session Caller // authenticated with the sessionToken
	var deviceID []byte

	steps := []struct {
		name string
		run  func() error
		want []string
	}{
		{"account/create", func() error {
			_, err := svc.Create(ctx, c, NewAccount{Email: email, SRPType: srp.Type, SRPVerifier: srp.Verifier([]byte(email), pw, salt),
				SRPSalt: salt, Stretching: store.Stretching{Type: keywrap.StretchType, Salt: rnd(t, 32)}, PreVerified: true})
			return err
		}, []string{"durable tx"}},
		{"auth/start, auth/finish", func() error {
			authSeed = login(t, svc, c, email, pw, salt)
			return nil
		}, []string{"ephemeral CreateToken", "ephemeral tx"}},
		{"session/create", func() error {
			hc := hawk(protocol.AuthToken, authSeed)
			sess, err := svc.SessionCreate(ctx, hc)
			if err != nil {
				return err
			}
			seeds, err := keywrap.Unbundle(hc.Hawk.Token.BundleKey, keywrap.ContextSessionCreate, sess.Bundle)
			kfSeed, sessSeed = seeds[:32], seeds[32:]
			return err
		}, []string{"ephemeral tx"}},
		{"account/keys", func() error {
			_, err := svc.FetchKeys(ctx, hawk(protocol.KeyFetchToken, kfSeed))
			return err
		}, []string{"ephemeral tx"}},
		{"authenticated request", func() (err error) {
			session, err = svc.Authenticate(ctx, hawk(protocol.SessionToken, sessSeed))
			return err
		}, []string{"ephemeral UseNonce"}},
		{"device register", func() error {
			name, typ := "laptop", "desktop"
			d, err := svc.SaveDevice(ctx, session, nil, devices.Fields{Name: &name, Type: &typ})
			if d != nil {
				deviceID = d.ID
			}
			return err
		}, []string{"durable tx"}},
		{"authenticated request, device last access", func() (err error) {
			mu.Lock()
			now = now.Add(2 * devices.TouchInterval)
			mu.Unlock()
			session, err = svc.Authenticate(ctx, hawk(protocol.SessionToken, sessSeed))
			return err
		}, []string{"ephemeral UseNonce", "ephemeral TouchDevice"}},
		{"certificate/sign", func() error {
			_, err := svc.IssueCertificate(ctx, session, func([]byte) (string, error) { return "cert", nil })
			return err
		}, []string{"ephemeral tx"}},
		{"password/forgot/send_code", func() error {
			if err := svc.Throttle(ctx, c, customs.ForgotSendIP); err != nil {
				return err
			}
			_, err := svc.ForgotSendCode(ctx, c, email)
			return err
		}, []string{"ephemeral tx", "ephemeral tx", "durable tx", "ephemeral tx", "durable AppendEvent"}},
		{"device destroy", func() error { return svc.DestroyDevice(ctx, session, deviceID) }, []string{"durable tx"}},
		{"admin disable", func() error { return svc.AdminSetDisabled(ctx, c, session.Account.UID, false) }, []string{"durable tx"}},
		{"admin revoke sessions", func() error { return svc.AdminRevokeSessions(ctx, c, session.Account.UID) }, []string{"durable tx"}},
		{"rejected request", func() error {
			if err := svc.Reject(ctx, hawk(protocol.AuthToken, login(t, svc, c, email, pw, salt)), InvalidParam("x")); errnoOf(err) != protocol.ErrnoInvalidParameter {
				return err
			}
			return nil
		}, []string{"ephemeral CreateToken", "ephemeral tx", "ephemeral tx"}},
		{"password/change/start", func() error {
			_, err := svc.PasswordChangeStart(ctx, hawk(protocol.AuthToken, login(t, svc, c, email, pw, salt)))
			return err
		}, []string{"ephemeral CreateToken", "ephemeral tx", "durable tx"}},
		{"account/destroy", func() error {
			return svc.Destroy(ctx, hawk(protocol.AuthToken, login(t, svc, c, email, pw, salt)))
		}, []string{"ephemeral CreateToken", "ephemeral tx", "durable tx"}},
	}
	for _, step := range steps {
		st.take()
		if err := step.run(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if got := st.take(); !slices.Equal(got, step.want) {
			t.Errorf("%s: writes %q, want %q", step.name, got, step.want)
		}
	}
}

// login signs in with AuthStart and AuthFinish and returns the authToken
// seed.
func login(t *testing.T, svc *Service, c Caller, email string, pw, salt []byte) []byte {
	t.Helper()
	ch, err := svc.AuthStart(t.Context(), c, email, "")
	if err != nil {
		t.Fatal(err)
	}
	A, M, K, err := srp.ClientProof([]byte(email), pw, salt, rnd(t, 32), ch.B)
	if err != nil {
		t.Fatal(err)
	}
	bundle, err := svc.AuthFinish(t.Context(), c, ch.SRPToken, func() ([]byte, []byte, error) { return A, M, nil })
	if err != nil {
		t.Fatal(err)
	}
	seed, err := keywrap.Unbundle(K, keywrap.ContextAuthFinish, bundle)
	if err != nil {
		t.Fatal(err)
	}
	return seed
}

func rnd(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return b
}
