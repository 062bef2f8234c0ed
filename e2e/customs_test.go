package e2e

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyserver/keyserver/client"
)

// Abuse protection (spec 14) against the real binary, with short windows
// set by serve's --limit flag, clients on many ips through
// --trusted-proxies 127.0.0.1 and X-Forwarded-For.

// customsFlags skips the test until serve has the abuse-protection flags.
var customsFlags = sync.OnceValue(func() bool {
	out, errOut, _ := runKeyserverNoT("serve", "-h")
	return strings.Contains(out+errOut, "-limit") && strings.Contains(out+errOut, "-rate-limit-exempt")
})

func needCustomsFlags(t *testing.T) {
	t.Helper()
	if !customsFlags() {
		t.Skip("serve has no --limit / --rate-limit-exempt flags yet")
	}
}

// runKeyserverNoT is runKeyserver without a test (for a once-only probe).
func runKeyserverNoT(args ...string) (string, string, error) {
	var out, errOut strings.Builder
	cmd := exec.Command(binary, args...)
	cmd.Env = cleanEnv()
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	return out.String(), errOut.String(), err
}

// startCustoms starts a --dev server trusting the loopback proxy with the
// given limits.
func startCustoms(t *testing.T, db string, limits string, extra ...string) *server {
	t.Helper()
	needCustomsFlags(t)
	args := []string{"--db", db, "--dev", "--trusted-proxies", "127.0.0.1"}
	if limits != "" {
		args = append(args, "--limit", limits)
	}
	return startServer(t, append(args, extra...)...)
}

// forwarded sends every request with X-Forwarded-For: ip.
type forwarded struct{ ip string }

func (f forwarded) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Forwarded-For", f.ip)
	return http.DefaultTransport.RoundTrip(r)
}

