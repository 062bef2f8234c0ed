package main

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/keyserver/keyserver/certs"
	"github.com/keyserver/keyserver/client"
	"github.com/keyserver/keyserver/keyserver"
	"github.com/keyserver/keyserver/keywrap"
	"github.com/keyserver/keyserver/store/sqlstore"
)

func TestHistogramBuckets(t *testing.T) {
	for i := 0; i < histBuckets; i++ {
		lo, hi := bucketRange(i)
		if lo > hi || bucketOf(lo) != i || bucketOf(hi) != i {
			t.Fatalf("bucket %d: range [%d, %d] maps to %d and %d", i, lo, hi, bucketOf(lo), bucketOf(hi))
		}
		if i > 0 {
			if _, prevHi := bucketRange(i - 1); prevHi+1 != lo {
				t.Fatalf("bucket %d starts at %d, bucket %d ends at %d", i, lo, i-1, prevHi)
			}
		}
		if lo >= 2*histSub && float64(hi-lo+1)/float64(lo) > 1.0/histSub {
			t.Fatalf("bucket %d [%d, %d] is wider than 1/%d of its values", i, lo, hi, histSub)
		}
	}
	if bucketOf(-5) != 0 || bucketOf(math.MaxInt64) != histBuckets-1 {
		t.Fatal("values outside the range are not clamped")
	}
}

