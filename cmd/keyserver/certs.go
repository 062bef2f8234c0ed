package main

import (
	"context"
	"crypto"
	"crypto/rand"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/keyserver/keyserver/certs"
)

// maxKeyDocument bounds key files and fetched JWK Sets.
const maxKeyDocument = 1 << 20

// signingFlags are the serve flags of certificate signing (spec 7.3, D16).
type signingFlags struct {
	signingKey  string
	retiredKeys fileList
	legacy      bool
}

// fileList is a repeatable flag; one value may also list files separated
// by commas (as its environment variable does).
type fileList []string

func (l *fileList) String() string { return strings.Join(*l, ",") }

func (l *fileList) Set(v string) error {
	for _, f := range strings.Split(v, ",") {
		if f = strings.TrimSpace(f); f != "" {
			*l = append(*l, f)
		}
	}
	return nil
}

func (f *signingFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.signingKey, "signing-key", "", "PEM private key file (from 'keyserver keys generate': RSA of exactly 2048 bits or Ed25519) that signs certificates; required unless --dev")
	fs.Var(&f.retiredKeys, "retired-key", "PEM key file (private or public; RSA of exactly 2048 bits or Ed25519) of an earlier signing key, still published so its certificates verify; repeatable; remove it 24 h + 60 s after the rotation")
	fs.BoolVar(&f.legacy, "legacy-client-keys", false, "certify RSA client keys from 511 bits, as historic clients use (D16; weak keys)")
}

// load reads the signing key and the retired keys; certs refuses an RSA
// key that is not exactly 2048 bits (spec 7.3). Without --signing-key,
// development mode gets an ephemeral key (announced in the log) and
// production refuses to start.
func (f *signingFlags) load(logger *slog.Logger, dev bool) (*certs.Signer, []crypto.PublicKey, error) {
	var key crypto.Signer
	if f.signingKey == "" {
		if !dev {
			return nil, nil, fmt.Errorf("%w: no --signing-key: create one with 'keyserver keys generate --out FILE' (or run with --dev for an ephemeral development key)", errUsage)
		}
		var err error
		if key, err = certs.GenerateKey(certs.RS256, rand.Reader); err != nil {
			return nil, nil, err
		}
	} else {
		data, err := readKeyFile(f.signingKey)
		if err != nil {
			return nil, nil, fmt.Errorf("--signing-key: %w", err)
		}
		if key, err = certs.ParsePrivateKey(data); err != nil {
			return nil, nil, fmt.Errorf("--signing-key %s: %w", f.signingKey, err)
		}
		warnIfShared(logger, "signing key file", f.signingKey)
	}
	signer, err := certs.NewSigner(key)
	if err != nil {
		return nil, nil, err
	}
	if f.signingKey == "" {
		logger.Warn("DEVELOPMENT MODE: no --signing-key, signing certificates with an EPHEMERAL key; its certificates stop verifying when the server stops",
			"alg", signer.Algorithm(), "kid", signer.KeyID())
	} else {
		logger.Info("signing certificates", "alg", signer.Algorithm(), "kid", signer.KeyID())
	}
	var retired []crypto.PublicKey
	for _, file := range f.retiredKeys {
		data, err := readKeyFile(file)
		if err != nil {
			return nil, nil, fmt.Errorf("--retired-key: %w", err)
		}
		pub, err := certs.ParsePublicKeyPEM(data)
		if err != nil {
			return nil, nil, fmt.Errorf("--retired-key %s: %w", file, err)
		}
		kid, _ := certs.KeyID(pub)
		logger.Info("publishing retired key", "kid", kid, "file", file)
		retired = append(retired, pub)
	}
	if f.legacy {
		logger.Warn("--legacy-client-keys: certifying RSA client keys from 511 bits, which can be factored at modest cost (D16)")
	}
	return signer, retired, nil
}

// readKeyFile reads a key file of at most maxKeyDocument bytes.
func readKeyFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readAtMost(f, name)
}

// readAtMost reads a key document of at most maxKeyDocument bytes.
func readAtMost(r io.Reader, name string) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxKeyDocument+1))
	if err == nil && len(data) > maxKeyDocument {
		err = fmt.Errorf("%s: larger than %d bytes", name, maxKeyDocument)
	}
	return data, err
}

// runKeys is "keyserver keys generate".
func runKeys(args []string, stdout, stderr io.Writer) error {
	return (&commandTable{name: "keys", synopsis: "usage: keyserver keys <command> [flags]", width: 38,
		footer: "\nRun 'keyserver keys generate -h' for its flags.", missing: "keys needs the command generate",
		commands: []command{{"generate", "--alg rs256|eddsa --out FILE", "generate a certificate signing key", runKeysGenerate}},
	}).run(args, stdout, stderr)
}

