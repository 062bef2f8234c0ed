// Package accounts holds the account and token rules of the PICL key server
// (../shared/spec/protocol.md sections 6, 8 and 10) over the store: account
// creation and email verification, SRP sign-in, sessions, key fetch,
// password change, forgot-password codes, reset, recovery by email
// assertion, destruction, the disabled-account checks, the device registry's
// audited changes and the admin actions.
//
// Each operation owns its transaction and writes its audit event in it, so
// an event commits or rolls back with the change it records. Each also
// chooses the transaction's durability class (package store): sign-in state
// (auth/start and auth/finish, session/create, account/keys, Hawk nonces,
// device last access, certificate audit events, abuse-protection counts,
// known ips and unblock codes) is ephemeral; everything that changes an
// account or revokes access is durable. The abuse protection of spec 14
// (package customs) is checked at the points its section 14.2 gives,
// before any SRP arithmetic or write, and its outcomes are recorded in the
// transaction of the operation when it has one. Request facts
// (client IP, the Hawk-authenticated token and its account) come in as a
// Caller. Refusals are *Error values carrying the protocol errno; the HTTP
// edge maps them to a status and the spec's error body.
package accounts

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/keyserver/keyserver/customs"
	"github.com/keyserver/keyserver/devices"
	"github.com/keyserver/keyserver/keywrap"
	"github.com/keyserver/keyserver/protocol"
	"github.com/keyserver/keyserver/store"
)

// Config holds the settings of the rules.
type Config struct {
	// Dev honours preVerified at account creation.
	Dev bool
	// SRPTokenTTL is the srpToken lifetime (spec 9.2).
	SRPTokenTTL time.Duration
	// NonceTTL is how long a Hawk nonce is kept after its timestamp: the
	// accepted clock skew.
	NonceTTL time.Duration
	// Mailer sends mail; nil sends nothing and fails every message.
	Mailer Mailer
	// VerificationURL is the target of email verification links.
	VerificationURL string
	// Recovery verifies the email assertions of account recovery; nil
	// refuses every assertion (126).
	Recovery AssertionVerifier
	// Customs are the abuse-protection rules (spec 14) over the same
	// store; nil: the rules of spec 14.2 with their defaults and no
	// exempt network.
	Customs *customs.Customs
	// UnverifiedTTL is how long an account may stay unverified before the
	// purge deletes it (spec 14.5; default 7 days).
	UnverifiedTTL time.Duration
	Logger        *slog.Logger
	Now           func() time.Time
	Rand          io.Reader
}

// Lifetimes of spec 9.2 and 14.5 (D18).
const (
	// TokenTTL is the lifetime of authTokens, keyFetchTokens and
	// accountResetTokens.
	TokenTTL = time.Hour
	// DefaultUnverifiedTTL is the default of Config.UnverifiedTTL.
	DefaultUnverifiedTTL = 7 * 24 * time.Hour
)

// Service applies the rules to a store.
type Service struct {
	cfg     Config
	st      store.Store
	log     *slog.Logger
	devices *devices.Registry
	customs *customs.Customs
}

// New returns the rules over st. cfg.Now, cfg.Rand and cfg.Logger must be
// set.
func New(cfg Config, st store.Store) *Service {
	if cfg.Mailer == nil {
		cfg.Mailer = noMailer{}
	}
	if cfg.UnverifiedTTL <= 0 {
		cfg.UnverifiedTTL = DefaultUnverifiedTTL
	}
	cu := cfg.Customs
	if cu == nil {
		var err error
		if cu, err = customs.New(customs.Config{Logger: cfg.Logger, Now: cfg.Now, Rand: cfg.Rand}, st); err != nil {
			panic(err) // the default rules are valid
		}
	}
	return &Service{cfg: cfg, st: st, log: cfg.Logger, devices: devices.New(st, cfg.Now, cfg.Rand), customs: cu}
}

// Caller is what the HTTP edge knows about a request.
type Caller struct {
	// IP is the client address (spec 10.4), recorded in audit events.
	IP string
	// Hawk is the verified request of a token-authenticated endpoint,
	// before its nonce is recorded (see Authenticate and the consuming
	// operations).
	Hawk *Hawk
	// Token and Account are set by Authenticate for endpoints whose
	// token is not consumed.
	Token   *store.Token
	Account *store.Account
}

// Hawk is a request whose Hawk MAC verified against Token.
type Hawk struct {
	Token *store.Token
	// Account is Token's account as read with it (Service.TokenWithAccount),
	// or nil: then it is read when needed.
	Account   *store.Account
	Timestamp int64 // seconds
	Nonce     string
}

func (s *Service) now() time.Time { return s.cfg.Now() }

// random returns n bytes from the configured CSPRNG.
func (s *Service) random(n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(s.cfg.Rand, b); err != nil {
		return nil, fmt.Errorf("random: %w", err)
	}
	return b, nil
}

// newToken makes a token of type typ for uid from a fresh random seed.
func (s *Service) newToken(typ protocol.TokenType, uid []byte) (seed []byte, tok *store.Token, err error) {
	seed, err = s.random(keywrap.TokenSize)
	if err != nil {
		return nil, nil, err
	}
	id, authKey, bundleKey := keywrap.DeriveToken(string(typ), seed)
	return seed, &store.Token{ID: id, Type: typ, UID: uid, AuthKey: authKey, BundleKey: bundleKey, CreatedAt: s.now()}, nil
}

// Fold is the case-insensitive key of an email (spec 1.3): the Unicode
// simple lower-case mapping, per code point.
func Fold(email string) string { return strings.ToLower(email) }

// Ping checks that the database answers.
func (s *Service) Ping(ctx context.Context) error { return s.st.Ping(ctx) }
