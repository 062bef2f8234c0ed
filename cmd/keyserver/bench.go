package main

// keyserver bench: a load driver of complete sign-ins against a running
// server, after pgbench and redis-benchmark. Each sign-in is auth/start,
// auth/finish, session/create and account/keys (and certificate/sign with
// --cert), from --concurrency clients at once, for --duration or
// --signins. The client side is cheap so that one core of load can drive
// a server core: accounts it creates have random srpPw values instead of
// stretched passwords, accounts from a file are stretched once, and each
// account reuses one SRP secret (client.Prover). What goes over the wire is
// the real protocol.

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/bits"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/keyserver/keyserver/client"
	"github.com/keyserver/keyserver/protocol"
)

// Bounds of the bench flags.
const (
	benchMaxConcurrency = 1024
	benchMaxAccounts    = 10000
	benchMaxDuration    = time.Hour
	benchMaxSignins     = 10_000_000
	benchMaxTimeout     = 10 * time.Minute
	benchCertMs         = int64(time.Hour / time.Millisecond) // certificates asked for with --cert
	benchRSSInterval    = 100 * time.Millisecond
	benchSetupWorkers   = 4  // requests at once while creating, warming up and destroying accounts
	benchSetupTries     = 10 // of a setup request the server sheds (503)
	benchMaxBackoff     = time.Second
	clockTicks          = 100 // USER_HZ: the unit of utime and stime in /proc/PID/stat
)

// The steps of one sign-in.
const (
	stepStart = iota
	stepFinish
	stepSession
	stepKeys
	stepCert
	numSteps
)

var stepNames = [numSteps]string{"auth/start", "auth/finish", "session/create", "account/keys", "certificate/sign"}

type benchFlags struct {
	url          string
	concurrency  int
	accounts     int
	accountsFile string
	duration     time.Duration
	signins      int64
	cert         bool
	serverPID    int
	json         bool
	timeout      time.Duration
	maxErrors    int64
	keepAccounts bool
	allowRemote  bool
	progress     time.Duration
}

const benchUsage = `usage: keyserver bench [flags]

Runs complete sign-ins (auth/start, auth/finish, session/create,
account/keys; with --cert also certificate/sign) against a running server
from --concurrency clients for --duration or --signins, and prints
sign-ins/s, latency percentiles per step, errors by status and errno, the
bench's own CPU per sign-in and, with --server-pid, the server's CPU per
sign-in and memory.

Without --accounts-file it creates --accounts pre-verified accounts, which
needs a server in --dev mode, and destroys them afterwards. An accounts
file has one JSON object per line: {"email": "...", "password": "..."}
(blank lines and lines starting with # are skipped); each password is
stretched once before the run. The server must be on a loopback address
unless --allow-remote is given. Exit status 1 when any sign-in failed.

flags (environment KEYSERVER_BENCH_<FLAG>):
`

func runBench(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), benchUsage)
		fs.PrintDefaults()
	}
	var f benchFlags
	fs.StringVar(&f.url, "url", "http://127.0.0.1:9000", "origin of the key server")
	fs.IntVar(&f.concurrency, "concurrency", 1, fmt.Sprintf("sign-ins at once (1 to %d)", benchMaxConcurrency))
	fs.IntVar(&f.accounts, "accounts", 0, fmt.Sprintf("accounts to create (up to %d; default: --concurrency)", benchMaxAccounts))
	fs.StringVar(&f.accountsFile, "accounts-file", "", "sign in to the accounts of this file (JSON lines of email and password) instead of creating accounts")
	fs.DurationVar(&f.duration, "duration", 10*time.Second, fmt.Sprintf("how long to run (at most %s; with only --signins given, %s)", benchMaxDuration, benchMaxDuration))
	fs.Int64Var(&f.signins, "signins", 0, fmt.Sprintf("stop after this many sign-ins, failed ones included (up to %d; 0: --duration alone)", benchMaxSignins))
	fs.BoolVar(&f.cert, "cert", false, "add certificate/sign (a 1 h certificate for a pre-generated RSA key) to each sign-in")
	fs.IntVar(&f.serverPID, "server-pid", 0, "pid of the server on this machine: report its CPU per sign-in (/proc/PID/stat) and RSS (/proc/PID/status)")
	fs.BoolVar(&f.json, "json", false, "print the report as JSON")
	fs.DurationVar(&f.timeout, "timeout", 30*time.Second, "timeout of each request")
	fs.Int64Var(&f.maxErrors, "max-errors", 1000, "stop after this many failed sign-ins (0: never)")
	fs.BoolVar(&f.keepAccounts, "keep-accounts", false, "do not destroy the created accounts afterwards")
	fs.BoolVar(&f.allowRemote, "allow-remote", false, "allow a server that is not on a loopback address")
	fs.DurationVar(&f.progress, "progress", 0, "print progress to stderr at this interval (0: never)")
	set, err := parseFlagsEnv(fs, args, benchEnvName)
	if err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	if set["signins"] && !set["duration"] {
		f.duration = benchMaxDuration
	}
	if err := f.check(set); err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b, err := newBench(&f, stderr)
	if err != nil {
		return err
	}
	defer b.http.CloseIdleConnections()
	rep, err := b.run(ctx, stop)
	if err != nil {
		return err
	}
	if f.json {
		if err := printJSON(stdout, rep); err != nil {
			return err
		}
	} else {
		rep.write(stdout)
	}
	if rep.Failed > 0 {
		return fmt.Errorf("%d of %d sign-ins failed", rep.Failed, rep.Failed+rep.Signins)
	}
	return nil
}

func benchEnvName(flagName string) string { return envName("bench-" + flagName) }

