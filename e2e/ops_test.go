package e2e

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/keyserver/keyserver/client"
	"github.com/keyserver/keyserver/protocol"
)

// scrape fetches url (with the admin token when token is set) and parses
// the Prometheus text format.
func scrape(t *testing.T, url, token string) map[string]*dto.MetricFamily {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctxT(t), http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("GET %s: %v\n%s", url, err, body)
	}
	return mfs
}

// sample is the value of the series of name with these labels (a subset
// of its labels), -1 when there is none.
func sample(mfs map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	mf := mfs[name]
	if mf == nil {
		return -1
	}
metric:
	for _, m := range mf.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range labels {
			if have[k] != v {
				continue metric
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		case m.Untyped != nil:
			return m.Untyped.GetValue()
		}
	}
	return -1
}

// The admin listener serves Prometheus metrics, behind the admin token,
// that show a small sign-in run; the public listener has no /metrics;
// --metrics-listen serves them without a token.
func TestMetricsE2E(t *testing.T) {
	s, _, _ := startAdminServer(t, sqliteDB(t))
	const email = "metrics@example.com"
	c, sess := signIn(t, s, email, "pw")
	ctx := ctxT(t)
	if _, err := c.Login(ctx, email, "pw"); err != nil {
		t.Fatal(err)
	}
	_, err := c.Login(ctx, email, "wrong")
	wantErrno(t, err, protocol.ErrnoIncorrectPassword, "wrong password")
	if _, err := c.CertificateSign(ctx, sess.SessionToken, certClientKey(), 60_000); err != nil {
		t.Fatal(err)
	}

	mfs := scrape(t, s.AdminURL+"/metrics", e2eAdminToken)
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"keyserver_http_requests_total", map[string]string{"route": "/v1/auth/finish", "method": "POST", "status": "200"}, 2},
		{"keyserver_http_requests_total", map[string]string{"route": "/v1/auth/finish", "method": "POST", "status": "400"}, 1},
		{"keyserver_http_requests_total", map[string]string{"route": "/v1/auth/start", "method": "POST", "status": "200"}, 3},
		{"keyserver_http_requests_total", map[string]string{"route": "/v1/account/create", "method": "POST", "status": "200"}, 1},
		{"keyserver_http_request_duration_seconds", map[string]string{"route": "/v1/auth/finish"}, 3},
		{"keyserver_signins_total", map[string]string{"result": "succeeded"}, 2},
		{"keyserver_signins_total", map[string]string{"result": "failed"}, 1},
		{"keyserver_errors_total", map[string]string{"errno": "103"}, 1},
		{"keyserver_certificates_issued_total", map[string]string{"algorithm": "RS256"}, 1},
		{"keyserver_build_info", map[string]string{"version": "dev", "goversion": runtime.Version()}, 1},
	} {
		if got := sample(mfs, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total", "keyserver_store_transactions_total",
		"keyserver_store_transaction_duration_seconds", "keyserver_mails_total", "keyserver_store_unavailable_total"} {
		if _, ok := mfs[name]; !ok {
			t.Errorf("no %s", name)
		}
	}
	if got := sample(mfs, "keyserver_store_transactions_total", map[string]string{"class": "ephemeral", "result": "ok"}); got < 1 {
		t.Errorf("ephemeral transactions: %v", got)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if v := l.GetValue(); strings.Contains(v, "example.com") || strings.Contains(v, "127.0.0.1") || regexp.MustCompile(`[0-9a-f]{32}`).MatchString(v) {
					t.Errorf("%s: label %s=%q", mf.GetName(), l.GetName(), v)
				}
			}
		}
	}

	if status, body, _ := getJSON(t, s.URL+"/metrics"); status != 404 || body["errno"] != 999.0 {
		t.Errorf("public /metrics: %d %v", status, body)
	}
	if status, body, _ := getJSON(t, s.AdminURL+"/metrics"); status != 401 || body["errno"] != 110.0 {
		t.Errorf("admin /metrics without the token: %d %v", status, body)
	}

	// /__version__ and `keyserver version --json` say the same.
	status, v, _ := getJSON(t, s.URL+"/__version__")
	out, _, code := runKeyserver(t, "version", "--json")
	var cli map[string]any
	if err := json.Unmarshal([]byte(out), &cli); err != nil || code != 0 {
		t.Fatalf("version --json: exit %d %q", code, out)
	}
	if status != 200 || v["version"] != "dev" || v["source"] == "" || fmt.Sprint(v) != fmt.Sprint(cli) {
		t.Errorf("/__version__: %d %v; version --json %v", status, v, cli)
	}
	if !s.waitLog("version=dev") {
		t.Errorf("no version in the startup log")
	}

	t.Run("metrics-listen", func(t *testing.T) {
		s := startServer(t, "--db", sqliteDB(t), "--dev", "--metrics-listen", "127.0.0.1:0")
		addr := logAddr(t, s, "metrics serving")
		mfs := scrape(t, "http://"+addr+"/metrics", "")
		if got := sample(mfs, "keyserver_build_info", map[string]string{"version": "dev"}); got != 1 {
			t.Errorf("build info on --metrics-listen: %v", got)
		}
		if status, _, _ := getJSON(t, "http://"+addr+"/__heartbeat__"); status != 404 {
			t.Errorf("heartbeat on the metrics listener: %d", status)
		}
		if status, _, _ := getJSON(t, s.URL+"/metrics"); status != 404 {
			t.Errorf("public /metrics: %d", status)
		}
	})
}

