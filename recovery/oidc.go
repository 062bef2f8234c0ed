package recovery

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// oidcIssuer is a configured issuer with its keys.
type oidcIssuer struct {
	OIDCIssuer
	keys *keySource
}

// discoveryURL is the OpenID Connect discovery document of issuer
// (OpenID Connect Discovery 1.0 section 4: the issuer with any trailing
// "/" removed, then /.well-known/openid-configuration).
func discoveryURL(issuer string) string {
	return strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
}

// discoveryFetcher fetches the JWK Set of issuer through its discovery
// document: the document and then its jwks_uri, each with fetch (HTTPS, the
// time and size limits of key fetches). The document's issuer must equal
// the configured one exactly and jwks_uri must be an https URL. The
// document is read again at every key fetch, so that a moved jwks_uri is
// followed.
func discoveryFetcher(issuer string, fetch func(ctx context.Context, url string) ([]byte, error)) func(ctx context.Context, url string) ([]byte, error) {
	return func(ctx context.Context, docURL string) ([]byte, error) {
		data, err := fetch(ctx, docURL)
		if err != nil {
			return nil, err
		}
		var doc struct {
			Issuer  *string `json:"issuer"`
			JWKSURI string  `json:"jwks_uri"`
		}
		if err := json.Unmarshal(data, &doc); err != nil {
			return nil, fmt.Errorf("recovery: discovery document %s is not a JSON object: %w", docURL, err)
		}
		switch {
		case doc.Issuer == nil:
			return nil, fmt.Errorf("recovery: discovery document %s has no issuer", docURL)
		case *doc.Issuer != issuer:
			return nil, fmt.Errorf("recovery: discovery document %s names the issuer %q, not the configured %q", docURL, *doc.Issuer, issuer)
		case doc.JWKSURI == "":
			return nil, fmt.Errorf("recovery: discovery document %s has no jwks_uri", docURL)
		case !isHTTPS(doc.JWKSURI):
			return nil, fmt.Errorf("recovery: discovery document %s: jwks_uri %q is not an https URL", docURL, doc.JWKSURI)
		}
		return fetch(ctx, doc.JWKSURI)
	}
}

// idTokenAlgs are the algorithms spec 8.2 accepts for ID tokens.
var idTokenAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA}

// idClaims are the ID token claims spec 8.2 checks.
type idClaims struct {
	Iss           string          `json:"iss"`
	Aud           json.RawMessage `json:"aud"`
	Azp           string          `json:"azp"`
	Exp           *float64        `json:"exp"` // a JSON string does not decode
	Iat           *float64        `json:"iat"`
	Nbf           *float64        `json:"nbf"`
	Email         string          `json:"email"`
	EmailVerified json.RawMessage `json:"email_verified"`
}

// verifyIDToken checks an OpenID Connect ID token (spec 8.2).
func (v *Verifier) verifyIDToken(ctx context.Context, token string) (string, time.Time, error) {
	now := v.now()
	if err := refuseCrit(token); err != nil {
		return "", time.Time{}, invalid("ID token: %v", err)
	}
	jws, err := jose.ParseSignedCompact(token, idTokenAlgs)
	if err != nil {
		return "", time.Time{}, invalid("ID token: %v", err)
	}
	var unverified struct {
		Iss string `json:"iss"`
	}
	if json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &unverified) != nil {
		return "", time.Time{}, invalid("ID token: payload is not a JSON object")
	}
	iss, ok := v.oidc[unverified.Iss]
	if !ok {
		return "", time.Time{}, invalid("ID token: untrusted issuer")
	}
	h := jws.Signatures[0].Protected
	pub, err := iss.keys.lookup(ctx, h.KeyID, h.Algorithm, now)
	if err != nil {
		return "", time.Time{}, invalid("ID token of %s: %v", iss.Issuer, err)
	}
	payload, err := jws.Verify(pub)
	if err != nil {
		return "", time.Time{}, invalid("ID token of %s: bad signature", iss.Issuer)
	}
	var c idClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return "", time.Time{}, invalid("ID token of %s: claims: %v", iss.Issuer, err)
	}
	if c.Iss != iss.Issuer {
		return "", time.Time{}, invalid("ID token: untrusted issuer")
	}
	if !iss.audienceOK(c.Aud, c.Azp) {
		return "", time.Time{}, invalid("ID token of %s: wrong audience", iss.Issuer)
	}
	exp, ok := seconds(c.Exp)
	switch {
	case !ok:
		return "", time.Time{}, invalid("ID token of %s: no valid exp", iss.Issuer)
	case !exp.After(now):
		return "", time.Time{}, invalid("ID token of %s: expired", iss.Issuer)
	case exp.Sub(now) > maxLifetime+clockSkew:
		// The skew lets a 24 h token from an issuer whose clock is ahead in.
		return "", time.Time{}, invalid("ID token of %s: exp more than 24 h ahead", iss.Issuer)
	}
	if iat, ok := seconds(c.Iat); !ok || iat.Sub(now) > clockSkew {
		return "", time.Time{}, invalid("ID token of %s: iat missing or in the future", iss.Issuer)
	}
	if c.Nbf != nil {
		if nbf, ok := seconds(c.Nbf); !ok || nbf.Sub(now) > clockSkew {
			return "", time.Time{}, invalid("ID token of %s: not valid yet (nbf)", iss.Issuer)
		}
	}
	if string(c.EmailVerified) != "true" {
		return "", time.Time{}, invalid("ID token of %s: email_verified is not true", iss.Issuer)
	}
	if c.Email == "" || (len(iss.Domains) > 0 && !allowedDomain(c.Email, iss.Domains)) {
		return "", time.Time{}, invalid("ID token of %s: email missing or in a domain the issuer may not vouch for", iss.Issuer)
	}
	return c.Email, exp, nil
}

// audienceOK applies the aud and azp rules of spec 8.2.
func (iss *oidcIssuer) audienceOK(aud json.RawMessage, azp string) bool {
	var one string
	if json.Unmarshal(aud, &one) == nil {
		return slices.Contains(iss.ClientIDs, one)
	}
	var many []string
	if json.Unmarshal(aud, &many) != nil {
		return false
	}
	for _, id := range iss.ClientIDs {
		if slices.Contains(many, id) && (len(many) == 1 || azp == id) {
			return true
		}
	}
	return false
}

// seconds reads a NumericDate (a JSON number of seconds, possibly with a
// fraction).
func seconds(f *float64) (time.Time, bool) {
	if f == nil || *f < 0 || *f > 1e12 {
		return time.Time{}, false
	}
	return time.UnixMilli(int64(*f * 1000)), true
}

// refuseCrit refuses a JWS whose protected header has a crit member: go-jose
// would accept crit ["b64"], spec 8.2 accepts none.
func refuseCrit(token string) error {
	head, _, ok := strings.Cut(token, ".")
	if !ok {
		return errors.New("not a JWS")
	}
	raw, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return errors.New("JWS header is not base64url")
	}
	var h map[string]json.RawMessage
	if json.Unmarshal(raw, &h) != nil {
		return errors.New("JWS header is not a JSON object")
	}
	if _, ok := h["crit"]; ok {
		return errors.New("JWS header has crit")
	}
	return nil
}
