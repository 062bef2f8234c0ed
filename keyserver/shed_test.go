package keyserver

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// A full queue answers 503/201 with Retry-After at once; the requests
// admitted run when a slot frees.
func TestLimiterSheds(t *testing.T) {
	l := newLimiter(1, 1, time.Minute)
	release := make(chan struct{})
	started := make(chan struct{}, 2)
	h := l.shed(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		<-release
		w.WriteHeader(http.StatusNoContent)
	}))
	codes := make([]int, 2)
	var wg sync.WaitGroup
	for i := range 2 { // one runs, one waits
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/auth/start", nil))
			codes[i] = rec.Code
		}()
	}
	<-started
	for len(l.admit) < 2 { // the second is queued
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/auth/start", nil))
	var body map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &body)
	if rec.Code != 503 || body["errno"] != 201.0 || rec.Header().Get("Retry-After") != "1" {
		t.Fatalf("third request: %d %v Retry-After %q", rec.Code, body, rec.Header().Get("Retry-After"))
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("shed after %v, not at once", d)
	}
	close(release)
	wg.Wait()
	if codes[0] != http.StatusNoContent || codes[1] != http.StatusNoContent {
		t.Fatalf("admitted requests: %v", codes)
	}
}

// A request that waits longer than the wait bound is shed.
func TestLimiterWaitBound(t *testing.T) {
	l := newLimiter(1, 1, 20*time.Millisecond)
	l.run <- struct{}{} // the only slot is busy
	rec := httptest.NewRecorder()
	l.shed(http.NotFoundHandler()).ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", nil))
	if rec.Code != 503 {
		t.Fatalf("waited request: %d", rec.Code)
	}
}

// Cheap routes are never shed, whatever the heavy ones do.
func TestCheapRoutesNotShed(t *testing.T) {
	s, err := New(Config{PublicURL: "http://127.0.0.1:9", HeavyConcurrency: 1, HeavyQueue: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.heavy.admit <- struct{}{}
	s.heavy.admit <- struct{}{} // full
	h := s.Handler()
	for _, path := range []string{"/__lbheartbeat__", "/", "/static/api.js"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != 200 {
			t.Errorf("%s: %d", path, rec.Code)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/auth/start", nil))
	if rec.Code != 503 {
		t.Errorf("auth/start with a full queue: %d", rec.Code)
	}
}
