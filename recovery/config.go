package recovery

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Config is the recovery issuers file of spec 8.2 (Clarification C17).
type Config struct {
	OIDC      []OIDCIssuer      `json:"oidc"`
	BrowserID []BrowserIDIssuer `json:"browserid"`
}

// OIDCIssuer is a trusted OpenID Connect issuer. At most one of JWKSURL and
// JWKSFile is set; with neither, the keys come from OpenID Connect
// discovery: the jwks_uri of <Issuer>/.well-known/openid-configuration,
// whose issuer must equal Issuer.
type OIDCIssuer struct {
	// Issuer is the https URL the ID tokens carry as iss, compared exactly.
	Issuer string `json:"issuer"`
	// ClientIDs are the accepted audiences.
	ClientIDs []string `json:"clientIds"`
	JWKSURL   string   `json:"jwksUrl,omitempty"`
	JWKSFile  string   `json:"jwksFile,omitempty"`
	// Domains, when not empty, are the email domains the issuer may vouch
	// for (default: any).
	Domains []string `json:"domains,omitempty"`
}

// BrowserIDIssuer is a trusted BrowserID identity provider. Exactly one of
// KeysFile and WellKnown is set.
type BrowserIDIssuer struct {
	// Issuer is the IdP domain, the iss of its certificates.
	Issuer string `json:"issuer"`
	// KeysFile is a JWK Set file of the IdP's keys.
	KeysFile string `json:"keysFile,omitempty"`
	// WellKnown fetches the keys from https://<issuer>/.well-known/browserid.
	WellKnown bool `json:"wellKnown,omitempty"`
	// Domains, when not empty, are the email domains the IdP may vouch for
	// (default: the issuer itself).
	Domains []string `json:"domains,omitempty"`
}

// maxFileSize bounds the issuers file and key files.
const maxFileSize = 1 << 20

// LoadConfig reads and checks the issuers file at path. Relative key file
// paths are resolved against the file's directory. Unknown members, trailing
// data, and an entry without exactly one key source are errors.
func LoadConfig(path string) (*Config, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var cfg Config
	if err := dec.Decode(&cfg); err != nil {
		return nil, fmt.Errorf("recovery: %s: %w", path, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("recovery: %s: data after the JSON object", path)
	}
	if err := exactMembers(data); err != nil {
		return nil, fmt.Errorf("recovery: %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	resolve := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	for i := range cfg.OIDC {
		cfg.OIDC[i].JWKSFile = resolve(cfg.OIDC[i].JWKSFile)
	}
	for i := range cfg.BrowserID {
		cfg.BrowserID[i].KeysFile = resolve(cfg.BrowserID[i].KeysFile)
	}
	if err := cfg.check(); err != nil {
		return nil, fmt.Errorf("recovery: %s: %w", path, err)
	}
	return &cfg, nil
}

// members are the names the issuers file allows, exactly as spelt.
var members = map[string][]string{
	"oidc":      {"issuer", "clientIds", "jwksUrl", "jwksFile", "domains"},
	"browserid": {"issuer", "keysFile", "wellKnown", "domains"},
}

// exactMembers refuses member names that encoding/json matched only
// case-insensitively ("Issuer", "JWKSURL"): they are unknown members.
func exactMembers(data []byte) error {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return err
	}
	for name, raw := range top {
		allowed, ok := members[name]
		if !ok {
			return fmt.Errorf("unknown member %q", name)
		}
		var entries []map[string]json.RawMessage
		if err := json.Unmarshal(raw, &entries); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		for i, e := range entries {
			for k := range e {
				if !slices.Contains(allowed, k) {
					return fmt.Errorf("%s[%d]: unknown member %q", name, i, k)
				}
			}
		}
	}
	return nil
}

// check validates every entry.
func (c *Config) check() error {
	var errs []error
	seen := map[string]bool{}
	for i, e := range c.OIDC {
		where := fmt.Sprintf("oidc[%d]", i)
		if u, err := url.Parse(e.Issuer); err != nil || u.Scheme != "https" || u.Host == "" {
			errs = append(errs, fmt.Errorf("%s: issuer %q must be an https URL", where, e.Issuer))
		}
		if seen["oidc "+e.Issuer] {
			errs = append(errs, fmt.Errorf("%s: issuer %q listed twice", where, e.Issuer))
		}
		seen["oidc "+e.Issuer] = true
		if len(e.ClientIDs) == 0 || slices.Contains(e.ClientIDs, "") {
			errs = append(errs, fmt.Errorf("%s: clientIds must list at least one non-empty client id", where))
		}
		if e.JWKSURL != "" && e.JWKSFile != "" {
			errs = append(errs, fmt.Errorf("%s: at most one of jwksUrl and jwksFile may be given (with neither, the keys come from OpenID Connect discovery)", where))
		}
		if e.JWKSURL != "" && !isHTTPS(e.JWKSURL) {
			errs = append(errs, fmt.Errorf("%s: jwksUrl %q must be an https URL", where, e.JWKSURL))
		}
		errs = append(errs, checkDomains(where, e.Domains))
	}
	for i, e := range c.BrowserID {
		where := fmt.Sprintf("browserid[%d]", i)
		if !validDomain(e.Issuer) {
			errs = append(errs, fmt.Errorf("%s: issuer %q must be a domain (host[:port], lower case)", where, e.Issuer))
		}
		if seen["browserid "+e.Issuer] {
			errs = append(errs, fmt.Errorf("%s: issuer %q listed twice", where, e.Issuer))
		}
		seen["browserid "+e.Issuer] = true
		if (e.KeysFile == "") == !e.WellKnown {
			errs = append(errs, fmt.Errorf("%s: exactly one of keysFile and wellKnown is required", where))
		}
		errs = append(errs, checkDomains(where, e.Domains))
	}
	return errors.Join(errs...)
}

func checkDomains(where string, domains []string) error {
	for _, d := range domains {
		if !validDomain(d) {
			return fmt.Errorf("%s: domain %q must be a lower-case domain", where, d)
		}
	}
	return nil
}

// validDomain: a non-empty lower-case host[:port] without scheme or path.
func validDomain(d string) bool {
	if d == "" || d != strings.ToLower(d) || strings.ContainsAny(d, "/@?#\\ ") {
		return false
	}
	u, err := url.Parse("https://" + d)
	return err == nil && u.Host == d
}

func isHTTPS(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.Scheme == "https" && u.Host != ""
}

// readFile reads a configuration or key file of at most maxFileSize bytes.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("recovery: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("recovery: %s: %w", path, err)
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("recovery: %s: larger than %d bytes", path, maxFileSize)
	}
	return data, nil
}