// check validates the flags; set holds the flags given.
func (f *benchFlags) check(set map[string]bool) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{errUsage}, a...)...)
	}
	switch {
	case f.concurrency < 1 || f.concurrency > benchMaxConcurrency:
		return bad("--concurrency must be 1 to %d", benchMaxConcurrency)
	case f.accounts < 0 || f.accounts > benchMaxAccounts:
		return bad("--accounts must be 1 to %d", benchMaxAccounts)
	case set["accounts"] && f.accountsFile != "":
		return bad("--accounts and --accounts-file exclude each other")
	case f.duration <= 0 || f.duration > benchMaxDuration:
		return bad("--duration must be more than 0 and at most %s", benchMaxDuration)
	case f.signins < 0 || f.signins > benchMaxSignins:
		return bad("--signins must be 0 to %d", benchMaxSignins)
	case f.timeout <= 0 || f.timeout > benchMaxTimeout:
		return bad("--timeout must be more than 0 and at most %s", benchMaxTimeout)
	case f.maxErrors < 0:
		return bad("--max-errors must not be negative")
	case f.progress < 0:
		return bad("--progress must not be negative")
	case f.serverPID < 0:
		return bad("--server-pid must be a pid")
	}
	if f.accounts == 0 {
		f.accounts = f.concurrency
	}
	u, err := url.Parse(f.url)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return bad("--url must be an http(s) origin such as http://127.0.0.1:9000")
	}
	if !f.allowRemote && !isLoopbackHost(u.Hostname()) {
		return bad("--url %s is not a loopback address: a load test is for test servers; give --allow-remote to bench it anyway", u.Host)
	}
	if f.serverPID > 0 {
		if _, err := procCPU(f.serverPID); err != nil {
			return bad("--server-pid %d: %v (the server must run on this Linux machine)", f.serverPID, err)
		}
	}
	return nil
}

func isLoopbackHost(host string) bool {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// A benchAccount is one account the bench signs in to.
type benchAccount struct {
	email    string
	password string // accounts of a file
	prover   *client.Prover
	created  bool
	// kA and wrapKb from the warm-up sign-in; every later sign-in must
	// fetch the same.
	kA, wrapKb []byte
}

type bench struct {
	f        *benchFlags
	stderr   io.Writer
	http     *http.Client
	c        *client.Client
	accounts []*benchAccount
	certKey  map[string]string
	stats    *benchStats
}

func newBench(f *benchFlags, stderr io.Writer) (*bench, error) {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        2 * f.concurrency,
		MaxIdleConnsPerHost: 2 * f.concurrency,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	hc := &http.Client{Transport: tr, Timeout: f.timeout}
	c, err := client.New(f.url, append([]client.Option{client.WithHTTPClient(hc)}, clientOptions...)...)
	if err != nil {
		return nil, fmt.Errorf("%w: --url: %v", errUsage, err)
	}
	return &bench{f: f, stderr: stderr, http: hc, c: c, stats: newBenchStats()}, nil
}

// steps is the number of steps of a sign-in.
func (b *bench) steps() int {
	if b.f.cert {
		return numSteps
	}
	return stepCert
}

func (b *bench) logf(format string, a ...any) { fmt.Fprintf(b.stderr, "bench: "+format+"\n", a...) }

// run sets up the accounts, warms up, measures and cleans up. stop ends
// the interrupt handling of ctx (a second interrupt then kills).
func (b *bench) run(ctx context.Context, stop func()) (*benchReport, error) {
	if err := b.setUpAccounts(ctx); err != nil {
		return nil, err
	}
	defer b.cleanUp()
	if b.f.cert {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, err
		}
		b.certKey = map[string]string{"algorithm": "RS", "n": k.N.String(), "e": strconv.Itoa(k.E)}
	}
	if err := b.warmUp(ctx); err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		return nil, errors.New("interrupted")
	}
	rep := b.measure(ctx, stop)
	return rep, nil
}

// parallel runs fn(i) for i in [0, n) on at most workers goroutines and
// returns the first error.
func parallel(n, workers int, fn func(i int) error) error {
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
		first   error
		failed  atomic.Bool
	)
	for range min(n, workers) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !failed.Load() {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					errOnce.Do(func() { first = err })
					failed.Store(true)
				}
			}
		}()
	}
	wg.Wait()
	return first
}

func (b *bench) setUpAccounts(ctx context.Context) error {
	if b.f.accountsFile != "" {
		accts, err := readBenchAccounts(b.f.accountsFile)
		if err != nil {
			return err
		}
		b.accounts = accts
		return nil
	}
	run := make([]byte, 4)
	if _, err := rand.Read(run); err != nil {
		return err
	}
	b.accounts = make([]*benchAccount, b.f.accounts)
	b.logf("creating %d pre-verified accounts", b.f.accounts)
	err := parallel(b.f.accounts, min(b.f.concurrency, benchSetupWorkers), func(i int) error {
		if ctx.Err() != nil {
			return errors.New("interrupted")
		}
		email := fmt.Sprintf("bench-%x-%d@bench.invalid", run, i)
		var p *client.Prover
		err := retryShed(ctx, func() (err error) {
			p, _, err = b.c.CreateTestAccount(ctx, email, client.CreateOptions{PreVerified: true})
			return err
		})
		if err != nil {
			return createHint(err)
		}
		b.accounts[i] = &benchAccount{email: email, prover: p, created: true}
		return nil
	})
	if err != nil {
		b.cleanUp()
		return err
	}
	return nil
}

// createHint explains a failed account creation.
func createHint(err error) error {
	var ce *client.Error
	if errors.As(err, &ce) {
		switch {
		case ce.Errno == protocol.ErrnoInvalidParameter && ce.Body["param"] == "preVerified":
			return fmt.Errorf("creating accounts: %w: the server refuses preVerified accounts, so it is not in --dev mode; "+
				"start it with 'keyserver serve --dev', or sign in to existing accounts with --accounts-file", err)
		case ce.Status == http.StatusServiceUnavailable:
			return fmt.Errorf("creating accounts: %w: the server kept shedding account creation; "+
				"raise its --heavy-queue and --heavy-wait, or give it more CPU", err)
		case ce.Status == http.StatusTooManyRequests:
			return fmt.Errorf("creating accounts: %w: the server limits account creation per client IP; "+
				"exempt the bench's address on the server (it may need --rate-limit-exempt 127.0.0.1/32) or use --accounts-file", err)
		}
	}
	return fmt.Errorf("creating accounts: %w", err)
}

