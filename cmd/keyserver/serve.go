package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/keyserver/keyserver/keyserver"
	"github.com/keyserver/keyserver/store"
	"github.com/keyserver/keyserver/store/sqlstore"
)

const defaultDB = "sqlite:keyserver.db"

type serveFlags struct {
	listen          string
	db              string
	publicURL       string
	migrate         bool
	logFormat       string
	logLevel        string
	dev             bool
	bodyLimit       int64
	shutdownTimeout time.Duration
	auditRetention  time.Duration
	verificationURL string
	contentServer   string
	corsOrigins     string
	trustedProxies  string
	srpTokenTTL     time.Duration
	hawkSkew        time.Duration
	heavyRun        int
	heavyQueue      int
	heavyWait       time.Duration
}

func runServe(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f serveFlags
	fs.StringVar(&f.listen, "listen", "127.0.0.1:9000", "address to listen on (host:port; port 0 picks a free one)")
	fs.StringVar(&f.db, "db", defaultDB, "database: sqlite:PATH or a postgres:// URL")
	fs.StringVar(&f.publicURL, "public-url", "", "origin clients use, e.g. https://keys.example.com (default: http://<listen address>)")
	fs.BoolVar(&f.migrate, "migrate", false, "apply pending migrations at startup (default true for SQLite, false for PostgreSQL)")
	fs.StringVar(&f.logFormat, "log-format", "json", "log format: json or text")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.BoolVar(&f.dev, "dev", false, "development/test mode: honours preVerified (never in production)")
	fs.Int64Var(&f.bodyLimit, "body-limit", 1<<20, "maximum request body in bytes")
	fs.DurationVar(&f.shutdownTimeout, "shutdown-timeout", 30*time.Second, "how long in-flight requests may take to finish at shutdown")
	fs.DurationVar(&f.auditRetention, "audit-retention", 90*24*time.Hour, "how long audit events are kept")
	fs.StringVar(&f.verificationURL, "verification-url", "", "target of email verification links (default <public URL>/v1/verify_email; <public URL>/verify lands on the web client)")
	fs.StringVar(&f.contentServer, "content-server-url", "", "where GET /v1/verify_email redirects (default: verify directly)")
	fs.StringVar(&f.corsOrigins, "cors-origins", "", "comma-separated origins allowed by CORS (default: any, *)")
	fs.StringVar(&f.trustedProxies, "trusted-proxies", "", "comma-separated IPs or CIDRs of proxies whose X-Forwarded-For gives the client IP")
	fs.DurationVar(&f.srpTokenTTL, "srp-token-ttl", 60*time.Second, "lifetime of an srpToken between auth/start and auth/finish")
	fs.DurationVar(&f.hawkSkew, "hawk-skew", 60*time.Second, "accepted clock skew of Hawk timestamps")
	fs.IntVar(&f.heavyRun, "heavy-concurrency", 0, "CPU-heavy requests (auth/start, auth/finish, certificate/sign, account/create) run at once (default GOMAXPROCS)")
	fs.IntVar(&f.heavyQueue, "heavy-queue", 0, "CPU-heavy requests that may wait for a slot; more are answered 503 at once (default 4 × --heavy-concurrency)")
	fs.DurationVar(&f.heavyWait, "heavy-wait", 500*time.Millisecond, "longest wait of a CPU-heavy request for a slot before it is answered 503")
	var rf recoveryFlags
	rf.register(fs)
	var sf signingFlags
	sf.register(fs)
	var af adminFlags
	af.register(fs)
	set, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if !set["migrate"] {
		f.migrate = isSQLite(f.db)
	}
	if !set["log-format"] && f.dev {
		f.logFormat = "text"
	}
	logger, err := newLogger(stderr, f.logFormat, f.logLevel)
	if err != nil {
		return err
	}
	proxies, err := parseNets(f.trustedProxies)
	if err != nil {
		return err
	}
	signer, retiredKeys, err := sf.load(logger, f.dev)
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	st, err := sqlstore.Open(ctx, f.db, sqlstore.Options{Migrate: f.migrate})
	if err != nil {
		return fmt.Errorf("opening database: %w", err)
	}
	defer st.Close()

	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return err
	}
	addr := ln.Addr().String()
	if f.publicURL == "" {
		f.publicURL = "http://" + addr
		logger.Warn("--public-url not set; Hawk signatures and links use the listen address", "public_url", f.publicURL)
	}
	if f.dev {
		logger.Warn("DEVELOPMENT MODE (--dev): preVerified accounts are accepted; never run this in production")
	}

	mailer, err := rf.mailer(logger, f.dev)
	if err != nil {
		ln.Close()
		return err
	}
	recoveryVerifier, err := rf.recovery(f.publicURL)
	if err != nil {
		ln.Close()
		return err
	}

	srv, err := keyserver.New(keyserver.Config{
		PublicURL: f.publicURL,
		Dev:       f.dev,
		BodyLimit: f.bodyLimit,
		Mailer:    mailer,

		VerificationURL:  f.verificationURL,
		ContentServerURL: strings.TrimSuffix(f.contentServer, "/"),
		CORSOrigins:      splitList(f.corsOrigins),
		TrustedProxies:   proxies,
		SRPTokenTTL:      f.srpTokenTTL,
		HawkSkew:         f.hawkSkew,
		HeavyConcurrency: f.heavyRun,
		HeavyQueue:       f.heavyQueue,
		HeavyWait:        f.heavyWait,

		Recovery: recoveryVerifier,
		Logger:   logger,

		Signer:           signer,
		RetiredKeys:      retiredKeys,
		LegacyClientKeys: sf.legacy,
	}, st)
	if err != nil {
		ln.Close()
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	httpSrv := newHTTPServer(srv.Handler(), logger)
	admin, err := af.open(srv, logger)
	if err != nil {
		ln.Close()
		return err
	}

	fmt.Fprintln(stdout, addr)
	logger.Info("keyserver serving", "addr", addr, "public_url", f.publicURL, "db", redactDSN(f.db), "version", versionString())
	admin.announce(stdout, logger)

	go purgeLoop(ctx, st, f.auditRetention, logger)

	serveErr := make(chan error, 2)
	go func() { serveErr <- httpSrv.Serve(ln) }()
	admin.serve(serveErr)
	select {
	case err := <-serveErr:
		return err
	case <-ctx.Done():
	}
	stop()
	logger.Info("shutting down: waiting for in-flight requests", "timeout", f.shutdownTimeout)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), f.shutdownTimeout)
	defer cancel()
	if err := httpSrv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := admin.shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("admin API shutdown: %w", err)
	}
	if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	logger.Info("stopped")
	return nil
}

