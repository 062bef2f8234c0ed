package keyserver_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyserver/keyserver/accounts"
	"github.com/keyserver/keyserver/certs"
	"github.com/keyserver/keyserver/client"
	"github.com/keyserver/keyserver/keyserver"
	"github.com/keyserver/keyserver/protocol"
)

// metricValue is the value of the counter, gauge or histogram (its sample
// count) name with exactly these labels in reg, -1 when there is none.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, l := range m.GetLabel() {
				if v, ok := labels[l.GetName()]; !ok || v != l.GetValue() {
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
			}
		}
	}
	return -1
}

func withMetrics(reg *prometheus.Registry, signer *certs.Signer) func(*keyserver.Config) {
	return func(c *keyserver.Config) {
		c.Metrics, c.Signer = reg, signer
		c.Version = keyserver.VersionInfo{Version: "v1.2.3", Commit: "0123abcd", Source: "https://github.com/keyserver/keyserver"}
	}
}

// A small sign-in run shows in the metrics, labelled by route template,
// method and status; the admin API serves them behind its token, the
// public API not at all; no label holds a uid, an email or an IP.
func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	signer := testSigner(t, certs.RS256, 0)
	f := newAPIFixture(t, withMetrics(reg, signer))
	const email = "metrics@example.com"
	uid := f.account(t, email)
	f.login(t, email)
	s := f.login(t, email)
	_, err := f.c.Login(t.Context(), email, "wrong password")
	wantErrno(t, "wrong password", err, protocol.ErrnoIncorrectPassword)
	if _, err := f.c.CertificateSign(t.Context(), s.SessionToken, clientKey(), 60_000); err != nil {
		t.Fatal(err)
	}
	f.device(t, s, "Laptop", "desktop")
	f.get(t, "/no/such/path")
	if status, _ := f.adminRaw(t, http.MethodGet, "/admin/v1/accounts/"+hexOf(uid), "", "Bearer "+adminToken); status != 200 {
		t.Fatalf("admin account: %d", status)
	}

	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"keyserver_http_requests_total", map[string]string{"route": "/v1/auth/finish", "method": "POST", "status": "200"}, 2},
		{"keyserver_http_requests_total", map[string]string{"route": "/v1/auth/finish", "method": "POST", "status": "400"}, 1},
		{"keyserver_http_requests_total", map[string]string{"route": "/v1/account/create", "method": "POST", "status": "200"}, 1},
		{"keyserver_http_requests_total", map[string]string{"route": "other", "method": "GET", "status": "404"}, 1},
		{"keyserver_http_requests_total", map[string]string{"route": "/admin/v1/accounts/{uid}", "method": "GET", "status": "200"}, 1},
		{"keyserver_http_request_duration_seconds", map[string]string{"route": "/v1/auth/finish"}, 3},
		{"keyserver_signins_total", map[string]string{"result": "succeeded"}, 2},
		{"keyserver_signins_total", map[string]string{"result": "failed"}, 1},
		{"keyserver_certificates_issued_total", map[string]string{"algorithm": "RS256"}, 1},
		{"keyserver_errors_total", map[string]string{"errno": "103"}, 1},
		{"keyserver_errors_total", map[string]string{"errno": "999"}, 1},
		{"keyserver_mails_total", map[string]string{"result": "sent"}, 0}, // preVerified: no mail
		{"keyserver_mails_total", map[string]string{"result": "failed"}, 0},
		{"keyserver_store_unavailable_total", map[string]string{}, 0},
		{"keyserver_build_info", map[string]string{"version": "v1.2.3", "commit": "0123abcd", "goversion": runtime.Version()}, 1},
	} {
		if got := metricValue(t, reg, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}

	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	secrets := []string{hexOf(uid), email, hex.EncodeToString([]byte(email)), "127.0.0.1", hexOf(s.SessionToken)}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				for _, sec := range secrets {
					if strings.Contains(l.GetValue(), sec) {
						t.Errorf("%s: label %s=%q holds %q", mf.GetName(), l.GetName(), l.GetValue(), sec)
					}
				}
			}
		}
	}

	// The exposition: admin only, behind the token.
	if resp, _ := f.get(t, "/metrics"); resp.StatusCode != 404 {
		t.Errorf("public /metrics: %d", resp.StatusCode)
	}
	if status, body := f.adminRaw(t, http.MethodGet, "/metrics", "", ""); status != 401 || body["errno"] != 110.0 {
		t.Errorf("admin /metrics without the token: %d %v", status, body)
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, f.adminURL+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	text, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(text), `keyserver_signins_total{result="succeeded"} 2`) {
		t.Fatalf("admin /metrics: %d\n%s", resp.StatusCode, text)
	}
}

// failingMailer fails every message.
type failingMailer struct{}

func (failingMailer) Send(context.Context, *accounts.Message) error {
	return errors.New("smtp down")
}

