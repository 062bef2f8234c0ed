package customs

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"time"

	"github.com/keyserver/keyserver/protocol"
	"github.com/keyserver/keyserver/store"
)

// KnownIPTTL is how long an ip stays known for an account after a
// successful sign-in from it (spec 14.3), at least; knownIPRenew more at
// most, so that the known ip is rewritten at most once a day.
const (
	KnownIPTTL   = 30 * 24 * time.Hour
	knownIPRenew = 24 * time.Hour
)

// Config holds the settings of the rules.
type Config struct {
	// Rules is the rule table; nil means DefaultRules().
	Rules []Rule
	// Exempt networks: no rule applies to, and nothing is counted for,
	// requests from them (load tests, monitoring). None by default.
	Exempt []netip.Prefix
	// OnRefusal, when set, is called once per refusing rule (metrics).
	OnRefusal func(rule string)
	Logger    *slog.Logger
	Now       func() time.Time
	Rand      io.Reader
}

// Customs applies the rules to requests, with their counts in a store.
type Customs struct {
	cfg     Config
	st      store.Store
	log     *slog.Logger
	rules   []*Rule
	byPoint map[Point][]*Rule
	byOut   map[Outcome][]*Rule
	// keep is how long the counts of a counter matter: its longest
	// window.
	keep map[string]time.Duration
	mem  *memory
}

// New checks the rules of cfg and returns them over st. cfg.Now and
// cfg.Rand must be set.
func New(cfg Config, st store.Store) (*Customs, error) {
	if cfg.Rules == nil {
		cfg.Rules = DefaultRules()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Customs{cfg: cfg, st: st, log: cfg.Logger, byPoint: map[Point][]*Rule{}, byOut: map[Outcome][]*Rule{},
		keep: map[string]time.Duration{}, mem: newMemory()}
	names := map[string]bool{}
	for i := range cfg.Rules {
		r := &cfg.Rules[i]
		switch {
		case r.Name == "" || names[r.Name]:
			return nil, fmt.Errorf("customs: rule name %q empty or repeated", r.Name)
		case r.Limit < 1 || r.Window <= 0:
			return nil, fmt.Errorf("customs: rule %s: limit %d in %v", r.Name, r.Limit, r.Window)
		case r.Memory && !r.counting():
			return nil, fmt.Errorf("customs: rule %s: only request rates can be counted in memory", r.Name)
		case r.Key == BySession && !r.Memory:
			return nil, fmt.Errorf("customs: rule %s: sessionToken keys are counted in memory", r.Name)
		}
		names[r.Name] = true
		if r.Counter == "" {
			r.Counter = r.Name
		}
		c.rules = append(c.rules, r)
		for _, p := range r.Points {
			c.byPoint[p] = append(c.byPoint[p], r)
		}
		for _, o := range r.Outcomes {
			c.byOut[o] = append(c.byOut[o], r)
		}
		c.keep[r.Counter] = max(c.keep[r.Counter], r.Window)
	}
	for p, rs := range c.byPoint {
		var unblockable, counting bool
		for _, r := range rs {
			unblockable = unblockable || r.Unblockable
			counting = counting || (r.counting() && !r.Memory)
		}
		if unblockable && counting {
			return nil, fmt.Errorf("customs: point %s: an unblockable rule and a stored request count", p)
		}
	}
	return c, nil
}

// Rules returns the rule table in use.
func (c *Customs) Rules() []Rule {
	out := make([]Rule, len(c.rules))
	for i, r := range c.rules {
		out[i] = *r
	}
	return out
}

// Request is what the rules know of a request.
type Request struct {
	// IP is the client IP (spec 14.1), as audited; rules use its key.
	IP string
	// Fold is the fold of the account's email, or at Mail of the
	// recipient's address; "" when the request has identified none.
	Fold string
	// UID is the account, for known ips and the audit; nil when none.
	UID []byte
	// Session is the sessionToken id (R7).
	Session []byte
	// SRPToken, at auth/finish, is the srpToken whose origin may lift
	// the unblockable rules (R2).
	SRPToken []byte
	// Unblock, at auth/start, is called when only unblockable rules
	// refuse: it reports whether the request carried a valid unblock
	// code (and consumes it). Nil when no code was sent.
	Unblock func() (bool, error)
}

// IPKey is the key of a client IP for the rules and for known ips (spec
// 14.1): the IPv4 address (IPv4-mapped IPv6 addresses converted), or the
// IPv6 /64 as a prefix; an address that does not parse is its own key.
func IPKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap().WithZone("")
	if a.Is4() {
		return a.String()
	}
	p, err := a.Prefix(64)
	if err != nil {
		return ip
	}
	return p.String()
}