func runKeysGenerate(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("keys generate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	algName := fs.String("alg", "rs256", "rs256 (2048-bit RSA, the only RSA size of spec 7.3) or eddsa (Ed25519)")
	out := fs.String("out", "", "file to create with the PEM private key (mode 0600; an existing file is never overwritten)")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("%w: --out FILE is required", errUsage)
	}
	alg, err := certs.ParseAlgorithm(*algName)
	if err != nil {
		return fmt.Errorf("%w: --alg %q: want rs256 or eddsa", errUsage, *algName)
	}
	key, err := certs.GenerateKey(alg, rand.Reader)
	if err != nil {
		return err
	}
	data, err := certs.MarshalPrivateKey(key)
	if err != nil {
		return err
	}
	kid, err := certs.KeyID(key.Public())
	if err != nil {
		return err
	}
	file, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err = file.Write(data); err == nil {
		err = file.Sync()
	}
	if cerr := file.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(*out)
		return err
	}
	fmt.Fprintf(stdout, "wrote %s key %s to %s\n", alg, kid, *out)
	return nil
}

// runCerts is "keyserver certs verify [flags] CERT_OR_ASSERTION".
func runCerts(args []string, stdout, stderr io.Writer) error {
	return (&commandTable{name: "certs", synopsis: "usage: keyserver certs <command> [flags]", width: 8,
		footer: "\nRun 'keyserver certs verify -h' for its flags.", missing: "certs needs the command verify",
		commands: []command{{"verify", "--jwks URL|FILE [--audience AUD] [--issuer DOMAIN] [flags] CERT_OR_ASSERTION|-",
			"\n      verify a certificate or backed assertion against published keys", runCertsVerify}},
	}).run(args, stdout, stderr)
}

func runCertsVerify(args []string, stdout, stderr io.Writer) error {
	const usageLine = "usage: keyserver certs verify --jwks URL|FILE [--audience AUD] [--issuer DOMAIN] [flags] CERT_OR_ASSERTION|-"
	fs := flag.NewFlagSet("certs verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	jwks := fs.String("jwks", "", "the issuer's JWK Set: an http(s) URL such as https://keys.example.com/.well-known/jwks.json, or a file")
	audience := fs.String("audience", "", "the audience a backed assertion must name (required for assertions)")
	issuer := fs.String("issuer", "", "the only accepted issuer domain (default: any issuer the keys verify)")
	legacy := fs.Bool("legacy-client-keys", false, "accept certified RSA client keys from 511 bits (D16)")
	var skew time.Duration
	durationFlag(fs, &skew, "skew", time.Minute, "tolerated clock difference for iat and nbf")
	// The layout of the other commands: the usage line, then the flags.
	fs.Usage = func() {
		fmt.Fprintln(stderr, usageLine)
		fs.PrintDefaults()
	}
	if _, err := parseFlagsEnv(fs, args, envName); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, usageLine)
		return fmt.Errorf("%w: one certificate or assertion is needed, after the flags", errUsage)
	}
	token := fs.Arg(0)
	if token == "-" {
		b, err := io.ReadAll(io.LimitReader(os.Stdin, certs.MaxTokenSize+1))
		if err != nil {
			return err
		}
		token = string(b)
	}
	token = strings.TrimSpace(token)
	if token == "" || *jwks == "" {
		fmt.Fprintln(stderr, usageLine)
		return fmt.Errorf("%w: --jwks and a certificate or assertion are required", errUsage)
	}
	isAssertion := strings.Contains(token, "~")
	if isAssertion && *audience == "" {
		return fmt.Errorf("%w: --audience is required for a backed assertion", errUsage)
	}
	data, err := loadJWKS(*jwks)
	if err != nil {
		return err
	}
	ks, err := certs.ParseJWKS(data)
	if err != nil {
		return err
	}
	v := &certs.Verifier{Keys: ks, Issuer: *issuer, LegacyClientKeys: *legacy, Skew: skew}

	type assertionJSON struct {
		Audience  string `json:"aud"`
		ExpiresAt int64  `json:"exp"`
		IssuedAt  int64  `json:"iat,omitempty"`
	}
	var out struct {
		KeyID       string         `json:"kid"`
		Algorithm   string         `json:"alg"`
		Certificate *certs.Claims  `json:"certificate"`
		Assertion   *assertionJSON `json:"assertion,omitempty"`
	}
	var cert *certs.Certificate
	if isAssertion {
		a, err := v.VerifyAssertion(token, *audience)
		if err != nil {
			return err
		}
		cert = a.Certificate
		out.Assertion = &assertionJSON{Audience: a.Audience, ExpiresAt: a.ExpiresAt.UnixMilli()}
		if !a.IssuedAt.IsZero() {
			out.Assertion.IssuedAt = a.IssuedAt.UnixMilli()
		}
	} else if cert, err = v.VerifyCertificate(token); err != nil {
		return err
	}
	out.KeyID, out.Algorithm, out.Certificate = cert.KeyID, cert.Algorithm, &cert.Claims
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s\n", b)
	return nil
}

// loadJWKS reads a JWK Set from a file or an http(s) URL (10 s, 1 MiB).
func loadJWKS(src string) ([]byte, error) {
	if !strings.HasPrefix(src, "https://") && !strings.HasPrefix(src, "http://") {
		return readKeyFile(src)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching %s: %s", src, resp.Status)
	}
	return readAtMost(resp.Body, src)
}
