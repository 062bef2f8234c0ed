package main

import (
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// certCheckInterval is how often, at most, a TLS handshake checks whether
// the certificate files changed.
var certCheckInterval = 2 * time.Second

// certExpiryWarning is how close to its expiry a loaded certificate is
// logged at warn level.
const certExpiryWarning = 7 * 24 * time.Hour

// tlsFlags are the serve flags of TLS on the server's own listeners.
type tlsFlags struct {
	cert, key string
}

func (f *tlsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.cert, "tls-cert", "", "PEM certificate chain file: serve HTTPS (TLS 1.2 or later) on --listen, --admin-listen and --metrics-listen; reloaded when it changes (checked at most every 2 s) or on SIGHUP. Needs --tls-key")
	fs.StringVar(&f.key, "tls-key", "", "PEM private key file of --tls-cert")
}

// load returns the certificate source, or nil when TLS is off.
func (f *tlsFlags) load(logger *slog.Logger) (*certReloader, error) {
	switch {
	case f.cert == "" && f.key == "":
		return nil, nil
	case f.cert == "" || f.key == "":
		return nil, fmt.Errorf("%w: --tls-cert and --tls-key go together", errUsage)
	}
	r := &certReloader{certFile: f.cert, keyFile: f.key, logger: logger, now: time.Now}
	if err := r.reload(true); err != nil {
		return nil, err
	}
	return r, nil
}

// certReloader serves the certificate of two files and loads them again
// when they change: an ACME client that renews them needs no restart. A
// pair that does not load (a half-written renewal, a key that does not
// match) is logged and the previous certificate stays in use.
type certReloader struct {
	certFile, keyFile string
	logger            *slog.Logger
	now               func() time.Time

	mu                sync.Mutex
	cert              *tls.Certificate
	certStat, keyStat os.FileInfo // as last loaded or tried
	checked           time.Time
}

// config is a new TLS configuration for one listener (http.Server
// changes its own), nil when r is nil (TLS off).
func (r *certReloader) config() *tls.Config {
	if r == nil {
		return nil
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.getCertificate}
}

func (r *certReloader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := r.now(); now.Sub(r.checked) >= certCheckInterval {
		r.checked = now
		_ = r.reloadLocked(false) // logged; the previous certificate stays
	}
	return r.cert, nil
}

// reload loads the files, when they changed or when force is set (at
// startup, on SIGHUP).
func (r *certReloader) reload(force bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reloadLocked(force)
}

func (r *certReloader) reloadLocked(force bool) error {
	cs, err := os.Stat(r.certFile)
	if err != nil {
		return r.failed(fmt.Errorf("--tls-cert: %w", err))
	}
	ks, err := os.Stat(r.keyFile)
	if err != nil {
		return r.failed(fmt.Errorf("--tls-key: %w", err))
	}
	if !force && sameFile(cs, r.certStat) && sameFile(ks, r.keyStat) {
		return nil
	}
	r.certStat, r.keyStat = cs, ks
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return r.failed(fmt.Errorf("TLS certificate %s with key %s: %w", r.certFile, r.keyFile, err))
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return r.failed(fmt.Errorf("TLS certificate %s: %w", r.certFile, err))
		}
	}
	reloaded := r.cert != nil
	r.cert = &cert
	attrs := []any{"file", r.certFile, "subject", leaf.Subject.String(), "dns_names", leaf.DNSNames,
		"serial", leaf.SerialNumber.Text(16), "not_after", leaf.NotAfter.UTC().Format(time.RFC3339)}
	msg := "TLS certificate loaded"
	if reloaded {
		msg = "TLS certificate reloaded"
	}
	r.logger.Info(msg, attrs...)
	if left := leaf.NotAfter.Sub(r.now()); left < certExpiryWarning {
		r.logger.Warn("TLS certificate expires soon: renew it (the new files are picked up without a restart)", append(attrs, "expires_in", left.Round(time.Minute).String())...)
	}
	return nil
}

// failed logs err when a certificate is already being served (which goes
// on) and returns it.
func (r *certReloader) failed(err error) error {
	if r.cert != nil {
		r.logger.Warn("TLS certificate not reloaded: still serving the previous one", "err", err)
	}
	return err
}

// sameFile reports whether a and b describe the same file, unchanged.
func sameFile(a, b os.FileInfo) bool {
	return a != nil && b != nil && os.SameFile(a, b) && a.ModTime().Equal(b.ModTime()) && a.Size() == b.Size()
}