// Exempt reports whether ip is in an exempt network.
func (c *Customs) Exempt(ip string) bool {
	if len(c.cfg.Exempt) == 0 {
		return false
	}
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	a = a.Unmap().WithZone("")
	for _, p := range c.cfg.Exempt {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// key is the count key of rule r for req; ok is false when the request
// lacks part of it (the rule then does not apply).
func key(r *Rule, req *Request) (k store.CountKey, ok bool) {
	switch r.Key {
	case ByIP:
		k.IP = IPKey(req.IP)
	case ByAccount, ByAddress:
		k.Fold = req.Fold
	case ByAccountIP:
		k.Fold, k.IP = req.Fold, IPKey(req.IP)
	case BySession:
		if req.Session == nil {
			return k, false
		}
		k.IP = "session:" + hex.EncodeToString(req.Session)
	}
	if (r.Key.hasFold() && k.Fold == "") || (r.Key.hasIP() && k.IP == "") {
		return k, false
	}
	return k, true
}

// hit is a rule refusing a key until a time.
type hit struct {
	rule  *Rule
	key   store.CountKey
	until time.Time
}

// Refused is a refusal of the rules: errno 114 with the wait, or 125.
type Refused struct {
	Errno      protocol.Errno
	RetryAfter time.Duration // whole seconds; 0 for 125
	// Rules are the names of the refusing rules.
	Rules []string
	hits  []hit
}

func (e *Refused) Error() string {
	return fmt.Sprintf("customs: refused by %v (errno %d)", e.Rules, e.Errno)
}

// refused turns hits into the refusal: 429/114 when any rule of that kind
// refuses (an unblock code would not help), with the largest wait; else
// 400/125.
func refused(hits []hit, now time.Time) *Refused {
	e := &Refused{Errno: protocol.ErrnoRequestBlocked, hits: hits}
	for _, h := range hits {
		e.Rules = append(e.Rules, h.rule.Name)
		if h.rule.Refusal == TooMany {
			e.Errno = protocol.ErrnoTooManyRequests
			e.RetryAfter = max(e.RetryAfter, ceilSecond(h.until.Sub(now)))
		}
	}
	if e.Errno != protocol.ErrnoTooManyRequests {
		e.RetryAfter = 0
	}
	return e
}

// ceilSecond rounds d up to whole seconds (spec 14.2), at least 1 s.
func ceilSecond(d time.Duration) time.Duration {
	return max(time.Second, (d+time.Second-1)/time.Second*time.Second)
}

// Check applies the rules of point p to req (spec 14.2): it returns a
// *Refused when one refuses (after logging and auditing it), the store's
// error when the counts cannot be read or written, and nil otherwise, in
// which case the request has been counted by the rules that count
// requests.
func (c *Customs) Check(ctx context.Context, p Point, req Request) error {
	rules := c.byPoint[p]
	if len(rules) == 0 || c.Exempt(req.IP) {
		return nil
	}
	now := c.cfg.Now()
	var memRules, stored []*Rule
	counting := false
	for _, r := range rules {
		if _, ok := key(r, &req); !ok {
			continue
		}
		if r.Memory {
			memRules = append(memRules, r)
		} else {
			stored = append(stored, r)
			counting = counting || r.counting()
		}
	}
	if hits := c.mem.check(memRules, &req, now, false); len(hits) > 0 {
		return c.refuse(ctx, p, &req, hits, now)
	}
	var hits []hit
	var err error
	switch {
	case len(stored) == 0:
	case counting:
		err = c.st.WithTx(store.Ephemeral(ctx), func(q store.Queries) error {
			if err := q.LockCounts(ctx, lockKeys(stored, &req)...); err != nil {
				return err
			}
			if hits, err = c.probe(ctx, q, stored, &req, now); err != nil || len(hits) > 0 {
				return err
			}
			var counts []store.Count
			for _, r := range stored {
				if r.counting() {
					k, _ := key(r, &req)
					counts = append(counts, store.Count{Counter: r.Counter, Key: k, At: now, ExpiresAt: now.Add(c.keep[r.Counter])})
				}
			}
			return q.AddCounts(ctx, counts...)
		})
	default:
		hits, err = c.probe(ctx, c.st, stored, &req, now)
	}
	if err != nil {
		return err
	}
	if len(hits) > 0 && req.Unblock != nil && allUnblockable(hits) {
		ok, err := req.Unblock()
		if err != nil {
			return err
		}
		if ok {
			hits = nil
		}
	}
	if len(hits) == 0 {
		hits = c.mem.check(memRules, &req, now, true)
	}
	if len(hits) > 0 {
		return c.refuse(ctx, p, &req, hits, now)
	}
	return nil
}

func allUnblockable(hits []hit) bool {
	for _, h := range hits {
		if !h.rule.Unblockable {
			return false
		}
	}
	return true
}

// lockKeys are the keys LockCounts takes for rules: the account and the
// ip, each alone (a pair key is covered by both).
func lockKeys(rules []*Rule, req *Request) []store.CountKey {
	var keys []store.CountKey
	var fold, ip bool
	for _, r := range rules {
		fold, ip = fold || r.Key.hasFold(), ip || r.Key.hasIP()
	}
	if fold && req.Fold != "" {
		keys = append(keys, store.CountKey{Fold: req.Fold})
	}
	if ip {
		keys = append(keys, store.CountKey{IP: IPKey(req.IP)})
	}
	return keys
}

// probe evaluates stored rules through q: the rules whose limit is reached
// in their window, less those the request is exempt from (a known ip, an
// unblocked srpToken).
func (c *Customs) probe(ctx context.Context, q store.Queries, rules []*Rule, req *Request, now time.Time) ([]hit, error) {
	probes := make([]store.CountProbe, 0, len(rules))
	keys := make([]store.CountKey, 0, len(rules))
	for _, r := range rules {
		k, _ := key(r, req)
		keys = append(keys, k)
		probes = append(probes, store.CountProbe{Counter: r.Counter, Key: k, Since: now.Add(-r.Window), N: r.Limit})
	}
	ats, err := q.NthCounts(ctx, probes)
	if err != nil {
		return nil, err
	}
	var hits []hit
	for i, at := range ats {
		if at.IsZero() {
			continue
		}
		if until := at.Add(rules[i].Window); until.After(now) {
			hits = append(hits, hit{rule: rules[i], key: keys[i], until: until})
		}
	}
	if len(hits) == 0 {
		return nil, nil
	}
	var known, unblocked *bool
	kept := hits[:0]
	for _, h := range hits {
		if h.rule.KnownExempt && req.UID != nil {
			if known == nil {
				k, err := q.KnownIP(ctx, req.UID, IPKey(req.IP), now)
				if err != nil {
					return nil, err
				}
				known = &k
			}
			if *known {
				continue
			}
		}
		if h.rule.Unblockable && req.SRPToken != nil {
			if unblocked == nil {
				o, err := q.TokenOrigin(ctx, req.SRPToken)
				if err != nil && !errors.Is(err, store.ErrNotFound) {
					return nil, err
				}
				u := err == nil && o.Unblocked
				unblocked = &u
			}
			if *unblocked {
				continue
			}
		}
		kept = append(kept, h)
	}
	return kept, nil
}

// Guard repeats, through q (the caller's transaction), the checks of the
// stored rules of the points that count outcomes, after locking their keys:
// a request that passed Check while concurrent ones were counted is refused
// here (a *Refused, not yet reported: the caller rolls back, then calls
// Report). Call it before Record in the same transaction.
func (c *Customs) Guard(ctx context.Context, q store.Queries, req Request, points ...Point) error {
	if c.Exempt(req.IP) {
		return nil
	}
	var rules []*Rule
	for _, p := range points {
		for _, r := range c.byPoint[p] {
			if _, ok := key(r, &req); ok && !r.Memory && !r.counting() && !slices.Contains(rules, r) {
				rules = append(rules, r)
			}
		}
	}
	if len(rules) == 0 {
		return nil
	}
	if err := q.LockCounts(ctx, lockKeys(rules, &req)...); err != nil {
		return err
	}
	now := c.cfg.Now()
	hits, err := c.probe(ctx, q, rules, &req, now)
	if err != nil {
		return err
	}
	if len(hits) > 0 {
		return refused(hits, now)
	}
	return nil
}

// Report logs and audits a refusal that Guard returned, once its
// transaction is over, and returns err.
func (c *Customs) Report(ctx context.Context, p Point, req Request, err error) error {
	var r *Refused
	if errors.As(err, &r) {
		return c.refuse(ctx, p, &req, r.hits, c.cfg.Now())
	}
	return err
}

// refuse logs, counts and audits the refusing rules and returns the
// refusal. The audit (a `blocked` event, at most one per rule and key per
// window, spec 10.4) is ephemeral and best effort: the request is refused
// whether it is written or not.
func (c *Customs) refuse(ctx context.Context, p Point, req *Request, hits []hit, now time.Time) error {
	e := refused(hits, now)
	for _, h := range hits {
		c.log.WarnContext(ctx, "request refused by abuse protection", "rule", h.rule.Name, "point", string(p),
			"ip", req.IP, "uid", hex.EncodeToString(req.UID), "errno", e.Errno, "until", h.until.UTC().Format(time.RFC3339))
		if c.cfg.OnRefusal != nil {
			c.cfg.OnRefusal(h.rule.Name)
		}
	}
	err := c.st.WithTx(store.Ephemeral(context.WithoutCancel(ctx)), func(q store.Queries) error {
		for _, h := range hits {
			first, err := q.MarkBlocked(ctx, h.rule.Name, h.key, now, h.until)
			if err != nil {
				return err
			}
			if !first {
				continue
			}
			if err := q.AppendEvent(ctx, c.event(req, h.rule.Name, e.Errno, now)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		c.log.WarnContext(ctx, "blocked audit event not recorded", "err", err)
	}
	return e
}

func (c *Customs) event(req *Request, rule string, errno int, now time.Time) *store.Event {
	id := make([]byte, 16)
	_, _ = io.ReadFull(c.cfg.Rand, id)
	return &store.Event{ID: id, Time: now, Actor: store.ActorUser, Action: "blocked", Outcome: store.OutcomeFailure,
		UID: req.UID, IP: req.IP, Details: fmt.Sprintf(`{"errno":%d,"rule":%q}`, errno, rule)}
}

// Record counts outcome o of req for the rules that count it, through q
// (the caller's transaction; nil: an ephemeral transaction of its own).
func (c *Customs) Record(ctx context.Context, q store.Queries, req Request, o Outcome) error {
	if c.Exempt(req.IP) {
		return nil
	}
	now := c.cfg.Now()
	var counts []store.Count
	for _, r := range c.byOut[o] {
		if k, ok := key(r, &req); ok && !slices.ContainsFunc(counts, func(x store.Count) bool { return x.Counter == r.Counter }) {
			counts = append(counts, store.Count{Counter: r.Counter, Key: k, At: now, ExpiresAt: now.Add(c.keep[r.Counter])})
		}
	}
	if len(counts) == 0 {
		return nil
	}
	if q != nil {
		return q.AddCounts(ctx, counts...)
	}
	return c.st.WithTx(store.Ephemeral(ctx), func(q store.Queries) error { return q.AddCounts(ctx, counts...) })
}

// loginCounters are the counters of the failure rules keyed as kind.
func (c *Customs) loginCounters(kinds ...KeyKind) []string {
	var out []string
	for _, r := range c.byOut[LoginFailure] {
		if slices.Contains(kinds, r.Key) && !slices.Contains(out, r.Counter) {
			out = append(out, r.Counter)
		}
	}
	return out
}

// Succeeded records a successful sign-in (auth/finish 200) through q, the
// sign-in's transaction: R1 is cleared for (account, ip) and the ip becomes
// known for the account (spec 14.2, 14.3).
func (c *Customs) Succeeded(ctx context.Context, q store.Queries, req Request) error {
	now := c.cfg.Now()
	ip := IPKey(req.IP)
	if cs := c.loginCounters(ByAccountIP); len(cs) > 0 && req.Fold != "" {
		if _, err := q.DeleteCounts(ctx, store.CountFilter{Counters: cs, Fold: req.Fold, IP: ip}); err != nil {
			return err
		}
	}
	return q.AddKnownIP(ctx, req.UID, ip, now.Add(KnownIPTTL+knownIPRenew), now.Add(KnownIPTTL))
}

// ResetSucceeded records a successful account/reset through q: R1 and R2
// are cleared for the account, and resetIP (the ip of the verify_code or
// recover that made the accountResetToken; "" when none) becomes known.
func (c *Customs) ResetSucceeded(ctx context.Context, q store.Queries, fold string, uid []byte, resetIP string) error {
	if cs := c.loginCounters(ByAccountIP, ByAccount); len(cs) > 0 && fold != "" {
		if _, err := q.DeleteCounts(ctx, store.CountFilter{Counters: cs, Fold: fold}); err != nil {
			return err
		}
	}
	if resetIP == "" {
		return nil
	}
	now := c.cfg.Now()
	return q.AddKnownIP(ctx, uid, IPKey(resetIP), now.Add(KnownIPTTL+knownIPRenew), now.Add(KnownIPTTL))
}

// Block is a count that refuses requests now (spec 14.4).
type Block struct {
	Rule  string
	Key   store.CountKey // Fold and IP key ("" where the rule has none)
	Count int            // counts in the window
	Until time.Time      // when the rule lets a request through again
}

// filterApplies reports whether the admin filter (fold, ip: either may be
// "") selects keys of kind k, and returns the store filter.
func filterApplies(k KeyKind, fold, ip string) (store.CountFilter, bool) {
	var f store.CountFilter
	if fold != "" && k.hasFold() {
		f.Fold = fold
	}
	if ip != "" && k.hasIP() {
		f.IP = ip
	}
	return f, (fold == "" && ip == "") || f.Fold != "" || f.IP != ""
}

// Blocks lists the counts that refuse requests now, of the account of
// fold and/or the ip (either "" for any; both "" for every block).
// Request-rate rules counted in memory are those of this instance.
func (c *Customs) Blocks(ctx context.Context, fold, ip string) ([]Block, error) {
	now := c.cfg.Now()
	if ip != "" {
		ip = IPKey(ip)
	}
	var out []Block
	for _, r := range c.rules {
		f, ok := filterApplies(r.Key, fold, ip)
		if !ok {
			continue
		}
		if r.Memory {
			out = append(out, c.mem.blocks(r, f, now)...)
			continue
		}
		f.Counters, f.Since = []string{r.Counter}, now.Add(-r.Window)
		counts, err := c.st.Counts(ctx, f)
		if err != nil {
			return nil, err
		}
		for i := 0; i < len(counts); {
			j := i
			for j < len(counts) && counts[j].Key == counts[i].Key {
				j++
			}
			if n := j - i; n >= r.Limit { // newest first: the Limit-th decides
				out = append(out, Block{Rule: r.Name, Key: counts[i].Key, Count: n, Until: counts[i+r.Limit-1].At.Add(r.Window)})
			}
			i = j
		}
	}
	return out, nil
}

// Clear deletes the counts of the rules rule selects (Rule.Matches; ""
// every rule) for the account of fold and/or the ip (at least one), with
// their block marks, and returns how many counts went.
func (c *Customs) Clear(ctx context.Context, rule, fold, ip string) (int64, error) {
	if fold == "" && ip == "" {
		return 0, errors.New("customs: clear needs an account or an ip")
	}
	if ip != "" {
		ip = IPKey(ip)
	}
	var total int64
	err := c.st.WithTx(store.Ephemeral(ctx), func(q store.Queries) error {
		total = 0
		for _, r := range c.rules {
			f, ok := filterApplies(r.Key, fold, ip)
			if !r.Matches(rule) || !ok {
				continue
			}
			if r.Memory {
				total += c.mem.clear(r, f)
				continue
			}
			f.Counters = []string{r.Counter}
			n, err := q.DeleteCounts(ctx, f)
			if err != nil {
				return err
			}
			total += n
			f.Counters = []string{r.Name}
			if err := q.DeleteBlocks(ctx, f); err != nil {
				return err
			}
		}
		return nil
	})
	return total, err
}
