package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime"

	"github.com/keyserver/keyserver/keyserver"
)

// adminFlags are the serve flags of the admin API (spec 10.1), off unless
// --admin-listen is given, and of the metrics listener, off unless
// --metrics-listen is given.
type adminFlags struct {
	listen        string
	listenPublic  bool
	tokenFile     string
	metricsListen string
}

func (f *adminFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.listen, "admin-listen", "", "address of the admin API, e.g. 127.0.0.1:9001 (port 0 picks a free one); the admin API is off when empty. It also serves GET /metrics (Prometheus), behind the admin token. Never expose it publicly")
	fs.BoolVar(&f.listenPublic, "admin-listen-public", false, "allow an --admin-listen address that is not loopback, private or link-local (the admin API on the internet, behind its token alone)")
	fs.StringVar(&f.tokenFile, "admin-token-file", "", "file holding the admin API's bearer token (at least 32 characters; surrounding whitespace is ignored); required with --admin-listen")
	fs.StringVar(&f.metricsListen, "metrics-listen", "", "address serving GET /metrics (Prometheus) alone, without a token, e.g. 127.0.0.1:9090; off when empty. Never expose it publicly")
}

// metricsOn reports whether any listener serves the metrics.
func (f *adminFlags) metricsOn() bool { return f.listen != "" || f.metricsListen != "" }

// sideListener is a running listener besides the public one (the admin
// API, the metrics); a nil *sideListener is "off" and its methods do
// nothing.
type sideListener struct {
	what string // "admin API", "metrics"
	ln   net.Listener
	srv  *http.Server
}

// open reads the token and listens, or returns nil when the admin API is
// off.
func (f *adminFlags) open(srv *keyserver.Server, certs *certReloader, logger *slog.Logger) (*sideListener, error) {
	if f.listen == "" {
		if f.tokenFile != "" {
			logger.Warn("--admin-token-file is set but --admin-listen is not: the admin API is off")
		}
		return nil, nil
	}
	if f.tokenFile == "" {
		return nil, fmt.Errorf("%w: --admin-listen needs --admin-token-file", errUsage)
	}
	if err := checkAdminAddress(f.listen); err != nil {
		if !f.listenPublic {
			return nil, fmt.Errorf("%w: --admin-listen %s: %v; pass --admin-listen-public to serve the admin API there anyway", errUsage, f.listen, err)
		}
		logger.Warn("--admin-listen-public: the admin API listens on a public address", "addr", f.listen, "why", err.Error())
	}
	raw, err := os.ReadFile(f.tokenFile)
	if err != nil {
		return nil, fmt.Errorf("reading the admin token file: %w", err)
	}
	warnIfShared(logger, "admin token file", f.tokenFile)
	h, err := srv.AdminHandler(bytes.TrimSpace(raw))
	if err != nil {
		return nil, fmt.Errorf("--admin-token-file %s: %w", f.tokenFile, err)
	}
	return listenSide("admin API", f.listen, h, certs, logger)
}

// checkAdminAddress returns nil when every address host:port may mean is
// loopback, private (RFC 1918, RFC 4193) or link-local, and an error
// saying why not otherwise: an empty host or an unspecified address
// (0.0.0.0, ::) listens on every interface; a host name is resolved.
func checkAdminAddress(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "" {
		return errors.New("no host: that listens on every interface")
	}
	var ips []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		ips = []netip.Addr{ip}
	} else {
		addrs, err := net.DefaultResolver.LookupNetIP(context.Background(), "ip", host)
		if err != nil {
			return fmt.Errorf("host %s does not resolve: %v", host, err)
		}
		ips = addrs
	}
	for _, ip := range ips {
		ip = ip.Unmap()
		switch {
		case ip.IsUnspecified():
			return fmt.Errorf("%s listens on every interface", ip)
		case !ip.IsLoopback() && !ip.IsPrivate() && !ip.IsLinkLocalUnicast():
			return fmt.Errorf("%s is a public address (not loopback, private or link-local)", ip)
		}
	}
	return nil
}

// warnIfShared warns when the secret file name (what: "signing key") is
// readable or writable by group or others. Windows has no such bits.
func warnIfShared(logger *slog.Logger, what, name string) {
	fi, err := os.Stat(name)
	if err != nil || runtime.GOOS == "windows" {
		return
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		logger.Warn(what+" is readable by group or others: chmod 600 it", "file", name, "mode", fmt.Sprintf("%#o", perm))
	}
}

// openMetrics listens for the metrics, or returns nil when
// --metrics-listen is not set.
func (f *adminFlags) openMetrics(srv *keyserver.Server, certs *certReloader, logger *slog.Logger) (*sideListener, error) {
	if f.metricsListen == "" {
		return nil, nil
	}
	return listenSide("metrics", f.metricsListen, srv.MetricsHandler(), certs, logger)
}

func listenSide(what, addr string, h http.Handler, certs *certReloader, logger *slog.Logger) (*sideListener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	s := newHTTPServer(h, logger)
	s.TLSConfig = certs.config()
	return &sideListener{what: what, ln: ln, srv: s}, nil
}

// announce prints the bound address on the next stdout line (the public
// address comes first, then the admin API's, then the metrics') and logs
// it.
func (a *sideListener) announce(stdout io.Writer, logger *slog.Logger) {
	if a == nil {
		return
	}
	addr := a.ln.Addr().String()
	fmt.Fprintln(stdout, addr)
	logger.Info(a.what+" serving", "addr", addr, "tls", a.srv.TLSConfig != nil)
}

// serve serves until shutdown, then sends the result to errc.
func (a *sideListener) serve(errc chan<- error) {
	if a != nil {
		go func() { errc <- serveHTTP(a.srv, a.ln) }()
	}
}

// close stops listening (a listener opened but never served).
func (a *sideListener) close() {
	if a != nil {
		a.ln.Close()
	}
}

func (a *sideListener) shutdown(ctx context.Context) error {
	if a == nil {
		return nil
	}
	if err := a.srv.Shutdown(ctx); err != nil {
		return fmt.Errorf("%s shutdown: %w", a.what, err)
	}
	return nil
}

// serveHTTP serves s on ln, with TLS when s.TLSConfig is set.
func serveHTTP(s *http.Server, ln net.Listener) error {
	if s.TLSConfig != nil {
		return s.ServeTLS(ln, "", "") // the certificate comes from TLSConfig.GetCertificate
	}
	return s.Serve(ln)
}