// readBenchAccounts reads an accounts file: one JSON object
// {"email", "password"} per line; blank lines and # comments skipped.
func readBenchAccounts(path string) ([]*benchAccount, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading the accounts file: %w", err)
	}
	defer fh.Close()
	return parseBenchAccounts(fh, path)
}

func parseBenchAccounts(r io.Reader, name string) ([]*benchAccount, error) {
	var accts []*benchAccount
	seen := map[string]bool{}
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		var a struct {
			Email    string `json:"email"`
			Password string `json:"password"`
		}
		dec := json.NewDecoder(strings.NewReader(text))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&a); err != nil {
			return nil, fmt.Errorf("%s:%d: %v (want {\"email\": \"...\", \"password\": \"...\"})", name, line, err)
		}
		switch {
		case dec.More():
			return nil, fmt.Errorf("%s:%d: more than one JSON object", name, line)
		case a.Email == "" || a.Password == "":
			return nil, fmt.Errorf("%s:%d: email and password must not be empty", name, line)
		case seen[a.Email]:
			return nil, fmt.Errorf("%s:%d: email %q appears twice", name, line, a.Email)
		case len(accts) == benchMaxAccounts:
			return nil, fmt.Errorf("%s: more than %d accounts", name, benchMaxAccounts)
		}
		seen[a.Email] = true
		accts = append(accts, &benchAccount{email: a.Email, password: a.Password})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	if len(accts) == 0 {
		return nil, fmt.Errorf("%s: no accounts", name)
	}
	return accts, nil
}

// warmUp signs in to every account once before the measurement: it checks
// the accounts, stretches the passwords of file accounts (at most
// GOMAXPROCS at once: 64 MiB each) and opens the connections.
func (b *bench) warmUp(ctx context.Context) error {
	if b.f.accountsFile != "" {
		b.logf("stretching the passwords of %d accounts (about 0.2 s of CPU each)", len(b.accounts))
	}
	stretching := make(chan struct{}, runtime.GOMAXPROCS(0))
	return parallel(len(b.accounts), min(b.f.concurrency, benchSetupWorkers), func(i int) error {
		if ctx.Err() != nil {
			return errors.New("interrupted")
		}
		return retryShed(ctx, func() error { return b.warmUpAccount(ctx, b.accounts[i], stretching) })
	})
}

// warmUpAccount is one warm-up sign-in of a.
func (b *bench) warmUpAccount(ctx context.Context, a *benchAccount, stretching chan struct{}) error {
	ch, err := b.c.AuthStart(ctx, a.email)
	if stored, ok := client.StoredEmail(err); ok {
		a.email = stored
		ch, err = b.c.AuthStart(ctx, stored)
	}
	if err != nil {
		return warmUpError(a, "auth/start", err)
	}
	if a.prover == nil || !a.prover.Matches(ch) {
		if a.password == "" {
			return warmUpError(a, "auth/start", client.ErrProverMismatch)
		}
		stretching <- struct{}{}
		a.prover, err = b.c.StretchProver(ch, a.password)
		<-stretching
		if err != nil {
			return err
		}
	}
	auth, err := b.c.AuthFinishWith(ctx, ch, a.prover)
	if err != nil {
		return warmUpError(a, "auth/finish", err)
	}
	s, err := b.c.SessionCreate(ctx, auth.AuthToken)
	if err != nil {
		return warmUpError(a, "session/create", err)
	}
	if !s.Verified {
		return fmt.Errorf("account %s is not verified, so it cannot fetch keys: verify it, or let the bench create accounts on a --dev server", a.email)
	}
	keys, err := b.c.Keys(ctx, s.KeyFetchToken, nil)
	if err != nil {
		return warmUpError(a, "account/keys", err)
	}
	a.kA, a.wrapKb = keys.KA, keys.WrapKb
	if b.certKey != nil {
		if _, err := b.c.CertificateSign(ctx, s.SessionToken, b.certKey, benchCertMs); err != nil {
			return warmUpError(a, "certificate/sign", err)
		}
	}
	return nil
}

