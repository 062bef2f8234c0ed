package main

import (
	"strings"
	"testing"
)

func TestParseNets(t *testing.T) {
	nets, err := parseNets(" 10.0.0.1, 192.168.0.0/16 ,::1,")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.0.1/32", "192.168.0.0/16", "::1/128"}
	if len(nets) != len(want) {
		t.Fatalf("got %v", nets)
	}
	for i, n := range nets {
		if n.String() != want[i] {
			t.Errorf("net %d = %s, want %s", i, n, want[i])
		}
	}
	for _, bad := range []string{"10.0.0", "10.0.0.0/33", "proxy.example.com"} {
		if _, err := parseNets(bad); err == nil || !strings.Contains(err.Error(), "trusted-proxies") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestEnvName(t *testing.T) {
	if got := envName("public-url"); got != "KEYSERVER_PUBLIC_URL" {
		t.Fatal(got)
	}
}
