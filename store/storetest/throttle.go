package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/keyserver/keyserver/store"
)

// throttle calls s.Throttle and fails the test on an error.
func throttle(t *testing.T, s store.Store, name string, now time.Time, window time.Duration, limit int) time.Duration {
	t.Helper()
	retry, err := s.Throttle(t.Context(), name, now, window, limit)
	if err != nil {
		t.Fatalf("Throttle(%s, %v): %v", name, now, err)
	}
	return retry
}

// A sliding window: limit requests in any window, refused requests are not
// counted, and the answer says when the next one is allowed.
func testThrottle(t *testing.T, s store.Store) {
	const limit = 3
	window := time.Hour
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	for i, d := range []time.Duration{0, time.Minute, 2 * time.Minute} {
		if r := throttle(t, s, "a", at(d), window, limit); r != 0 {
			t.Fatalf("request %d refused (retry after %v)", i+1, r)
		}
	}
	// Refused ones are not counted: the answer stays the same.
	for range 3 {
		if r := throttle(t, s, "a", at(3*time.Minute), window, limit); r != 57*time.Minute {
			t.Fatalf("4th request: retry after %v, want 57m", r)
		}
	}
	// Other names have their own count.
	if r := throttle(t, s, "b", at(3*time.Minute), window, limit); r != 0 {
		t.Fatalf("other name refused: %v", r)
	}
	// The first request leaves the window exactly one window after it.
	if r := throttle(t, s, "a", at(time.Hour-time.Millisecond), window, limit); r != time.Millisecond {
		t.Fatalf("just before the first leaves: retry after %v, want 1ms", r)
	}
	if r := throttle(t, s, "a", at(time.Hour), window, limit); r != 0 {
		t.Fatalf("after the first left the window: refused (%v)", r)
	}
	// A sliding window, not a fixed one: the 1 min request is still in it.
	if r := throttle(t, s, "a", at(time.Hour+time.Second), window, limit); r != time.Minute-time.Second {
		t.Fatalf("next: retry after %v, want 59s", r)
	}
}

// Concurrent counts of one name never exceed the limit.
func testThrottleConcurrent(t *testing.T, s store.Store) {
	const n, limit = 12, 4
	var wg sync.WaitGroup
	allowed := make(chan bool, n)
	for range n {
		wg.Go(func() {
			retry, err := s.Throttle(t.Context(), "c", t0, time.Hour, limit)
			if err != nil {
				t.Errorf("Throttle: %v", err)
				return
			}
			allowed <- retry == 0
		})
	}
	wg.Wait()
	close(allowed)
	count := 0
	for ok := range allowed {
		if ok {
			count++
		}
	}
	if count != limit {
		t.Fatalf("%d of %d concurrent requests counted, want %d", count, n, limit)
	}
}

// Purge removes counts whose window has passed.
func testThrottlePurge(t *testing.T, s store.Store) {
	throttle(t, s, "p", t0, time.Minute, 1)
	if r := throttle(t, s, "p", t0.Add(time.Second), time.Minute, 1); r == 0 {
		t.Fatal("second request in the window was counted")
	}
	if n, err := s.Purge(t.Context(), t0.Add(30*time.Second), t0.Add(-time.Hour)); err != nil || n != 0 {
		t.Fatalf("Purge before expiry = %d, %v; want 0", n, err)
	}
	if n, err := s.Purge(t.Context(), t0.Add(2*time.Minute), t0.Add(-time.Hour)); err != nil || n != 2 {
		t.Fatalf("Purge after expiry = %d, %v; want 2 rows (the count and its name)", n, err)
	}
	if r := throttle(t, s, "p", t0.Add(2*time.Minute), time.Minute, 1); r != 0 {
		t.Fatalf("request after Purge refused: %v", r)
	}
}