// retryShed calls fn again, up to benchSetupTries times in all, while it
// fails with 503 (the server shedding CPU-heavy requests), waiting its
// Retry-After (1 to 5 s). Only setup and clean-up retry; the measured
// sign-ins count every failure.
func retryShed(ctx context.Context, fn func() error) error {
	for try := 1; ; try++ {
		err := fn()
		var ce *client.Error
		if err == nil || try == benchSetupTries || !errors.As(err, &ce) || ce.Status != http.StatusServiceUnavailable {
			return err
		}
		wait := time.Second
		if n, perr := strconv.Atoi(ce.Header.Get("Retry-After")); perr == nil {
			wait = min(max(time.Duration(n)*time.Second, time.Second), 5*time.Second)
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
	}
}

func warmUpError(a *benchAccount, step string, err error) error {
	msg := fmt.Sprintf("warm-up sign-in of %s: %s", a.email, step)
	var ce *client.Error
	if errors.As(err, &ce) {
		switch {
		case ce.Errno == protocol.ErrnoIncorrectPassword:
			return fmt.Errorf("%s: %w (wrong password in the accounts file?)", msg, err)
		case ce.Errno == protocol.ErrnoUnknownAccount:
			return fmt.Errorf("%s: %w (no such account on this server)", msg, err)
		case ce.Status == http.StatusTooManyRequests:
			return fmt.Errorf("%s: %w: the server's abuse protection refuses the load; it may need --rate-limit-exempt 127.0.0.1/32 (the bench's address)", msg, err)
		}
	}
	return fmt.Errorf("%s: %w", msg, err)
}

// signIn runs one complete sign-in of a and returns the duration of each
// step; on failure, the step that failed.
func (b *bench) signIn(ctx context.Context, a *benchAccount) (d [numSteps]time.Duration, failed int, err error) {
	t := time.Now()
	lap := func(step int) {
		now := time.Now()
		d[step] = now.Sub(t)
		t = now
	}
	// A failed step's d is the time to its error answer.
	failedAt := func(step int, err error) ([numSteps]time.Duration, int, error) {
		d[step] = time.Since(t)
		return d, step, err
	}
	ch, err := b.c.AuthStart(ctx, a.email)
	if err != nil {
		return failedAt(stepStart, err)
	}
	lap(stepStart)
	auth, err := b.c.AuthFinishWith(ctx, ch, a.prover)
	if err != nil {
		return failedAt(stepFinish, err)
	}
	lap(stepFinish)
	s, err := b.c.SessionCreate(ctx, auth.AuthToken)
	if err != nil {
		return failedAt(stepSession, err)
	}
	lap(stepSession)
	keys, err := b.c.Keys(ctx, s.KeyFetchToken, nil)
	if err != nil {
		return failedAt(stepKeys, err)
	}
	if !bytes.Equal(keys.KA, a.kA) || !bytes.Equal(keys.WrapKb, a.wrapKb) {
		return d, stepKeys, errWrongKeys
	}
	lap(stepKeys)
	if b.certKey != nil {
		if _, err := b.c.CertificateSign(ctx, s.SessionToken, b.certKey, benchCertMs); err != nil {
			return failedAt(stepCert, err)
		}
		lap(stepCert)
	}
	return d, -1, nil
}

var errWrongKeys = errors.New("kA or wrapKb differ from the warm-up sign-in's")

// backoff is how long a worker waits after a failed sign-in: the
// Retry-After of a 429 or 503 answer (1 s when it has none), at most
// benchMaxBackoff, as a client would, so that refusals do not become a
// busy loop that takes the server's CPU from the sign-ins it accepts.
func backoff(err error) time.Duration {
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != http.StatusTooManyRequests && ce.Status != http.StatusServiceUnavailable {
		return 0
	}
	if n, perr := strconv.Atoi(ce.Header.Get("Retry-After")); perr == nil && n >= 0 {
		return min(time.Duration(n)*time.Second, benchMaxBackoff)
	}
	return benchMaxBackoff
}

// measure runs the sign-ins and returns the report.
func (b *bench) measure(ctx context.Context, stopSignals func()) *benchReport {
	var (
		tickets     atomic.Int64
		stopped     atomic.Bool
		interrupted atomic.Bool
		tooMany     atomic.Bool
		wg          sync.WaitGroup
		stopCh      = make(chan struct{}) // closed with stopped, wakes workers that back off
		mu          sync.Mutex
	)
	stop := func(interrupt bool) {
		mu.Lock()
		defer mu.Unlock()
		if !stopped.Load() {
			interrupted.Store(interrupt)
			stopped.Store(true)
			close(stopCh)
		}
	}
	go func() {
		<-ctx.Done()
		stop(true)
		stopSignals()
	}()
	// Requests are not cancelled by an interrupt: the sign-ins under way
	// finish (within --timeout) and are counted.
	reqCtx := context.WithoutCancel(ctx)

	sampler := newProcSampler(b.f.serverPID)
	start := time.Now()
	deadline := start.Add(b.f.duration)
	for range b.f.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stopped.Load() && time.Now().Before(deadline) {
				t := tickets.Add(1)
				if b.f.signins > 0 && t > b.f.signins {
					return
				}
				a := b.accounts[int((t-1)%int64(len(b.accounts)))]
				t0 := time.Now()
				d, step, err := b.signIn(reqCtx, a)
				if err != nil {
					n, is429 := b.stats.failure(step, err, d[step])
					if is429 && !tooMany.Swap(true) {
						b.logf("the server answered 429 (too many requests); it may need --rate-limit-exempt for the bench's address (see the report)")
					}
					if b.f.maxErrors > 0 && n >= b.f.maxErrors {
						stop(false)
					}
					if wait := backoff(err); wait > 0 && (b.f.signins == 0 || tickets.Load() < b.f.signins) {
						t := time.NewTimer(min(wait, time.Until(deadline)))
						select {
						case <-stopCh:
						case <-t.C:
						}
						t.Stop()
					}
					continue
				}
				b.stats.success(d, b.steps(), time.Since(t0))
			}
		}()
	}
	progressDone := make(chan struct{})
	if b.f.progress > 0 {
		go b.printProgress(start, progressDone)
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(progressDone)
	usage := sampler.stop()

	stopReason := "duration"
	switch {
	case interrupted.Load():
		stopReason = "interrupt"
	case b.f.maxErrors > 0 && b.stats.failedCount() >= b.f.maxErrors:
		stopReason = "max-errors"
	case b.f.signins > 0 && tickets.Load() > b.f.signins:
		stopReason = "signins"
	}
	stop(false)
	return b.report(elapsed, stopReason, usage)
}

func (b *bench) printProgress(start time.Time, done <-chan struct{}) {
	tick := time.NewTicker(b.f.progress)
	defer tick.Stop()
	last, lastT := int64(0), start
	for {
		select {
		case <-done:
			return
		case now := <-tick.C:
			ok, failed := b.stats.counts()
			rss := ""
			if b.f.serverPID > 0 { // the server's memory over the run: flat after warm-up?
				if v, err := procRSS(b.f.serverPID); err == nil {
					rss = fmt.Sprintf(", server RSS %.1f MiB", float64(v)/1024) // KiB
				}
			}
			b.logf("%6.1f s: %d sign-ins (%.1f/s), %d failed%s", now.Sub(start).Seconds(), ok, float64(ok-last)/now.Sub(lastT).Seconds(), failed, rss)
			last, lastT = ok, now
		}
	}
}

// cleanUp destroys the accounts the bench created (unless
// --keep-accounts): a sign-in and account/destroy each.
func (b *bench) cleanUp() {
	var created []*benchAccount
	for _, a := range b.accounts {
		if a != nil && a.created {
			created = append(created, a)
		}
	}
	if len(created) == 0 {
		return
	}
	if b.f.keepAccounts {
		b.logf("kept the %d created accounts (%s ...); they have no password", len(created), created[0].email)
		return
	}
	ctx := context.Background()
	var failed atomic.Int64
	var firstErr atomic.Value
	_ = parallel(len(created), min(b.f.concurrency, benchSetupWorkers), func(i int) error {
		a := created[i]
		err := retryShed(ctx, func() error {
			ch, err := b.c.AuthStart(ctx, a.email)
			if err != nil {
				return err
			}
			auth, err := b.c.AuthFinishWith(ctx, ch, a.prover)
			if err != nil {
				return err
			}
			return b.c.DestroyAccountWithToken(ctx, auth.AuthToken)
		})
		if err != nil {
			failed.Add(1)
			firstErr.CompareAndSwap(nil, err.Error())
		}
		return nil
	})
	if n := failed.Load(); n > 0 {
		b.logf("could not destroy %d of the %d created accounts (they stay on the server): %v", n, len(created), firstErr.Load())
	} else {
		b.logf("destroyed the %d created accounts", len(created))
	}
	for _, a := range created {
		a.created = false
	}
}