var logAddrRE = regexp.MustCompile(`addr=(\S+)`)

// logAddr is the addr of the first log line holding msg.
func logAddr(t *testing.T, s *server, msg string) string {
	t.Helper()
	if !s.waitLog(msg) {
		t.Fatalf("no %q in the log:\n%s", msg, s.logs)
	}
	for _, line := range strings.Split(s.logs.String(), "\n") {
		if strings.Contains(line, msg) {
			if m := logAddrRE.FindStringSubmatch(line); m != nil {
				return m[1]
			}
		}
	}
	t.Fatalf("no addr in the %q line:\n%s", msg, s.logs)
	return ""
}

// e2eCA issues server certificates for 127.0.0.1.
type e2eCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newE2ECA(t *testing.T) *e2eCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "keyserver e2e CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &e2eCA{cert: cert, key: key, pool: pool}
}

// install writes a new server certificate with this serial to the files,
// each replaced by a rename as ACME clients do.
func (ca *e2eCA) install(t *testing.T, serial int64, certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(30 * 24 * time.Hour),
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
	for name, data := range map[string][]byte{
		keyFile:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}),
		certFile: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
	} {
		if err := os.WriteFile(name+".new", data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(name+".new", name); err != nil {
			t.Fatal(err)
		}
	}
}

