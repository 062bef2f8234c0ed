package recovery

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/keyserver/keyserver/internal/testidp"
)

// heldFetch is a key fetcher whose fetches can be held until released.
type heldFetch struct {
	calls   atomic.Int64
	started chan struct{}
	hold    atomic.Bool
	release chan struct{}

	mu   sync.Mutex
	body []byte
}

func newHeldFetch() *heldFetch {
	return &heldFetch{started: make(chan struct{}, 16), release: make(chan struct{})}
}

func (f *heldFetch) publish(t *testing.T, keys ...*testidp.Key) {
	var set jose.JSONWebKeySet
	for _, k := range keys {
		set.Keys = append(set.Keys, k.JWK())
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.body = b
	f.mu.Unlock()
}

func (f *heldFetch) fetch(ctx context.Context, url string) ([]byte, error) {
	f.calls.Add(1)
	f.started <- struct{}{}
	if f.hold.Load() {
		<-f.release
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.body, nil
}

// lookupAsync runs a lookup in a goroutine and returns its result channel.
func lookupAsync(ctx context.Context, src *keySource, kid string, now time.Time) <-chan error {
	c := make(chan error, 1)
	go func() {
		_, err := src.lookup(ctx, kid, "RS256", now)
		c <- err
	}()
	return c
}

// promptly waits for a lookup that must not wait for the running fetch.
func promptly(t *testing.T, what string, c <-chan error) error {
	t.Helper()
	select {
	case err := <-c:
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("%s waited for the running fetch", what)
		return nil
	}
}

// A slow fetch holds no lock: verifications the cached keys serve go on,
// those that need the fetch wait for the one running instead of starting
// others, and a cancelled one stops waiting.
func TestKeySourceFetchOutsideTheLock(t *testing.T) {
	a, b := testidp.NewKey(t, "a", "RS256"), testidp.NewKey(t, "b", "RS256")
	f := newHeldFetch()
	f.publish(t, a)
	src := &keySource{url: "https://idp.example/jwks.json", parse: parseJWKS, fetch: f.fetch}
	ctx := context.Background()
	now := time.Now()
	if _, err := src.lookup(ctx, "a", "RS256", now); err != nil {
		t.Fatal(err)
	}
	<-f.started

	// Key b appears; a minute later a token names it and the fetch hangs.
	f.publish(t, a, b)
	f.hold.Store(true)
	now = now.Add(time.Minute)
	first := lookupAsync(ctx, src, "b", now)
	<-f.started
	if err := promptly(t, "a known kid", lookupAsync(ctx, src, "a", now)); err != nil {
		t.Fatalf("known kid during the fetch: %v", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := promptly(t, "a cancelled request", lookupAsync(cancelled, src, "b", now)); err == nil {
		t.Fatal("cancelled request got the key before the fetch ended")
	}
	var waiting []<-chan error
	for range 4 {
		waiting = append(waiting, lookupAsync(ctx, src, "b", now))
	}
	time.Sleep(50 * time.Millisecond) // let them reach the wait
	f.release <- struct{}{}
	for i, c := range append(waiting, first) {
		if err := <-c; err != nil {
			t.Fatalf("lookup %d of the new kid: %v", i, err)
		}
	}
	if n := f.calls.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2 (one per need, not one per request)", n)
	}

	// An hour later the keys are fetched again; meanwhile other requests
	// use the cached keys.
	now = now.Add(time.Hour)
	refreshing := lookupAsync(ctx, src, "a", now)
	<-f.started
	if err := promptly(t, "a known kid while the cache is refreshed", lookupAsync(ctx, src, "b", now)); err != nil {
		t.Fatal(err)
	}
	f.release <- struct{}{}
	if err := <-refreshing; err != nil {
		t.Fatal(err)
	}
	if n := f.calls.Load(); n != 3 {
		t.Fatalf("%d fetches, want 3", n)
	}
}