// Latency histograms: log-linear buckets of nanoseconds, exact below
// 2*histSub ns and within 1/histSub (1.6 %) above, up to about 39 hours.
const (
	histSubBits  = 6
	histSub      = 1 << histSubBits
	histMaxShift = 40
	histBuckets  = 2*histSub + histMaxShift*histSub
)

type histogram struct {
	counts        [histBuckets]uint64
	n             uint64
	sum, min, max int64
}

func bucketOf(v int64) int {
	if v < 2*histSub {
		return int(max(v, 0))
	}
	shift := bits.Len64(uint64(v)) - (histSubBits + 1)
	if shift > histMaxShift {
		return histBuckets - 1
	}
	top := int(v >> shift) // in [histSub, 2*histSub)
	return 2*histSub + (shift-1)*histSub + top - histSub
}

// bucketRange returns the smallest and the largest value of bucket i.
func bucketRange(i int) (lo, hi int64) {
	if i < 2*histSub {
		return int64(i), int64(i)
	}
	j := i - 2*histSub
	shift := j/histSub + 1
	top := int64(j%histSub + histSub)
	return top << shift, (top+1)<<shift - 1
}

func (h *histogram) record(d time.Duration) {
	v := max(int64(d), 0)
	h.counts[bucketOf(v)]++
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n++
	h.sum += v
}

func (h *histogram) merge(o *histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.n += o.n
	h.sum += o.sum
}

// quantile returns the value of rank ceil(q*n) (nearest rank), as the
// middle of its bucket kept within the smallest and largest values seen; 0
// for an empty histogram.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	if q >= 1 {
		return time.Duration(h.max)
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		if seen += c; seen >= rank {
			lo, hi := bucketRange(i)
			return time.Duration(min(max(lo+(hi-lo)/2, h.min), h.max))
		}
	}
	return time.Duration(h.max)
}

func (h *histogram) mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / int64(h.n))
}

// benchErrKey groups failed sign-ins.
type benchErrKey struct {
	step          int
	status, errno int
	kind          string // "" for an error answer of the server
}

type benchErrCount struct {
	n       int64
	message string // of the first one
}

// benchStats collects the outcome of every sign-in.
type benchStats struct {
	mu      sync.Mutex
	steps   [numSteps]histogram
	signin  histogram
	ok      int64
	failed  int64
	errs    map[benchErrKey]*benchErrCount
	tooMany int64
	shed    int64
	// shedAnswer is the time to each 503 answer; shedBare counts those
	// without a Retry-After (spec 1.5 requires one).
	shedAnswer histogram
	shedBare   int64
}

func newBenchStats() *benchStats { return &benchStats{errs: map[benchErrKey]*benchErrCount{}} }

// success records a sign-in whose first n steps took d and which took
// total.
func (s *benchStats) success(d [numSteps]time.Duration, n int, total time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range n {
		s.steps[i].record(d[i])
	}
	s.signin.record(total)
	s.ok++
}

// failure records a sign-in that failed at step, whose answer took took,
// and returns the number of failures so far and whether it was a 429.
func (s *benchStats) failure(step int, err error, took time.Duration) (int64, bool) {
	k, msg := classifyBenchError(step, err)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.errs[k]
	if e == nil {
		e = &benchErrCount{message: msg}
		s.errs[k] = e
	}
	e.n++
	s.failed++
	is429 := k.status == http.StatusTooManyRequests
	if is429 {
		s.tooMany++
	}
	if k.status == http.StatusServiceUnavailable {
		s.shed++
		s.shedAnswer.record(took)
		if ce, ok := errors.AsType[*client.Error](err); ok && ce.Header.Get("Retry-After") == "" {
			s.shedBare++
		}
	}
	return s.failed, is429
}

func (s *benchStats) counts() (ok, failed int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ok, s.failed
}

func (s *benchStats) failedCount() int64 {
	_, f := s.counts()
	return f
}

// classifyBenchError returns the group of a failed step and a message.
func classifyBenchError(step int, err error) (benchErrKey, string) {
	k := benchErrKey{step: step}
	var ce *client.Error
	var ne net.Error
	switch {
	case errors.As(err, &ce):
		k.status, k.errno = ce.Status, ce.Errno
		msg := ce.Message
		if msg == "" {
			msg = http.StatusText(ce.Status)
		}
		return k, msg
	case errors.Is(err, errWrongKeys):
		k.kind = "wrong keys"
	case errors.Is(err, client.ErrProverMismatch):
		k.kind = "password changed"
	case errors.Is(err, client.ErrBadResponse):
		k.kind = "bad response"
	case errors.Is(err, syscall.ECONNREFUSED):
		k.kind = "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		k.kind = "connection lost"
	case errors.As(err, &ne) && ne.Timeout():
		k.kind = "timeout"
	default:
		k.kind = "transport"
	}
	return k, err.Error()
}

// Process figures from /proc (Linux).

// procCPU returns the user and system CPU time of process pid ("self" for
// 0) from /proc/PID/stat.
func procCPU(pid int) (time.Duration, error) {
	raw, err := os.ReadFile(procPath(pid, "stat"))
	if err != nil {
		return 0, err
	}
	return parseProcStat(string(raw))
}

func procPath(pid int, file string) string {
	if pid == 0 {
		return "/proc/self/" + file
	}
	return "/proc/" + strconv.Itoa(pid) + "/" + file
}

