package recovery

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Fetch rules of spec 8.2.
const (
	fetchTimeout   = 10 * time.Second
	maxFetchSize   = 1 << 20
	cacheLifetime  = time.Hour
	minRefetchWait = time.Minute
)

// key is one verification key of an issuer.
type key struct {
	kid string
	alg string // the JWK's alg, "" when it names none
	pub crypto.PublicKey
	// primary marks the key that a JWS without kid means when there are
	// several (the public-key of a browserid document).
	primary bool
}

// keySource holds an issuer's keys: loaded once from a file, or fetched
// over HTTPS, cached for an hour and fetched again, at most once a minute,
// when a kid is unknown. The lock is never held during a fetch: one fetch
// runs at a time, verifications that the cached keys serve do not wait for
// it, and those that need its result (an unknown kid, no keys yet) do.
type keySource struct {
	url   string // "" for keys from a file
	parse func([]byte) ([]key, error)
	fetch func(ctx context.Context, url string) ([]byte, error)

	mu       sync.Mutex
	keys     []key
	fetched  time.Time     // last successful fetch
	tried    time.Time     // last fetch attempt
	failure  error         // why the last attempt failed, nil if it did not
	fetching chan struct{} // closed when the running fetch ends; nil if none
}

// fileKeys loads a key source from a file at startup.
func fileKeys(path string, parse func([]byte) ([]key, error)) (*keySource, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	keys, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("recovery: %s: %w", path, err)
	}
	return &keySource{keys: keys}, nil
}

// lookup returns the key named kid (with kid "", the only or the primary
// key) that can verify alg.
func (s *keySource) lookup(ctx context.Context, kid, alg string, now time.Time) (crypto.PublicKey, error) {
	s.mu.Lock()
	keys, stale := s.keys, s.url != "" && now.Sub(s.fetched) >= cacheLifetime
	s.mu.Unlock()
	k, err := pick(keys, kid, alg)
	unknown := s.url != "" && kid != "" && errors.Is(err, errUnknownKey)
	if (stale || unknown) && s.refresh(ctx, now, err != nil) {
		s.mu.Lock()
		keys = s.keys
		s.mu.Unlock()
		k, err = pick(keys, kid, alg)
	}
	if err != nil {
		s.mu.Lock()
		if s.failure != nil {
			err = fmt.Errorf("%w (last fetch of %s: %v)", err, s.url, s.failure)
		}
		s.mu.Unlock()
	}
	return k, err
}

// refresh fetches the keys unless the last attempt was less than a minute
// ago, and reports whether new keys may have arrived. When a fetch is
// already running, a caller that needs it waits for its end (or for ctx),
// any other returns at once. A failed fetch keeps the keys there were.
func (s *keySource) refresh(ctx context.Context, now time.Time, wait bool) bool {
	s.mu.Lock()
	if running := s.fetching; running != nil {
		s.mu.Unlock()
		if !wait {
			return false
		}
		select {
		case <-running:
			return true
		case <-ctx.Done():
			return false
		}
	}
	if !s.tried.IsZero() && now.Sub(s.tried) < minRefetchWait {
		s.mu.Unlock()
		return false
	}
	s.tried = now
	done := make(chan struct{})
	s.fetching = done
	s.mu.Unlock()

	// Not cancelled with the request: a client that hangs up must not
	// spoil the fetch, which would then not be redone for a minute. The
	// fetch has its own time limit.
	data, err := s.fetch(context.WithoutCancel(ctx), s.url)
	var keys []key
	if err == nil {
		keys, err = s.parse(data)
	}

	s.mu.Lock()
	if s.failure = err; err == nil {
		s.keys, s.fetched = keys, now
	}
	s.fetching = nil
	s.mu.Unlock()
	close(done)
	return err == nil
}

var (
	errUnknownKey = errors.New("no key with this kid")
	errKeyType    = errors.New("key type does not match alg")
)

// pick selects the key for kid and alg from keys.
func pick(keys []key, kid, alg string) (crypto.PublicKey, error) {
	if kid == "" {
		if len(keys) == 1 {
			return matchAlg(keys[0], alg)
		}
		for _, k := range keys {
			if k.primary {
				return matchAlg(k, alg)
			}
		}
		return nil, fmt.Errorf("%w: no kid and not exactly one key", errUnknownKey)
	}
	err := errUnknownKey
	for _, k := range keys {
		if k.kid == kid {
			pub, e := matchAlg(k, alg)
			if e == nil {
				return pub, nil
			}
			err = e
		}
	}
	return nil, err
}

// matchAlg returns k's public key if it is of the type alg needs (and k
// names no other alg).
func matchAlg(k key, alg string) (crypto.PublicKey, error) {
	if k.alg != "" && k.alg != alg {
		return nil, errKeyType
	}
	ok := false
	switch pub := k.pub.(type) {
	case *rsa.PublicKey:
		ok = alg == string(jose.RS256)
	case *ecdsa.PublicKey:
		ok = alg == string(jose.ES256) && pub.Curve == elliptic.P256()
	case ed25519.PublicKey:
		ok = alg == string(jose.EdDSA)
	}
	if !ok {
		return nil, errKeyType
	}
	return k.pub, nil
}

// minRSABits is the smallest issuer RSA key accepted.
const minRSABits = 2048

// parseJWKS reads a JWK Set (RFC 7517), keeping the signature keys of the
// types spec 8.2 allows (RSA of at least 2048 bits, P-256, Ed25519) and
// skipping members it cannot use, as RFC 7517 section 5 asks.
func parseJWKS(data []byte) ([]key, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("not a JWK Set: %w", err)
	}
	var keys []key
	for _, raw := range set.Keys {
		var jwk jose.JSONWebKey
		if jwk.UnmarshalJSON(raw) != nil || (jwk.Use != "" && jwk.Use != "sig") {
			continue
		}
		if !jwk.IsPublic() {
			jwk = jwk.Public()
		}
		switch pub := jwk.Key.(type) {
		case *rsa.PublicKey:
			if pub.N.BitLen() < minRSABits {
				continue
			}
		case *ecdsa.PublicKey:
			if pub.Curve != elliptic.P256() {
				continue
			}
		case ed25519.PublicKey:
		default: // symmetric keys above all: never an issuer key
			continue
		}
		keys = append(keys, key{kid: jwk.KeyID, alg: jwk.Algorithm, pub: jwk.Key})
	}
	if len(keys) == 0 {
		return nil, errors.New("no usable signature key in the JWK Set")
	}
	return keys, nil
}

// httpsFetcher fetches over HTTPS only (redirects included), with the time
// and size bounds of spec 8.2.
func httpsFetcher(client *http.Client) func(ctx context.Context, url string) ([]byte, error) {
	c := *client
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.URL.Scheme != "https" {
			return errors.New("redirect to a URL that is not https")
		}
		if len(via) >= 5 {
			return errors.New("too many redirects")
		}
		return nil
	}
	return func(ctx context.Context, url string) ([]byte, error) {
		if !isHTTPS(url) {
			return nil, fmt.Errorf("recovery: %s is not an https URL", url)
		}
		ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Accept", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("recovery: fetching %s: status %d", url, resp.StatusCode)
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, maxFetchSize+1))
		if err != nil {
			return nil, err
		}
		if len(data) > maxFetchSize {
			return nil, fmt.Errorf("recovery: fetching %s: larger than %d bytes", url, maxFetchSize)
		}
		return data, nil
	}
}
