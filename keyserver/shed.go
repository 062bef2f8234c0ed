package keyserver

import (
	"errors"
	"net/http"
	"runtime"
	"time"

	"github.com/keyserver/keyserver/accounts"
	"github.com/keyserver/keyserver/protocol"
)

// shedRetryAfter is the Retry-After of a shed request: the queue drains in
// well under a second, so a client may come back soon.
const shedRetryAfter = time.Second

var errOverloaded = errors.New("overloaded: CPU-heavy request queue full")

// limiter bounds the CPU-heavy endpoints (SRP, certificate signing,
// account creation): at most run requests work at once, at most queue more
// wait, each for at most wait; any other is answered at once with 503/201
// and Retry-After (spec 1.5) instead of queueing without bound.
type limiter struct {
	admit chan struct{} // running + waiting
	run   chan struct{}
	wait  time.Duration
}

func newLimiter(run, queue int, wait time.Duration) *limiter {
	return &limiter{admit: make(chan struct{}, run+queue), run: make(chan struct{}, run), wait: wait}
}

// shed serves next under the limit.
func (l *limiter) shed(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case l.admit <- struct{}{}:
			defer func() { <-l.admit }()
		default:
			writeError(w, r, shedError())
			return
		}
		timer := time.NewTimer(l.wait)
		defer timer.Stop()
		select {
		case l.run <- struct{}{}:
			defer func() { <-l.run }()
			// Yield once before the heavy work. Go's scheduler serves
			// goroutines readied in-process (database and channel
			// wake-ups) from a P's own queue, and a saturated P takes
			// from the global queue, where the network poller's
			// goroutines land (connections with a request to read), only
			// every 61st turn: with one P those waited seconds under
			// overload, before any limit could shed them. Gosched puts
			// this goroutine at the back of the global queue, so every
			// heavy request first lets the requests that arrived before
			// it be read, and shed at once when the queue is full.
			runtime.Gosched()
		case <-timer.C:
			writeError(w, r, shedError())
			return
		case <-r.Context().Done():
			writeError(w, r, r.Context().Err())
			return
		}
		next.ServeHTTP(w, r)
	})
}

func shedError() error {
	return &accounts.Error{Errno: protocol.ErrnoServiceUnavailable, RetryAfter: shedRetryAfter, Cause: errOverloaded}
}
