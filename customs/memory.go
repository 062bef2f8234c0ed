package customs

import (
	"strings"
	"sync"
	"time"

	"github.com/keyserver/keyserver/store"
)

// memory counts the request-rate rules (R4, R5, R7) of one instance: per
// rule and key, the times of the last Limit requests let through, so the
// window is exactly sliding. Memory is bounded by the requests of the
// longest window; keys whose window has passed are swept once a minute.
type memory struct {
	mu        sync.Mutex
	m         map[memKey]*ring
	lastSweep time.Time
}

type memKey struct {
	rule string
	key  store.CountKey
}

// ring holds up to limit request times; next is the oldest once full.
type ring struct {
	times  []time.Time
	next   int
	last   time.Time
	window time.Duration
}

// nth is the limit-th most recent time, zero while the ring is not full.
func (r *ring) nth(limit int) time.Time {
	if len(r.times) < limit {
		return time.Time{}
	}
	return r.times[r.next]
}

func (r *ring) add(t time.Time, limit int) {
	r.last = t
	if len(r.times) < limit {
		r.times = append(r.times, t)
		return
	}
	r.times[r.next] = t
	r.next = (r.next + 1) % len(r.times)
}

func newMemory() *memory { return &memory{m: map[memKey]*ring{}} }

// check evaluates rules for req at now; with count, and when none refuses,
// it counts the request for each.
func (m *memory) check(rules []*Rule, req *Request, now time.Time, count bool) []hit {
	if len(rules) == 0 {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var hits []hit
	for _, r := range rules {
		k, _ := key(r, req)
		rg := m.m[memKey{r.Name, k}]
		if rg == nil {
			continue
		}
		if at := rg.nth(r.Limit); !at.IsZero() {
			if until := at.Add(r.Window); until.After(now) {
				hits = append(hits, hit{rule: r, key: k, until: until})
			}
		}
	}
	if len(hits) > 0 || !count {
		return hits
	}
	for _, r := range rules {
		k, _ := key(r, req)
		mk := memKey{r.Name, k}
		rg := m.m[mk]
		if rg == nil || len(rg.times) > r.Limit {
			rg = &ring{times: make([]time.Time, 0, min(r.Limit, 16)), window: r.Window}
			m.m[mk] = rg
		}
		rg.add(now, r.Limit)
	}
	if now.Sub(m.lastSweep) > time.Minute {
		m.sweep(now)
	}
	return nil
}

// sweep forgets the keys whose newest request has left its window.
func (m *memory) sweep(now time.Time) {
	m.lastSweep = now
	for k, rg := range m.m {
		if !rg.last.Add(rg.window).After(now) {
			delete(m.m, k)
		}
	}
}

// blocks lists the keys of rule r that refuse now and match f.
func (m *memory) blocks(r *Rule, f store.CountFilter, now time.Time) []Block {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Block
	for k, rg := range m.m {
		if k.rule != r.Name || !matches(k.key, f) || r.Key == BySession && (f.Fold != "" || f.IP != "") {
			continue
		}
		at := rg.nth(r.Limit)
		if until := at.Add(r.Window); !at.IsZero() && until.After(now) {
			n := 0
			for _, t := range rg.times {
				if t.After(now.Add(-r.Window)) {
					n++
				}
			}
			bk := k.key
			if r.Key == BySession {
				bk.IP = strings.TrimPrefix(bk.IP, "session:")
			}
			out = append(out, Block{Rule: r.Name, Key: bk, Count: n, Until: until})
		}
	}
	return out
}

// clear forgets the keys of rule r that match f and returns how many
// counted requests went.
func (m *memory) clear(r *Rule, f store.CountFilter) int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var n int64
	for k, rg := range m.m {
		if k.rule == r.Name && matches(k.key, f) && (r.Key != BySession || (f.Fold == "" && f.IP == "")) {
			n += int64(len(rg.times))
			delete(m.m, k)
		}
	}
	return n
}

func matches(k store.CountKey, f store.CountFilter) bool {
	return (f.Fold == "" || k.Fold == f.Fold) && (f.IP == "" || k.IP == f.IP)
}