// parseProcStat returns utime + stime of a /proc/PID/stat line. The
// command name (field 2) is in parentheses and may hold spaces and
// parentheses itself, so fields are counted after the last ')'.
func parseProcStat(s string) (time.Duration, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat")
	}
	fields := strings.Fields(s[i+1:]) // fields[0] is field 3, state
	if len(fields) < 13 {
		return 0, errors.New("malformed /proc stat")
	}
	var ticks int64
	for _, f := range fields[11:13] { // fields 14 and 15: utime, stime
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil || n < 0 {
			return 0, errors.New("malformed /proc stat")
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// procWait returns how long the threads of process pid ("self" for 0)
// have been runnable but waiting for a CPU: the sum of the second field of
// /proc/PID/task/*/schedstat (ns). Much of it during a run means other
// processes took the CPU the process could have used. Threads that ended
// are not counted.
func procWait(pid int) (time.Duration, error) {
	dir := procPath(pid, "task")
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	var total time.Duration
	found := false
	for _, t := range tasks {
		raw, err := os.ReadFile(dir + "/" + t.Name() + "/schedstat")
		if err != nil {
			continue // the thread ended
		}
		w, err := parseSchedstat(string(raw))
		if err != nil {
			return 0, err
		}
		total += w
		found = true
	}
	if !found {
		return 0, errors.New("no schedstat")
	}
	return total, nil
}

// parseSchedstat returns the run-queue wait of a schedstat line: "<ns on
// CPU> <ns waiting> <timeslices>".
func parseSchedstat(s string) (time.Duration, error) {
	f := strings.Fields(s)
	if len(f) != 3 {
		return 0, errors.New("malformed schedstat")
	}
	n, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil || n < 0 {
		return 0, errors.New("malformed schedstat")
	}
	return time.Duration(n), nil
}

// procRSS returns the resident set size (VmRSS) of process pid in KiB
// from /proc/PID/status.
func procRSS(pid int) (int64, error) {
	raw, err := os.ReadFile(procPath(pid, "status"))
	if err != nil {
		return 0, err
	}
	return parseProcStatus(string(raw))
}

// parseProcStatus returns VmRSS in KiB. (VmHWM is not used: the kernel
// updates it lazily, and it covers the server's whole life.)
func parseProcStatus(s string) (int64, error) {
	for _, line := range strings.Split(s, "\n") {
		name, value, ok := strings.Cut(line, ":")
		if !ok || name != "VmRSS" {
			continue
		}
		f := strings.Fields(value)
		if len(f) != 2 || f[1] != "kB" {
			return 0, errors.New("malformed VmRSS in /proc status")
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || n < 0 {
			return 0, errors.New("malformed VmRSS in /proc status")
		}
		return n, nil
	}
	return 0, errors.New("no VmRSS in /proc status")
}

// procUsage is the CPU time of the bench and the server over the
// measurement, and the server's memory.
type procUsage struct {
	selfCPU, serverCPU time.Duration
	selfOK, serverOK   bool
	// Time the threads were runnable but waited for a CPU (schedstat).
	selfWait, serverWait     time.Duration
	selfWaitOK, serverWaitOK bool
	rssStart, rssEnd         int64
	rssMax                   int64
	memOK                    bool
}

// procSampler reads the CPU times at the start and at stop, and samples
// the server's RSS in between.
type procSampler struct {
	pid                      int
	self0, server0           time.Duration
	selfOK, serverOK         bool
	selfWait0, serverWait0   time.Duration
	selfWaitOK, serverWaitOK bool
	done                     chan struct{}
	wg                       sync.WaitGroup
	mu                       sync.Mutex
	usage                    procUsage
}

func newProcSampler(pid int) *procSampler {
	s := &procSampler{pid: pid, done: make(chan struct{})}
	var err error
	s.self0, err = procCPU(0)
	s.selfOK = err == nil
	s.selfWait0, err = procWait(0)
	s.selfWaitOK = err == nil
	if pid > 0 {
		s.server0, err = procCPU(pid)
		s.serverOK = err == nil
		s.serverWait0, err = procWait(pid)
		s.serverWaitOK = err == nil
		if rss, err := procRSS(pid); err == nil {
			s.usage = procUsage{rssStart: rss, rssMax: rss, memOK: true}
		}
		s.wg.Add(1)
		go s.sample()
	}
	return s
}

func (s *procSampler) sample() {
	defer s.wg.Done()
	tick := time.NewTicker(benchRSSInterval)
	defer tick.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-tick.C:
			if rss, err := procRSS(s.pid); err == nil {
				s.mu.Lock()
				s.usage.rssMax = max(s.usage.rssMax, rss)
				s.mu.Unlock()
			}
		}
	}
}

func (s *procSampler) stop() procUsage {
	close(s.done)
	s.wg.Wait()
	u := s.usage
	if self, err := procCPU(0); err == nil && s.selfOK {
		u.selfCPU, u.selfOK = self-s.self0, true
	}
	if w, err := procWait(0); err == nil && s.selfWaitOK {
		u.selfWait, u.selfWaitOK = max(w-s.selfWait0, 0), true
	}
	if s.pid > 0 {
		if cpu, err := procCPU(s.pid); err == nil && s.serverOK {
			u.serverCPU, u.serverOK = cpu-s.server0, true
		}
		if w, err := procWait(s.pid); err == nil && s.serverWaitOK {
			u.serverWait, u.serverWaitOK = max(w-s.serverWait0, 0), true
		}
		if rss, err := procRSS(s.pid); err == nil && u.memOK {
			u.rssEnd, u.rssMax = rss, max(u.rssMax, rss)
		} else {
			u.memOK = false
		}
	}
	return u
}

// The report.

type benchReport struct {
	URL              string         `json:"url"`
	Accounts         int            `json:"accounts"`
	AccountsFrom     string         `json:"accountsFrom"` // "created" or the file
	Concurrency      int            `json:"concurrency"`
	Cert             bool           `json:"cert"`
	DurationLimit    float64        `json:"durationLimitSeconds"`
	SigninLimit      int64          `json:"signinLimit"`
	Stopped          string         `json:"stopped"` // duration, signins, max-errors or interrupt
	ElapsedSeconds   float64        `json:"elapsedSeconds"`
	Signins          int64          `json:"signins"` // completed
	Failed           int64          `json:"failed"`
	SigninsPerSecond float64        `json:"signinsPerSecond"`
	Steps            []benchLatency `json:"steps"`
	Signin           benchLatency   `json:"signin"`
	Errors           []benchErrRow  `json:"errors"`
	TooManyRequests  int64          `json:"tooManyRequests"`    // 429s
	Shed             int64          `json:"serviceUnavailable"` // 503s
	// ShedAnswer is the time to a 503 answer (from the step's start).
	ShedAnswer *benchLatency `json:"shedAnswer,omitempty"`
	// ShedWithoutRetryAfter counts the 503s that had no Retry-After.
	ShedWithoutRetryAfter int64        `json:"shedWithoutRetryAfter"`
	Bench                 *benchCPU    `json:"bench,omitempty"`
	Server                *benchServer `json:"server,omitempty"`
	Notes                 []string     `json:"notes"`
}

type benchLatency struct {
	Name   string  `json:"name"`
	Count  uint64  `json:"count"`
	MeanMs float64 `json:"meanMs"`
	P50Ms  float64 `json:"p50Ms"`
	P90Ms  float64 `json:"p90Ms"`
	P99Ms  float64 `json:"p99Ms"`
	MaxMs  float64 `json:"maxMs"`
}

type benchErrRow struct {
	Step    string `json:"step"`
	Status  int    `json:"status,omitempty"`
	Errno   int    `json:"errno,omitempty"`
	Kind    string `json:"kind,omitempty"`
	Count   int64  `json:"count"`
	Message string `json:"message"`
}

type benchCPU struct {
	CPUSeconds     float64 `json:"cpuSeconds"`
	CPUMsPerSignin float64 `json:"cpuMsPerSignin"`
	CPUPercent     float64 `json:"cpuPercentOfOneCore"`
	// WaitSeconds is how long the process's threads were runnable but
	// had no CPU (summed over threads, so it may exceed the elapsed time):
	// other work competed for the CPU.
	WaitSeconds *float64 `json:"runQueueWaitSeconds,omitempty"`
}

type benchServer struct {
	PID int `json:"pid"`
	benchCPU
	RSSStartKiB int64 `json:"rssStartKiB,omitempty"`
	RSSEndKiB   int64 `json:"rssEndKiB,omitempty"`
	RSSMaxKiB   int64 `json:"rssMaxKiB,omitempty"`
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

func latency(name string, h *histogram) benchLatency {
	return benchLatency{Name: name, Count: h.n, MeanMs: ms(h.mean()), P50Ms: ms(h.quantile(0.5)),
		P90Ms: ms(h.quantile(0.9)), P99Ms: ms(h.quantile(0.99)), MaxMs: ms(time.Duration(h.max))}
}

func cpuFigures(cpu, elapsed time.Duration, signins int64) benchCPU {
	c := benchCPU{CPUSeconds: round3(cpu.Seconds()), CPUPercent: math.Round(1000*cpu.Seconds()/elapsed.Seconds()) / 10}
	if signins > 0 {
		c.CPUMsPerSignin = round3(cpu.Seconds() * 1e3 / float64(signins))
	}
	return c
}

func round3(f float64) float64 { return math.Round(f*1e3) / 1e3 }

func ptr[T any](v T) *T { return &v }

// report builds the report from the stats; elapsed is the measurement's
// wall time.
func (b *bench) report(elapsed time.Duration, stopped string, u procUsage) *benchReport {
	s := b.stats
	s.mu.Lock()
	defer s.mu.Unlock()
	r := &benchReport{
		URL: b.c.BaseURL(), Accounts: len(b.accounts), AccountsFrom: "created", Concurrency: b.f.concurrency,
		Cert: b.f.cert, DurationLimit: b.f.duration.Seconds(), SigninLimit: b.f.signins, Stopped: stopped,
		ElapsedSeconds: round3(elapsed.Seconds()), Signins: s.ok, Failed: s.failed,
		TooManyRequests: s.tooMany, Shed: s.shed, Errors: []benchErrRow{}, Notes: []string{},
	}
	if b.f.accountsFile != "" {
		r.AccountsFrom = b.f.accountsFile
	}
	if elapsed > 0 {
		r.SigninsPerSecond = math.Round(10*float64(s.ok)/elapsed.Seconds()) / 10
	}
	for i := range b.steps() {
		r.Steps = append(r.Steps, latency(stepNames[i], &s.steps[i]))
	}
	r.Signin = latency("sign-in", &s.signin)
	if s.shed > 0 {
		r.ShedAnswer = ptr(latency("503 answer", &s.shedAnswer))
		r.ShedWithoutRetryAfter = s.shedBare
	}
	r.Errors = errorRows(s.errs)
	if u.selfOK {
		c := cpuFigures(u.selfCPU, elapsed, s.ok)
		if u.selfWaitOK {
			c.WaitSeconds = ptr(round3(u.selfWait.Seconds()))
		}
		r.Bench = &c
	}
	if b.f.serverPID > 0 {
		srv := &benchServer{PID: b.f.serverPID}
		if u.serverOK {
			srv.benchCPU = cpuFigures(u.serverCPU, elapsed, s.ok)
		}
		if u.serverWaitOK {
			srv.WaitSeconds = ptr(round3(u.serverWait.Seconds()))
		}
		if u.memOK {
			srv.RSSStartKiB, srv.RSSEndKiB, srv.RSSMaxKiB = u.rssStart, u.rssEnd, u.rssMax
		}
		r.Server = srv
	}
	r.Notes = r.notes()
	return r
}

func errorRows(errs map[benchErrKey]*benchErrCount) []benchErrRow {
	rows := []benchErrRow{}
	for k, e := range errs {
		rows = append(rows, benchErrRow{Step: stepNames[k.step], Status: k.status, Errno: k.errno, Kind: k.kind, Count: e.n, Message: e.message})
	}
	// Most frequent first, then by step, status, errno and kind.
	slices.SortFunc(rows, func(a, b benchErrRow) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(stepIndex(a.Step), stepIndex(b.Step)),
			cmp.Compare(a.Status, b.Status), cmp.Compare(a.Errno, b.Errno), cmp.Compare(a.Kind, b.Kind))
	})
	return rows
}