// newHTTPServer is an http.Server with the timeouts and limits of serve.
func newHTTPServer(h http.Handler, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// purgeLoop deletes expired nonces, assertion hashes, tokens and old audit
// events once a minute.
func purgeLoop(ctx context.Context, st store.Store, retention time.Duration, logger *slog.Logger) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			now := time.Now()
			n, err := st.Purge(ctx, now, now.Add(-retention))
			if err != nil && ctx.Err() == nil {
				logger.Warn("purge failed", "err", err)
			} else if n > 0 {
				logger.Debug("purged expired rows", "rows", n)
			}
		}
	}
}

func runMigrate(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	db := fs.String("db", defaultDB, "database: sqlite:PATH or a postgres:// URL")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	applied, err := sqlstore.MigrateDSN(context.Background(), *db)
	if err != nil {
		return err
	}
	if len(applied) == 0 {
		fmt.Fprintln(stdout, "database schema is up to date")
		return nil
	}
	for _, v := range applied {
		fmt.Fprintf(stdout, "applied migration %04d\n", v)
	}
	return nil
}

func isSQLite(dsn string) bool { return strings.HasPrefix(dsn, "sqlite:") }

// redactDSN hides a password in a database URL for the log.
func redactDSN(dsn string) string {
	if i := strings.Index(dsn, "://"); i >= 0 {
		rest := dsn[i+3:]
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			if colon := strings.Index(rest[:at], ":"); colon >= 0 {
				return dsn[:i+3] + rest[:colon] + ":REDACTED" + rest[at:]
			}
		}
	}
	return dsn
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("%w: --log-level %q", errUsage, level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("%w: --log-format %q (json or text)", errUsage, format)
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(v string) []string {
	var out []string
	for _, item := range strings.Split(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// parseNets parses --trusted-proxies: IP addresses or CIDR prefixes.
func parseNets(v string) ([]*net.IPNet, error) {
	var nets []*net.IPNet
	for _, item := range splitList(v) {
		if !strings.Contains(item, "/") {
			ip := net.ParseIP(item)
			if ip == nil {
				return nil, fmt.Errorf("%w: --trusted-proxies: %q is not an IP address or CIDR", errUsage, item)
			}
			bits := 8 * len(ip.To16())
			if ip.To4() != nil {
				ip, bits = ip.To4(), 32
			}
			nets = append(nets, &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)})
			continue
		}
		_, n, err := net.ParseCIDR(item)
		if err != nil {
			return nil, fmt.Errorf("%w: --trusted-proxies: %q is not an IP address or CIDR", errUsage, item)
		}
		nets = append(nets, n)
	}
	return nets, nil
}
