package customs_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyserver/keyserver/customs"
	"github.com/keyserver/keyserver/protocol"
	"github.com/keyserver/keyserver/store"
	"github.com/keyserver/keyserver/store/sqlstore"
	"github.com/keyserver/keyserver/store/sqlstore/pgtest"
)

func TestIPKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1":               "192.0.2.1",
		"::ffff:192.0.2.1":        "192.0.2.1",
		"2001:db8:1:2:3:4:5:6":    "2001:db8:1:2::/64",
		"2001:db8:1:2::1":         "2001:db8:1:2::/64",
		"fe80::1%eth0":            "fe80::/64",
		"not an ip":               "not an ip",
		"2001:DB8:1:2:ffff::abcd": "2001:db8:1:2::/64",
	} {
		if got := customs.IPKey(in); got != want {
			t.Errorf("IPKey(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDefaultRules(t *testing.T) {
	rules := customs.DefaultRules()
	want := map[string][2]any{ // spec 14.2
		"R1": {5, 15 * time.Minute}, "R2": {20, 24 * time.Hour}, "R3": {50, time.Hour}, "R4": {300, time.Minute},
		"R5": {30, time.Hour}, "R6a": {5, time.Hour}, "R6b": {20, 24 * time.Hour}, "R7": {60, time.Minute},
		"R8a": {3, time.Hour}, "R8b": {10, time.Hour}, "R9a": {20, time.Hour}, "R9b": {20, time.Hour},
		"R9c": {3, time.Hour}, "R9d": {3, time.Hour}, "R10a": {10, time.Hour}, "R10b": {5, time.Hour}, "R11": {10, time.Hour},
	}
	if len(rules) != len(want) {
		t.Fatalf("%d rules, want %d", len(rules), len(want))
	}
	for _, r := range rules {
		w, ok := want[r.Name]
		if !ok || r.Limit != w[0] || r.Window != w[1] {
			t.Errorf("%s: %d in %v, want %v", r.Name, r.Limit, r.Window, w)
		}
		if (r.Refusal == customs.Blocked) != (r.Name == "R2") {
			t.Errorf("%s: refusal %d", r.Name, r.Refusal)
		}
	}
	if _, err := customs.New(customs.Config{Now: time.Now, Rand: rand.Reader}, nil); err != nil {
		t.Fatal(err)
	}
	table := customs.Table(rules)
	for _, s := range []string{"| R1 | failed auth/finish (103) per (account, ip)", "| 5 | 15m |", "| R2 |", "400/125", "| 24h |", "instance memory"} {
		if !strings.Contains(table, s) {
			t.Errorf("table lacks %q:\n%s", s, table)
		}
	}
}

func TestParseLimits(t *testing.T) {
	rules := customs.DefaultRules()
	in := "# tighter\nR1 3 10m\n\nR6b=10/12h\n"
	if err := customs.ParseLimits(strings.NewReader(in), rules); err != nil {
		t.Fatal(err)
	}
	if err := customs.ParseLimitList("R4=1000/1m, R9a=5/30m", rules); err != nil {
		t.Fatal(err)
	}
	for _, r := range rules {
		switch r.Name {
		case "R1":
			if r.Limit != 3 || r.Window != 10*time.Minute {
				t.Errorf("R1 = %d/%v", r.Limit, r.Window)
			}
		case "R6b":
			if r.Limit != 10 || r.Window != 12*time.Hour {
				t.Errorf("R6b = %d/%v", r.Limit, r.Window)
			}
		case "R4":
			if r.Limit != 1000 {
				t.Errorf("R4 = %d", r.Limit)
			}
		case "R9a":
			if r.Limit != 5 || r.Window != 30*time.Minute {
				t.Errorf("R9a = %d/%v", r.Limit, r.Window)
			}
		}
	}
	for _, bad := range []string{"R99 1 1m", "R1 0 1m", "R1 1 -1m", "R1 x 1m", "R1 1 forever", "R1 1", "R1=1"} {
		if err := customs.ParseLimits(strings.NewReader(bad), customs.DefaultRules()); err == nil {
			t.Errorf("ParseLimits(%q) accepted", bad)
		}
	}
}

func TestMatches(t *testing.T) {
	byName := map[string]customs.Rule{}
	for _, r := range customs.DefaultRules() {
		byName[r.Name] = r
	}
	for _, c := range []struct {
		rule, name string
		want       bool
	}{
		{"R8a", "R8", true}, {"R8b", "R8", true}, {"R8a", "R8a", true}, {"R8a", "R8b", false},
		{"R1", "R1", true}, {"R10a", "R1", false}, {"R11", "R1", false}, {"R10a", "R10", true}, {"R3", "", true},
	} {
		r := byName[c.rule]
		if got := r.Matches(c.name); got != c.want {
			t.Errorf("%s.Matches(%q) = %v", c.rule, c.name, got)
		}
	}
}

// clock is a settable time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func openStore(t testing.TB, dsn string) store.Store {
	t.Helper()
	if dsn == "" {
		dsn = "sqlite:" + filepath.Join(t.TempDir(), "ks.db")
	}
	st, err := sqlstore.Open(context.Background(), dsn, sqlstore.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newCustoms(t testing.TB, st store.Store, c *clock, limits string, exempt ...netip.Prefix) *customs.Customs {
	t.Helper()
	rules := customs.DefaultRules()
	if err := customs.ParseLimitList(limits, rules); err != nil {
		t.Fatal(err)
	}
	cu, err := customs.New(customs.Config{Rules: rules, Exempt: exempt, Now: c.now, Rand: rand.Reader}, st)
	if err != nil {
		t.Fatal(err)
	}
	return cu
}

func refusal(t *testing.T, err error) *customs.Refused {
	t.Helper()
	var r *customs.Refused
	if !errors.As(err, &r) {
		t.Fatalf("error %v, want a refusal", err)
	}
	return r
}

// A request-count rule "L in W" lets L requests through in any window;
// refused ones are not counted; retryAfter is ceil(e + W - now), e the
// L-th most recent counted request. Memory and store counting agree.
func TestSlidingWindow(t *testing.T) {
	st := openStore(t, "")
	c := &clock{t: time.Date(2025, 1, 2, 3, 4, 5, 250_000_000, time.UTC)}
	cu := newCustoms(t, st, c, "R9a=3/1h,R4=3/1h")
	for i, p := range []customs.Point{customs.ForgotSendIP, customs.AuthStartIP} { // stored, in memory
		req := customs.Request{IP: fmt.Sprintf("192.0.2.%d", i+1)}
		start := c.now()
		for i := range 3 {
			if err := cu.Check(t.Context(), p, req); err != nil {
				t.Fatalf("%s: request %d: %v", p, i+1, err)
			}
			c.add(time.Minute)
		}
		for range 2 { // refused requests are not counted
			r := refusal(t, cu.Check(t.Context(), p, req))
			if r.Errno != protocol.ErrnoTooManyRequests || r.RetryAfter != 57*time.Minute {
				t.Fatalf("%s: %+v, want 114 after 57m", p, r)
			}
		}
		c.add(500 * time.Millisecond) // rounded up
		if r := refusal(t, cu.Check(t.Context(), p, req)); r.RetryAfter != 57*time.Minute {
			t.Fatalf("%s: retryAfter %v, want 57m (ceil)", p, r.RetryAfter)
		}
		c.t = start.Add(time.Hour)
		if err := cu.Check(t.Context(), p, req); err != nil {
			t.Fatalf("%s: once the first left the window: %v", p, err)
		}
		if r := refusal(t, cu.Check(t.Context(), p, req)); r.RetryAfter != time.Minute {
			t.Fatalf("%s: next wait %v, want 1m", p, r.RetryAfter)
		}
		c.t = start
	}
}

// Outcome rules: R1 and R2 at auth/start; several refusing rules give the
// largest wait; 125 only when no 429 rule refuses, and without a wait;
// known ips and exempt networks.
func TestOutcomes(t *testing.T) {
	ctx := t.Context()
	st := openStore(t, "")
	c := &clock{t: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	cu := newCustoms(t, st, c, "R1=2/10m,R2=3/1h,R3=100/1h", netip.MustParsePrefix("198.51.100.0/24"))
	a := &store.Account{UID: make([]byte, 16), Email: "a@example.org", NormalizedEmail: "a@example.org",
		SRPVerifier: make([]byte, 256), SRPSalt: make([]byte, 32), KA: make([]byte, 32), WrapKb: make([]byte, 32),
		EmailCode: make([]byte, 16), CreatedAt: c.now(), Generation: c.now(), Stretching: store.Stretching{Salt: make([]byte, 32)}}
	if err := st.CreateAccount(ctx, a); err != nil {
		t.Fatal(err)
	}
	req := func(ip string) customs.Request { return customs.Request{IP: ip, Fold: a.NormalizedEmail, UID: a.UID} }
	fail := func(ip string) {
		t.Helper()
		if err := cu.Record(ctx, nil, req(ip), customs.LoginFailure); err != nil {
			t.Fatal(err)
		}
	}
	fail("192.0.2.1")
	fail("192.0.2.1")
	r := refusal(t, cu.Check(ctx, customs.AuthStart, req("192.0.2.1")))
	if r.Errno != 114 || r.RetryAfter != 10*time.Minute || len(r.Rules) != 1 || r.Rules[0] != "R1" {
		t.Fatalf("R1: %+v", r)
	}
	if err := cu.Check(ctx, customs.AuthStart, req("192.0.2.2")); err != nil {
		t.Fatalf("other ip: %v", err)
	}
	c.add(time.Minute)
	fail("192.0.2.3")
	// R1 (429, 9 min) and R2 (125) both refuse 192.0.2.1: 429 wins.
	r = refusal(t, cu.Check(ctx, customs.AuthStart, req("192.0.2.1")))
	if r.Errno != 114 || r.RetryAfter != 9*time.Minute || len(r.Rules) != 2 {
		t.Fatalf("R1+R2: %+v", r)
	}
	r = refusal(t, cu.Check(ctx, customs.AuthStart, req("192.0.2.4")))
	if r.Errno != protocol.ErrnoRequestBlocked || r.RetryAfter != 0 {
		t.Fatalf("R2: %+v", r)
	}
	// A known ip, and an exempt network.
	err := st.WithTx(store.Ephemeral(ctx), func(q store.Queries) error { return cu.Succeeded(ctx, q, req("192.0.2.4")) })
	if err != nil {
		t.Fatal(err)
	}
	if err := cu.Check(ctx, customs.AuthStart, req("192.0.2.4")); err != nil {
		t.Fatalf("known ip: %v", err)
	}
	if err := cu.Check(ctx, customs.AuthStart, req("198.51.100.9")); err != nil {
		t.Fatalf("exempt network: %v", err)
	}
	// An unblock callback lifts R2 alone.
	called := 0
	rq := req("192.0.2.5")
	rq.Unblock = func() (bool, error) { called++; return true, nil }
	if err := cu.Check(ctx, customs.AuthStart, rq); err != nil || called != 1 {
		t.Fatalf("unblocked: %v (%d calls)", err, called)
	}
	rq.IP = "192.0.2.1"
	if err := cu.Check(ctx, customs.AuthStart, rq); err == nil || called != 1 {
		t.Fatalf("unblock code lifted R1: %v (%d calls)", err, called)
	}
	// Blocks and Clear.
	bs, err := cu.Blocks(ctx, a.NormalizedEmail, "")
	if err != nil || len(bs) != 2 {
		t.Fatalf("Blocks = %+v, %v", bs, err)
	}
	if _, err := cu.Clear(ctx, "R2", a.NormalizedEmail, ""); err != nil {
		t.Fatal(err)
	}
	if err := cu.Check(ctx, customs.AuthStart, req("192.0.2.6")); err != nil {
		t.Fatalf("after clearing R2: %v", err)
	}
	if _, err := cu.Clear(ctx, "", "", ""); err == nil {
		t.Error("Clear without a key accepted")
	}
	// The refusals were audited once per rule and key.
	evs, err := st.Events(ctx, store.EventQuery{})
	if err != nil {
		t.Fatal(err)
	}
	n := map[string]int{}
	for _, e := range evs {
		if e.Action == "blocked" {
			n[e.Details[strings.Index(e.Details, `"rule"`):]]++
		}
	}
	if n[`"rule":"R1"}`] != 1 || n[`"rule":"R2"}`] != 1 || len(n) != 2 {
		t.Errorf("blocked events: %v", n)
	}
}

// reportCPU reports the process CPU time per operation (cpu-ns/op) of the
// benchmark when the function it returns is called at its end: on SQLite
// that includes the database engine, on PostgreSQL only the client side.
func reportCPU(b *testing.B) func() {
	start := cpuTime()
	return func() {
		if d := cpuTime() - start; d > 0 && b.N > 0 {
			b.ReportMetric(float64(d.Nanoseconds())/float64(b.N), "cpu-ns/op")
		}
	}
}

// benchStore is the store of a benchmark: SQLite, or PostgreSQL with
// KEYSERVER_TEST_POSTGRES.
func benchStores(b *testing.B) map[string]store.Store {
	m := map[string]store.Store{"sqlite": openStore(b, "")}
	if os.Getenv(pgtest.EnvVar) != "" {
		m["postgres"] = openStore(b, pgtest.DSN(b))
	}
	return m
}

// BenchmarkSignInChecks measures what abuse protection adds to a
// successful sign-in (spec 14): the checks at auth/start and auth/finish
// (ip step and account step: reads, R4 in memory) and, inside the
// sign-in's own ephemeral transaction, Guard and Succeeded (the lock, the
// recount, clearing R1 and the known ip). No transaction is added; "tx"
// is the cost of that transaction with them, "tx-empty" without, for
// comparison.
func BenchmarkSignInChecks(b *testing.B) {
	for name, st := range benchStores(b) {
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			c := &clock{t: time.Now()}
			cu := newCustoms(b, st, c, "R4=1000000000/1m")
			uid := make([]byte, 16)
			_, _ = rand.Read(uid)
			email := fmt.Sprintf("bench-%x@example.org", uid)
			a := &store.Account{UID: uid, Email: email, NormalizedEmail: email,
				SRPVerifier: make([]byte, 256), SRPSalt: make([]byte, 32), KA: make([]byte, 32), WrapKb: make([]byte, 32),
				EmailCode: make([]byte, 16), CreatedAt: c.now(), Generation: c.now(), Stretching: store.Stretching{Salt: make([]byte, 32)}}
			if err := st.CreateAccount(ctx, a); err != nil {
				b.Fatal(err)
			}
			req := customs.Request{IP: "192.0.2.1", Fold: email, UID: uid, SRPToken: make([]byte, 32)}
			b.Run("checks", func(b *testing.B) {
				defer reportCPU(b)()
				for b.Loop() {
					for _, p := range []customs.Point{customs.AuthStartIP, customs.AuthStart, customs.AuthFinishIP, customs.AuthFinish} {
						if err := cu.Check(ctx, p, req); err != nil {
							b.Fatal(err)
						}
					}
				}
			})
			b.Run("tx", func(b *testing.B) {
				defer reportCPU(b)()
				for b.Loop() {
					err := st.WithTx(store.Ephemeral(ctx), func(q store.Queries) error {
						if err := cu.Guard(ctx, q, req, customs.AuthFinishIP, customs.AuthFinish); err != nil {
							return err
						}
						return cu.Succeeded(ctx, q, req)
					})
					if err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("tx-empty", func(b *testing.B) {
				defer reportCPU(b)()
				for b.Loop() {
					if err := st.WithTx(store.Ephemeral(ctx), func(store.Queries) error { return nil }); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