func (r *benchReport) serverCPU() *benchCPU {
	if r.Server == nil {
		return nil
	}
	return &r.Server.benchCPU
}

func stepIndex(name string) int { return slices.Index(stepNames[:], name) }

func (r *benchReport) notes() []string {
	notes := []string{}
	if r.TooManyRequests > 0 {
		notes = append(notes, fmt.Sprintf("the server answered 429 (too many requests, errno 114) %d times: its abuse protection "+
			"limits requests per client IP (spec 14, e.g. auth/start per minute); for a load test exempt the bench's address "+
			"on the server (it may need --rate-limit-exempt 127.0.0.1/32); refused sign-ins are counted as failed, and their "+
			"client waited the Retry-After (at most 1 s)", r.TooManyRequests))
	}
	if r.Shed > 0 {
		notes = append(notes, fmt.Sprintf("the server answered 503 %d times: with errno 201 it shed CPU-heavy requests that found "+
			"more than --heavy-queue waiting or waited longer than --heavy-wait (after each, the client waited the Retry-After, "+
			"at most 1 s); lower --concurrency or raise them on the server", r.Shed))
	}
	if r.ShedWithoutRetryAfter > 0 {
		notes = append(notes, fmt.Sprintf("%d of the 503 answers had no Retry-After header (spec 1.5 requires one)", r.ShedWithoutRetryAfter))
	}
	switch r.Stopped {
	case "max-errors":
		notes = append(notes, fmt.Sprintf("stopped early after %d failed sign-ins (--max-errors)", r.Failed))
	case "interrupt":
		notes = append(notes, "interrupted: the figures cover the sign-ins up to the interrupt")
	}
	for _, p := range []struct {
		who string
		c   *benchCPU
	}{{"server", r.serverCPU()}, {"bench", r.Bench}} {
		if p.c != nil && p.c.WaitSeconds != nil && *p.c.WaitSeconds > max(0.1*r.ElapsedSeconds, 0.5) {
			notes = append(notes, fmt.Sprintf("the %s's threads waited %.1f s for a CPU while runnable (%.0f%% of the run): "+
				"other work competed for its CPU, so the rate is not the server's capacity; pin the server and the bench "+
				"to their own cores (taskset) on an otherwise idle machine", p.who, *p.c.WaitSeconds, 100**p.c.WaitSeconds/r.ElapsedSeconds))
		}
	}
	if r.Bench != nil && r.Bench.CPUPercent >= 90*float64(runtime.GOMAXPROCS(0)) {
		notes = append(notes, "the bench used all its CPU: the load, not the server, may limit the rate")
	}
	return notes
}

