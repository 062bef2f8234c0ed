package keyserver_test

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyserver/keyserver/certs"
	"github.com/keyserver/keyserver/client"
	"github.com/keyserver/keyserver/customs"
	"github.com/keyserver/keyserver/keyserver"
	"github.com/keyserver/keyserver/protocol"
	"github.com/keyserver/keyserver/store"
	"github.com/keyserver/keyserver/store/sqlstore"
)

// Abuse protection (spec 14) through the HTTP API. Clients on other ips
// come through the fixture's listener, a trusted proxy, with
// X-Forwarded-For.

// xff sends every request with X-Forwarded-For: ip.
type xff struct{ ip string }

func (x xff) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Forwarded-For", x.ip)
	return http.DefaultTransport.RoundTrip(r)
}

// from is a client whose requests come from ip.
func (f *apiFixture) from(t *testing.T, ip string) *client.Client {
	t.Helper()
	c, err := client.New(f.url, client.WithStretching(cheap), client.WithHTTPClient(&http.Client{Transport: xff{ip}, Timeout: time.Minute}))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// withLimits sets some limits (customs.ParseLimitList) and trusts the
// loopback proxy.
func withLimits(limits string) func(*keyserver.Config) {
	return func(c *keyserver.Config) {
		c.Limits = customs.DefaultRules()
		if err := customs.ParseLimitList(limits, c.Limits); err != nil {
			panic(err)
		}
		_, lo, _ := net.ParseCIDR("127.0.0.0/8")
		c.TrustedProxies = []*net.IPNet{lo}
	}
}

// want429 checks a 429/114 whose retryAfter (and Retry-After) is within a
// few seconds below wait.
func want429(t *testing.T, what string, err error, wait time.Duration) {
	t.Helper()
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != 429 || ce.Errno != 114 {
		t.Fatalf("%s: %v, want 429/114", what, err)
	}
	got, ok := ce.RetryAfter()
	if !ok || got > wait || got < wait-5*time.Second || ce.Header.Get("Retry-After") != fmt.Sprint(int(got/time.Second)) {
		t.Fatalf("%s: retryAfter %v (header %q), want about %v", what, got, ce.Header.Get("Retry-After"), wait)
	}
}

// want125 checks a 400/125 with verificationMethod and no retryAfter.
func want125(t *testing.T, what string, err error) {
	t.Helper()
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != 400 || !ce.Blocked() || ce.Body["retryAfter"] != nil || ce.Header.Get("Retry-After") != "" {
		t.Fatalf("%s: %v, want 400/125 verificationMethod email", what, err)
	}
}

func wrongLogin(t *testing.T, c *client.Client, email string) {
	t.Helper()
	_, err := c.SignIn(t.Context(), email, "wrong password")
	wantErrno(t, "wrong password", err, 103)
}

// blockedEvents are the audit events `blocked` of rule.
func (f *apiFixture) blockedEvents(t *testing.T, rule string) []protocol.AuditEvent {
	t.Helper()
	var out []protocol.AuditEvent
	for _, e := range f.auditActions(t, "blocked") {
		if strings.Contains(string(e.Details), `"rule":"`+rule+`"`) {
			out = append(out, e)
		}
	}
	return out
}

// R1: after 5 wrong passwords from one ip the sixth sign-in from it is
// 429 until the window allows, while another ip signs in; the refusal is
// audited once and logged with the rule name; a success clears R1.
func TestCustomsR1(t *testing.T) {
	f, _ := newMailFixture(t, withLimits(""))
	ctx := t.Context()
	const email = "alice@example.org"
	f.account(t, email)
	attacker, other := f.from(t, "203.0.113.5"), f.from(t, "198.51.100.7")
	for range 5 {
		wrongLogin(t, attacker, email)
	}
	_, err := attacker.Login(ctx, email, password)
	want429(t, "6th sign-in (right password)", err, 15*time.Minute)
	_, err = attacker.AuthStart(ctx, email)
	want429(t, "auth/start", err, 15*time.Minute)
	if _, err := other.Login(ctx, email, password); err != nil {
		t.Fatalf("other ip: %v", err)
	}
	if n := len(f.blockedEvents(t, "R1")); n != 1 {
		t.Errorf("%d blocked events for R1, want 1 per window", n)
	}
	if !strings.Contains(f.logs.String(), "rule=R1") {
		t.Error("no log line with the rule name")
	}
	// The same /64 is the same key; another /64 is not.
	v6a, v6b := f.from(t, "2001:db8:1:2::1"), f.from(t, "2001:db8:1:2::ffff")
	for range 5 {
		wrongLogin(t, v6a, email)
	}
	_, err = v6b.AuthStart(ctx, email)
	want429(t, "same /64", err, 15*time.Minute)
	if _, err := f.from(t, "2001:db8:1:3::1").AuthStart(ctx, email); err != nil {
		t.Fatalf("another /64: %v", err)
	}
	// An IPv4-mapped address is the IPv4 address.
	_, err = f.from(t, "::ffff:203.0.113.5").AuthStart(ctx, email)
	want429(t, "IPv4-mapped", err, 15*time.Minute)

	f.jump(t, 15*time.Minute)
	if _, err := attacker.Login(ctx, email, password); err != nil {
		t.Fatalf("after the window: %v", err)
	}
	// The success cleared R1 for (alice, attacker ip): 5 more tries.
	for range 5 {
		wrongLogin(t, attacker, email)
	}
	_, err = attacker.AuthStart(ctx, email)
	want429(t, "again after 5", err, 15*time.Minute)
}

// R1 at auth/finish: a srpToken obtained before the limit was reached is
// refused after, without being consumed; concurrent guesses never overrun
// the limit.
func TestCustomsR1Concurrent(t *testing.T) {
	f, _ := newMailFixture(t, withLimits(""), func(c *keyserver.Config) { c.HeavyQueue, c.HeavyWait = 64, 30*time.Second })
	ctx := t.Context()
	const email = "conc@example.org"
	f.account(t, email)
	c := f.from(t, "203.0.113.9")
	const n = 12
	chs := make([]*client.AuthChallenge, n)
	for i := range chs {
		var err error
		if chs[i], err = c.AuthStart(ctx, email); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var wrong int
	var refused []*client.AuthChallenge
	for _, ch := range chs {
		wg.Go(func() {
			_, err := c.AuthFinish(ctx, ch, "wrong password")
			mu.Lock()
			defer mu.Unlock()
			switch {
			case client.IsErrno(err, 103):
				wrong++
			case client.IsErrno(err, 114):
				refused = append(refused, ch)
			default:
				t.Errorf("finish: %v", err)
			}
		})
	}
	wg.Wait()
	if wrong != 5 || len(refused) != n-5 {
		t.Fatalf("%d wrong, %d refused; want exactly 5 guesses answered", wrong, len(refused))
	}
	_, err := c.AuthStart(ctx, email)
	want429(t, "auth/start", err, 15*time.Minute)
	// A refused srpToken was not consumed: once an admin clears R1, it
	// still works.
	if err := f.admin.ClearBlocks(ctx, "R1", "", "203.0.113.9"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AuthFinish(ctx, refused[0], password); err != nil {
		t.Fatalf("a refused srpToken after clear: %v", err)
	}
}

// R2: after 20 failures across ips, auth/start from a new ip is 400/125;
// a known ip is never blocked; an unblock code from the mail lets the right
// password through (a wrong code is 125 again and counts for R1); the ip
// then becomes known.
func TestCustomsR2Unblock(t *testing.T) {
	f, mb := newMailFixture(t, withLimits(""))
	ctx := t.Context()
	const email = "bob@example.org"
	f.account(t, email)
	home := f.from(t, "192.0.2.10")
	if _, err := home.Login(ctx, email, password); err != nil { // makes it known
		t.Fatal(err)
	}
	for i := range 20 {
		wrongLogin(t, f.from(t, fmt.Sprintf("203.0.113.%d", 100+i)), email)
	}
	cafe := f.from(t, "198.51.100.20")
	_, err := cafe.Login(ctx, email, password)
	want125(t, "new ip", err)
	if _, err := home.Login(ctx, email, password); err != nil {
		t.Fatalf("known ip: %v", err)
	}
	if n := len(f.blockedEvents(t, "R2")); n != 1 {
		t.Errorf("%d blocked events for R2, want 1", n)
	}

	// A wrong code: 125 again.
	_, err = cafe.LoginWith(ctx, email, password, client.SignInOptions{UnblockCode: "12345678"})
	want125(t, "wrong code, none sent", err)
	// A malformed one: 107.
	err = cafe.Do(ctx, "POST", "/v1/auth/start", map[string]string{"email": hexOf([]byte(email)), "unblockCode": "1234"}, nil, nil)
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Errno != 107 || ce.Body["param"] != "unblockCode" {
		t.Fatalf("malformed code: %v", err)
	}
	if err := cafe.SendUnblockCode(ctx, email); err != nil {
		t.Fatal(err)
	}
	code := mb.last(t, email).Headers["X-Unblock-Code"]
	if len(code) != 8 {
		t.Fatalf("unblock mail without X-Unblock-Code: %v", mb.last(t, email).Headers)
	}
	// The code lifts R2 for that srpToken; a wrong password still counts.
	ch, err := cafe.AuthStartWith(ctx, email, client.SignInOptions{UnblockCode: code})
	if err != nil {
		t.Fatalf("auth/start with the code: %v", err)
	}
	_, err = cafe.AuthFinish(ctx, ch, "wrong password")
	wantErrno(t, "unblocked, wrong password", err, 103)
	// The code was used up.
	_, err = cafe.LoginWith(ctx, email, password, client.SignInOptions{UnblockCode: code})
	want125(t, "used code", err)
	if err := cafe.SendUnblockCode(ctx, email); err != nil {
		t.Fatal(err)
	}
	code = mb.last(t, email).Headers["X-Unblock-Code"]
	if _, err := cafe.LoginWith(ctx, email, password, client.SignInOptions{UnblockCode: code}); err != nil {
		t.Fatalf("sign-in with the code: %v", err)
	}
	// Now the café is known.
	if _, err := cafe.Login(ctx, email, password); err != nil {
		t.Fatalf("after an unblocked sign-in: %v", err)
	}
	if len(f.auditActions(t, "login.unblock")) != 2 || len(f.auditActions(t, "login.send_unblock_code")) != 2 {
		t.Error("unblock events missing")
	}
	// At most 3 live codes.
	other := f.from(t, "198.51.100.21")
	for range 3 {
		if err := other.SendUnblockCode(ctx, email); err != nil {
			t.Fatal(err)
		}
	}
	want429(t, "4th live code", other.SendUnblockCode(ctx, email), time.Hour)
	// Unknown account, as for send_code.
	wantErrno(t, "unknown", other.SendUnblockCode(ctx, "nobody@example.org"), 102)
	// Wrong codes count for R1 (5 in 15 min), not for R2.
	for range 4 {
		_, err := other.LoginWith(ctx, email, password, client.SignInOptions{UnblockCode: "11111111"})
		want125(t, "wrong code", err)
	}
	_, err = other.LoginWith(ctx, email, password, client.SignInOptions{UnblockCode: "11111111"})
	want125(t, "5th wrong code", err)
	_, err = other.AuthStart(ctx, email)
	want429(t, "after 5 wrong codes (R1)", err, 15*time.Minute)
	// R6 now refuses more mail to the address from ips not known for it
	// (5 mails this hour), but not from home.
	_, err = other.ForgotSendCode(ctx, email)
	want429(t, "send_code after 5 mails", err, time.Hour)
	// A reset clears R1 and R2 and makes the ip of the verify_code known.
	ft, err := home.ForgotSendCode(ctx, email)
	if err != nil {
		t.Fatal(err)
	}
	art, err := other.ForgotVerifyCode(ctx, ft, mb.last(t, email).Headers["X-Recovery-Code"])
	if err != nil {
		t.Fatal(err)
	}
	if err := f.from(t, "198.51.100.99").ResetAccount(ctx, art, email, password, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := f.from(t, "198.51.100.50").Login(ctx, email, password); err != nil {
		t.Fatalf("after reset, a new ip: %v", err)
	}
	if _, err := other.Login(ctx, email, password); err != nil {
		t.Fatalf("after reset, the ip of verify_code: %v", err)
	}
	if ok, err := f.st.KnownIP(ctx, f.uidOf(t, email), "198.51.100.21", time.Now().Add(time.Duration(f.offset.Load()))); err != nil || !ok {
		t.Fatalf("the ip of verify_code not known: %v %v", ok, err)
	}
}

func (f *apiFixture) uidOf(t *testing.T, email string) []byte {
	t.Helper()
	a, err := f.st.AccountByEmail(t.Context(), email)
	if err != nil {
		t.Fatal(err)
	}
	return a.UID
}

// R3: password spraying from one ip across accounts.
func TestCustomsR3(t *testing.T) {
	f, _ := newMailFixture(t, withLimits("R3=6/1h"))
	ctx := t.Context()
	sprayer := f.from(t, "203.0.113.66")
	for i := range 7 {
		f.account(t, fmt.Sprintf("user%d@example.org", i))
	}
	for i := range 6 {
		wrongLogin(t, sprayer, fmt.Sprintf("user%d@example.org", i))
	}
	_, err := sprayer.AuthStart(ctx, "user6@example.org")
	want429(t, "7th account", err, time.Hour)
	err = sprayer.Do(ctx, "POST", "/v1/auth/finish", map[string]string{"srpToken": strings.Repeat("00", 32)}, nil, nil)
	want429(t, "auth/finish from the ip", err, time.Hour)
	if _, err := f.from(t, "198.51.100.3").Login(ctx, "user6@example.org", password); err != nil {
		t.Fatalf("other ip: %v", err)
	}
	f.jump(t, time.Hour)
	if _, err := sprayer.Login(ctx, "user6@example.org", password); err != nil {
		t.Fatalf("after the window: %v", err)
	}
}

// R4 (any answer, 102 included) and R5, counted in memory; exempt networks
// get no rule.
func TestCustomsR4R5(t *testing.T) {
	f, _ := newMailFixture(t, withLimits("R4=3/1m,R5=2/1h"), func(c *keyserver.Config) {
		c.RateLimitExempt = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}
	})
	ctx := t.Context()
	c := f.from(t, "203.0.113.4")
	for range 3 {
		_, err := c.AuthStart(ctx, "nobody@example.org")
		wantErrno(t, "unknown", err, 102)
	}
	_, err := c.AuthStart(ctx, "nobody@example.org")
	want429(t, "4th auth/start", err, time.Minute)
	exempt := f.from(t, "192.0.2.200")
	for range 5 {
		_, err := exempt.AuthStart(ctx, "nobody@example.org")
		wantErrno(t, "exempt", err, 102)
	}
	f.jump(t, time.Minute)
	_, err = c.AuthStart(ctx, "nobody@example.org")
	wantErrno(t, "after the window", err, 102)

	for i := range 2 {
		if _, err := c.CreateAccount(ctx, fmt.Sprintf("new%d@example.org", i), password, client.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	_, err = c.CreateAccount(ctx, "new2@example.org", password, client.CreateOptions{})
	want429(t, "3rd create", err, time.Hour)
	if _, err := f.from(t, "198.51.100.1").CreateAccount(ctx, "new2@example.org", password, client.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The admin sees and clears the block of this instance.
	bs, err := f.admin.Blocks(ctx, "", "203.0.113.4")
	if err != nil || len(bs) != 1 || bs[0].Rule != "R5" || bs[0].Key.IP != "203.0.113.4" || bs[0].Count != 2 {
		t.Fatalf("blocks = %+v, %v", bs, err)
	}
	if err := f.admin.ClearBlocks(ctx, "R5", "", "203.0.113.4"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateAccount(ctx, "new3@example.org", password, client.CreateOptions{}); err != nil {
		t.Fatalf("after clear: %v", err)
	}
}

// R6: create → destroy cycles to one address stop mailing at the limit;
// create still succeeds.
func TestCustomsR6CreateDestroy(t *testing.T) {
	f, mb := newMailFixture(t, withLimits(""))
	ctx := t.Context()
	const victim = "victim@example.org"
	for i := range 7 {
		c := f.from(t, fmt.Sprintf("203.0.113.%d", 10+i))
		if _, err := c.CreateAccount(ctx, victim, password, client.CreateOptions{}); err != nil {
			t.Fatalf("create %d: %v", i+1, err)
		}
		if err := c.DestroyAccount(ctx, victim, password); err != nil {
			t.Fatalf("destroy %d: %v", i+1, err)
		}
	}
	if n := mb.count(); n != 5 {
		t.Fatalf("%d mails to the victim, want 5 (R6)", n)
	}
	if len(f.blockedEvents(t, "R6a")) != 1 {
		t.Error("R6a refusal not audited once")
	}
	// Other mail to the address is refused with 429 (resend_code).
	c := f.from(t, "198.51.100.8")
	if _, err := c.CreateAccount(ctx, victim, password, client.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	s, err := c.Login(ctx, victim, password)
	if err != nil {
		t.Fatal(err)
	}
	// Its ip is known now, which R6 exempts (an attacker knowing only the
	// address cannot stop the owner's mail).
	if err := c.ResendCode(ctx, s.SessionToken, ""); err != nil {
		t.Fatalf("resend from a known ip: %v", err)
	}
	_, err = f.from(t, "198.51.100.9").ForgotSendCode(ctx, victim)
	want429(t, "send_code to a bombed address", err, time.Hour)
}

// A display-name email (C20) is refused at create with 107 and nothing is
// mailed; pre-verified, it may exist, but the mail endpoints answer 107.
func TestCustomsC20(t *testing.T) {
	f, mb := newMailFixture(t, withLimits(""))
	ctx := t.Context()
	for _, email := range []string{`"x" <victim@example.com>`, "victim@example.com (me)", `"quoted"@example.com`, "a@[192.0.2.1]", "a..b@example.com", "a b@example.com"} {
		_, err := f.c.CreateAccount(ctx, email, password, client.CreateOptions{})
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Errno != 107 || ce.Body["param"] != "email" {
			t.Fatalf("create %q: %v, want 107 email", email, err)
		}
	}
	if mb.count() != 0 {
		t.Fatalf("%d mails sent", mb.count())
	}
	for _, email := range []string{"andré@exämple.org", "a.b+c!#$%&'*/=?^_`{|}~-@example.com"} {
		if _, err := f.c.CreateAccount(ctx, email, password, client.CreateOptions{}); err != nil {
			t.Fatalf("create %q: %v", email, err)
		}
	}
	const odd = `"x" <odd@example.com>`
	if _, err := f.c.CreateAccount(ctx, odd, password, client.CreateOptions{PreVerified: true}); err != nil {
		t.Fatalf("pre-verified: %v", err)
	}
	sent := mb.count()
	for what, err := range map[string]error{
		"send_code":         errOf(f.c.ForgotSendCode(ctx, odd)),
		"send_unblock_code": f.c.SendUnblockCode(ctx, odd),
	} {
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Errno != 107 || ce.Body["param"] != "email" {
			t.Errorf("%s: %v, want 107 email", what, err)
		}
	}
	if mb.count() != sent {
		t.Error("mail sent to a non-conforming email")
	}
}

func errOf[T any](_ T, err error) error { return err }

// R7 per sessionToken; R9 and R11.
func TestCustomsR7R9R11(t *testing.T) {
	f, _ := newMailFixture(t, withLimits("R7=2/1m,R11=2/1h,R9b=2/1h"), withSigner(testSigner(t, certs.RS256, 0)))
	ctx := t.Context()
	uid := f.account(t, "cert@example.org")
	s := f.login(t, "cert@example.org")
	for range 2 {
		if _, err := f.c.CertificateSign(ctx, s.SessionToken, clientKey(), 60_000); err != nil {
			t.Fatal(err)
		}
	}
	_, err := f.c.CertificateSign(ctx, s.SessionToken, clientKey(), 60_000)
	want429(t, "3rd certificate", err, time.Minute)
	s2 := f.login(t, "cert@example.org")
	if _, err := f.c.CertificateSign(ctx, s2.SessionToken, clientKey(), 60_000); err != nil {
		t.Fatalf("another session: %v", err)
	}

	for range 2 {
		wantErrno(t, "wrong code", f.c.VerifyCode(ctx, uid, make([]byte, 16)), 105)
	}
	want429(t, "3rd wrong code", f.c.VerifyCode(ctx, uid, make([]byte, 16)), time.Hour)

	c := f.from(t, "203.0.113.77")
	for range 2 {
		wantErrno(t, "unknown", c.SendUnblockCode(ctx, "nobody@example.org"), 102)
	}
	want429(t, "3rd send_unblock_code", c.SendUnblockCode(ctx, "nobody@example.org"), time.Hour)
}

// R8: a victim's reset from another ip succeeds while an attacker sends
// send_code from a first ip; a 4th live token is refused, not evicted.
func TestCustomsR8Reset(t *testing.T) {
	f, mb := newMailFixture(t, withLimits(""))
	ctx := t.Context()
	const email = "carol@example.org"
	f.account(t, email)
	attacker := f.from(t, "203.0.113.13")
	for range 3 {
		if _, err := attacker.ForgotSendCode(ctx, email); err != nil {
			t.Fatal(err)
		}
	}
	_, err := attacker.ForgotSendCode(ctx, email)
	want429(t, "4th send_code from the attacker", err, time.Hour)
	victim := f.from(t, "198.51.100.13")
	ft, err := victim.ForgotSendCode(ctx, email)
	if err != nil {
		t.Fatalf("victim's send_code: %v", err)
	}
	code := mb.last(t, email).Headers["X-Recovery-Code"]
	// The attacker's token lives on; a third ip fills the 3 live tokens.
	if _, err := f.from(t, "203.0.113.14").ForgotSendCode(ctx, email); err != nil {
		t.Fatal(err)
	}
	_, err = f.from(t, "203.0.113.15").ForgotSendCode(ctx, email)
	want429(t, "4th live token", err, 15*time.Minute)
	art, err := victim.ForgotVerifyCode(ctx, ft, code)
	if err != nil {
		t.Fatalf("victim's verify_code: %v", err)
	}
	if err := victim.ResetAccount(ctx, art, email, "new password", nil); err != nil {
		t.Fatalf("victim's reset: %v", err)
	}
}

// R10: recover per ip.
func TestCustomsR10(t *testing.T) {
	f, _ := newMailFixture(t, withLimits("R10a=2/1h,R10b=2/1h"))
	ctx := t.Context()
	c := f.from(t, "203.0.113.20")
	for range 2 {
		_, _, err := c.Recover(ctx, "dave@example.org", "not-an-assertion")
		wantErrno(t, "no issuers", err, 126)
	}
	_, _, err := c.Recover(ctx, "dave@example.org", "x")
	want429(t, "3rd recover from the ip", err, time.Hour)
	// R10b: failed recoveries per account, from other ips.
	_, _, err = f.from(t, "203.0.113.21").Recover(ctx, "dave@example.org", "x")
	want429(t, "3rd failure for the account", err, time.Hour)
	_, _, err = f.from(t, "203.0.113.21").Recover(ctx, "erin@example.org", "x")
	wantErrno(t, "another account", err, 126)
}

// Admin: list and clear blocks (spec 14.4).
func TestCustomsAdmin(t *testing.T) {
	f, _ := newMailFixture(t, withLimits(""))
	ctx := t.Context()
	const email = "frank@example.org"
	uid := f.account(t, email)
	attacker := f.from(t, "203.0.113.30")
	for range 5 {
		wrongLogin(t, attacker, email)
	}
	bs, err := f.admin.Blocks(ctx, hexOf(uid), "")
	if err != nil || len(bs) != 1 {
		t.Fatalf("blocks = %+v, %v", bs, err)
	}
	b := bs[0]
	if b.Rule != "R1" || b.Key.UID != hexOf(uid) || b.Key.IP != "203.0.113.30" || b.Key.Fold != hexOf([]byte(email)) || b.Count != 5 ||
		b.UntilTime < time.Now().Add(14*time.Minute).UnixMilli() {
		t.Fatalf("block = %+v", b)
	}
	if bs, err := f.admin.Blocks(ctx, "", "203.0.113.30"); err != nil || len(bs) != 1 {
		t.Fatalf("blocks by ip = %+v, %v", bs, err)
	}
	if bs, err := f.admin.Blocks(ctx, "", "198.51.100.1"); err != nil || len(bs) != 0 {
		t.Fatalf("blocks of another ip = %+v, %v", bs, err)
	}
	for _, c := range []struct {
		path         string
		status, errn int
		param        string
	}{
		{"/admin/v1/blocks/clear", 400, 108, "uid"},
		{"/admin/v1/blocks/clear?uid=" + strings.Repeat("0", 32), 400, 102, ""},
		{"/admin/v1/blocks/clear?uid=zz", 400, 107, "uid"},
		{"/admin/v1/blocks/clear?ip=nonsense", 400, 107, "ip"},
		{"/admin/v1/blocks/clear?ip=192.0.2.1&rule=R99", 400, 107, "rule"},
	} {
		st, body := f.adminRaw(t, "POST", c.path, "", "Bearer "+adminToken)
		wantError(t, c.path, st, body, c.status, c.errn, c.param)
	}
	st, body := f.adminRaw(t, "GET", "/admin/v1/blocks?uid="+strings.Repeat("0", 32), "", "Bearer "+adminToken)
	wantError(t, "blocks of an unknown uid", st, body, 400, 102, "")
	if err := f.admin.ClearBlocks(ctx, "R1", hexOf(uid), ""); err != nil {
		t.Fatal(err)
	}
	if _, err := attacker.Login(ctx, email, password); err != nil {
		t.Fatalf("after clear: %v", err)
	}
	if len(f.auditActions(t, "admin.blocks.clear")) != 1 {
		t.Error("clear not audited")
	}
}

// Lifetimes (spec 14.5): authToken, keyFetchToken and accountResetToken
// expire an hour after creation; the keyFetchToken of an unverified
// account an hour after verification; the purge deletes accounts left
// unverified for 7 days, audited.
func TestCustomsLifetimes(t *testing.T) {
	f, mb := newMailFixture(t, withLimits(""))
	ctx := t.Context()
	const email = "gina@example.org"
	uid := f.account(t, email)
	auth, err := f.c.SignIn(ctx, email, password)
	if err != nil {
		t.Fatal(err)
	}
	s := f.login(t, email)
	f.jump(t, time.Hour)
	_, err = f.c.SessionCreate(ctx, auth.AuthToken)
	wantErrno(t, "authToken after an hour", err, 110)
	_, err = f.c.Keys(ctx, s.KeyFetchToken, s.UnwrapBKey)
	wantErrno(t, "keyFetchToken after an hour", err, 110)

	uid2, err := f.c.CreateAccount(ctx, "hank@example.org", password, client.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	link := mb.last(t, "hank@example.org").Headers["X-Verify-Code"]
	s2 := f.login(t, "hank@example.org")
	f.jump(t, 2*time.Hour)
	code, _ := hex.DecodeString(link)
	if err := f.c.VerifyCode(ctx, uid2, code); err != nil {
		t.Fatal(err)
	}
	if _, err := f.c.Keys(ctx, s2.KeyFetchToken, s2.UnwrapBKey); err != nil {
		t.Fatalf("keyFetchToken counted from verification: %v", err)
	}

	if _, err := f.c.CreateAccount(ctx, "ivy@example.org", password, client.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Past the TTL by a second: created_at and the purge's cutoff are
	// milliseconds, and both can fall in the same one.
	f.jump(t, 48*time.Hour+time.Second)
	ks := purger(t, f)
	if _, err := ks(ctx); err != nil {
		t.Fatal(err)
	}
	if as, err := f.admin.AccountsByEmail(ctx, "ivy@example.org"); err != nil || len(as) != 0 {
		t.Fatalf("unverified account kept: %v %v", as, err)
	}
	for _, u := range [][]byte{uid, uid2} {
		if _, err := f.admin.Account(ctx, hexOf(u)); err != nil {
			t.Fatalf("verified account purged: %v", err)
		}
	}
	evs := f.auditActions(t, "account.expire")
	if len(evs) != 1 || evs[0].Actor != "system" {
		t.Fatalf("account.expire events = %+v", evs)
	}
}

// purger returns the fixture's Purge; the fixture keeps no Server, so a
// second one over the same store (and clock) is made.
func purger(t *testing.T, f *apiFixture) func(ctx context.Context) (int64, error) {
	t.Helper()
	srv, err := keyserver.New(keyserver.Config{PublicURL: f.url, UnverifiedTTL: 48 * time.Hour,
		Now: func() time.Time { return time.Now().Add(time.Duration(f.offset.Load())) }}, f.st)
	if err != nil {
		t.Fatal(err)
	}
	return func(ctx context.Context) (int64, error) {
		return srv.Purge(ctx, time.Now().Add(time.Duration(f.offset.Load())), time.Now().Add(-24*time.Hour))
	}
}

// flakyStore fails the abuse-protection reads while down.
type flakyStore struct {
	store.Store
	down atomic.Bool
}

func (s *flakyStore) NthCounts(ctx context.Context, p []store.CountProbe) ([]time.Time, error) {
	if s.down.Load() {
		return nil, fmt.Errorf("flaky: %w", store.ErrUnavailable)
	}
	return s.Store.NthCounts(ctx, p)
}

// With the counts unreadable, the rules answer 503/201: no request passes
// unchecked.
func TestCustomsFailClosed(t *testing.T) {
	st, err := sqlstore.Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "ks.db"), sqlstore.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	fs := &flakyStore{Store: st}
	pub := httptest.NewUnstartedServer(nil)
	url := "http://" + pub.Listener.Addr().String()
	srv, err := keyserver.New(keyserver.Config{PublicURL: url, Dev: true, Mailer: discardMailer{}}, fs)
	if err != nil {
		t.Fatal(err)
	}
	pub.Config.Handler = srv.Handler()
	pub.Start()
	t.Cleanup(pub.Close)
	c, err := client.New(url, client.WithStretching(cheap))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := c.CreateAccount(ctx, "jo@example.org", password, client.CreateOptions{PreVerified: true}); err != nil {
		t.Fatal(err)
	}
	fs.down.Store(true)
	for what, err := range map[string]error{
		"auth/start": errOf(c.AuthStart(ctx, "jo@example.org")),
		"send_code":  errOf(c.ForgotSendCode(ctx, "jo@example.org")),
	} {
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Status != 503 || ce.Errno != 201 || ce.Body["retryAfter"] != float64(30) {
			t.Errorf("%s with the counts unreadable: %v, want 503/201", what, err)
		}
	}
	fs.down.Store(false)
	if _, err := c.Login(ctx, "jo@example.org", password); err != nil {
		t.Fatal(err)
	}
}

// Two servers on one database share the counts.
func TestCustomsSharedCounts(t *testing.T) {
	f, _ := newMailFixture(t, withLimits(""))
	ctx := t.Context()
	const email = "kim@example.org"
	f.account(t, email)
	pub := httptest.NewUnstartedServer(nil)
	url := "http://" + pub.Listener.Addr().String()
	cfg := keyserver.Config{PublicURL: url, Dev: true, Mailer: discardMailer{}}
	withLimits("")(&cfg)
	srv, err := keyserver.New(cfg, f.st)
	if err != nil {
		t.Fatal(err)
	}
	pub.Config.Handler = srv.Handler()
	pub.Start()
	t.Cleanup(pub.Close)
	second, err := client.New(url, client.WithStretching(cheap), client.WithHTTPClient(&http.Client{Transport: xff{"203.0.113.40"}}))
	if err != nil {
		t.Fatal(err)
	}
	first := f.from(t, "203.0.113.40")
	for i := range 5 {
		c := first
		if i%2 == 1 {
			c = second
		}
		wrongLogin(t, c, email)
	}
	for _, c := range []*client.Client{first, second} {
		_, err := c.AuthStart(ctx, email)
		want429(t, "6th on either instance", err, 15*time.Minute)
	}
}
