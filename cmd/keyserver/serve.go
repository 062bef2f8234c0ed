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
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyserver/keyserver/internal/metrics"
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

// serveEnvHelp ends the usage text of serve.
const serveEnvHelp = `
Every flag can also be set with an environment variable: KEYSERVER_ and the
flag name in upper case with '-' as '_' (--public-url is KEYSERVER_PUBLIC_URL,
--tls-cert is KEYSERVER_TLS_CERT). A flag on the command line beats the
environment, which beats the default. Durations are Go durations: 90s, 15m,
2h30m.`

func runServe(args []string, stdout, stderr io.Writer) (err error) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f serveFlags
	fs.StringVar(&f.listen, "listen", "127.0.0.1:9000", "address to listen on (host:port; port 0 picks a free one)")
	fs.StringVar(&f.db, "db", defaultDB, "database: sqlite:PATH or a postgres:// URL")
	fs.StringVar(&f.publicURL, "public-url", "", "origin clients use, e.g. https://keys.example.com (default: http://<listen address>, https:// with --tls-cert); Strict-Transport-Security is sent only when it is https")
	fs.BoolVar(&f.migrate, "migrate", false, "apply pending migrations at startup (default true for SQLite, false for PostgreSQL)")
	fs.StringVar(&f.logFormat, "log-format", "json", "log format: json or text")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.BoolVar(&f.dev, "dev", false, "development/test mode: honours preVerified (never in production)")
	fs.Int64Var(&f.bodyLimit, "body-limit", 1<<20, "maximum request body in bytes")
	durationFlag(fs, &f.shutdownTimeout, "shutdown-timeout", 30*time.Second, "how long in-flight requests may take to finish at shutdown")
	durationFlag(fs, &f.auditRetention, "audit-retention", 90*24*time.Hour, "how long audit events are kept")
	fs.StringVar(&f.verificationURL, "verification-url", "", "target of email verification links (default <public URL>/v1/verify_email; <public URL>/verify lands on the web client)")
	fs.StringVar(&f.contentServer, "content-server-url", "", "where GET /v1/verify_email redirects (default: verify directly)")
	fs.StringVar(&f.corsOrigins, "cors-origins", "", "comma-separated origins allowed by CORS (default: any, *)")
	fs.StringVar(&f.trustedProxies, "trusted-proxies", "", "comma-separated IPs or CIDRs of proxies whose X-Forwarded-For gives the client IP")
	durationFlag(fs, &f.srpTokenTTL, "srp-token-ttl", 60*time.Second, "lifetime of an srpToken between auth/start and auth/finish")
	durationFlag(fs, &f.hawkSkew, "hawk-skew", 60*time.Second, "accepted clock skew of Hawk timestamps")
	fs.IntVar(&f.heavyRun, "heavy-concurrency", 0, "CPU-heavy requests (auth/start, auth/finish, certificate/sign, account/create) run at once (default GOMAXPROCS)")
	fs.IntVar(&f.heavyQueue, "heavy-queue", 0, "CPU-heavy requests that may wait for a slot; more are answered 503 at once (default 4 × --heavy-concurrency)")
	durationFlag(fs, &f.heavyWait, "heavy-wait", 500*time.Millisecond, "longest wait of a CPU-heavy request for a slot before it is answered 503")
	var rf recoveryFlags
	rf.register(fs)
	var sf signingFlags
	sf.register(fs)
	var af adminFlags
	af.register(fs)
	var tf tlsFlags
	tf.register(fs)
	var cf customsFlags
	cf.register(fs)
	var kf kekFlags
	kf.register(fs)
	set, err := parseFlags(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(stderr, serveEnvHelp)
	}
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
	// A fatal error is logged in the log's format too (for a collector of
	// JSON logs), before run prints it.
	defer func() {
		if err != nil {
			logger.Error("keyserver exits with an error", "err", err)
		}
	}()
	build := buildVersion()
	proxies, err := parseNets(f.trustedProxies)
	if err != nil {
		return err
	}
	limits, exempt, err := cf.load()
	if err != nil {
		return err
	}
	signer, retiredKeys, err := sf.load(logger, f.dev)
	if err != nil {
		return err
	}
	kek, err := kf.serveRing(logger, f.dev, f.db)
	if err != nil {
		return err
	}
	tlsCerts, err := tf.load(logger)
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	st, err := sqlstore.Open(ctx, f.db, sqlstore.Options{Migrate: f.migrate, KEK: kek})
	if err != nil {
		return openError(f.db, err)
	}
	defer st.Close()
	if st.Created() {
		logger.Warn("created a new, empty database file: if one should exist, check --db (a wrong path or working directory starts a server without its accounts)", "path", st.Path())
	}
	if warnings, err := st.DurabilityWarnings(ctx); err != nil {
		logger.Warn("could not read the PostgreSQL durability settings", "err", err)
	} else {
		for _, w := range warnings {
			logger.Warn(w)
		}
	}
	if err := logSealStatus(ctx, st, kek, logger); err != nil {
		return fmt.Errorf("reading the database: %w", err)
	}

	var reg *prometheus.Registry
	var instrumented store.Store = st
	if af.metricsOn() {
		reg = metrics.NewRegistry()
		if instrumented, err = metrics.InstrumentStore(st, reg); err != nil {
			return err
		}
	}

	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return err
	}
	ln = cf.capListener(ln, proxies, exempt)
	addr := ln.Addr().String()
	if f.publicURL == "" {
		f.publicURL = "http://" + addr
		if tlsCerts != nil {
			f.publicURL = "https://" + addr
		}
		logger.Warn("--public-url not set; Hawk signatures and links use the listen address", "public_url", f.publicURL)
	} else if tlsCerts != nil && !strings.HasPrefix(strings.ToLower(f.publicURL), "https:") {
		logger.Warn("--tls-cert is set but --public-url is not https: clients are told to use http, and no Strict-Transport-Security is sent", "public_url", f.publicURL)
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
		Limits:           limits,
		RateLimitExempt:  exempt,
		UnverifiedTTL:    cf.unverifiedTTL,

		HSTSOnlyHTTPS: true,
		Metrics:       reg,
		Version:       build,
	}, instrumented)
	if err != nil {
		ln.Close()
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	httpSrv := newHTTPServer(srv.Handler(), logger)
	httpSrv.TLSConfig = tlsCerts.config()
	admin, err := af.open(srv, tlsCerts, logger)
	if err != nil {
		ln.Close()
		return err
	}
	metricsLn, err := af.openMetrics(srv, tlsCerts, logger)
	if err != nil {
		ln.Close()
		admin.close()
		return err
	}

	fmt.Fprintln(stdout, addr)
	logger.Info("keyserver serving", "addr", addr, "public_url", f.publicURL, "tls", tlsCerts != nil, "db", redactDSN(f.db),
		"version", build.Version, "commit", build.Commit, "go", runtime.Version())
	admin.announce(stdout, logger)
	metricsLn.announce(stdout, logger)

	go purgeLoop(ctx, srv, f.auditRetention, logger)
	go reloadOnHangup(ctx, tlsCerts, logger)

	serveErr := make(chan error, 3)
	go func() { serveErr <- serveHTTP(httpSrv, ln) }()
	admin.serve(serveErr)
	metricsLn.serve(serveErr)
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
	if err := errors.Join(admin.shutdown(shutdownCtx), metricsLn.shutdown(shutdownCtx)); err != nil {
		return err
	}
	if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	logger.Info("stopped")
	return nil
}