// servedSerial is the serial of the certificate a new TLS connection to
// addr gets, verified against the CA.
func (ca *e2eCA) servedSerial(t *testing.T, addr string) int64 {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatalf("TLS to %s: %v", addr, err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

// waitSerial waits until addr serves the certificate with this serial.
func (ca *e2eCA) waitSerial(t *testing.T, addr string, serial int64, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		got := ca.servedSerial(t, addr)
		if got == serial {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s serves serial %d %v after the renewal, want %d", addr, got, within, serial)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// serve with --tls-cert/--tls-key: a whole sign-in over https with a test
// CA; the renewed certificate files are served without a restart (by the
// file check, then by SIGHUP); TLS 1.1 is refused; HSTS only over https.
func TestTLSE2E(t *testing.T) {
	ca := newE2ECA(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	ca.install(t, 100, certFile, keyFile)
	s, _, _ := startAdminServer(t, sqliteDB(t), "--tls-cert", certFile, "--tls-key", keyFile)
	s.URL = "https://" + strings.TrimPrefix(s.URL, "http://")
	s.AdminURL = "https://" + strings.TrimPrefix(s.AdminURL, "http://")
	pubAddr, adminAddr := strings.TrimPrefix(s.URL, "https://"), strings.TrimPrefix(s.AdminURL, "https://")

	hc := &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool}}}
	c, err := client.New(s.URL, client.WithStretching(cheap), client.WithHTTPClient(hc))
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	const email = "tls@example.com"
	if _, err := c.CreateAccount(ctx, email, "pw", client.CreateOptions{PreVerified: true}); err != nil {
		t.Fatal(err)
	}
	sess, err := c.Login(ctx, email, "pw")
	if err != nil {
		t.Fatalf("sign-in over https: %v", err)
	}
	if _, err := c.Keys(ctx, sess.KeyFetchToken, sess.UnwrapBKey); err != nil {
		t.Fatalf("keys over https: %v", err)
	}
	resp, err := hc.Get(s.URL + "/__heartbeat__")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 || resp.Header.Get("Strict-Transport-Security") != "max-age=10886400" {
		t.Errorf("https heartbeat: TLS %v, HSTS %q", resp.TLS, resp.Header.Get("Strict-Transport-Security"))
	}
	if _, err := tls.Dial("tcp", pubAddr, &tls.Config{RootCAs: ca.pool, MaxVersion: tls.VersionTLS11}); err == nil {
		t.Error("TLS 1.1 accepted")
	}
	if ca.servedSerial(t, adminAddr) != 100 {
		t.Error("admin listener without the certificate")
	}
	if !s.waitLog("public_url=https://") {
		t.Error("the default public URL is not https")
	}

	// Renewal: the files change, the server notices within seconds.
	ca.install(t, 101, certFile, keyFile)
	ca.waitSerial(t, pubAddr, 101, 10*time.Second)
	ca.waitSerial(t, adminAddr, 101, 10*time.Second)
	if !s.waitLog("TLS certificate reloaded") {
		t.Error("no reload in the log")
	}
	// SIGHUP reloads at once.
	ca.install(t, 102, certFile, keyFile)
	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	ca.waitSerial(t, pubAddr, 102, time.Second)
	// And the session goes on over the new certificate (a new connection).
	hc.CloseIdleConnections()
	if _, err := c.Devices(ctx, sess.SessionToken); err != nil {
		t.Fatalf("after renewal: %v", err)
	}
	if _, err := c.Login(ctx, email, "pw"); err != nil {
		t.Fatalf("sign-in after renewal: %v", err)
	}

	// Without TLS, http public URLs get no HSTS.
	plain := startServer(t, "--db", sqliteDB(t), "--dev")
	if _, _, h := getJSON(t, plain.URL+"/__heartbeat__"); h.Get("Strict-Transport-Security") != "" {
		t.Errorf("HSTS over http: %q", h.Get("Strict-Transport-Security"))
	}
}

// manyClients sends each request with another X-Forwarded-For address.
type manyClients struct{ n atomic.Uint32 }

func (m *manyClients) RoundTrip(r *http.Request) (*http.Response, error) {
	n := m.n.Add(1)
	r = r.Clone(r.Context())
	r.Header.Set("X-Forwarded-For", fmt.Sprintf("10.%d.%d.%d", n>>16&0xff, n>>8&0xff, n&0xff))
	return http.DefaultTransport.RoundTrip(r)
}

// keyserver backup copies a live SQLite database while accounts are being
// created; the copy passes backup --verify and a server started on it
// signs in every account created before the backup began.
func TestBackupE2E(t *testing.T) {
	dir := t.TempDir()
	dbFile := filepath.Join(dir, "live.db")
	// Each request seems to come from another client (X-Forwarded-For from
	// a trusted proxy), so that the per-ip limits of abuse protection (spec
	// 14) let the writers go on.
	s := startServer(t, "--db", "sqlite:"+dbFile, "--dev", "--trusted-proxies", "127.0.0.1")
	c, err := client.New(s.URL, client.WithStretching(cheap), client.WithHTTPClient(&http.Client{Timeout: time.Minute, Transport: &manyClients{}}))
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	const before = 8
	for i := range before {
		if _, err := c.CreateAccount(ctx, fmt.Sprintf("before%d@example.com", i), "pw", client.CreateOptions{PreVerified: true}); err != nil {
			t.Fatal(err)
		}
	}

	// Writers create accounts and sign in during the backup.
	var created, during atomic.Int64
	var backingUp atomic.Bool
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				email := fmt.Sprintf("during%d-%d@example.com", w, i)
				if _, err := c.CreateAccount(ctx, email, "pw", client.CreateOptions{PreVerified: true}); err != nil {
					t.Errorf("create during the backup: %v", err)
					return
				}
				if _, err := c.Login(ctx, email, "pw"); err != nil {
					t.Errorf("sign-in during the backup: %v", err)
					return
				}
				created.Add(1)
				if backingUp.Load() {
					during.Add(1)
				}
			}
		}()
	}
	for created.Load() < 3 {
		time.Sleep(10 * time.Millisecond)
	}
	backup := filepath.Join(dir, "backup", "copy.db")
	if err := os.Mkdir(filepath.Dir(backup), 0o700); err != nil {
		t.Fatal(err)
	}
	backingUp.Store(true)
	out, errOut, code := runKeyserver(t, "backup", "--db", "sqlite:"+dbFile, "--out", backup)
	time.Sleep(200 * time.Millisecond) // writes go on after the copy, too
	backingUp.Store(false)
	close(stop)
	wg.Wait()
	if code != 0 || !strings.Contains(out, "integrity ok") {
		t.Fatalf("backup: exit %d, %q %q", code, out, errOut)
	}
	if during.Load() == 0 {
		t.Error("no write went through while the backup ran")
	}

	out, errOut, code = runKeyserver(t, "backup", "--verify", backup)
	if code != 0 || !strings.Contains(out, "ok: integrity ok") {
		t.Fatalf("verify: exit %d, %q %q", code, out, errOut)
	}
	m := regexp.MustCompile(`(\d+) accounts`).FindStringSubmatch(out)
	var n int64
	if m != nil {
		fmt.Sscan(m[1], &n)
	}
	if n < before+3 || n > before+created.Load() {
		t.Errorf("the copy holds %d accounts: want %d to %d (%q)", n, before+3, before+created.Load(), out)
	}
	if fi, err := os.Stat(backup); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("backup file: %v %v", fi, err)
	}

	// A server on the copy (as a restore would start it) signs them in.
	restored := startServer(t, "--db", "sqlite:"+backup, "--dev")
	rc := newClient(t, restored)
	for i := range before {
		if _, err := rc.Login(ctx, fmt.Sprintf("before%d@example.com", i), "pw"); err != nil {
			t.Errorf("sign-in on the restored copy: before%d: %v", i, err)
		}
	}
}