// Mail handed to the mailer is counted as sent or failed.
func TestMetricsMail(t *testing.T) {
	for _, tc := range []struct {
		name     string
		mailer   accounts.Mailer
		sent, ok float64
	}{
		{"sent", discardMailer{}, 1, 0},
		{"failed", failingMailer{}, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			f := newAPIFixture(t, withMetrics(reg, nil), func(c *keyserver.Config) { c.Mailer = tc.mailer })
			if _, err := f.c.CreateAccount(t.Context(), "mail@example.com", password, client.CreateOptions{}); err != nil {
				t.Fatal(err) // C5: created even when the verification mail fails
			}
			if got := metricValue(t, reg, "keyserver_mails_total", map[string]string{"result": "sent"}); got != tc.sent {
				t.Errorf("sent = %v, want %v", got, tc.sent)
			}
			if got := metricValue(t, reg, "keyserver_mails_total", map[string]string{"result": "failed"}); got != tc.ok {
				t.Errorf("failed = %v, want %v", got, tc.ok)
			}
		})
	}
}

// MetricsHandler serves /metrics alone, without a token.
func TestMetricsHandler(t *testing.T) {
	reg := prometheus.NewRegistry()
	srv, err := keyserver.New(keyserver.Config{PublicURL: "http://127.0.0.1:9000", Metrics: reg}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := srv.MetricsHandler()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "keyserver_build_info") {
		t.Fatalf("/metrics: %d %s", rec.Code, rec.Body)
	}
	for _, path := range []string{"/", "/admin/v1/audit", "/__heartbeat__"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != 404 {
			t.Errorf("%s on the metrics listener: %d", path, rec.Code)
		}
	}
	rec = httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != 404 {
		t.Errorf("public /metrics: %d", rec.Code)
	}

	// Without a registry there is nothing to serve, and one registry takes
	// one server.
	plain, err := keyserver.New(keyserver.Config{PublicURL: "http://127.0.0.1:9000"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if plain.MetricsHandler() != nil {
		t.Error("MetricsHandler without Config.Metrics")
	}
	if _, err := keyserver.New(keyserver.Config{PublicURL: "http://127.0.0.1:9000", Metrics: reg}, nil); err == nil {
		t.Error("a second server registered on the same registry")
	}
}

// GET /__version__ answers the build (Dockerflow), with no body allowed.
func TestVersionEndpoint(t *testing.T) {
	v := keyserver.VersionInfo{Version: "v1.2.3", Commit: "0123abcd", Source: "https://github.com/keyserver/keyserver"}
	srv, err := keyserver.New(keyserver.Config{PublicURL: "http://127.0.0.1:9000", Version: v}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/__version__", nil))
	var got map[string]string
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || rec.Code != 200 {
		t.Fatalf("/__version__: %d %s", rec.Code, rec.Body)
	}
	if len(got) != 3 || got["version"] != v.Version || got["commit"] != v.Commit || got["source"] != v.Source {
		t.Fatalf("/__version__: %v", got)
	}
	rec = httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/__version__", nil))
	if rec.Code != 404 {
		t.Errorf("POST /__version__: %d", rec.Code)
	}
}

// With HSTSOnlyHTTPS, Strict-Transport-Security is sent only when the
// public URL is https.
func TestHSTSOnlyHTTPS(t *testing.T) {
	for _, tc := range []struct {
		publicURL string
		only      bool
		want      string
	}{
		{"http://127.0.0.1:9000", false, "max-age=10886400"},
		{"http://127.0.0.1:9000", true, ""},
		{"https://keys.example.com", true, "max-age=10886400"},
		{"HTTPS://keys.example.com", true, "max-age=10886400"},
	} {
		srv, err := keyserver.New(keyserver.Config{PublicURL: tc.publicURL, HSTSOnlyHTTPS: tc.only}, nil)
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/__lbheartbeat__", nil))
		if got := rec.Header().Get("Strict-Transport-Security"); got != tc.want || rec.Code != 200 {
			t.Errorf("%s, only https %v: %d HSTS %q, want %q", tc.publicURL, tc.only, rec.Code, got, tc.want)
		}
	}
}

// Abuse-protection refusals are counted by rule, and a caller's own
// OnRefusal still hears of them.
func TestMetricsRateLimitRefusals(t *testing.T) {
	reg := prometheus.NewRegistry()
	var heard []string
	f := newAPIFixture(t, withLimits("R4=1/1m"), withMetrics(reg, nil), func(c *keyserver.Config) {
		c.OnRefusal = func(rule string) { heard = append(heard, rule) }
	})
	c := f.from(t, "203.0.113.4")
	_, err := c.AuthStart(t.Context(), "nobody@example.org")
	wantErrno(t, "unknown", err, protocol.ErrnoUnknownAccount)
	_, err = c.AuthStart(t.Context(), "nobody@example.org")
	wantErrno(t, "2nd auth/start", err, protocol.ErrnoTooManyRequests)
	if got := metricValue(t, reg, "keyserver_rate_limit_refusals_total", map[string]string{"rule": "R4"}); got != 1 {
		t.Errorf("refusals{R4} = %v", got)
	}
	if got := metricValue(t, reg, "keyserver_rate_limit_refusals_total", map[string]string{"rule": "R1"}); got != 0 {
		t.Errorf("refusals{R1} = %v, want a series at 0", got)
	}
	if len(heard) != 1 || heard[0] != "R4" {
		t.Errorf("OnRefusal heard %v", heard)
	}
	if got := metricValue(t, reg, "keyserver_errors_total", map[string]string{"errno": "114"}); got != 1 {
		t.Errorf("errors{114} = %v", got)
	}
}
