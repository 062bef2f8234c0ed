package keyserver

import (
	"net"
	"net/netip"
	"sync"

	"github.com/keyserver/keyserver/customs"
)

// Connection caps of spec 14.5.
const (
	DefaultMaxConnsPerIP = 256
	DefaultMaxConns      = 10000
)

// ConnCap bounds the connections a listener serves at once: at most PerIP
// from one socket peer (its IPv4 address or IPv6 /64, spec 14.1) and Total
// in all (0: no bound). A connection beyond either is closed at once, and
// the ones already open keep working. Peers in Exempt (the trusted proxies,
// which carry many clients, and the exempt networks) count only towards
// Total.
type ConnCap struct {
	PerIP, Total int
	Exempt       []netip.Prefix
}

// Listen wraps l with the caps.
func (c ConnCap) Listen(l net.Listener) net.Listener {
	return &capListener{Listener: l, cap: c, perIP: map[string]int{}}
}

type capListener struct {
	net.Listener
	cap   ConnCap
	mu    sync.Mutex
	total int
	perIP map[string]int
}

// Accept returns the next connection within the caps, closing the others.
func (l *capListener) Accept() (net.Conn, error) {
	for {
		conn, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if key, ok := l.admit(conn.RemoteAddr()); ok {
			return &capConn{Conn: conn, release: func() { l.release(key) }}, nil
		}
		conn.Close()
	}
}

// admit counts a new connection from addr; false when it is over a cap.
func (l *capListener) admit(addr net.Addr) (string, bool) {
	key := ""
	if ap, err := netip.ParseAddrPort(addr.String()); err == nil {
		a := ap.Addr().Unmap()
		exempt := false
		for _, p := range l.cap.Exempt {
			exempt = exempt || p.Contains(a)
		}
		if !exempt {
			key = customs.IPKey(a.String())
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cap.Total > 0 && l.total >= l.cap.Total {
		return "", false
	}
	if key != "" && l.cap.PerIP > 0 && l.perIP[key] >= l.cap.PerIP {
		return "", false
	}
	l.total++
	if key != "" {
		l.perIP[key]++
	}
	return key, true
}

func (l *capListener) release(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if key != "" {
		if l.perIP[key]--; l.perIP[key] <= 0 {
			delete(l.perIP, key)
		}
	}
}

// capConn gives its place back once, when it is closed.
type capConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *capConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
