// Package client is a Go client of the PICL v1 key-server protocol
// (shared/spec/protocol.md), used by the keyserver CLI, end-to-end tests and
// benchmarks.
//
// All traffic goes through one request path, [Client.DoRaw] (with [Client.Do]
// as its JSON front end): it signs Hawk requests (spec 5) with the host and
// port of the base URL, tracks the server clock from the Timestamp response
// header (spec 1.2) and turns every failed response into an [*Error] (spec
// 1.4: a response fails iff its JSON body has a truthy "error" member; a
// non-2xx answer without one fails too). The typed methods build the flows of
// spec 9.1 on top of it with the pure crypto packages keywrap and srp:
// account creation, SRP sign-in, key fetching, password change, reset and
// account destruction, and the recovery key that keeps kB through a reset
// (docs/recovery-key.md: CreateRecoveryKey, RecoveryKB, ResetAccountWithKB).
//
// Secrets (passwords, seeds, keys) are never logged and never put into error
// messages.
package client

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/keyserver/keyserver/hawk"
	"github.com/keyserver/keyserver/keywrap"
	"github.com/keyserver/keyserver/protocol"
)

// Client talks to one key server. It is safe for concurrent use.
type Client struct {
	base   string // origin without trailing '/'
	host   string // Hawk host: lower case
	port   int    // Hawk port: explicit, or 80/443
	http   *http.Client
	params keywrap.Params
	rand   io.Reader
	now    func() time.Time
	offset atomic.Int64 // server clock minus local clock, in seconds
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sets the HTTP client (default: one with a 60 s timeout).
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.http = hc } }

// WithStretching sets the parameters the client really uses to stretch
// passwords (default keywrap.DefaultParams()). The wire always carries the
// protocol's fixed numbers; other values only let tests stretch cheaply
// against a server that cannot tell the difference.
func WithStretching(p keywrap.Params) Option { return func(c *Client) { c.params = p } }

// WithRand sets the source of salts, SRP secrets and Hawk nonces (default
// crypto/rand.Reader).
func WithRand(r io.Reader) Option { return func(c *Client) { c.rand = r } }

// WithNow sets the local clock (default time.Now).
func WithNow(now func() time.Time) Option { return func(c *Client) { c.now = now } }

// New returns a client of the server at baseURL, an origin such as
// http://127.0.0.1:9000 (a trailing '/' is allowed, a path is not).
func New(baseURL string, opts ...Option) (*Client, error) {
	base, host, port, err := parseOrigin(baseURL)
	if err != nil {
		return nil, err
	}
	c := &Client{
		base:   base,
		host:   host,
		port:   port,
		http:   &http.Client{Timeout: 60 * time.Second},
		params: keywrap.DefaultParams(),
		rand:   rand.Reader,
		now:    time.Now,
	}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// parseOrigin checks that s is an http(s) origin and returns it without a
// trailing '/', with the Hawk host and port as the server derives them from
// its public URL (hawk.ParseOrigin, spec 5).
func parseOrigin(s string) (base, host string, port int, err error) {
	host, port, err = hawk.ParseOrigin(s)
	if err != nil {
		return "", "", 0, fmt.Errorf("client: base URL %w", err)
	}
	u, err := url.Parse(s) // cannot fail: ParseOrigin accepted s
	if err != nil {
		return "", "", 0, fmt.Errorf("client: base URL %q: %w", s, err)
	}
	return u.Scheme + "://" + u.Host, host, port, nil
}

// BaseURL returns the origin the client talks to.
func (c *Client) BaseURL() string { return c.base }

// ServerTime returns the client clock corrected by the last offset seen in a
// Timestamp header; Hawk ts values are taken from it.
func (c *Client) ServerTime() time.Time {
	return c.now().Add(time.Duration(c.offset.Load()) * time.Second)
}

// trackClock records the server clock offset from a Timestamp header (whole
// seconds). Unlike the historic client, which adds local - server (spec 5,
// informative), the offset is applied with the sign that corrects the clock.
func (c *Client) trackClock(h http.Header) {
	ts, err := strconv.ParseInt(h.Get("Timestamp"), 10, 64)
	if err != nil || ts <= 0 {
		return
	}
	c.offset.Store(ts - c.now().Unix())
}

// Credentials are Hawk credentials derived from a token seed (spec 4.1).
type Credentials struct {
	ID        string // hex(tokenId), the Hawk id
	Key       []byte // authKey, the Hawk key
	BundleKey []byte // bundleKey, for the bundles keyed by this token
}

// TokenCredentials derives the credentials of a token of tokenType (the
// protocol token type) from its 32-byte seed.
func TokenCredentials(tokenType protocol.TokenType, seed []byte) *Credentials {
	id, authKey, bundleKey := keywrap.DeriveToken(string(tokenType), seed)
	return &Credentials{ID: hex.EncodeToString(id), Key: authKey, BundleKey: bundleKey}
}

// random returns n bytes from the client's random source.
func (c *Client) random(n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(c.rand, b); err != nil {
		return nil, fmt.Errorf("client: reading random bytes: %w", err)
	}
	return b, nil
}
