// Package keyserver is the HTTP edge of the PICL key server
// (../shared/spec/protocol.md): routes, Hawk request authentication, the
// decoding and validation of requests, and the mapping of refusals to the
// spec's JSON error body. The rules live in package accounts (and devices,
// certs); this package holds no transactions and writes no audit events.
//
// Every handler has the same shape: decode the size-capped body, validate
// it (400 with errno and param), call the rules, encode the answer.
package keyserver

import (
	"context"
	"crypto"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyserver/keyserver/accounts"
	"github.com/keyserver/keyserver/certs"
	"github.com/keyserver/keyserver/customs"
	"github.com/keyserver/keyserver/hawk"
	"github.com/keyserver/keyserver/store"
)

// Config holds the settings that affect the wire (spec 1.7).
type Config struct {
	// PublicURL is the origin clients use: Hawk host and port, issuer
	// domain and links derive from it.
	PublicURL string
	// Dev is the development/test switch: honours preVerified.
	Dev bool
	// BodyLimit caps request bodies (default 1 MiB).
	BodyLimit int64
	// SRPTokenTTL is the srpToken lifetime (default 60 s).
	SRPTokenTTL time.Duration
	// HawkSkew is the accepted clock skew (default 60 s).
	HawkSkew time.Duration
	// VerificationURL is the target of email verification links (default
	// <PublicURL>/v1/verify_email).
	VerificationURL string
	// ContentServerURL, when set, is where /v1/verify_email redirects.
	ContentServerURL string
	// Mailer sends mail (package mail has the SMTP and development
	// mailers); nil sends nothing and fails every message.
	Mailer accounts.Mailer
	// Recovery verifies the email assertions of /v1/account/recover (spec
	// 8); nil refuses every assertion (126).
	Recovery accounts.AssertionVerifier
	// CORSOrigins restricts Access-Control-Allow-Origin; empty means "*".
	CORSOrigins []string
	// TrustedProxies whose X-Forwarded-For is believed (spec 10.4).
	TrustedProxies []*net.IPNet
	// Signer signs identity certificates with the current key (spec 7.3);
	// nil makes /v1/certificate/sign and the published keys 503/201.
	Signer *certs.Signer
	// RetiredKeys are earlier signing keys, still published (spec 7.4)
	// until their certificates have expired.
	RetiredKeys []crypto.PublicKey
	// LegacyClientKeys accepts RSA client keys from 511 bits (D16).
	LegacyClientKeys bool
	// HeavyConcurrency bounds the CPU-heavy requests (auth/start,
	// auth/finish, certificate/sign, account/create) running at once
	// (default GOMAXPROCS); HeavyQueue more may wait (default 4 ×
	// HeavyConcurrency), each at most HeavyWait (default 500 ms). Beyond
	// that they are shed with 503/201.
	HeavyConcurrency int
	HeavyQueue       int
	HeavyWait        time.Duration

	// Limits is the abuse-protection rule table (spec 14.2); nil means
	// customs.DefaultRules(), the spec's defaults.
	Limits []customs.Rule
	// RateLimitExempt networks get no abuse-protection rule (none by
	// default; the development switch exempts nothing).
	RateLimitExempt []netip.Prefix
	// OnRefusal, when set, is called with the rule name of every
	// abuse-protection refusal (a metrics counter).
	OnRefusal func(rule string)
	// UnverifiedTTL: accounts still unverified this long after creation
	// are deleted by Purge (default 7 days, spec 14.5).
	UnverifiedTTL time.Duration

	// HSTSOnlyHTTPS sends Strict-Transport-Security only when PublicURL is
	// https (serve sets it). Unset, every response carries the header, as
	// spec 1.2 lists it; a browser ignores it over http.
	HSTSOnlyHTTPS bool
	// Metrics, when set, receives the Prometheus collectors of the edge
	// (metrics.go), and the admin API serves the registry at GET /metrics
	// (MetricsHandler serves it alone); the public API never does.
	Metrics *prometheus.Registry
	// Version is the build that GET /__version__ describes and the
	// keyserver_build_info metric carries.
	Version VersionInfo

	Logger *slog.Logger
	// Now and Rand are injectable for tests; default time.Now and
	// crypto/rand.
	Now  func() time.Time
	Rand io.Reader
}

