package keyserver

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/keyserver/keyserver/store"
)

// downStore is a store whose database cannot serve.
type downStore struct{ store.Store }

func (downStore) Ping(context.Context) error {
	return fmt.Errorf("ping: %w", store.ErrUnavailable)
}

func counterValue(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 1)
	c.Collect(ch)
	var m dto.Metric
	if err := (<-ch).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// A shed request is counted by route, a database that cannot serve as a
// store-unavailable event; neither is the other.
func TestMetricsShedAndUnavailable(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, err := New(Config{PublicURL: "http://127.0.0.1:9", HeavyConcurrency: 1, HeavyQueue: 1, Metrics: reg}, downStore{})
	if err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	s.heavy.admit <- struct{}{}
	s.heavy.admit <- struct{}{} // full
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/auth/start", nil))
	if rec.Code != 503 {
		t.Fatalf("auth/start with a full queue: %d", rec.Code)
	}
	if got := counterValue(t, s.metrics.shed.WithLabelValues("/v1/auth/start")); got != 1 {
		t.Errorf("shed{/v1/auth/start} = %v", got)
	}
	if got := counterValue(t, s.metrics.storeUnavailable); got != 0 {
		t.Errorf("store unavailable after a shed request = %v", got)
	}

	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/__heartbeat__", nil))
	if rec.Code != 503 {
		t.Fatalf("heartbeat on a store that is down: %d", rec.Code)
	}
	if got := counterValue(t, s.metrics.storeUnavailable); got != 1 {
		t.Errorf("store unavailable = %v", got)
	}
	if got := counterValue(t, s.metrics.errors.WithLabelValues("201")); got != 2 {
		t.Errorf("errors{201} = %v", got)
	}
	if got := counterValue(t, s.metrics.requests.WithLabelValues("/__heartbeat__", "GET", "503")); got != 1 {
		t.Errorf("requests{/__heartbeat__ GET 503} = %v", got)
	}
}

func TestMethodLabel(t *testing.T) {
	for in, want := range map[string]string{"GET": "GET", "POST": "POST", "OPTIONS": "OPTIONS", "get": "other", "BREW": "other"} {
		if got := methodLabel(in); got != want {
			t.Errorf("methodLabel(%q) = %q, want %q", in, got, want)
		}
	}
}

// BenchmarkRouteTemplate is the cost metrics add to every request: the
// route lookup for its label.
func BenchmarkRouteTemplate(b *testing.B) {
	s, err := New(Config{PublicURL: "http://127.0.0.1:9"}, nil)
	if err != nil {
		b.Fatal(err)
	}
	routes := s.routes()
	for _, path := range []string{"/v1/account/create", "/v1/certificate/sign", "/__lbheartbeat__", "/no/such/path"} {
		r := httptest.NewRequest(http.MethodPost, path, nil)
		b.Run(path, func(b *testing.B) {
			for b.Loop() {
				_ = routeTemplate(routes, r)
			}
		})
	}
}
