package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/keyserver/keyserver/accounts"
	"github.com/keyserver/keyserver/customs"
	"github.com/keyserver/keyserver/keyserver"
)

// customsFlags are the abuse-protection flags of serve (spec 14, 1.7):
// limits, exempt networks, the unverified-account lifetime and the
// connection caps. Every default is the spec's; --dev changes none.
type customsFlags struct {
	limitsFile, limitList, exempt string
	unverifiedTTL                 time.Duration
	maxConnsPerIP, maxConns       int
}

func (c *customsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.limitsFile, "limits", "", "file of abuse-protection limits replacing the defaults of spec 14.2, one a line: RULE LIMIT WINDOW (R1 5 15m; # comments); see the README's table")
	fs.StringVar(&c.limitList, "limit", "", "comma-separated abuse-protection limits replacing the defaults, after --limits: RULE=LIMIT/WINDOW (R1=5/15m,R4=600/1m)")
	fs.StringVar(&c.exempt, "rate-limit-exempt", "", "comma-separated IPs or CIDRs no abuse-protection rule applies to (load tests, monitoring; default none)")
	fs.DurationVar(&c.unverifiedTTL, "unverified-ttl", accounts.DefaultUnverifiedTTL, "accounts still unverified this long after creation are deleted by the purge")
	fs.IntVar(&c.maxConnsPerIP, "max-conns-per-ip", keyserver.DefaultMaxConnsPerIP, "concurrent connections from one ip (IPv6: one /64) to the public listener; trusted proxies and exempt networks count only towards --max-conns")
	fs.IntVar(&c.maxConns, "max-conns", keyserver.DefaultMaxConns, "concurrent connections to the public listener in all; beyond a cap a new connection is closed at once")
}

// load reads the limits and the exempt networks.
func (c *customsFlags) load() ([]customs.Rule, []netip.Prefix, error) {
	rules := customs.DefaultRules()
	if c.limitsFile != "" {
		f, err := os.Open(c.limitsFile)
		if err != nil {
			return nil, nil, fmt.Errorf("--limits: %w", err)
		}
		defer f.Close()
		if err := customs.ParseLimits(f, rules); err != nil {
			return nil, nil, fmt.Errorf("%w: --limits %s: %v", errUsage, c.limitsFile, err)
		}
	}
	if err := customs.ParseLimitList(c.limitList, rules); err != nil {
		return nil, nil, fmt.Errorf("%w: --limit: %v", errUsage, err)
	}
	exempt, err := parsePrefixes("--rate-limit-exempt", c.exempt)
	if err != nil {
		return nil, nil, err
	}
	if c.unverifiedTTL <= 0 || c.maxConnsPerIP < 0 || c.maxConns < 0 {
		return nil, nil, fmt.Errorf("%w: --unverified-ttl must be positive, --max-conns and --max-conns-per-ip not negative", errUsage)
	}
	return rules, exempt, nil
}

// parsePrefixes parses comma-separated IPs or CIDRs.
func parsePrefixes(flagName, v string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, item := range splitList(v) {
		if !strings.Contains(item, "/") {
			a, err := netip.ParseAddr(item)
			if err != nil {
				return nil, fmt.Errorf("%w: %s: %q is not an IP address or CIDR", errUsage, flagName, item)
			}
			a = a.Unmap()
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(item)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %q is not an IP address or CIDR", errUsage, flagName, item)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// capListener applies the connection caps to the public listener; the
// trusted proxies and the exempt networks count only towards the total.
func (c *customsFlags) capListener(ln net.Listener, proxies []*net.IPNet, exempt []netip.Prefix) net.Listener {
	all := append([]netip.Prefix(nil), exempt...)
	for _, n := range proxies {
		if a, ok := netip.AddrFromSlice(n.IP); ok {
			ones, _ := n.Mask.Size()
			all = append(all, netip.PrefixFrom(a.Unmap(), ones))
		}
	}
	return keyserver.ConnCap{PerIP: c.maxConnsPerIP, Total: c.maxConns, Exempt: all}.Listen(ln)
}

// purger is what the purge loop runs: keyserver.Server.Purge, which also
// deletes the accounts never verified (spec 14.5).
type purger interface {
	Purge(ctx context.Context, now, eventsBefore time.Time) (int64, error)
}
