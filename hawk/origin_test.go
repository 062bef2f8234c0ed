package hawk

import (
	"fmt"
	"strings"
	"testing"
)

func TestParseOrigin(t *testing.T) {
	good := []struct {
		in   string
		host string
		port int
	}{
		{"http://127.0.0.1:9000", "127.0.0.1", 9000},
		{"http://127.0.0.1:9000/", "127.0.0.1", 9000},
		{"https://API.Example.com", "api.example.com", 443},
		{"http://example.com", "example.com", 80},
		{"HTTP://Example.COM:8080/", "example.com", 8080},
		{"https://[::1]:8443", "::1", 8443},
		{"https://[::1]", "::1", 443},
		{"http://x:65535", "x", 65535},
		{"http://x:1", "x", 1},
		{"http://x:", "x", 80},
	}
	for _, g := range good {
		host, port, err := ParseOrigin(g.in)
		if err != nil || host != g.host || port != g.port {
			t.Errorf("ParseOrigin(%q) = %q, %d, %v; want %q, %d", g.in, host, port, err, g.host, g.port)
		}
	}

	const notOrigin, badPort = "must be an origin such as https://api.example.com", "has a bad port"
	bad := []struct{ in, msg string }{
		{"", notOrigin},
		{"127.0.0.1:9000", notOrigin},
		{"ftp://x", notOrigin},
		{"http://", notOrigin},
		{"http://:9000", notOrigin},
		{"https://:", notOrigin},
		{"http://[]:80", notOrigin},
		{"http://x/v1", notOrigin},
		{"http://x//", notOrigin},
		{"http://x?a=b", notOrigin},
		{"http://x#f", notOrigin},
		{"http://u:p@x", notOrigin},
		{"http://u@x", notOrigin},
		{"http://x:port", notOrigin},
		{"http://%zz", notOrigin},
		{"http://x:0", badPort},
		{"http://x:99999", badPort},
		{"http://x:65536", badPort},
	}
	for _, b := range bad {
		host, port, err := ParseOrigin(b.in)
		if err == nil {
			t.Errorf("ParseOrigin(%q) = %q, %d; want an error", b.in, host, port)
			continue
		}
		// The text starts with the quoted URL so that the server and the
		// client can prefix their name for it.
		if want := fmt.Sprintf("%q %s", b.in, b.msg); err.Error() != want {
			t.Errorf("ParseOrigin(%q): error %q, want %q", b.in, err, want)
		}
		if host != "" || port != 0 {
			t.Errorf("ParseOrigin(%q) returned %q, %d with its error", b.in, host, port)
		}
	}
}

// TestParseOriginServerMessage: the server's message for a bad public URL
// is "public URL " and the error, as before hawk had ParseOrigin.
func TestParseOriginServerMessage(t *testing.T) {
	_, _, err := ParseOrigin("http://x/v1")
	if got := fmt.Errorf("public URL %w", err).Error(); got != `public URL "http://x/v1" must be an origin such as https://api.example.com` {
		t.Errorf("got %q", got)
	}
	_, _, err = ParseOrigin("http://x:0")
	if got := fmt.Errorf("public URL %w", err).Error(); got != `public URL "http://x:0" has a bad port` {
		t.Errorf("got %q", got)
	}
}

func FuzzParseOrigin(f *testing.F) {
	for _, s := range []string{"http://:", "http://127.0.0.1:9000", "https://API.Example.com/", "https://[::1]:8443", "http://x:0", "ftp://x", "http://u@x", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		host, port, err := ParseOrigin(s)
		if err != nil {
			if !strings.HasPrefix(err.Error(), fmt.Sprintf("%q ", s)) {
				t.Fatalf("error %q does not start with the quoted URL", err)
			}
			return
		}
		if host == "" || host != strings.ToLower(host) || port < 1 || port > 65535 {
			t.Fatalf("ParseOrigin(%q) = %q, %d", s, host, port)
		}
	})
}