// reloadOnHangup reloads the TLS certificate on SIGHUP (systemctl reload),
// until ctx ends. Without TLS there is nothing to reload, but SIGHUP does
// not stop the server either.
func reloadOnHangup(ctx context.Context, certs *certReloader, logger *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			if certs == nil {
				logger.Info("SIGHUP: nothing to reload (no --tls-cert)")
				continue
			}
			if err := certs.reload(true); err != nil {
				logger.Warn("SIGHUP: TLS certificate not reloaded: still serving the previous one", "err", err)
			}
		}
	}
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
func purgeLoop(ctx context.Context, st purger, retention time.Duration, logger *slog.Logger) {
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

// openError is the error of a database that did not open: it names the
// database (without a password) and, for an SQLite file, what is wrong
// with its path when that can be seen (the driver says only "unable to
// open database file").
func openError(dsn string, err error) error {
	if path, ok := strings.CutPrefix(dsn, "sqlite:"); ok && path != "" {
		if problem := sqlitePathProblem(path); problem != "" {
			return fmt.Errorf("opening database %s: %s (%w)", dsn, problem, err)
		}
	}
	return fmt.Errorf("opening database %s: %w", redactDSN(dsn), err)
}

// sqlitePathProblem says why the SQLite file path cannot be opened for
// writing, or "" when nothing is visibly wrong.
func sqlitePathProblem(path string) string {
	dir := filepath.Dir(path)
	if fi, err := os.Stat(dir); err != nil {
		return fmt.Sprintf("its directory %s cannot be used: %v", dir, errors.Unwrap(err))
	} else if !fi.IsDir() {
		return fmt.Sprintf("%s is not a directory", dir)
	}
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return ""
	case err != nil:
		return err.Error()
	case fi.IsDir():
		return path + " is a directory"
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Sprintf("the file cannot be opened for writing: %v", errors.Unwrap(err))
	}
	f.Close()
	return ""
}