// exactQuantile is the nearest-rank quantile of sorted values.
func exactQuantile(sorted []time.Duration, q float64) time.Duration {
	rank := int(math.Ceil(q * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

func TestHistogramQuantiles(t *testing.T) {
	var h histogram
	if h.quantile(0.5) != 0 || h.mean() != 0 {
		t.Fatal("empty histogram")
	}
	h.record(1234 * time.Microsecond)
	for _, q := range []float64{0, 0.5, 0.99, 1} {
		if got := h.quantile(q); got != 1234*time.Microsecond {
			t.Fatalf("one value: quantile(%v) = %v", q, got)
		}
	}

	r := rand.New(rand.NewPCG(1, 2))
	var values []time.Duration
	var sum time.Duration
	for i := 0; i < 20000; i++ {
		// Log-uniform from 50 µs to 5 s, and some tiny values.
		v := time.Duration(math.Exp(r.Float64()*math.Log(1e5)) * 50e3)
		if i%1000 == 0 {
			v = time.Duration(i % 100)
		}
		values = append(values, v)
		sum += v
	}
	var whole, a, b histogram
	for i, v := range values {
		whole.record(v)
		if i%3 == 0 {
			a.record(v)
		} else {
			b.record(v)
		}
	}
	a.merge(&b)
	a.merge(&histogram{})
	if a != whole {
		t.Fatal("merged halves differ from the whole")
	}
	sorted := slices.Clone(values)
	slices.Sort(sorted)
	for _, q := range []float64{0.001, 0.1, 0.5, 0.9, 0.99, 0.999} {
		want, got := exactQuantile(sorted, q), whole.quantile(q)
		if math.Abs(float64(got-want)) > float64(want)/histSub+1 {
			t.Errorf("quantile(%v) = %v, exact %v", q, got, want)
		}
	}
	if whole.quantile(1) != sorted[len(sorted)-1] || whole.min != int64(sorted[0]) || whole.n != uint64(len(values)) {
		t.Errorf("max %v min %v n %d", whole.quantile(1), time.Duration(whole.min), whole.n)
	}
	if whole.mean() != sum/time.Duration(len(values)) {
		t.Errorf("mean %v, want %v", whole.mean(), sum/time.Duration(len(values)))
	}
}

func TestBenchStatsReport(t *testing.T) {
	s := newBenchStats()
	for i := 1; i <= 100; i++ {
		var d [numSteps]time.Duration
		for j := range d {
			d[j] = time.Duration(i*(j+1)) * time.Millisecond
		}
		s.success(d, stepCert, time.Duration(i*10)*time.Millisecond)
	}
	tooMany := &client.Error{Status: 429, Errno: 114, Message: "Client has sent too many requests"}
	shed := &client.Error{Status: 503, Errno: 201, Message: "Service unavailable", Header: http.Header{"Retry-After": {"1"}}}
	var n int64
	var is429 bool
	for i := 0; i < 3; i++ {
		n, is429 = s.failure(stepStart, tooMany, time.Millisecond)
	}
	if n != 3 || !is429 {
		t.Fatalf("failure: %d %v", n, is429)
	}
	s.failure(stepFinish, shed, time.Millisecond)
	s.failure(stepKeys, errWrongKeys, time.Millisecond)
	s.failure(stepSession, fmt.Errorf("client: POST /v1/session/create: %w", syscall.ECONNREFUSED), time.Millisecond)

	b := &bench{f: &benchFlags{concurrency: 4, duration: 10 * time.Second}, stats: s, accounts: make([]*benchAccount, 4)}
	b.c, _ = client.New("http://127.0.0.1:9000")
	r := b.report(2*time.Second, "duration", procUsage{selfCPU: time.Second, selfOK: true})
	if r.Signins != 100 || r.Failed != 6 || r.SigninsPerSecond != 50 || r.TooManyRequests != 3 || r.Shed != 1 {
		t.Fatalf("report: %+v", r)
	}
	if len(r.Steps) != 4 || r.Steps[0].Name != "auth/start" || r.Steps[3].Name != "account/keys" {
		t.Fatalf("steps: %+v", r.Steps)
	}
	// Step j of sign-in i took i*(j+1) ms: p50 of step 1 is 50 ms, p90 of
	// step 2 is 180 ms, within the histogram's precision.
	near := func(got, want float64) bool { return math.Abs(got-want) <= want/histSub }
	if !near(r.Steps[0].P50Ms, 50) || !near(r.Steps[1].P90Ms, 180) || r.Steps[3].MaxMs != 400 || r.Signin.Count != 100 ||
		!near(r.Signin.P99Ms, 990) || r.Signin.MeanMs != 505 {
		t.Fatalf("latencies: %+v %+v", r.Steps, r.Signin)
	}
	if r.Bench == nil || r.Bench.CPUMsPerSignin != 10 || r.Bench.CPUPercent != 50 {
		t.Fatalf("bench CPU: %+v", r.Bench)
	}
	want := []benchErrRow{
		{Step: "auth/start", Status: 429, Errno: 114, Count: 3, Message: "Client has sent too many requests"},
		{Step: "auth/finish", Status: 503, Errno: 201, Count: 1, Message: "Service unavailable"},
		{Step: "session/create", Kind: "connection refused", Count: 1},
		{Step: "account/keys", Kind: "wrong keys", Count: 1, Message: errWrongKeys.Error()},
	}
	r.Errors[2].Message = ""
	if !slices.Equal(r.Errors, want) {
		t.Fatalf("errors:\n%+v\nwant\n%+v", r.Errors, want)
	}
	if len(r.Notes) != 2 || !strings.Contains(r.Notes[0], "--rate-limit-exempt") || !strings.Contains(r.Notes[1], "--heavy-queue") {
		t.Fatalf("notes: %q", r.Notes)
	}
	var out bytes.Buffer
	r.write(&out)
	for _, s := range []string{"100 in 2.000 s = 50.0 sign-ins/s, 6 failed", "auth/start", "429/114", "connection refused", "note: the server answered 429"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("table lacks %q:\n%s", s, out.String())
		}
	}
}

// The report gives the time to the 503 answers and counts those without a
// Retry-After, in a note too.
func TestBenchShedAnswers(t *testing.T) {
	s := newBenchStats()
	withRetry := &client.Error{Status: 503, Errno: 201, Header: http.Header{"Retry-After": {"1"}}}
	for i := 1; i <= 10; i++ {
		s.failure(stepStart, withRetry, time.Duration(i)*time.Millisecond)
	}
	s.failure(stepFinish, &client.Error{Status: 503, Errno: 201, Header: http.Header{}}, 40*time.Millisecond)
	s.failure(stepStart, &client.Error{Status: 429, Errno: 114, Header: http.Header{"Retry-After": {"1"}}}, time.Second)
	b := &bench{f: &benchFlags{concurrency: 1, duration: time.Second}, stats: s, accounts: make([]*benchAccount, 1)}
	b.c, _ = client.New("http://127.0.0.1:9000")
	r := b.report(time.Second, "duration", procUsage{})
	if r.Shed != 11 || r.ShedAnswer == nil || r.ShedAnswer.Count != 11 || r.ShedAnswer.MaxMs != 40 || r.ShedWithoutRetryAfter != 1 {
		t.Fatalf("report: shed %d, answers %+v, without Retry-After %d", r.Shed, r.ShedAnswer, r.ShedWithoutRetryAfter)
	}
	if !slices.ContainsFunc(r.Notes, func(n string) bool { return strings.HasPrefix(n, "1 of the 503 answers had no Retry-After") }) {
		t.Errorf("notes: %q", r.Notes)
	}
	var out bytes.Buffer
	r.write(&out)
	if !strings.Contains(out.String(), "503 answer") {
		t.Errorf("table lacks the 503 answers:\n%s", out.String())
	}
	if r := newBenchStats(); (&bench{f: b.f, stats: r, accounts: b.accounts, c: b.c}).report(time.Second, "duration", procUsage{}).ShedAnswer != nil {
		t.Error("a run without 503s reports 503 answer times")
	}
}

func TestParseProc(t *testing.T) {
	stat := "4242 (key server) (x)) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 75 0 0 20 0 8 0 100 1000000 5000 18446744073709551615\n"
	if cpu, err := parseProcStat(stat); err != nil || cpu != 3250*time.Millisecond {
		t.Fatalf("parseProcStat: %v %v", cpu, err)
	}
	for _, bad := range []string{"", "1 (x) S 1 2 3", "1 (x) S 1 2 3 4 5 6 7 8 9 10 ten 12"} {
		if _, err := parseProcStat(bad); err == nil {
			t.Errorf("parseProcStat(%q) succeeded", bad)
		}
	}
	status := "Name:\tkeyserver\nVmPeak:\t  900000 kB\nVmHWM:\t   40000 kB\nVmRSS:\t   31234 kB\nThreads:\t8\n"
	if rss, err := parseProcStatus(status); err != nil || rss != 31234 {
		t.Fatalf("parseProcStatus: %d %v", rss, err)
	}
	for _, bad := range []string{"Name:\tx\n", "VmRSS:\t12 MB\n", "VmRSS: x kB\n"} {
		if _, err := parseProcStatus(bad); err == nil {
			t.Errorf("parseProcStatus(%q) succeeded", bad)
		}
	}
	if w, err := parseSchedstat("123456 7890 42\n"); err != nil || w != 7890 {
		t.Fatalf("parseSchedstat: %v %v", w, err)
	}
	for _, bad := range []string{"", "1 2", "1 x 3", "1 -2 3"} {
		if _, err := parseSchedstat(bad); err == nil {
			t.Errorf("parseSchedstat(%q) succeeded", bad)
		}
	}
	// This process, as the bench reads itself.
	if _, err := procCPU(0); err != nil {
		t.Skipf("no /proc: %v", err)
	}
	if _, err := procWait(os.Getpid()); err != nil {
		t.Logf("no schedstat (kernel without CONFIG_SCHED_INFO?): %v", err)
	}
	if rss, err := procRSS(os.Getpid()); err != nil || rss <= 0 {
		t.Fatalf("procRSS: %d %v", rss, err)
	}
}

func TestParseBenchAccounts(t *testing.T) {
	accts, err := parseBenchAccounts(strings.NewReader("# accounts\n\n{\"email\": \"a@example.org\", \"password\": \"pw a\"}\n  {\"password\":\"b\",\"email\":\"B@example.org\"}  \n"), "f")
	if err != nil || len(accts) != 2 || accts[0].email != "a@example.org" || accts[0].password != "pw a" || accts[1].email != "B@example.org" {
		t.Fatalf("%v %+v", err, accts)
	}
	for in, msg := range map[string]string{
		"":                                    "no accounts",
		"{\"email\": \"a@b\"}":                "f:1: email and password must not be empty",
		"{\"email\": \"a@b\", \"pw\": \"x\"}": "f:1: json: unknown field",
		"\n[1]":                               "f:2:",
		"{\"email\":\"a@b\",\"password\":\"x\"} {}":                                      "more than one",
		"{\"email\":\"a@b\",\"password\":\"x\"}\n{\"email\":\"a@b\",\"password\":\"y\"}": "f:2: email \"a@b\" appears twice",
	} {
		if _, err := parseBenchAccounts(strings.NewReader(in), "f"); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%q: %v, want %q", in, err, msg)
		}
	}
}

// runBenchCLI runs "keyserver bench args..." in-process.
func runBenchCLI(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(append([]string{"bench"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestBenchUsageErrors(t *testing.T) {
	for _, tt := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--concurrency", "0"}, "--concurrency must be 1 to 1024"},
		{[]string{"--concurrency", "1025"}, "--concurrency must be 1 to 1024"},
		{[]string{"--accounts", "10001"}, "--accounts must be"},
		{[]string{"--accounts", "2", "--accounts-file", "x"}, "exclude each other"},
		{[]string{"--duration", "2h"}, "--duration must be"},
		{[]string{"--signins", "-1"}, "--signins must be"},
		{[]string{"--signins", "20000000"}, "--signins must be"},
		{[]string{"--timeout", "0s"}, "--timeout must be"},
		{[]string{"--max-errors", "-1"}, "--max-errors"},
		{[]string{"--url", "http://192.0.2.1:9000"}, "not a loopback address"},
		{[]string{"--url", "ftp://127.0.0.1"}, "--url must be"},
		{[]string{"--server-pid", "999999999"}, "--server-pid 999999999"},
		{[]string{"extra"}, `unexpected argument "extra"`},
		{[]string{"--nope"}, "flag provided but not defined"},
	} {
		code, _, stderr := runBenchCLI(tt.args...)
		if code != 2 || !strings.Contains(stderr, tt.msg) {
			t.Errorf("%q: exit %d, %q; want 2 and %q", tt.args, code, stderr, tt.msg)
		}
	}
	if code, _, stderr := runBenchCLI("-h"); code != 0 || !strings.Contains(stderr, "usage: keyserver bench") || !strings.Contains(stderr, "-server-pid") {
		t.Errorf("-h: exit %d, %q", code, stderr)
	}
	t.Setenv("KEYSERVER_BENCH_CONCURRENCY", "0")
	if code, _, stderr := runBenchCLI(); code != 2 || !strings.Contains(stderr, "--concurrency must be") {
		t.Errorf("KEYSERVER_BENCH_CONCURRENCY=0: exit %d, %q", code, stderr)
	}
}

// newBenchTestServer starts the real server on SQLite with handler
// wrapped by wrap (when not nil) and makes the CLI stretch cheaply.
func newBenchTestServer(t *testing.T, dev bool, wrap func(http.Handler) http.Handler) string {
	t.Helper()
	st, err := sqlstore.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "ks.db"), sqlstore.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ts := httptest.NewUnstartedServer(nil)
	url := "http://" + ts.Listener.Addr().String()
	key, err := certs.GenerateKey(certs.EdDSA, crand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := certs.NewSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := keyserver.New(keyserver.Config{PublicURL: url, Dev: dev, Signer: signer}, st)
	if err != nil {
		t.Fatal(err)
	}
	h := srv.Handler()
	if wrap != nil {
		h = wrap(h)
	}
	ts.Config.Handler = h
	ts.Start()
	t.Cleanup(ts.Close)
	old := clientOptions
	clientOptions = []client.Option{client.WithStretching(keywrap.Params{PBKDF2Rounds1: 2, ScryptN: 16, ScryptR: 8, ScryptP: 1, PBKDF2Rounds2: 2})}
	t.Cleanup(func() { clientOptions = old })
	return url
}

func decodeReport(t *testing.T, stdout string) *benchReport {
	t.Helper()
	var r benchReport
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, stdout)
	}
	return &r
}

func TestBenchRun(t *testing.T) {
	url := newBenchTestServer(t, true, nil)
	code, stdout, stderr := runBenchCLI("--url", url, "--concurrency", "2", "--accounts", "3", "--signins", "12",
		"--json", "--server-pid", fmt.Sprint(os.Getpid()))
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	r := decodeReport(t, stdout)
	if r.Signins != 12 || r.Failed != 0 || r.Stopped != "signins" || r.Accounts != 3 || r.SigninsPerSecond <= 0 || len(r.Errors) != 0 {
		t.Fatalf("report: %+v", r)
	}
	for _, l := range append(r.Steps, r.Signin) {
		if l.Count != 12 || l.P50Ms <= 0 || l.P50Ms > l.P90Ms || l.P90Ms > l.P99Ms || l.P99Ms > l.MaxMs || l.MeanMs > l.MaxMs {
			t.Errorf("latency %+v", l)
		}
	}
	if r.Server == nil || r.Server.RSSMaxKiB <= 0 || r.Bench == nil || r.Bench.CPUSeconds < 0 {
		t.Errorf("process figures: %+v %+v", r.Server, r.Bench)
	}
	if !strings.Contains(stderr, "creating 3 pre-verified accounts") || !strings.Contains(stderr, "destroyed the 3 created accounts") {
		t.Errorf("stderr: %s", stderr)
	}

	// Accounts of a file, made by the client with a password, and --cert.
	c, err := client.New(url, clientOptions...)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for i, email := range []string{"one@example.org", "Two@example.org"} {
		pw := fmt.Sprintf("password %d", i)
		if _, err := c.CreateAccount(context.Background(), email, pw, client.CreateOptions{PreVerified: true}); err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			email = "two@example.org" // case differs: the bench retries with the stored email (120)
		}
		b, _ := json.Marshal(map[string]string{"email": email, "password": pw})
		lines = append(lines, string(b))
	}
	file := filepath.Join(t.TempDir(), "accounts.jsonl")
	if err := os.WriteFile(file, []byte("# test accounts\n"+strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = runBenchCLI("--url", url, "--concurrency", "2", "--accounts-file", file, "--cert", "--duration", "300ms")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, s := range []string{"accounts:      2 from " + file, "stopped by duration", "certificate/sign", "errors:        none", "bench   "} {
		if !strings.Contains(stdout, s) {
			t.Errorf("report lacks %q:\n%s", s, stdout)
		}
	}
	if strings.Contains(stdout, "(pid ") || strings.Contains(stderr, "destroyed") {
		t.Errorf("unexpected server figures or cleanup:\n%s\n%s", stdout, stderr)
	}
	// The file's accounts are still there.
	if _, err := c.Login(context.Background(), "one@example.org", "password 0"); err != nil {
		t.Fatal(err)
	}

	// A wrong password stops the bench before the measurement.
	bad := filepath.Join(t.TempDir(), "bad.jsonl")
	os.WriteFile(bad, []byte(`{"email":"one@example.org","password":"wrong"}`), 0o600)
	if code, _, stderr := runBenchCLI("--url", url, "--accounts-file", bad, "--signins", "1"); code != 1 || !strings.Contains(stderr, "wrong password in the accounts file") {
		t.Errorf("wrong password: exit %d, %s", code, stderr)
	}
}

func TestBenchNotDev(t *testing.T) {
	url := newBenchTestServer(t, false, nil)
	code, _, stderr := runBenchCLI("--url", url, "--signins", "1")
	if code != 1 || !strings.Contains(stderr, "not in --dev mode") {
		t.Fatalf("exit %d, %s", code, stderr)
	}
}

// TestBenchTooManyRequests has the server refuse every other auth/start
// after the warm-up with 429: the bench counts them, says so and exits 1.
func TestBenchTooManyRequests(t *testing.T) {
	var starts atomic.Int64
	url := newBenchTestServer(t, true, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/v1/auth/start" && starts.Add(1) > 2 && starts.Load()%2 == 0 {
				w.Header().Set("Content-Type", "application/json")
				w.Header().Set("Retry-After", "0") // no backoff, for a quick test
				w.WriteHeader(429)
				fmt.Fprint(w, `{"code":429,"errno":114,"error":"Too Many Requests","message":"Client has sent too many requests","retryAfter":0}`)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	code, stdout, stderr := runBenchCLI("--url", url, "--concurrency", "1", "--accounts", "2", "--signins", "10", "--json")
	if code != 1 || !strings.Contains(stderr, "5 of 10 sign-ins failed") || !strings.Contains(stderr, "429") {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	r := decodeReport(t, stdout)
	if r.Signins != 5 || r.Failed != 5 || r.TooManyRequests != 5 || len(r.Errors) != 1 || r.Errors[0].Errno != 114 ||
		len(r.Notes) != 1 || !strings.Contains(r.Notes[0], "--rate-limit-exempt") {
		t.Fatalf("report: %+v", r)
	}
	// --max-errors stops the run early.
	code, stdout, _ = runBenchCLI("--url", url, "--accounts", "1", "--signins", "100", "--max-errors", "2", "--json")
	if r := decodeReport(t, stdout); code != 1 || r.Stopped != "max-errors" || r.Failed != 2 || r.Signins > 3 {
		t.Fatalf("--max-errors: exit %d, %+v", code, r)
	}
}

// TestBenchSetupRetries has the server shed the first account creation
// (503): setup waits and retries, as it does not measure.
func TestBenchSetupRetries(t *testing.T) {
	var creates atomic.Int64
	url := newBenchTestServer(t, true, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/v1/account/create" && creates.Add(1) == 1 {
				w.Header().Set("Content-Type", "application/json")
				w.Header().Set("Retry-After", "1")
				w.WriteHeader(503)
				fmt.Fprint(w, `{"code":503,"errno":201,"error":"Service Unavailable","message":"Service unavailable","retryAfter":1}`)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	code, stdout, stderr := runBenchCLI("--url", url, "--accounts", "2", "--signins", "2", "--json")
	if r := decodeReport(t, stdout); code != 0 || r.Signins != 2 || creates.Load() != 3 {
		t.Fatalf("exit %d, %d creates, %+v\n%s", code, creates.Load(), r, stderr)
	}
}

func TestBackoff(t *testing.T) {
	withRetry := func(status int, retryAfter string) error {
		h := http.Header{}
		if retryAfter != "" {
			h.Set("Retry-After", retryAfter)
		}
		return fmt.Errorf("wrapped: %w", &client.Error{Status: status, Header: h})
	}
	for _, tt := range []struct {
		err  error
		want time.Duration
	}{
		{withRetry(429, "60"), time.Second},
		{withRetry(429, "0"), 0},
		{withRetry(503, "1"), time.Second},
		{withRetry(503, ""), time.Second},
		{withRetry(503, "soon"), time.Second},
		{withRetry(400, "1"), 0},
		{errWrongKeys, 0},
	} {
		if got := backoff(tt.err); got != tt.want {
			t.Errorf("backoff(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}