// Server serves the public API.
type Server struct {
	cfg      Config
	accounts *accounts.Service
	log      *slog.Logger
	hawkHost string
	hawkPort int
	certs    certState
	heavy    *limiter
	hsts     bool
	metrics  *metrics // nil without Config.Metrics
}

// New checks cfg, fills in defaults and returns a server over st.
func New(cfg Config, st store.Store) (*Server, error) {
	host, port, err := hawk.ParseOrigin(cfg.PublicURL)
	if err != nil {
		return nil, fmt.Errorf("public URL %w", err)
	}
	if cfg.BodyLimit <= 0 {
		cfg.BodyLimit = 1 << 20
	}
	if cfg.SRPTokenTTL <= 0 {
		cfg.SRPTokenTTL = 60 * time.Second
	}
	if cfg.HawkSkew <= 0 {
		cfg.HawkSkew = 60 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Logger = slog.New(requestIDHandler{cfg.Logger.Handler()})
	if cfg.VerificationURL == "" {
		cfg.VerificationURL = strings.TrimSuffix(cfg.PublicURL, "/") + "/v1/verify_email"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.HeavyConcurrency <= 0 {
		cfg.HeavyConcurrency = runtime.GOMAXPROCS(0)
	}
	if cfg.HeavyQueue <= 0 {
		cfg.HeavyQueue = 4 * cfg.HeavyConcurrency
	}
	if cfg.HeavyWait <= 0 {
		cfg.HeavyWait = 500 * time.Millisecond
	}
	cs, err := newCertState(&cfg)
	if err != nil {
		return nil, err
	}
	var m *metrics
	if cfg.Metrics != nil {
		if m, err = newMetrics(cfg.Metrics, &cfg); err != nil {
			return nil, err
		}
		if cfg.Mailer != nil {
			cfg.Mailer = m.countMail(cfg.Mailer)
		}
		cfg.OnRefusal = m.countRefusals(cfg.OnRefusal)
	}
	cu, err := newCustoms(&cfg, st)
	if err != nil {
		return nil, err
	}
	rules := accounts.New(accounts.Config{
		Dev: cfg.Dev, SRPTokenTTL: cfg.SRPTokenTTL, NonceTTL: cfg.HawkSkew, Mailer: cfg.Mailer,
		VerificationURL: cfg.VerificationURL, Recovery: cfg.Recovery, Logger: cfg.Logger, Now: cfg.Now, Rand: cfg.Rand,
		Customs: cu, UnverifiedTTL: cfg.UnverifiedTTL,
	}, st)
	return &Server{cfg: cfg, accounts: rules, log: cfg.Logger, hawkHost: host, hawkPort: port, certs: cs,
		heavy: newLimiter(cfg.HeavyConcurrency, cfg.HeavyQueue, cfg.HeavyWait), metrics: m,
		hsts: !cfg.HSTSOnlyHTTPS || strings.HasPrefix(strings.ToLower(cfg.PublicURL), "https:")}, nil
}

func (s *Server) now() time.Time { return s.cfg.Now() }

// Handler returns the public API.
func (s *Server) Handler() http.Handler { return s.outer(s.routes()) }

// heartbeat answers {} when the store answers, 503/201 otherwise. Like
// every request it is subject to the length checks and takes no body
// (spec 1.2, 1.6).
func (s *Server) heartbeat(req *request) (any, error) {
	if err := noBody(req); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(req.r.Context(), 5*time.Second)
	defer cancel()
	if err := s.accounts.Ping(ctx); err != nil {
		return nil, errUnavailable(fmt.Errorf("heartbeat: %w", err))
	}
	return emptyObject, nil
}

func (s *Server) lbheartbeat(req *request) (any, error) {
	if err := noBody(req); err != nil {
		return nil, err
	}
	return emptyObject, nil
}

// notFound answers unknown paths and methods (404/999, spec 1.4); a
// browser asking for a page gets the web client's HTML 404 (web.go).
func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	if wantsHTML(r) {
		webNotFound(w, r)
		return
	}
	writeError(w, r, errNotFound())
}
