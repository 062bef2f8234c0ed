// Package recovery verifies the email assertions of account recovery
// (../shared/spec/protocol.md section 8, Product decision D12,
// Clarification C17): an assertion proves that its bearer controls an email
// address, vouched for by an issuer the operator trusts.
//
// Two kinds are accepted:
//
//   - OpenID Connect ID tokens (JWS compact, RFC 7515/7519): alg RS256,
//     ES256 or EdDSA matching the key's type (none, HMAC and any crit header
//     are refused); iss equal to a configured issuer; the signature verified
//     with the issuer's key named by kid (or its only key), from a JWK Set
//     file or URL; aud one of the issuer's client ids, or an array holding
//     one (with other members, azp must be that id); exp (seconds) in the
//     future and at most 24 h + 60 s ahead (the skew lets in a 24 h token
//     from an issuer whose clock is a little ahead); iat required and, like
//     nbf, at most now + 60 s; exp, iat and nbf JSON numbers (a string is
//     refused); email_verified JSON true; the email in an allowed domain.
//   - BrowserID backed assertions "cert~assertion" from email-domain
//     identity providers, their keys from a JWK Set file or their
//     /.well-known/browserid document. They are checked by the one
//     BrowserID verifier of package certs (certs.Verifier) with the rules
//     of spec 8.2; this package adds the issuer and domain policy
//     (browserid.go).
//
// Keys come from files read at startup or from HTTPS URLs (for an OpenID
// Connect issuer given without either, the jwks_uri of its discovery
// document, oidc.go): fetches time out
// after 10 s, read at most 1 MiB, are cached for an hour and repeated at
// most once a minute when a kid is unknown; one fetch per issuer runs at a
// time, and verifications that the cached keys serve never wait for it. Every failure is an error
// wrapping ErrInvalid, whose message says why without quoting the assertion.
// The replay check is the caller's: the assertion's expiry is returned for
// it. Emails are compared by the fold of spec 1.3 (strings.ToLower).
package recovery

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// ErrInvalid is wrapped by every verification failure.
var ErrInvalid = errors.New("recovery: invalid assertion")

// Checks of spec 8.2.
const (
	clockSkew   = 60 * time.Second
	maxLifetime = 24 * time.Hour
)

// Options configure a Verifier.
type Options struct {
	// Audience is the key server's public URL, the aud of BrowserID
	// assertions.
	Audience string
	// RootCAs, when not nil, replaces the system's trusted CAs for fetching
	// keys (an internal CA, or a test's).
	RootCAs *x509.CertPool
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Verifier checks assertions against the trusted issuers of a Config. It is
// safe for concurrent use.
type Verifier struct {
	oidc      map[string]*oidcIssuer      // by issuer URL
	browserID map[string]*browserIDIssuer // by issuer domain
	audience  string
	now       func() time.Time
}

// New reads the key files of cfg and prepares the fetching of the others.
func New(cfg *Config, opts Options) (*Verifier, error) {
	if err := cfg.check(); err != nil {
		return nil, fmt.Errorf("recovery: %w", err)
	}
	client := &http.Client{Timeout: fetchTimeout}
	if opts.RootCAs != nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = &tls.Config{RootCAs: opts.RootCAs, MinVersion: tls.VersionTLS12}
		client.Transport = t
	}
	fetch := httpsFetcher(client)
	v := &Verifier{oidc: map[string]*oidcIssuer{}, browserID: map[string]*browserIDIssuer{},
		audience: strings.TrimSuffix(opts.Audience, "/"), now: opts.Now}
	if v.now == nil {
		v.now = time.Now
	}
	for _, e := range cfg.OIDC {
		keys := &keySource{url: e.JWKSURL, parse: parseJWKS, fetch: fetch}
		if e.JWKSURL == "" && e.JWKSFile == "" {
			keys.url = discoveryURL(e.Issuer)
			keys.fetch = discoveryFetcher(e.Issuer, fetch)
		}
		if e.JWKSFile != "" {
			var err error
			if keys, err = fileKeys(e.JWKSFile, parseJWKS); err != nil {
				return nil, err
			}
		}
		v.oidc[e.Issuer] = &oidcIssuer{OIDCIssuer: e, keys: keys}
	}
	for _, e := range cfg.BrowserID {
		keys := &keySource{url: "https://" + e.Issuer + "/.well-known/browserid", parse: parseBrowserIDDocument, fetch: fetch}
		if e.KeysFile != "" {
			var err error
			if keys, err = fileKeys(e.KeysFile, parseJWKS); err != nil {
				return nil, err
			}
		}
		domains := e.Domains
		if len(domains) == 0 {
			domains = []string{e.Issuer}
		}
		v.browserID[e.Issuer] = &browserIDIssuer{BrowserIDIssuer: e, keys: keys, domains: domains}
	}
	return v, nil
}

// Verify checks assertion and returns the email it vouches for and when it
// expires.
func (v *Verifier) Verify(ctx context.Context, assertion string) (email string, expires time.Time, err error) {
	if strings.Contains(assertion, "~") {
		return v.verifyBackedAssertion(ctx, assertion)
	}
	return v.verifyIDToken(ctx, assertion)
}

// invalid wraps ErrInvalid with a reason.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// allowedDomain reports whether the domain of email (after its last "@",
// folded) is in domains.
func allowedDomain(email string, domains []string) bool {
	at := strings.LastIndexByte(email, '@')
	if at < 0 {
		return false
	}
	return slices.Contains(domains, strings.ToLower(email[at+1:]))
}
