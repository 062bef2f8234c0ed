package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// testCA issues server certificates for tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "keyserver test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key}
}

// issue returns the PEM certificate and key of a server certificate for
// 127.0.0.1 with this serial, valid for validity.
func (ca *testCA) issue(t *testing.T, serial int64, validity time.Duration) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(validity),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

// writeAtomic replaces name the way ACME clients do: a new file renamed
// over the old one.
func writeAtomic(t *testing.T, name string, data []byte) {
	t.Helper()
	tmp := name + ".new"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, name); err != nil {
		t.Fatal(err)
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func serial(t *testing.T, c *tls.Certificate) int64 {
	t.Helper()
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return leaf.SerialNumber.Int64()
}

// The certificate is reloaded when its files change, at most every
// certCheckInterval, or at once when forced (SIGHUP); a pair that does not
// load leaves the previous certificate in use.
func TestCertReloader(t *testing.T) {
	ca := newTestCA(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	c1, k1 := ca.issue(t, 1, 90*24*time.Hour)
	writeAtomic(t, certFile, c1)
	writeAtomic(t, keyFile, k1)

	var logs syncBuf
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	f := tlsFlags{cert: certFile, key: keyFile}
	r, err := f.load(logger)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	r.now = func() time.Time { return now }
	cfg := r.config()
	if cfg.MinVersion != tls.VersionTLS12 {
		t.Errorf("MinVersion %x", cfg.MinVersion)
	}
	get := func() int64 {
		c, err := cfg.GetCertificate(&tls.ClientHelloInfo{})
		if err != nil {
			t.Fatal(err)
		}
		return serial(t, c)
	}
	if got := get(); got != 1 {
		t.Fatalf("serial %d", got)
	}
	if !strings.Contains(logs.String(), "TLS certificate loaded") {
		t.Errorf("log: %s", logs.String())
	}

	c2, k2 := ca.issue(t, 2, 90*24*time.Hour)
	writeAtomic(t, certFile, c2)
	writeAtomic(t, keyFile, k2)
	now = now.Add(certCheckInterval / 2)
	if got := get(); got != 1 {
		t.Errorf("reloaded before the check interval: serial %d", got)
	}
	now = now.Add(certCheckInterval)
	if got := get(); got != 2 {
		t.Errorf("after renewal: serial %d", got)
	}

	// Half a renewal (a new certificate, the old key) keeps serial 2.
	c3, k3 := ca.issue(t, 3, 3*24*time.Hour)
	writeAtomic(t, certFile, c3)
	now = now.Add(certCheckInterval)
	if got := get(); got != 2 {
		t.Errorf("with a mismatched key: serial %d", got)
	}
	if !strings.Contains(logs.String(), "still serving the previous one") {
		t.Errorf("no warning for the mismatched pair:\n%s", logs.String())
	}
	// The key arrives: serial 3, logged as expiring soon.
	writeAtomic(t, keyFile, k3)
	now = now.Add(certCheckInterval)
	if got := get(); got != 3 {
		t.Errorf("after the key: serial %d", got)
	}
	if !strings.Contains(logs.String(), "expires soon") {
		t.Errorf("no expiry warning:\n%s", logs.String())
	}

	// Forced (SIGHUP) reloads at once.
	c4, k4 := ca.issue(t, 4, 90*24*time.Hour)
	writeAtomic(t, certFile, c4)
	writeAtomic(t, keyFile, k4)
	if err := r.reload(true); err != nil {
		t.Fatal(err)
	}
	if got := get(); got != 4 {
		t.Errorf("after a forced reload: serial %d", got)
	}
	os.Remove(keyFile)
	if err := r.reload(true); err == nil || !strings.Contains(err.Error(), "--tls-key") {
		t.Errorf("reload without a key file: %v", err)
	}
	if got := get(); got != 4 {
		t.Errorf("after a failed reload: serial %d", got)
	}
}

func TestTLSFlags(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	if r, err := (&tlsFlags{}).load(logger); r != nil || err != nil {
		t.Errorf("no TLS: %v %v", r, err)
	}
	for _, f := range []tlsFlags{{cert: "c.pem"}, {key: "k.pem"}} {
		if _, err := f.load(logger); !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "go together") {
			t.Errorf("%+v: %v", f, err)
		}
	}
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.pem")
	os.WriteFile(bad, []byte("not PEM"), 0o600)
	if _, err := (&tlsFlags{cert: bad, key: bad}).load(logger); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("bad files: %v", err)
	}
}
