// Package keyserver is the HTTP API of the PICL key server
// (../shared/spec/protocol.md): routes, handlers, Hawk request
// authentication, and the mapping of errors to the spec's JSON error body.
//
// Every handler follows the same shape: decode the size-capped body,
// validate it (400 with errno and param), do the work through the store
// (multi-row writes in one transaction) and encode the answer.
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
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/keyserver/keyserver/certs"
	"github.com/keyserver/keyserver/devices"
	"github.com/keyserver/keyserver/store"
)

// Config holds the settings that affect the wire (spec 1.7).
type Config struct {
	// PublicURL is the origin clients use: Hawk host and port, issuer
	// domain and links derive from it.
	PublicURL string
	// Dev is the development/test switch: honours preVerified and logs mail.
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
	// Mailer sends mail; nil logs it with Dev (the development mailer),
	// and otherwise fails every message (NoMailer).
	Mailer Mailer
	// Recovery verifies the email assertions of /v1/account/recover (spec
	// 8); nil refuses every assertion (126).
	Recovery AssertionVerifier
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

	Logger *slog.Logger
	// Now and Rand are injectable for tests; default time.Now and
	// crypto/rand.
	Now  func() time.Time
	Rand io.Reader
}

// Server serves the public API.
type Server struct {
	cfg      Config
	store    store.Store
	log      *slog.Logger
	hawkHost string
	hawkPort int
	devices  *devices.Registry
	certs    certState
}

// New checks cfg, fills in defaults and returns a server over st.
func New(cfg Config, st store.Store) (*Server, error) {
	host, port, err := originHostPort(cfg.PublicURL)
	if err != nil {
		return nil, err
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
	if cfg.VerificationURL == "" {
		cfg.VerificationURL = strings.TrimSuffix(cfg.PublicURL, "/") + "/v1/verify_email"
	}
	if cfg.Mailer == nil && cfg.Dev {
		cfg.Mailer = LogMailer{Log: cfg.Logger}
	} else if cfg.Mailer == nil {
		cfg.Mailer = NoMailer{} // C14: codes are logged only under the test switch
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	cs, err := newCertState(&cfg)
	if err != nil {
		return nil, err
	}
	return &Server{cfg: cfg, store: st, log: cfg.Logger, hawkHost: host, hawkPort: port,
		devices: devices.New(st, cfg.Now, cfg.Rand), certs: cs}, nil
}

// originHostPort checks that publicURL is an http(s) origin without path and
// returns the lower-case host and the port (explicit, or 80/443).
func originHostPort(publicURL string) (string, int, error) {
	u, err := url.Parse(publicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", 0, fmt.Errorf("public URL %q must be an origin such as https://api.example.com", publicURL)
	}
	port := 443
	if u.Scheme == "http" {
		port = 80
	}
	if p := u.Port(); p != "" {
		port, err = strconv.Atoi(p)
		if err != nil || port <= 0 || port > 65535 {
			return "", 0, fmt.Errorf("public URL %q has a bad port", publicURL)
		}
	}
	return strings.ToLower(u.Hostname()), port, nil
}

func (s *Server) now() time.Time { return s.cfg.Now() }

// Handler returns the public API.
func (s *Server) Handler() http.Handler { return s.outer(s.routes()) }

// api adapts a handler that returns a JSON-encodable result or an error.
// A nil result with a nil error means the handler wrote the response.
func (s *Server) api(fn func(w http.ResponseWriter, r *http.Request) (any, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, err := fn(w, r)
		switch {
		case err != nil:
			writeError(w, r, asError(err))
		case res != nil:
			writeJSON(w, http.StatusOK, res)
		}
	})
}

// heartbeat answers {} when the store answers, 503/201 otherwise. Like
// every request it is subject to the length checks and takes no body
// (spec 1.2, 1.6).
func (s *Server) heartbeat(req *request) (any, error) {
	if err := noBody(req); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(req.r.Context(), 5*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		return nil, errUnavailable(fmt.Errorf("heartbeat: %w", err))
	}
	return struct{}{}, nil
}

func (s *Server) lbheartbeat(req *request) (any, error) {
	if err := noBody(req); err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

// notFound answers unknown paths and methods (404/999, spec 1.4).
func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	writeError(w, r, errNotFound())
}