func isSQLite(dsn string) bool { return strings.HasPrefix(dsn, "sqlite:") }

// redactDSN hides the passwords of a database URL for the log and error
// messages: the userinfo password and any query parameter whose name holds
// "password" (password=, sslpassword=), in any letter case. A DSN that does
// not parse as a URL is hidden whole after its scheme.
func redactDSN(dsn string) string {
	if isSQLite(dsn) {
		return dsn
	}
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		scheme, _, ok := strings.Cut(dsn, "://")
		if !ok {
			return "REDACTED"
		}
		return scheme + "://REDACTED"
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "REDACTED")
	}
	if u.RawQuery != "" {
		q, err := url.ParseQuery(u.RawQuery)
		if err != nil {
			u.RawQuery = "REDACTED"
		} else {
			for name := range q {
				if strings.Contains(strings.ToLower(name), "password") {
					q[name] = []string{"REDACTED"}
				}
			}
			u.RawQuery = q.Encode()
		}
	}
	return u.String()
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("%w: --log-level %q: want debug, info, warn or error", errUsage, level)
	}
	opts := &slog.HandlerOptions{Level: lvl, ReplaceAttr: durationsAsStrings}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("%w: --log-format %q (json or text)", errUsage, format)
}

// durationValue is a duration flag whose bad values are answered with
// the format (the flag package says only "parse error").
type durationValue time.Duration

func (d *durationValue) String() string { return time.Duration(*d).String() }

func (d *durationValue) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration: want a number with a unit, such as 500ms, 90s, 15m or 2h30m", s)
	}
	*d = durationValue(v)
	return nil
}

// durationFlag defines a duration flag like fs.DurationVar, with
// durationValue's error messages.
func durationFlag(fs *flag.FlagSet, p *time.Duration, name string, value time.Duration, usage string) {
	*p = value
	fs.Var((*durationValue)(p), name, usage+" (a `duration`: 500ms, 90s, 15m, 2h30m)")
}

// durationsAsStrings writes durations as Go duration strings ("30s",
// "1.5ms") instead of the JSON handler's integer nanoseconds.
func durationsAsStrings(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		return slog.String(a.Key, a.Value.Duration().String())
	}
	return a
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
