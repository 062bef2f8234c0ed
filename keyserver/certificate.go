package keyserver

import (
	"crypto"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/keyserver/keyserver/certs"
)

// maxCertDuration is the longest certificate lifetime (spec 7.1, 9.2).
const maxCertDuration = 24 * time.Hour

// publishedKeysCacheControl lets verifiers cache the published keys for an
// hour (as spec 8.2 does for the issuers it trusts): a retired key stays
// published for 24 h after retirement, and a verifier meeting an unknown kid
// fetches again.
const publishedKeysCacheControl = "public, max-age=3600"

// certState is what the certificate endpoints need, fixed at startup.
type certState struct {
	issuer    string // issuer domain: host[:port] of the public URL as written
	browserID []byte // /.well-known/browserid
	jwks      []byte // /.well-known/jwks.json
}

// newCertState prepares the issuer domain and the published documents
// (spec 7.4): the signer's key first, then the retired keys. Without a
// signer nothing is published.
func newCertState(cfg *Config) (certState, error) {
	u, err := url.Parse(cfg.PublicURL)
	if err != nil {
		return certState{}, err
	}
	cs := certState{issuer: u.Host}
	if cfg.Signer == nil {
		return cs, nil
	}
	ks, err := certs.NewKeySet(append([]crypto.PublicKey{cfg.Signer.Public()}, cfg.RetiredKeys...)...)
	if err != nil {
		return certState{}, fmt.Errorf("published keys: %w", err)
	}
	if cs.browserID, err = ks.BrowserID(); err != nil {
		return certState{}, err
	}
	if cs.jwks, err = ks.JWKS(); err != nil {
		return certState{}, err
	}
	return cs, nil
}

// errNoSigner is the cause logged when certificates are asked of a server
// configured without a signing key.
var errNoSigner = errors.New("no certificate signing key configured")

// POST /v1/certificate/sign (Hawk sessionToken; spec 7.1, D11): body
// validation (every problem of publicKey is 107 publicKey), then 104 for an
// unverified account, then the certificate, audited as certificate.sign.
func (s *Server) certificateSign(req *request) (any, error) {
	o, err := parseObject(req.r, req.body)
	if err != nil {
		return nil, err
	}
	rawKey, err := o.require("publicKey")
	if err != nil {
		return nil, err
	}
	publicKey, err := certs.ParsePublicKey(rawKey, s.cfg.LegacyClientKeys)
	if err != nil {
		return nil, errInvalidParam("publicKey")
	}
	duration, err := o.Int("duration", func(d int64) bool { return d > 0 && d <= maxCertDuration.Milliseconds() })
	if err != nil {
		return nil, err
	}
	if err := o.End(); err != nil {
		return nil, err
	}
	a := req.caller.Account
	issue := func(deviceID []byte) (string, error) {
		if s.cfg.Signer == nil {
			return "", errUnavailable(errNoSigner)
		}
		now := s.now()
		claims := &certs.Claims{
			PublicKey:  publicKey,
			Principal:  hexString(a.UID) + "@" + s.certs.issuer,
			Issuer:     s.certs.issuer,
			Generation: a.Generation,
			IssuedAt:   now, // Sign backdates iat by certs.IssuedAtBackdate (C21)
			ExpiresAt:  now.Add(time.Duration(duration) * time.Millisecond),
		}
		if deviceID != nil {
			claims.DeviceID = hexString(deviceID)
		}
		cert, err := s.cfg.Signer.Sign(claims)
		if err != nil {
			return "", errUnavailable(err)
		}
		return cert, nil
	}
	cert, err := s.accounts.IssueCertificate(req.r.Context(), req.caller, issue)
	if err != nil {
		return nil, err
	}
	return map[string]string{"cert": cert}, nil
}

// GET /.well-known/browserid (spec 7.4).
func (s *Server) wellKnownBrowserID(req *request) (any, error) {
	return s.publishedKeys(req, s.certs.browserID)
}

// GET /.well-known/jwks.json (spec 7.4).
func (s *Server) wellKnownJWKS(req *request) (any, error) {
	return s.publishedKeys(req, s.certs.jwks)
}

// publishedKeys writes a published key document, cacheable by verifiers.
func (s *Server) publishedKeys(req *request, doc []byte) (any, error) {
	if err := noBody(req); err != nil {
		return nil, err
	}
	if doc == nil {
		return nil, errUnavailable(errNoSigner)
	}
	h := req.w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", publishedKeysCacheControl)
	_, _ = req.w.Write(doc)
	return written, nil
}

// browserIDPage serves the placeholder pages the browserid document names
// (spec 6.8).
func browserIDPage(title string) http.HandlerFunc {
	page := "<!doctype html><title>" + title + "</title><h1>" + title + "</h1>" +
		"<p>This key server issues certificates to its own clients only; it is not a general BrowserID identity provider.</p>\n"
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
		_, _ = io.WriteString(w, page)
	}
}
