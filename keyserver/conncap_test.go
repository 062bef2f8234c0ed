package keyserver_test

import (
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/keyserver/keyserver/keyserver"
)

// capped serves l, capped, echoing one byte per connection until closed.
func capped(t *testing.T, c keyserver.ConnCap) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := c.Listen(ln)
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				b := make([]byte, 1)
				for {
					if _, err := conn.Read(b); err != nil {
						return
					}
					if _, err := conn.Write(b); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// alive reports whether conn is served: an echoed byte.
func alive(t *testing.T, conn net.Conn) bool {
	t.Helper()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write([]byte{'x'}); err != nil {
		return false
	}
	b := make([]byte, 1)
	_, err := io.ReadFull(conn, b)
	return err == nil
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// Beyond the per-ip cap a new connection is closed at once; the open ones
// keep working, and a closed one frees its place.
func TestConnCapPerIP(t *testing.T) {
	addr := capped(t, keyserver.ConnCap{PerIP: 2, Total: 100})
	a, b := dial(t, addr), dial(t, addr)
	if !alive(t, a) || !alive(t, b) {
		t.Fatal("connections within the cap not served")
	}
	c := dial(t, addr)
	if alive(t, c) {
		t.Fatal("third connection from one ip served")
	}
	if !alive(t, a) {
		t.Fatal("an open connection stopped working")
	}
	b.Close()
	time.Sleep(50 * time.Millisecond) // the server sees the close
	if d := dial(t, addr); !alive(t, d) {
		t.Fatal("no place after a close")
	}
}

func TestConnCapTotalAndExempt(t *testing.T) {
	addr := capped(t, keyserver.ConnCap{PerIP: 1, Total: 3, Exempt: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	conns := []net.Conn{dial(t, addr), dial(t, addr), dial(t, addr)}
	for i, c := range conns {
		if !alive(t, c) {
			t.Fatalf("exempt connection %d not served", i)
		}
	}
	if alive(t, dial(t, addr)) {
		t.Fatal("a connection beyond the total served")
	}
}