// clientFrom is a client of s whose requests come from ip.
func clientFrom(t *testing.T, s *server, ip string) *client.Client {
	t.Helper()
	c, err := client.New(s.URL, client.WithStretching(cheap), client.WithHTTPClient(&http.Client{Transport: forwarded{ip}, Timeout: time.Minute}))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// wantTooMany checks 429/114 with a retryAfter of at most max and returns
// it.
func wantTooMany(t *testing.T, err error, max time.Duration, what string) time.Duration {
	t.Helper()
	ce := wantErrno(t, err, 114, what)
	d, ok := ce.RetryAfter()
	if ce.Status != 429 || !ok || d <= 0 || d > max || ce.Header.Get("Retry-After") == "" {
		t.Fatalf("%s: %d retryAfter %v (header %q), want 429 and at most %v", what, ce.Status, d, ce.Header.Get("Retry-After"), max)
	}
	return d
}

func wantBlocked(t *testing.T, err error, what string) {
	t.Helper()
	ce := wantErrno(t, err, 125, what)
	if ce.Status != 400 || ce.Body["verificationMethod"] != "email" || ce.Body["retryAfter"] != nil {
		t.Fatalf("%s: %d %v, want 400/125 verificationMethod email", what, ce.Status, ce.Body)
	}
}

func mustCreate(t *testing.T, c *client.Client, email string) {
	t.Helper()
	if _, err := c.CreateAccount(ctxT(t), email, "pw", client.CreateOptions{PreVerified: true}); err != nil {
		t.Fatalf("create %s: %v", email, err)
	}
}

func mustWrong(t *testing.T, c *client.Client, email string) {
	t.Helper()
	_, err := c.SignIn(ctxT(t), email, "wrong")
	wantErrno(t, err, 103, "wrong password")
}

// R1: 5 wrong passwords from one ip, then the sixth sign-in from it is 429
// while another ip signs in; the window's end lets it pass again.
func TestCustomsR1(t *testing.T) {
	backends(t, func(t *testing.T, db string, extra ...string) {
		s := startCustoms(t, db, "R1=5/4s", extra...)
		ctx := ctxT(t)
		const email = "r1@example.org"
		mustCreate(t, newClient(t, s), email)
		attacker, other := clientFrom(t, s, "203.0.113.1"), clientFrom(t, s, "198.51.100.1")
		for range 5 {
			mustWrong(t, attacker, email)
		}
		_, err := attacker.Login(ctx, email, "pw")
		wait := wantTooMany(t, err, 4*time.Second, "6th sign-in")
		if _, err := other.Login(ctx, email, "pw"); err != nil {
			t.Fatalf("another ip: %v", err)
		}
		if !s.waitLog("rule=R1") {
			t.Error("no log line with the rule")
		}
		time.Sleep(wait)
		if _, err := attacker.Login(ctx, email, "pw"); err != nil {
			t.Fatalf("after the window: %v", err)
		}
	})
}

// R2: after 20 failures across ips, auth/start from a new ip is 400/125; a
// known ip is never blocked; an unblock code from the mail lets the right
// password through.
func TestCustomsR2Unblock(t *testing.T) {
	backends(t, func(t *testing.T, db string, extra ...string) {
		s := startCustoms(t, db, "", extra...)
		ctx := ctxT(t)
		const email = "r2@example.org"
		mustCreate(t, newClient(t, s), email)
		home := clientFrom(t, s, "192.0.2.1")
		if _, err := home.Login(ctx, email, "pw"); err != nil {
			t.Fatal(err)
		}
		for i := range 20 {
			mustWrong(t, clientFrom(t, s, fmt.Sprintf("203.0.113.%d", 10+i)), email)
		}
		cafe := clientFrom(t, s, "198.51.100.2")
		_, err := cafe.AuthStart(ctx, email)
		wantBlocked(t, err, "new ip")
		if _, err := home.Login(ctx, email, "pw"); err != nil {
			t.Fatalf("known ip: %v", err)
		}
		if err := cafe.SendUnblockCode(ctx, email); err != nil {
			t.Fatal(err)
		}
		code := waitMail(t, s, email, "X-Unblock-Code", 1)["X-Unblock-Code"]
		if _, err := cafe.LoginWith(ctx, email, "pw", client.SignInOptions{UnblockCode: code}); err != nil {
			t.Fatalf("with the unblock code: %v", err)
		}
	})
}

// R3: password spraying from one ip across accounts.
func TestCustomsR3(t *testing.T) {
	backends(t, func(t *testing.T, db string, extra ...string) {
		s := startCustoms(t, db, "R3=4/4s", extra...)
		ctx := ctxT(t)
		c := newClient(t, s)
		for i := range 5 {
			mustCreate(t, c, fmt.Sprintf("spray%d@example.org", i))
		}
		sprayer := clientFrom(t, s, "203.0.113.50")
		for i := range 4 {
			mustWrong(t, sprayer, fmt.Sprintf("spray%d@example.org", i))
		}
		_, err := sprayer.AuthStart(ctx, "spray4@example.org")
		wait := wantTooMany(t, err, 4*time.Second, "5th account")
		if _, err := clientFrom(t, s, "198.51.100.50").Login(ctx, "spray4@example.org", "pw"); err != nil {
			t.Fatalf("another ip: %v", err)
		}
		time.Sleep(wait)
		if _, err := sprayer.Login(ctx, "spray4@example.org", "pw"); err != nil {
			t.Fatalf("after the window: %v", err)
		}
	})
}

// R4 and R5 per instance, and exempt networks.
func TestCustomsRequestRates(t *testing.T) {
	s := startCustoms(t, sqliteDB(t), "R4=3/3s,R5=2/3s", "--rate-limit-exempt", "192.0.2.0/24")
	ctx := ctxT(t)
	c := clientFrom(t, s, "203.0.113.60")
	for range 3 {
		_, err := c.AuthStart(ctx, "nobody@example.org")
		wantErrno(t, err, 102, "unknown")
	}
	_, err := c.AuthStart(ctx, "nobody@example.org")
	wait := wantTooMany(t, err, 3*time.Second, "4th auth/start")
	exempt := clientFrom(t, s, "192.0.2.9")
	for range 6 {
		_, err := exempt.AuthStart(ctx, "nobody@example.org")
		wantErrno(t, err, 102, "exempt")
	}
	for i := range 2 {
		if _, err := c.CreateAccount(ctx, fmt.Sprintf("rate%d@example.org", i), "pw", client.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	_, err = c.CreateAccount(ctx, "rate2@example.org", "pw", client.CreateOptions{})
	wantTooMany(t, err, 3*time.Second, "3rd create")
	time.Sleep(wait)
	_, err = c.AuthStart(ctx, "nobody@example.org")
	wantErrno(t, err, 102, "after the window")
}

// A victim's reset from another ip succeeds while an attacker sends
// send_code from a first ip.
func TestCustomsResetUnderAttack(t *testing.T) {
	backends(t, func(t *testing.T, db string, extra ...string) {
		s := startCustoms(t, db, "", extra...)
		ctx := ctxT(t)
		const email = "victim@example.org"
		mustCreate(t, newClient(t, s), email)
		attacker := clientFrom(t, s, "203.0.113.70")
		for range 3 {
			if _, err := attacker.ForgotSendCode(ctx, email); err != nil {
				t.Fatal(err)
			}
		}
		_, err := attacker.ForgotSendCode(ctx, email)
		wantTooMany(t, err, time.Hour, "4th send_code of the attacker")
		victim := clientFrom(t, s, "198.51.100.70")
		ft, err := victim.ForgotSendCode(ctx, email)
		if err != nil {
			t.Fatalf("the victim's send_code: %v", err)
		}
		code := waitMail(t, s, email, "X-Recovery-Code", 4)["X-Recovery-Code"]
		art, err := victim.ForgotVerifyCode(ctx, ft, code)
		if err != nil {
			t.Fatalf("the victim's verify_code: %v", err)
		}
		if err := victim.ResetAccount(ctx, art, email, "new pw", nil); err != nil {
			t.Fatalf("the victim's reset: %v", err)
		}
		if _, err := victim.Login(ctx, email, "new pw"); err != nil {
			t.Fatal(err)
		}
	})
}

// create → destroy cycles to one address stop mailing at R6 (5 an hour);
// a display-name email is refused at create with 107 and nothing is
// mailed.
func TestCustomsMail(t *testing.T) {
	backends(t, func(t *testing.T, db string, extra ...string) {
		s := startCustoms(t, db, "", extra...)
		ctx := ctxT(t)
		const victim = "bombed@example.org"
		for i := range 7 {
			c := clientFrom(t, s, fmt.Sprintf("203.0.113.%d", 80+i))
			if _, err := c.CreateAccount(ctx, victim, "pw", client.CreateOptions{}); err != nil {
				t.Fatalf("create %d: %v", i+1, err)
			}
			if err := c.DestroyAccount(ctx, victim, "pw"); err != nil {
				t.Fatalf("destroy %d: %v", i+1, err)
			}
		}
		waitMail(t, s, victim, "X-Verify-Code", 5)
		time.Sleep(200 * time.Millisecond) // the log pipe
		n := 0
		for _, m := range s.mails() {
			if m["to"] == victim {
				n++
			}
		}
		if n != 5 {
			t.Fatalf("%d mails to %s, want 5", n, victim)
		}
		_, err := newClient(t, s).CreateAccount(ctx, `"x" <display@example.org>`, "pw", client.CreateOptions{})
		if ce := wantErrno(t, err, 107, "display name"); ce.Body["param"] != "email" {
			t.Fatalf("107 param %v", ce.Body["param"])
		}
		for _, m := range s.mails() {
			if strings.Contains(m["to"], "display@example.org") {
				t.Fatalf("mail sent for a display-name email: %v", m)
			}
		}
	})
}

// Two instances on one PostgreSQL database share the counts: guesses spread
// across both are refused at the same total.
func TestCustomsTwoInstances(t *testing.T) {
	db := postgresDB(t)
	a := startCustoms(t, db, "", "--migrate")
	b := startCustoms(t, db, "")
	const email = "shared@example.org"
	mustCreate(t, newClient(t, a), email)
	ca, cb := clientFrom(t, a, "203.0.113.90"), clientFrom(t, b, "203.0.113.90")
	for i := range 5 {
		c := ca
		if i%2 == 1 {
			c = cb
		}
		mustWrong(t, c, email)
	}
	for name, c := range map[string]*client.Client{"a": ca, "b": cb} {
		_, err := c.AuthStart(ctxT(t), email)
		wantTooMany(t, err, 15*time.Minute, "6th on instance "+name)
	}
}

// With the database unreachable, the rules answer 503/201 and let nothing
// through unchecked.
func TestCustomsStoreDown(t *testing.T) {
	dsn, err := url.Parse(postgresDB(t))
	if err != nil {
		t.Fatal(err)
	}
	p := newProxy(t, dsn.Host)
	dsn.Host = p.addr
	s := startCustoms(t, dsn.String(), "", "--migrate")
	c := newClient(t, s)
	ctx := ctxT(t)
	mustCreate(t, c, "down@example.org")
	p.cut()
	for what, err := range map[string]error{
		"auth/start":        errOf(c.AuthStart(ctx, "down@example.org")),
		"send_code":         errOf(c.ForgotSendCode(ctx, "down@example.org")),
		"send_unblock_code": c.SendUnblockCode(ctx, "down@example.org"),
	} {
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Status != 503 || ce.Errno != 201 {
			t.Fatalf("%s with the database unreachable: %v, want 503/201", what, err)
		}
	}
	p.restore()
}

func errOf[T any](_ T, err error) error { return err }
