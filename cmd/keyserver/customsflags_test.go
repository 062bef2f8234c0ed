package main

import (
	"flag"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyserver/keyserver/keyserver"
)

// parseCustoms parses serve's abuse-protection flags alone.
func parseCustoms(t *testing.T, args ...string) (*customsFlags, error) {
	t.Helper()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var cf customsFlags
	cf.register(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	return &cf, nil
}

func TestCustomsFlags(t *testing.T) {
	file := filepath.Join(t.TempDir(), "limits")
	if err := os.WriteFile(file, []byte("# tighter\nR1 3 10m\nR4 100 1m\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cf, err := parseCustoms(t, "--limits", file, "--limit", "R4=50/1m", "--rate-limit-exempt", "192.0.2.0/24,2001:db8::1")
	if err != nil {
		t.Fatal(err)
	}
	rules, exempt, err := cf.load()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, r := range rules {
		got[r.Name] = r.Limit
	}
	if got["R1"] != 3 || got["R4"] != 50 || got["R2"] != 20 || len(exempt) != 2 || exempt[1].String() != "2001:db8::1/128" {
		t.Fatalf("limits %v, exempt %v", got, exempt)
	}
	if cf.unverifiedTTL.Hours() != 168 || cf.maxConnsPerIP != 256 || cf.maxConns != 10000 {
		t.Fatalf("defaults: %+v", cf)
	}
	for _, bad := range [][]string{
		{"--limit", "R99=1/1m"}, {"--limit", "R1=0/1m"}, {"--rate-limit-exempt", "nonsense"},
		{"--limits", filepath.Join(t.TempDir(), "none")}, {"--unverified-ttl", "-1h"},
	} {
		cf, err := parseCustoms(t, bad...)
		if err == nil {
			_, _, err = cf.load()
		}
		if err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	// The caps wrap the listener; the proxies count only in the total.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, lo, _ := net.ParseCIDR("127.0.0.0/8")
	capped := cf.capListener(ln, []*net.IPNet{lo}, exempt)
	defer capped.Close()
	if !strings.HasPrefix(capped.Addr().String(), "127.0.0.1:") {
		t.Fatalf("capped listener address %v", capped.Addr())
	}
	var _ purger = (*keyserver.Server)(nil) // the purge loop runs the server's Purge
}