func (r *benchReport) write(w io.Writer) {
	bw := bufio.NewWriter(w)
	defer bw.Flush()
	p := func(format string, a ...any) { fmt.Fprintf(bw, format, a...) }
	p("keyserver bench: %s\n", r.URL)
	if r.AccountsFrom == "created" {
		p("accounts:      %d created (pre-verified)\n", r.Accounts)
	} else {
		p("accounts:      %d from %s\n", r.Accounts, r.AccountsFrom)
	}
	p("concurrency:   %d\n", r.Concurrency)
	limit := time.Duration(r.DurationLimit * float64(time.Second)).String()
	if r.SigninLimit > 0 {
		limit = fmt.Sprintf("%d sign-ins or %s", r.SigninLimit, limit)
	}
	p("limit:         %s (stopped by %s)\n", limit, r.Stopped)
	p("sign-ins:      %d in %.3f s = %.1f sign-ins/s, %d failed\n\n", r.Signins, r.ElapsedSeconds, r.SigninsPerSecond, r.Failed)

	p("%-17s %8s %9s %9s %9s %9s %9s\n", "latency (ms)", "count", "mean", "p50", "p90", "p99", "max")
	rows := append(r.Steps, r.Signin)
	if r.ShedAnswer != nil {
		rows = append(rows, *r.ShedAnswer)
	}
	for _, l := range rows {
		p("%-17s %8d %9.3f %9.3f %9.3f %9.3f %9.3f\n", l.Name, l.Count, l.MeanMs, l.P50Ms, l.P90Ms, l.P99Ms, l.MaxMs)
	}
	p("\n")
	if len(r.Errors) == 0 {
		p("errors:        none\n")
	} else {
		p("errors:\n%8s  %-17s %-14s %s\n", "count", "step", "status/errno", "message")
		for _, e := range r.Errors {
			what := e.Kind
			if e.Status != 0 {
				what = fmt.Sprintf("%d/%d", e.Status, e.Errno)
			}
			p("%8d  %-17s %-14s %s\n", e.Count, e.Step, what, e.Message)
		}
	}
	if r.Bench != nil || r.Server != nil {
		p("\nCPU per sign-in:\n")
	}
	wait := func(c *benchCPU) string {
		if c.WaitSeconds == nil {
			return ""
		}
		return fmt.Sprintf("; waited %.2f s for a CPU", *c.WaitSeconds)
	}
	if r.Server != nil {
		p("  server       %.3f ms (pid %d: %.2f s of CPU, %.0f%% of one core%s)\n", r.Server.CPUMsPerSignin, r.Server.PID,
			r.Server.CPUSeconds, r.Server.CPUPercent, wait(&r.Server.benchCPU))
	}
	if r.Bench != nil {
		p("  bench        %.3f ms (%.2f s of CPU, %.0f%% of one core%s)\n", r.Bench.CPUMsPerSignin, r.Bench.CPUSeconds, r.Bench.CPUPercent, wait(r.Bench))
	}
	if r.Server != nil && r.Server.RSSMaxKiB > 0 {
		p("\nserver RSS:    %.1f MiB at the start, %.1f MiB at the end, %.1f MiB at most (sampled every %s)\n",
			mib(r.Server.RSSStartKiB), mib(r.Server.RSSEndKiB), mib(r.Server.RSSMaxKiB), benchRSSInterval)
	}
	for _, n := range r.Notes {
		p("\nnote: %s\n", n)
	}
}

func mib(kib int64) float64 { return float64(kib) / 1024 }
