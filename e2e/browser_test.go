package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/keyserver/keyserver/client"
	"github.com/keyserver/keyserver/keywrap"
)

// The web client (keyserver/web) in a real headless Chromium: its crypto
// against the spec's vectors and the Go packages, and every page flow
// against the real binary, with the Go client on the other side for
// interoperability. The harness (browser_harness_test.go) fails a test on
// any console error or exception and on any request to another origin.

// fill replaces the value of the input with this id by typing v (SetValue
// for non-ASCII text, which key events cannot type).
func fill(id, v string) chromedp.Action[chromedp.Void] {
	sel := chromedp.ID(id)
	for _, r := range v {
		if r > 0x7e {
			return chromedp.SetValue(sel, v)
		}
	}
	clear := chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.getElementById(%q).value = ""`, id))
	return chromedp.Steps(clear, chromedp.SendKeys(sel, v))
}

func click(id string) chromedp.Action[chromedp.Void] { return chromedp.Click(chromedp.ID(id)) }

// waitJS evaluates cond until it is true; evaluation errors (a navigation
// in progress) count as false.
func (b *browser) waitJS(ctx context.Context, what, cond string, timeout time.Duration) {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ectx, cancel := context.WithTimeout(ctx, 5*time.Second)
		ok, err := chromedp.Run(ectx, chromedp.Evaluate[bool]("!!("+cond+")"))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			b.fail(ctx, what, fmt.Errorf("timed out after %v waiting for %s", timeout, cond))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitAccount waits for the account page to have loaded (keys shown,
// devices listed) and returns its visible text.
func (b *browser) waitAccount(ctx context.Context, what string) string {
	b.t.Helper()
	b.waitJS(ctx, what, `location.pathname === "/account" && document.body.dataset.ready === "true"`, 90*time.Second)
	return evalJS[string](b, ctx, what, `document.body.innerText`)
}

// waitPath waits for the tab to show path (and its page to have run).
func (b *browser) waitPath(ctx context.Context, what, path string) {
	b.t.Helper()
	b.waitJS(ctx, what, fmt.Sprintf(`location.pathname === %q && document.readyState === "complete"`, path), 60*time.Second)
}

// pageSession is the tab's sessionStorage session (keys and tokens in hex).
type pageSession struct {
	Email, UID, SessionToken, KA, KB, DeviceID string
}

func (b *browser) session(ctx context.Context) *pageSession {
	b.t.Helper()
	raw := evalJS[string](b, ctx, "reading sessionStorage", `sessionStorage.getItem("keyserver.session") || "null"`)
	var s *pageSession
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		b.t.Fatalf("sessionStorage: %v", err)
	}
	return s
}

// textOf returns the text of the element with this id.
func (b *browser) textOf(ctx context.Context, id string) string {
	b.t.Helper()
	return evalJS[string](b, ctx, "reading #"+id, fmt.Sprintf(`document.getElementById(%q).textContent`, id))
}

// fingerprint is the account page's key fingerprint: the first 8 bytes of
// SHA-256(key) in groups of four hex digits.
func fingerprint(key []byte) string {
	sum := sha256.Sum256(key)
	h := hex.EncodeToString(sum[:8])
	return h[0:4] + " " + h[4:8] + " " + h[8:12] + " " + h[12:16]
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("hex %q: %v", s, err)
	}
	return b
}

// devMail is one message the development mailer wrote to the server log.
type devMail map[string]string

// mails parses the development mailer's log lines (slog text format).
func (s *server) mails() []devMail {
	var out []devMail
	sc := bufio.NewScanner(strings.NewReader(s.logs.String()))
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		if line := sc.Text(); strings.Contains(line, "development mailer") {
			out = append(out, parseLogfmt(line))
		}
	}
	return out
}

// parseLogfmt splits key=value pairs; values may be Go-quoted.
func parseLogfmt(line string) devMail {
	m := devMail{}
	for line != "" {
		line = strings.TrimLeft(line, " ")
		eq := strings.IndexByte(line, '=')
		if eq < 0 {
			break
		}
		key, rest := line[:eq], line[eq+1:]
		var val string
		if strings.HasPrefix(rest, `"`) {
			q, err := strconv.QuotedPrefix(rest)
			if err != nil {
				break
			}
			val, _ = strconv.Unquote(q)
			rest = rest[len(q):]
		} else if sp := strings.IndexByte(rest, ' '); sp >= 0 {
			val, rest = rest[:sp], rest[sp:]
		} else {
			val, rest = rest, ""
		}
		m[key] = val
		line = rest
	}
	return m
}

// waitMail waits for the n-th (1-based) development mail to `to` that has
// header, and returns it.
func waitMail(t *testing.T, s *server, to, header string, n int) devMail {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var found []devMail
		for _, m := range s.mails() {
			if strings.EqualFold(m["to"], to) && m[header] != "" {
				found = append(found, m)
			}
		}
		if len(found) >= n {
			return found[n-1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no mail #%d with %s to %s in the server log", n, header, to)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// signIn fills the sign-in form of a tab showing / and returns the time
// from the click to the loaded account page and its text.
func (b *browser) signIn(ctx context.Context, email, password string) (time.Duration, string) {
	b.t.Helper()
	b.waitPath(ctx, "sign-in page", "/")
	b.do(ctx, "filling the sign-in form", fill("email", email), fill("password", password))
	start := time.Now()
	b.do(ctx, "signing in", click("signin-submit"))
	text := b.waitAccount(ctx, "account page after sign-in")
	return time.Since(start), text
}

// signOut clicks "Sign out" and waits for the sign-in page.
func (b *browser) signOut(ctx context.Context) {
	b.t.Helper()
	b.do(ctx, "signing out", click("signout"))
	b.waitJS(ctx, "signed out", `location.pathname === "/" && /signed out/.test(document.getElementById("notice").textContent)`, 30*time.Second)
	if s := b.session(ctx); s != nil {
		b.t.Fatalf("sessionStorage still holds a session after sign-out: %+v", s)
	}
}

// fullClient is a Go client with the protocol's real stretching, as the
// browser has.
func fullClient(t *testing.T, s *server) *client.Client {
	c, err := client.New(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// startWebServer starts a --dev server whose verification links land on
// the web client's /verify page (the port is picked first, so that the
// link can name it).
func startWebServer(t *testing.T, args ...string) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return startServer(t, append([]string{"--db", sqliteDB(t), "--dev", "--listen", addr,
		"--verification-url", "http://" + addr + "/verify"}, args...)...)
}

// thisBrowser is the device name the web client gives Debian's headless
// Chromium: the browser and platform of its user agent (client hints).
const thisBrowser = "Chromium on Linux"

// visibleText is the text of the page that is rendered (closed <details>
// and hidden elements left out).
func (b *browser) visibleText(ctx context.Context) string {
	b.t.Helper()
	return evalJS[string](b, ctx, "visible text", `(() => {
	  const w = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT), out = [];
	  for (let n; (n = w.nextNode());) if (n.parentElement.checkVisibility() && n.textContent.trim()) out.push(n.textContent.trim());
	  return out.join(" ");
	})()`)
}

// Jargon that user pages keep behind a "Details" disclosure, if anywhere.
var (
	jargon     = regexp.MustCompile(`(?i)class[- ]?[ab]\b|sha-?256|first 8 bytes|\bsrp\b|pbkdf2|scrypt|wrapkb|stretch|\bhawk\b|errno|\btoken\b`)
	jargonKeys = regexp.MustCompile(`\bk[AB]\b`)
	rawSeconds = regexp.MustCompile(`(?i)\b\d+\s*(s|secs?|seconds?)\b|retryAfter`)
)

// checkWords fails if the visible text of the page has jargon, raw
// seconds or JSON.
func (b *browser) checkWords(ctx context.Context, what string) string {
	b.t.Helper()
	text := b.visibleText(ctx)
	for _, re := range []*regexp.Regexp{jargon, jargonKeys, rawSeconds, regexp.MustCompile(`[{}]|"errno"|"code"`)} {
		if m := re.FindString(text); m != "" {
			b.fail(ctx, what, fmt.Errorf("the page says %q (%s):\n%s", m, re, text))
		}
	}
	return text
}

// fieldState is what assistive technology knows about one input.
type fieldState struct {
	Invalid   bool   // aria-invalid="true"
	Message   string // the text of the visible elements its aria-describedby names
	Announced bool   // one of them is role=alert or in a live region
	Focused   bool
}

func (b *browser) field(ctx context.Context, id string) fieldState {
	b.t.Helper()
	return evalJS[fieldState](b, ctx, "field "+id, fmt.Sprintf(`(() => {
	  const e = document.getElementById(%q);
	  const ms = (e.getAttribute("aria-describedby") || "").split(/\s+/).map(id => document.getElementById(id)).filter(m => m && m.checkVisibility());
	  return {invalid: e.getAttribute("aria-invalid") === "true", message: ms.map(m => m.textContent).join(" "),
	    announced: ms.some(m => m.closest("[role=alert], [role=status], [aria-live]")), focused: document.activeElement === e};
	})()`, id))
}

// waitFieldError waits for the input id to be invalid with a message
// matching re, announced and focused.
func (b *browser) waitFieldError(ctx context.Context, what, id string, re *regexp.Regexp) fieldState {
	b.t.Helper()
	b.waitJS(ctx, what, fmt.Sprintf(`document.getElementById(%q).getAttribute("aria-invalid") === "true"`, id), 60*time.Second)
	f := b.field(ctx, id)
	if !f.Invalid || !re.MatchString(f.Message) || !f.Announced || !f.Focused {
		b.fail(ctx, what, fmt.Errorf("field %s: %+v, want invalid, focused, announced and described by %s", id, f, re))
	}
	return f
}

// The whole life of an account in the browser: sign up, open the mailed
// link (the /verify page), sign in on a second "device" that renames
// itself, see both devices and the account's activity, remove one after a
// confirmation (the removed tab notices by itself), change the password
// (kB kept), sign out, forgot password (kB replaced, kA kept), sign in
// again, delete the account.
func TestBrowserAccountFlow(t *testing.T) {
	s := startWebServer(t)
	b := newBrowser(t, s)
	ctx := ctxT(t)
	const email, pw1, pw2, pw3 = "alice.web@example.org", "correct horse battery", "staple gun 2026!", "n€w päss phrase"
	laptop, phone := b.tab(), b.tab()

	// Sign up: the page creates the account, signs in and waits for the mail.
	b.do(laptop, "sign-up page", chromedp.Navigate(s.URL+"/signup"),
		fill("email", email), fill("password", pw1), fill("confirm", pw1), click("signup-submit"))
	b.waitJS(laptop, "waiting for the verification", `location.pathname === "/account" && !document.getElementById("verify-pending").hidden`, 60*time.Second)
	if got := b.textOf(laptop, "pending-email"); got != email {
		t.Fatalf("pending email %q", got)
	}

	// The mailed link lands on the web client's verify page.
	m := waitMail(t, s, email, "X-Verify-Code", 1)
	link := m["X-Link"]
	if !strings.HasPrefix(link, s.URL+"/verify?") || !strings.Contains(link, "uid="+m["X-Uid"]) || !strings.Contains(link, "code="+m["X-Verify-Code"]) {
		t.Fatalf("verification mail: %v", m)
	}
	b.do(laptop, "verify page", chromedp.Navigate(link))
	b.waitText(laptop, "verified", "#verify-status", regexp.MustCompile(`is verified`))
	if loc, _ := chromedp.Run(laptop, chromedp.Location()); strings.Contains(loc, "code=") {
		t.Fatalf("the verification code stays in the address bar: %s", loc)
	}
	b.do(laptop, "continue", click("continue-link"))
	text := b.waitAccount(laptop, "account page after verification")
	ls := b.session(laptop)
	if ls == nil || ls.KA == "" || ls.KB == "" {
		t.Fatalf("no keys in sessionStorage: %+v", ls)
	}
	kA, kB := unhex(t, ls.KA), unhex(t, ls.KB)
	for _, want := range []string{email, fingerprint(kA), fingerprint(kB), "this device", thisBrowser} {
		if !strings.Contains(text, want) {
			t.Fatalf("account page lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, ls.KA) || strings.Contains(text, ls.KB) {
		t.Fatal("the account page shows a key, not its fingerprint")
	}
	b.checkStorage(laptop)

	// A second device signs in and renames itself.
	b.do(phone, "phone: sign-in page", chromedp.Navigate(s.URL+"/"))
	took, text := b.signIn(phone, email, pw1)
	t.Logf("sign-in, click to account page: %v", took)
	ps := b.session(phone)
	if ps.KA != ls.KA || ps.KB != ls.KB {
		t.Fatal("the second device got other keys")
	}
	if d := b.devices(phone); strings.Count(text, "this device") != 1 || len(d) != 2 || d[0].Name != thisBrowser || d[1].Name != thisBrowser || !d[1].Current {
		t.Fatalf("phone's account page (two devices named %q): %+v\n%s", thisBrowser, d, text)
	}
	b.rename(phone, "Phone")

	// The laptop sees two devices, itself marked, and its activity.
	b.do(laptop, "reload", chromedp.Reload())
	b.waitAccount(laptop, "laptop: account page")
	devices := b.devices(laptop)
	if len(devices) != 2 || !devices[0].Current || devices[0].Name != thisBrowser || devices[1].Current || devices[1].Name != "Phone" || devices[1].ID != ps.DeviceID {
		t.Fatalf("laptop's device list: %+v (phone device %s)", devices, ps.DeviceID)
	}
	events := b.events(laptop)
	for _, want := range []string{"Account created", "Email address confirmed", "Signed in", "Device added", "Device renamed"} {
		if !slices.ContainsFunc(events, func(e shownEvent) bool { return e.Action == want }) {
			t.Fatalf("activity lacks %q: %+v", want, events)
		}
	}
	for _, e := range events {
		if !strings.Contains(e.Meta, "127.0.0.1") || e.Time == "" {
			t.Fatalf("an event without time or IP: %+v", e)
		}
	}
	b.screenshot(laptop, "account.png", email, fingerprint(kA), fingerprint(kB), "Phone", "this device", "Remove", "Recent activity")

	// Removing asks first; Cancel keeps the device.
	revoke := chromedp.Click(chromedp.CSS(`#device-list li[data-id="` + ps.DeviceID + `"] button.revoke`))
	b.do(laptop, "remove the phone", revoke)
	b.waitText(laptop, "confirmation", `#device-list li[data-id="`+ps.DeviceID+`"] .confirm`, regexp.MustCompile(`Remove “Phone”\? It is signed out at once`))
	if !evalJS[bool](b, laptop, "focus", `document.activeElement.classList.contains("cancel-revoke")`) {
		t.Fatal("the confirmation does not take the focus (on Cancel)")
	}
	b.do(laptop, "cancel", chromedp.Click(chromedp.CSS(`button.cancel-revoke`)))
	if n := len(b.devices(laptop)); n != 2 || evalJS[bool](b, laptop, "confirmation", `!!document.querySelector(".confirm")`) {
		t.Fatalf("after Cancel: %d devices", n)
	}
	if _, err := fullClient(t, s).Devices(ctx, unhex(t, ps.SessionToken)); err != nil {
		t.Fatalf("the phone's session after Cancel: %v", err)
	}
	done := b.allow("/v1/recovery_email/status") // the phone's watch gets 401/110
	b.do(laptop, "remove the phone", revoke, chromedp.Click(chromedp.CSS(`button.confirm-revoke`)))
	revoked := time.Now()
	b.waitJS(laptop, "device list after removal", `document.querySelectorAll("#device-list li").length === 1`, 30*time.Second)
	b.waitText(laptop, "removal status", "#devices-status", regexp.MustCompile(`“Phone” was removed`))

	// The phone's tab notices by itself, without a reload or a click.
	b.waitJS(phone, "phone signed out", `location.pathname === "/" && /This device was signed out/.test(document.getElementById("notice").textContent)`, 15*time.Second)
	t.Logf("the removed tab showed the sign-in page %v after the removal", time.Since(revoked).Round(100*time.Millisecond))
	if d := time.Since(revoked); d > 10*time.Second {
		t.Fatalf("the removed tab took %v to notice", d)
	}
	done()
	if b.session(phone) != nil {
		t.Fatal("the removed phone keeps its session in sessionStorage")
	}
	if ev := b.events(laptop); !slices.ContainsFunc(ev, func(e shownEvent) bool { return e.Action == "Device removed" }) {
		t.Fatalf("activity after the removal: %+v", ev)
	}

	// Change the password. A wrong current password is an error of that field.
	done = b.allow("/v1/auth/finish")
	b.do(laptop, "change password, wrong current one", fill("old-password", "not the password"), fill("new-password", pw2), fill("new-confirm", pw2), click("change-submit"))
	b.waitFieldError(laptop, "wrong current password", "old-password", regexp.MustCompile(`That password is not right`))
	done()
	b.do(laptop, "change password", fill("old-password", pw1))
	start := time.Now()
	b.do(laptop, "change password", click("change-submit"))
	b.waitJS(laptop, "password changed", `location.search === "?notice=changed"`, 60*time.Second)
	text = b.waitAccount(laptop, "account page after the change")
	t.Logf("password change, click to account page: %v", time.Since(start))
	if ls2 := b.session(laptop); ls2.KA != ls.KA || ls2.KB != ls.KB {
		t.Fatal("the password change changed kA or kB")
	}
	if !strings.Contains(text, fingerprint(kB)) || !strings.Contains(text, "password is changed") {
		t.Fatalf("account page after the change:\n%s", text)
	}
	// The Go client agrees: new password, same kB.
	gc := fullClient(t, s)
	gs, err := gc.Login(ctx, email, pw2)
	if err != nil {
		t.Fatal(err)
	}
	gk, err := gc.Keys(ctx, gs.KeyFetchToken, gs.UnwrapBKey)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(gk.KA, kA) || !bytes.Equal(gk.KB, kB) {
		t.Fatal("the Go client sees other keys after the browser's password change")
	}

	// Sign out: the session token is deleted on the server and in the tab.
	token := unhex(t, b.session(laptop).SessionToken)
	b.signOut(laptop)
	if _, _, err := gc.RecoveryEmailStatus(ctx, token); !client.IsErrno(err, 110) {
		t.Fatalf("the signed-out session token still works: %v", err)
	}

	// The old password no longer works: the password field says so, after
	// the progress of the stretching, and the "signed out" notice goes.
	done = b.allow("/v1/auth/finish")
	b.do(laptop, "old password", fill("email", email), fill("password", pw1), chromedp.Evaluate[chromedp.Void](`
	  window.progressSeen = [];
	  new MutationObserver(() => {
	    const bar = document.querySelector("#signin progress"), status = document.querySelector("#signin .status:not(.result)");
	    if (!bar.hidden) window.progressSeen.push(status.textContent);
	  }).observe(document.getElementById("signin"), {attributes: true, childList: true, subtree: true, characterData: true});`),
		click("signin-submit"))
	b.waitFieldError(laptop, "wrong password", "password", regexp.MustCompile(`That password is not right`))
	done()
	if evalJS[bool](b, laptop, "notice", `!document.getElementById("notice").hidden`) {
		t.Fatal("the sign-out notice stays after the next sign-in attempt")
	}
	if seen := evalJS[[]string](b, laptop, "progress", `window.progressSeen`); !slices.ContainsFunc(seen, func(s string) bool {
		return strings.HasPrefix(s, "Checking your password…") && s != "Checking your password… 100%"
	}) {
		t.Fatalf("no progress shown while stretching: %q", seen)
	}

	// Forgot password: the mailed code, a new password; kA stays, kB is new.
	b.do(laptop, "forgot page", chromedp.Navigate(s.URL+"/forgot"), fill("email", email), click("send-code"))
	b.waitJS(laptop, "code form", `!document.getElementById("forgot-reset").hidden`, 30*time.Second)
	code := waitMail(t, s, email, "X-Recovery-Code", 1)["X-Recovery-Code"]
	done = b.allow("/v1/password/forgot/verify_code")
	b.do(laptop, "wrong code", fill("code", wrongCode(code)), fill("new-password", pw3), fill("new-confirm", pw3), click("reset-submit"))
	b.waitFieldError(laptop, "wrong code", "code", regexp.MustCompile(`^Wrong code\. 2 tries left\.$`))
	done()
	b.do(laptop, "forgot: reset", fill("code", code), click("reset-submit"))
	b.waitJS(laptop, "reset", `location.search === "?notice=reset"`, 60*time.Second)
	text = b.waitAccount(laptop, "account page after the reset")
	ls3 := b.session(laptop)
	if ls3.KA != ls.KA || ls3.KB == ls.KB {
		t.Fatalf("after a forgotten password kA must stay and kB change: kA same %v, kB same %v", ls3.KA == ls.KA, ls3.KB == ls.KB)
	}
	if !strings.Contains(text, fingerprint(unhex(t, ls3.KB))) || !strings.Contains(text, "new password is set") {
		t.Fatalf("account page after the reset:\n%s", text)
	}

	// Sign in again with the newest password.
	b.signOut(laptop)
	took2, _ := b.signIn(laptop, email, pw3)
	t.Logf("sign-in, click to account page: %v", took2)
	if b.session(laptop).KB != ls3.KB {
		t.Fatal("sign-in after the reset: other kB")
	}

	// Delete the account: the box must be ticked.
	b.do(laptop, "delete account", fill("destroy-password", pw3), click("destroy-submit"))
	b.waitFieldError(laptop, "unticked box", "destroy-confirm", regexp.MustCompile(`Tick the box`))
	b.do(laptop, "delete account", click("destroy-confirm"), click("destroy-submit"))
	b.waitJS(laptop, "deleted", `location.pathname === "/" && /deleted/.test(document.getElementById("notice").textContent)`, 60*time.Second)
	if b.session(laptop) != nil {
		t.Fatal("sessionStorage keeps a session of a deleted account")
	}
	if _, err := gc.SignIn(ctx, email, pw3); !client.IsErrno(err, 102) {
		t.Fatalf("sign-in after deletion: %v, want errno 102", err)
	}
}

// wrongCode is an 8-digit forgot-password code other than code.
func wrongCode(code string) string {
	if code == "10000000" {
		return "10000001"
	}
	return "10000000"
}

// shownDevice is one entry of the account page's device list.
type shownDevice struct {
	ID, Name string
	Current  bool
}

func (b *browser) devices(ctx context.Context) []shownDevice {
	b.t.Helper()
	return evalJS[[]shownDevice](b, ctx, "device list", `[...document.querySelectorAll("#device-list li")].map(li => ({id: li.dataset.id, name: li.querySelector(".device-name").textContent, current: li.classList.contains("current")}))`)
}

// shownEvent is one entry of the account page's activity list.
type shownEvent struct {
	Action, Meta, Time string
}

func (b *browser) events(ctx context.Context) []shownEvent {
	b.t.Helper()
	return evalJS[[]shownEvent](b, ctx, "activity", `[...document.querySelectorAll("#event-list li")].map(li => ({action: li.querySelector(".event-action").textContent, meta: li.querySelector(".meta").textContent, time: li.querySelector("time")?.getAttribute("datetime") || ""}))`)
}

// rename renames this tab's device on the account page.
func (b *browser) rename(ctx context.Context, name string) {
	b.t.Helper()
	b.do(ctx, "rename", chromedp.Click(chromedp.CSS(`#device-list li.current button.rename-start`)))
	b.waitJS(ctx, "rename form", `document.activeElement && document.activeElement.id === "rename-name"`, 10*time.Second)
	b.do(ctx, "rename", fill("rename-name", name), click("rename-save"))
	b.waitText(ctx, "renamed", "#devices-status", regexp.MustCompile(`now called “`+regexp.QuoteMeta(name)+`”`))
	if got := evalJS[string](b, ctx, "name", `document.querySelector("#device-list li.current .device-name").textContent`); got != name {
		b.t.Fatalf("this device is called %q after renaming it to %q", got, name)
	}
}

// Every page in every state a user meets, at desktop and 390 px widths:
// no horizontal overflow, zero axe-core violations (WCAG A and AA) and the
// page checks of checkA11y, plain words, and a screenshot of each. The
// account has a long email address and a long device name, as the layout
// must take them.
func TestBrowserPages(t *testing.T) {
	s := startWebServer(t)
	b := newBrowser(t, s)
	ctx := ctxT(t)
	tab := b.tab()
	const email, pw = "firstname.middlename.lastname.for.layout@subdomain.example.org", "a password for the pages"
	const longName = "Work-laptop-on-the-third-floor-by-the-window-of-the-meeting-room"

	// Sign-in, empty and with its errors.
	b.do(tab, "sign-in page", chromedp.Navigate(s.URL+"/"))
	b.waitPath(tab, "sign-in page", "/")
	b.checkWords(tab, "sign-in page")
	b.checkPage(tab, "signin", "Sign in", "Forgot your password?")
	b.do(tab, "empty sign-in", click("signin-submit"))
	b.waitFieldError(tab, "empty sign-in", "email", regexp.MustCompile(`Enter your email address`))
	if f := b.field(tab, "password"); !f.Invalid || !strings.Contains(f.Message, "Enter your password") || f.Focused {
		t.Fatalf("the second empty field: %+v (the focus belongs to the first)", f)
	}
	b.do(tab, "typing clears the error", fill("email", "x@example.org"))
	if f := b.field(tab, "email"); f.Invalid || f.Message != "" {
		t.Fatalf("the email field after typing: %+v", f)
	}
	b.do(tab, "clear", fill("email", ""), click("signin-submit"))
	b.waitFieldError(tab, "empty sign-in", "email", regexp.MustCompile(`Enter your email address`))
	b.checkPage(tab, "signin-errors", "Enter your email address", "Enter your password")

	// Sign-up with its errors, then the account page waiting for the mail.
	b.do(tab, "sign-up page", chromedp.Navigate(s.URL+"/signup"))
	b.waitPath(tab, "sign-up page", "/signup")
	b.checkWords(tab, "sign-up page")
	b.checkPage(tab, "signup", "Create an account")
	b.do(tab, "sign-up, passwords differ", fill("email", email), fill("password", pw), fill("confirm", pw+"!"), click("signup-submit"))
	b.waitFieldError(tab, "passwords differ", "confirm", regexp.MustCompile(`The passwords do not match`))
	b.checkPage(tab, "signup-errors", "The passwords do not match")
	b.do(tab, "sign-up", fill("confirm", pw), click("signup-submit"))
	b.waitJS(tab, "waiting for the verification", `location.pathname === "/account" && !document.getElementById("verify-pending").hidden`, 60*time.Second)
	b.checkWords(tab, "account page, waiting")
	b.checkPage(tab, "account-pending", "Check your inbox", email)

	// The verify page: failures in words, then the mailed link.
	m := waitMail(t, s, email, "X-Verify-Code", 1)
	done := b.allow("/v1/recovery_email/verify_code")
	for _, c := range []struct{ name, query, want string }{
		{"verify-wrong-code", "uid=" + m["X-Uid"] + "&code=" + strings.Repeat("0", 32), "This link is not valid. Use the link in the newest email"},
		{"verify-incomplete", "uid=" + m["X-Uid"], "This link is incomplete"},
		{"verify-unknown-account", "uid=" + strings.Repeat("ab", 16) + "&code=" + m["X-Verify-Code"], "There is no account for this link"},
	} {
		failTab := b.tab()
		b.do(failTab, c.name, chromedp.Navigate(s.URL+"/verify?"+c.query))
		b.waitText(failTab, c.name, "#verify-error", regexp.MustCompile(regexp.QuoteMeta(c.want)))
		b.checkWords(failTab, c.name)
		if got := b.textOf(failTab, "verify-title"); got != "Your email address could not be confirmed" {
			t.Fatalf("%s: title %q", c.name, got)
		}
		if c.name == "verify-wrong-code" {
			b.checkPage(failTab, "verify-failure", c.want, "Sign in")
		}
	}
	done()
	b.do(tab, "verify page", chromedp.Navigate(m["X-Link"]))
	b.waitText(tab, "verified", "#verify-status", regexp.MustCompile(`is verified`))
	b.checkWords(tab, "verify page")
	b.checkPage(tab, "verify", "Email address confirmed", "Continue to your account")
	b.do(tab, "continue", click("continue-link"))
	b.waitAccount(tab, "account page")

	// A second device with a long name, and the account page with its lists.
	gc := fullClient(t, s)
	other, err := gc.Login(ctx, email, pw)
	if err != nil {
		t.Fatal(err)
	}
	name, typ := longName, "desktop"
	if _, err := gc.RegisterDevice(ctx, other.SessionToken, client.DeviceFields{Name: &name, Type: &typ}); err != nil {
		t.Fatal(err)
	}
	b.do(tab, "reload", chromedp.Reload())
	text := b.waitAccount(tab, "account page")
	if !strings.Contains(text, longName) {
		t.Fatalf("account page lacks the other device:\n%s", text)
	}
	b.checkWords(tab, "account page")
	b.checkPage(tab, "account", email, longName, "Recent activity", "Everyday key", "Password key")

	// The technical details are one click away, and only there.
	b.do(tab, "details", chromedp.Click(chromedp.CSS(`#key-details summary`)))
	details := b.visibleText(tab)
	if !jargonKeys.MatchString(details) || !strings.Contains(details, "first 8 bytes of the SHA-256") {
		t.Fatalf("the open details lack the technical words:\n%s", details)
	}
	b.checkPage(tab, "account-details", "class-A key (kA)")
	b.do(tab, "details", chromedp.Click(chromedp.CSS(`#key-details summary`)))

	// Rename form and removal confirmation, open.
	b.do(tab, "rename", chromedp.Click(chromedp.CSS(`#device-list li.current button.rename-start`)))
	b.do(tab, "rename", fill("rename-name", ""), click("rename-save"))
	b.waitFieldError(tab, "empty name", "rename-name", regexp.MustCompile(`Enter a name`))
	b.checkPage(tab, "account-rename", "Name of this device", "Enter a name")
	b.do(tab, "rename", fill("rename-name", longName+"-2"), click("rename-save"))
	b.waitText(tab, "renamed", "#devices-status", regexp.MustCompile(`now called`))
	b.do(tab, "remove", chromedp.Click(chromedp.CSS(`#device-list li:not(.current) button.revoke`)))
	b.waitJS(tab, "confirmation", `!!document.querySelector("#device-list .confirm")`, 10*time.Second)
	b.checkPage(tab, "account-remove", "Remove “"+longName+"”?", "Remove device", "Cancel")
	b.do(tab, "cancel", chromedp.Click(chromedp.CSS(`button.cancel-revoke`)))

	// Form errors on the account page.
	b.do(tab, "change password, errors", fill("new-password", "short"), click("change-submit"))
	b.waitFieldError(tab, "change password", "old-password", regexp.MustCompile(`Enter your current password`))
	if f := b.field(tab, "new-password"); !f.Invalid || !strings.Contains(f.Message, "Use at least 8 characters") {
		t.Fatalf("new-password: %+v", f)
	}
	b.checkPage(tab, "account-errors", "Enter your current password", "Use at least 8 characters")

	// Sign out: the notice, then forgot password.
	b.do(tab, "reload", chromedp.Reload())
	b.waitAccount(tab, "account page")
	b.signOut(tab)
	b.checkPage(tab, "signin-notice", "You are signed out.")
	b.do(tab, "forgot page", chromedp.Navigate(s.URL+"/forgot"))
	b.waitPath(tab, "forgot page", "/forgot")
	b.checkWords(tab, "forgot page")
	b.checkPage(tab, "forgot", "Forgot your password?", "Send code")
	b.do(tab, "forgot: send", fill("email", email), click("send-code"))
	b.waitJS(tab, "code form", `!document.getElementById("forgot-reset").hidden`, 30*time.Second)
	b.checkWords(tab, "forgot page, code")
	if u := evalJS[string](b, tab, "username", `document.getElementById("reset-username").value`); u != email {
		t.Fatalf("the reset form's hidden username is %q", u)
	}
	b.checkPage(tab, "forgot-code", "We sent a code to "+email, "You have 3 tries.")

	// An unknown page, as a browser asks for it.
	done = b.allow("/no/such/page")
	b.do(tab, "404", chromedp.Navigate(s.URL+"/no/such/page"))
	b.waitText(tab, "404", "h1", regexp.MustCompile(`^Page not found$`))
	done()
	b.checkWords(tab, "404 page")
	b.checkPage(tab, "404", "Page not found", "Go to sign in")
	code, _, _ := getJSON(t, s.URL+"/no/such/page") // an API client still gets 404/999
	if code != 404 {
		t.Fatalf("API client: %d", code)
	}
}

// Wording that depends on the server's answers: tries left, a code used up
// by its last wrong try (and a new one instead), a limit as a wait in
// words; and the helpers behind them, on their own.
func TestBrowserWording(t *testing.T) {
	s := startWebServer(t)
	b := newBrowser(t, s)
	ctx := ctxT(t)
	tab := b.tab()
	const email, pw = "wording@example.org", "the first password"
	if _, err := fullClient(t, s).CreateAccount(ctx, email, pw, client.CreateOptions{PreVerified: true}); err != nil {
		t.Fatal(err)
	}
	b.do(tab, "sign-in page", chromedp.Navigate(s.URL+"/"))
	b.waitPath(tab, "sign-in page", "/")

	// The helpers, with answers the server gives rarely.
	got := evalJS[map[string]string](b, tab, "helpers", `(async () => {
	  const ui = await import("/static/ui.js"), session = await import("/static/session.js");
	  const out = {};
	  for (const s of [5, 30, 60, 61, 300, 2999, 3000, 3600, 5400, 7200, 86400]) out["wait " + s] = ui.waitWords(s);
	  out["114"] = ui.message({errno: 114, body: {retryAfter: 3600}});
	  out["114 5 min"] = ui.message({errno: 114, body: {retryAfter: 300}});
	  out["201"] = ui.message({errno: 201, status: 503, body: {retryAfter: 30}});
	  for (const n of [2, 1, 0]) out["105 " + n] = ui.message({errno: 105, body: {tries: n}});
	  out["127"] = ui.message({errno: 127, body: {}});
	  out["125"] = ui.message({errno: 125, body: {}});
	  out["offline"] = ui.message(new TypeError("Failed to fetch"));
	  out["this browser"] = session.deviceName();
	  const uas = {
	    "headless": ["Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0.0.0 Safari/537.36", {brands: [{brand: "Not:A-Brand"}, {brand: "Chromium"}], platform: "Linux"}],
	    "chrome mac": ["Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", {brands: [{brand: "Google Chrome"}, {brand: "Chromium"}], platform: "macOS"}],
	    "edge": ["Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0", null],
	    "firefox": ["Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0", null],
	    "safari ios": ["Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1", null],
	    "safari mac": ["Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15", null],
	    "firefox android": ["Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0", null],
	    "samsung": ["Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36", null],
	    "unknown": ["curl/8.0", null],
	  };
	  for (const [k, [ua, data]] of Object.entries(uas)) out["ua " + k] = session.deviceName(ua, data);
	  return out;
	})()`)
	for k, want := range map[string]string{
		"wait 5": "in a few seconds", "wait 30": "in less than a minute", "wait 60": "in a minute", "wait 61": "in 2 minutes",
		"wait 300": "in 5 minutes", "wait 2999": "in 50 minutes", "wait 3000": "in about an hour", "wait 3600": "in about an hour",
		"wait 5400": "in about 2 hours", "wait 7200": "in about 2 hours", "wait 86400": "in about a day",
		"114":       "Too many attempts. Try again in about an hour.",
		"114 5 min": "Too many attempts. Try again in 5 minutes.",
		"201":       "The server is busy. Try again in less than a minute.",
		"105 2":     "Wrong code. 2 tries left.", "105 1": "Wrong code. 1 try left.", "105 0": "Wrong code, and that was the last try.",
		"127":          "This account has been disabled. If you think this is a mistake, contact the people who run this server.",
		"125":          "Signing in from here is paused for your safety. We can email you a code to continue.",
		"offline":      "The server cannot be reached. Check your connection and try again.",
		"this browser": thisBrowser,
		"ua headless":  "Chromium on Linux", "ua chrome mac": "Chrome on macOS", "ua edge": "Edge on Windows",
		"ua firefox": "Firefox on Windows", "ua safari ios": "Safari on iOS", "ua safari mac": "Safari on macOS",
		"ua firefox android": "Firefox on Android", "ua samsung": "Samsung Internet on Android", "ua unknown": "Web browser",
	} {
		if got[k] != want {
			t.Errorf("%s: %q, want %q", k, got[k], want)
		}
	}

	// Three wrong codes: the tries left, then the code is used up and a new
	// one can be sent; with it the reset works.
	b.do(tab, "forgot page", chromedp.Navigate(s.URL+"/forgot"), fill("email", email), click("send-code"))
	b.waitText(tab, "code sent", "#code-sent", regexp.MustCompile(`^We sent a code to `+regexp.QuoteMeta(email)+`\. Enter the 8-digit code within 15 minutes\. You have 3 tries\.$`))
	code := waitMail(t, s, email, "X-Recovery-Code", 1)["X-Recovery-Code"]
	done := b.allow("/v1/password/forgot/verify_code")
	b.do(tab, "wrong code", fill("code", wrongCode(code)), fill("new-password", "a new password"), fill("new-confirm", "a new password"), click("reset-submit"))
	b.waitFieldError(tab, "first wrong code", "code", regexp.MustCompile(`^Wrong code\. 2 tries left\.$`))
	b.do(tab, "wrong code", click("reset-submit"))
	b.waitFieldError(tab, "second wrong code", "code", regexp.MustCompile(`^Wrong code\. 1 try left\.$`))
	b.do(tab, "wrong code", click("reset-submit"))
	used := b.waitText(tab, "code used up", "#forgot-reset .error", regexp.MustCompile(`this code is used up\. Send a new code to try again\.`))
	done()
	if strings.Contains(b.visibleText(tab), "session") {
		t.Fatalf("the used-up code speaks of a session: %q", used)
	}
	if !evalJS[bool](b, tab, "new code button", `!document.getElementById("code-used").hidden && document.activeElement.id === "new-code" && document.getElementById("resend-code").hidden`) {
		t.Fatal("no focused “Send a new code” button once the code is used up")
	}
	b.checkWords(tab, "code used up")
	b.checkPage(tab, "forgot-used-up", "this code is used up", "Send a new code")
	b.do(tab, "new code", click("new-code"))
	b.waitText(tab, "new code sent", "#code-sent", regexp.MustCompile(`^We sent a new code to `))
	if evalJS[bool](b, tab, "error gone", `!document.querySelector("#forgot-reset .error").hidden`) {
		t.Fatal("the used-up message stays after the new code is sent")
	}
	code2 := waitMail(t, s, email, "X-Recovery-Code", 2)["X-Recovery-Code"]
	b.do(tab, "reset", fill("code", code2), click("reset-submit"))
	b.waitJS(tab, "reset", `location.search === "?notice=reset"`, 60*time.Second)
	b.waitAccount(tab, "account page after the reset")
	b.signOut(tab)

	// The mail limit (3 codes an hour for an account from one ip, spec 14.2
	// R8, on an account that has not signed in from here: a known ip is
	// exempt): the fourth is refused with a wait in words, never in seconds.
	const limited = "limited@example.org"
	if _, err := fullClient(t, s).CreateAccount(ctx, limited, pw, client.CreateOptions{PreVerified: true}); err != nil {
		t.Fatal(err)
	}
	done = b.allow("/v1/password/forgot/send_code")
	for i := 1; i <= 4; i++ {
		b.do(tab, "forgot page", chromedp.Navigate(s.URL+"/forgot"), fill("email", limited), click("send-code"))
		if i < 4 {
			b.waitJS(tab, "code form", `!document.getElementById("forgot-reset").hidden`, 30*time.Second)
		}
	}
	b.waitText(tab, "limit", "#forgot-email .error", regexp.MustCompile(`^Too many codes were requested for this account\. Try again in about an hour\.$`))
	done()
	b.checkWords(tab, "limit")
	b.checkPage(tab, "forgot-limit", "Try again in about an hour")
}

// A disabled account signs its tabs out with words that say so; a sign-in
// then says it too.
func TestBrowserDisabled(t *testing.T) {
	s, admin, _ := startAdminServer(t, sqliteDB(t))
	b := newBrowser(t, s)
	ctx := ctxT(t)
	const email, pw = "disabled.web@example.org", "a password"
	uid, err := fullClient(t, s).CreateAccount(ctx, email, pw, client.CreateOptions{PreVerified: true})
	if err != nil {
		t.Fatal(err)
	}
	tab := b.tab()
	b.do(tab, "sign-in page", chromedp.Navigate(s.URL+"/"))
	b.signIn(tab, email, pw)

	done := b.allow("/v1/") // 400/127 for every request of the account
	if err := admin.Disable(ctx, hex.EncodeToString(uid)); err != nil {
		t.Fatal(err)
	}
	disabled := time.Now()
	b.waitJS(tab, "signed out", `location.pathname === "/" && /has been disabled/.test(document.getElementById("notice").textContent)`, 15*time.Second)
	t.Logf("the tab noticed the disabled account after %v", time.Since(disabled).Round(100*time.Millisecond))
	if n := b.textOf(tab, "notice"); !strings.Contains(n, "This device was signed out.") {
		t.Fatalf("notice %q", n)
	}
	if b.session(tab) != nil {
		t.Fatal("the tab keeps the session of a disabled account")
	}
	b.checkPage(tab, "signin-disabled", "has been disabled")
	b.do(tab, "sign in", fill("email", email), fill("password", pw), click("signin-submit"))
	b.waitText(tab, "disabled", "#signin .error", regexp.MustCompile(`^This account has been disabled\.`))
	done()
}

// A sign-in refused with 400/125 offers an unblock code by email and signs
// in with it (spec 14.3). The server does not block yet: the page's fetch
// is wrapped to answer 125 as a blocking server would; the rest goes to the
// real server, which is asked for the code as far as it offers it.
func TestBrowserUnblock(t *testing.T) {
	s := startWebServer(t)
	b := newBrowser(t, s)
	ctx := ctxT(t)
	const email, pw = "blocked.web@example.org", "a password"
	if _, err := fullClient(t, s).CreateAccount(ctx, email, pw, client.CreateOptions{PreVerified: true}); err != nil {
		t.Fatal(err)
	}
	tab := b.tab()
	// blockingServer: auth/start answers 125 unless it carries an unblock
	// code (and, with window.acceptCode, the code is taken off before the
	// request goes on); window.fakeMail answers send_unblock_code itself.
	const blockingServer = `(() => {
	  const real = window.fetch;
	  window.sent = [];
	  const answer = (status, body) => new Response(JSON.stringify(body), {status, headers: {"Content-Type": "application/json"}});
	  window.fetch = async (url, opts = {}) => {
	    const body = opts.body ? JSON.parse(opts.body) : null;
	    if (url === "/v1/auth/start") {
	      window.sent.push(body.unblockCode || "");
	      sessionStorage.setItem("test.sent", JSON.stringify(window.sent));
	      if (body.unblockCode && window.passCode) return real(url, opts);
	      if (!body.unblockCode || !window.acceptCode) return answer(400, {code: 400, errno: 125, error: "Bad Request", message: "Request blocked", verificationMethod: "email"});
	      delete body.unblockCode;
	      opts = {...opts, body: JSON.stringify(body)};
	    }
	    if (url === "/v1/account/login/send_unblock_code" && window.fakeMail) return answer(200, {});
	    return real(url, opts);
	  };
	})()`
	open := func() {
		b.do(tab, "sign-in page", chromedp.Navigate(s.URL+"/"))
		b.waitPath(tab, "sign-in page", "/")
		b.do(tab, "blocking server", chromedp.Evaluate[chromedp.Void](blockingServer))
		b.do(tab, "sign in", fill("email", email), fill("password", pw), click("signin-submit"))
		b.waitText(tab, "blocked", "#unblock-text", regexp.MustCompile(`paused for your safety`))
		if !evalJS[bool](b, tab, "focus", `document.activeElement.id === "unblock-send"`) {
			t.Fatal("the offer of a code does not take the focus")
		}
	}

	// The real server, asked for a code.
	open()
	b.checkWords(tab, "blocked")
	b.checkPage(tab, "signin-blocked", "paused for your safety", "Email me a code")
	done := b.allow("/v1/account/login/send_unblock_code")
	b.do(tab, "ask for a code", click("unblock-send"))
	b.waitJS(tab, "answer", `!document.querySelector("#signin .error").hidden || !document.getElementById("unblock-entry").hidden`, 30*time.Second)
	done()
	if evalJS[bool](b, tab, "entry", `document.getElementById("unblock-entry").hidden`) {
		// Today's server has no send_unblock_code (404): the page says so.
		b.waitText(tab, "no unblock codes", "#signin .error", regexp.MustCompile(`This server cannot send unblock codes`))
		t.Log("the server has no POST /v1/account/login/send_unblock_code yet: the page says so")
	} else {
		// A server with unblock codes: the mailed code goes with auth/start
		// to the real server, which takes it.
		code := waitMail(t, s, email, "X-Unblock-Code", 1)["X-Unblock-Code"]
		t.Log("the server mailed an unblock code: signing in with it")
		b.do(tab, "mailed code", chromedp.Evaluate[chromedp.Void](`window.passCode = true`), fill("unblock-code", code), click("signin-submit"))
		b.waitAccount(tab, "signed in with the mailed code")
		b.signOut(tab)
	}

	// A server that mails the code: the page asks for it, refuses a
	// malformed one itself, says so when the server refuses it, and signs
	// in with a good one.
	open()
	b.do(tab, "fake mail", chromedp.Evaluate[chromedp.Void](`window.fakeMail = true`), click("unblock-send"))
	b.waitText(tab, "code sent", "#unblock-status", regexp.MustCompile(`^We sent a code to `+regexp.QuoteMeta(email)+`\. It is valid for an hour\.$`))
	if !evalJS[bool](b, tab, "focus", `document.activeElement.id === "unblock-code"`) {
		t.Fatal("the code field does not take the focus")
	}
	b.checkPage(tab, "signin-unblock-code", "Code from the email")
	b.do(tab, "no code", click("signin-submit"))
	b.waitFieldError(tab, "no code", "unblock-code", regexp.MustCompile(`Enter the 8-digit code from the email`))
	b.do(tab, "wrong code", fill("unblock-code", "11111111"), click("signin-submit"))
	b.waitFieldError(tab, "wrong code", "unblock-code", regexp.MustCompile(`That code is not right, or it has expired`))
	b.do(tab, "good code", chromedp.Evaluate[chromedp.Void](`window.acceptCode = true`), fill("unblock-code", "12345678"), click("signin-submit"))
	b.waitAccount(tab, "signed in with the unblock code")
	if sent := evalJS[[]string](b, tab, "auth/start bodies", `JSON.parse(sessionStorage.getItem("test.sent") || "[]")`); !slices.Equal(sent, []string{"", "11111111", "12345678"}) {
		t.Fatalf("unblock codes sent with auth/start: %q", sent)
	}
}

// forwardedFor sends every request as if through a proxy for ip.
type forwardedFor string

func (ip forwardedFor) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Forwarded-For", string(ip))
	return http.DefaultTransport.RoundTrip(r)
}

// A real block (spec 14.2 R2): 20 wrong passwords for the account from
// other ips (through a trusted proxy) make the server refuse a sign-in
// from an ip the account does not know with 400/125; the page offers the
// mailed unblock code, a wrong code is refused, the mailed one signs in.
// Skipped while the server does not block.
func TestBrowserUnblockReal(t *testing.T) {
	s := startWebServer(t, "--trusted-proxies", "127.0.0.1")
	ctx := ctxT(t)
	const email, pw = "really.blocked@example.org", "the right password"
	if _, err := fullClient(t, s).CreateAccount(ctx, email, pw, client.CreateOptions{PreVerified: true}); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for ip := range 5 { // 4 each: under R1's 5 per (account, ip)
		// cheap stretching: a wrong password all the same, only faster
		c, err := client.New(s.URL, client.WithStretching(cheap), client.WithHTTPClient(&http.Client{Transport: forwardedFor(fmt.Sprintf("192.0.2.%d", 10+ip))}))
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			for n := 0; n < 4; {
				_, err := c.SignIn(ctx, email, "a wrong password")
				switch {
				case client.IsErrno(err, 201): // shed under load: again
					time.Sleep(100 * time.Millisecond)
				case client.IsErrno(err, 103), client.IsErrno(err, 125):
					n++
				default:
					errs <- fmt.Errorf("wrong password from ip %d: %v", ip, err)
					return
				}
			}
		})
	}
	wg.Wait()
	t.Logf("20 wrong passwords: %v", time.Since(began).Round(time.Millisecond))
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	probe, err := client.New(s.URL, client.WithHTTPClient(&http.Client{Transport: forwardedFor("198.51.100.7")}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := probe.AuthStart(ctx, email); !client.IsErrno(err, 125) {
		t.Skipf("after 20 wrong passwords auth/start from a new ip answers %v, not 400/125: the server does not block yet", err)
	}

	b := newBrowser(t, s)
	tab := b.tab()
	done := b.allow("/v1/auth/start")
	defer done()
	b.do(tab, "sign-in page", chromedp.Navigate(s.URL+"/"))
	b.waitPath(tab, "sign-in page", "/")
	b.do(tab, "sign in", fill("email", email), fill("password", pw), click("signin-submit"))
	b.waitText(tab, "blocked", "#unblock-text", regexp.MustCompile(`paused for your safety`))
	b.do(tab, "ask for a code", click("unblock-send"))
	b.waitText(tab, "code sent", "#unblock-status", regexp.MustCompile(`^We sent a code to `))
	code := waitMail(t, s, email, "X-Unblock-Code", 1)["X-Unblock-Code"]
	b.do(tab, "wrong code", fill("unblock-code", wrongCode(code)), click("signin-submit"))
	b.waitFieldError(tab, "wrong code", "unblock-code", regexp.MustCompile(`That code is not right, or it has expired`))
	b.do(tab, "mailed code", fill("unblock-code", code), click("signin-submit"))
	b.waitAccount(tab, "signed in with the unblock code")
}

// checkStorage: keys and tokens are in sessionStorage only, never in
// cookies or localStorage.
func (b *browser) checkStorage(ctx context.Context) {
	b.t.Helper()
	got := evalJS[map[string]any](b, ctx, "storage", `({cookies: document.cookie, local: localStorage.length})`)
	if got["cookies"] != "" || got["local"] != float64(0) {
		b.t.Fatalf("the page stored something outside sessionStorage: %v", got)
	}
}

// screenshot saves a full-page PNG under e2e/artifacts/<test>/ and checks
// that the page it shows has the expected text and is not blank.
func (b *browser) screenshot(ctx context.Context, name string, want ...string) {
	b.t.Helper()
	text := evalJS[string](b, ctx, "page text", `document.body.innerText`)
	for _, w := range want {
		if !strings.Contains(text, w) {
			b.t.Fatalf("screenshot %s: the page lacks %q:\n%s", name, w, text)
		}
	}
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.fail(ctx, "screenshot", err)
	}
	img, err := png.Decode(bytes.NewReader(buf))
	if err != nil {
		b.t.Fatalf("screenshot %s is not a PNG: %v", name, err)
	}
	if r := img.Bounds(); r.Dx() < 600 || r.Dy() < 600 || colours(img) < 16 {
		b.t.Fatalf("screenshot %s looks empty: %v, %d colours", name, r, colours(img))
	}
	p := artifactPath(b.t, name)
	if err := os.WriteFile(p, buf, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s", p)
}

func colours(img image.Image) int {
	seen := map[[4]uint32]bool{}
	r := img.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y += 3 {
		for x := r.Min.X; x < r.Max.X; x += 3 {
			c0, c1, c2, c3 := img.At(x, y).RGBA()
			seen[[4]uint32{c0, c1, c2, c3}] = true
		}
	}
	return len(seen)
}

// The browser and the Go client use each other's accounts: an account the
// Go client created signs in on the page (also with the email in another
// case), and one the page created (and changed the password of) signs in
// with the Go client, with the same kA and kB on both sides.
func TestBrowserInterop(t *testing.T) {
	s := startServer(t, "--db", sqliteDB(t), "--dev")
	b := newBrowser(t, s)
	ctx := ctxT(t)
	gc := fullClient(t, s)

	// Go creates, the browser signs in.
	const goEmail, goPw = "Gopher@Example.org", "go client password"
	if _, err := gc.CreateAccount(ctx, goEmail, goPw, client.CreateOptions{PreVerified: true}); err != nil {
		t.Fatal(err)
	}
	gs, err := gc.Login(ctx, goEmail, goPw)
	if err != nil {
		t.Fatal(err)
	}
	gk, err := gc.Keys(ctx, gs.KeyFetchToken, gs.UnwrapBKey)
	if err != nil {
		t.Fatal(err)
	}
	tab := b.tab()
	done := b.allow("/v1/auth/start") // 120: the page retries with the stored case
	b.do(tab, "sign-in page", chromedp.Navigate(s.URL+"/"))
	_, text := b.signIn(tab, "gopher@example.org", goPw)
	done()
	ps := b.session(tab)
	if ps.KA != hex.EncodeToString(gk.KA) || ps.KB != hex.EncodeToString(gk.KB) {
		t.Fatal("the browser derived other keys than the Go client")
	}
	if string(unhex(t, ps.Email)) != goEmail || !strings.Contains(text, goEmail) {
		t.Fatalf("the page should use the stored email bytes: %q", unhex(t, ps.Email))
	}
	b.signOut(tab)

	// The browser creates; the mailed link, opened as it is in another tab,
	// verifies; the Go client signs in.
	const webEmail, webPw, webPw2 = "andré@example.org", "pässwörd from the web", "ein neues Paßwort"
	b.do(tab, "sign-up", chromedp.Navigate(s.URL+"/signup"),
		fill("email", webEmail), fill("password", webPw), fill("confirm", webPw), click("signup-submit"))
	b.waitJS(tab, "waiting for the verification", `location.pathname === "/account" && !document.getElementById("verify-pending").hidden`, 60*time.Second)
	mail := waitMail(t, s, webEmail, "X-Verify-Code", 1)
	link := mail["X-Link"]
	mailTab := b.tab()
	b.do(mailTab, "opening the mailed link", chromedp.Navigate(link))
	if !strings.HasPrefix(link, s.URL+"/verify?") && !strings.HasPrefix(link, s.URL+"/v1/verify_email?") {
		t.Fatalf("verification link %q", link)
	}
	// Either way the browser lands on the web client's page: /v1/verify_email
	// sends a browser (Accept: text/html) on to /verify.
	b.waitText(mailTab, "link page", "#verify-status", regexp.MustCompile(`is verified`))
	if got := b.textOf(mailTab, "signin-link"); got != "Continue to sign in" {
		t.Fatalf("the verify page of a tab without the session offers %q", got)
	}
	// /v1/verify_email keeps its spec behaviour (6.6, C9) for the clients that call it.
	for _, c := range []struct {
		code   string
		status int
		body   string
	}{{mail["X-Verify-Code"], 200, "Email address verified"}, {strings.Repeat("0", 32), 400, `"errno":105`}} {
		resp, err := http.Get(s.URL + "/v1/verify_email?uid=" + mail["X-Uid"] + "&code=" + c.code)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status || !strings.Contains(string(body), c.body) {
			t.Fatalf("GET /v1/verify_email: %d %q, want %d %q", resp.StatusCode, body, c.status, c.body)
		}
	}
	b.waitAccount(tab, "the page notices the verification") // it polls recovery_email/status
	ps = b.session(tab)
	check := func(password string) {
		t.Helper()
		gs, err := gc.Login(ctx, webEmail, password)
		if err != nil {
			t.Fatal(err)
		}
		gk, err := gc.Keys(ctx, gs.KeyFetchToken, gs.UnwrapBKey)
		if err != nil {
			t.Fatal(err)
		}
		if ps.KA != hex.EncodeToString(gk.KA) || ps.KB != hex.EncodeToString(gk.KB) {
			t.Fatal("the Go client derived other keys than the browser")
		}
	}
	check(webPw)
	b.do(tab, "change password", fill("old-password", webPw), fill("new-password", webPw2), fill("new-confirm", webPw2), click("change-submit"))
	b.waitJS(tab, "password changed", `location.search === "?notice=changed"`, 60*time.Second)
	b.waitAccount(tab, "account page after the change")
	check(webPw2)
}

// The page's crypto against the spec's vectors, computed inside Chromium:
// KS-1 with the full stretching parameters (also against keywrap), KB-1,
// the SRP sets, token derivation, bundles (and a tampered one) and Hawk.
// It also times the stretching as the pages run it (in a worker).
func TestBrowserCryptoVectors(t *testing.T) {
	raw, err := os.ReadFile("../../shared/spec/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Stretch []struct {
			ID, Email, Password, PasswordSalt, SrpPw, UnwrapBKey string
		}
		Unwrap []struct{ WrapKb, UnwrapBKey, KB string }
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(v.Stretch, func(x struct{ ID, Email, Password, PasswordSalt, SrpPw, UnwrapBKey string }) bool {
		return x.ID == "KS-1"
	})
	if i < 0 {
		t.Fatal("vectors.json has no KS-1")
	}
	ks1 := v.Stretch[i]
	goSrpPw, goUnwrap := keywrap.Stretch(unhex(t, ks1.Email), unhex(t, ks1.Password), unhex(t, ks1.PasswordSalt))

	s := startServer(t, "--db", sqliteDB(t), "--dev")
	b := newBrowser(t, s)
	tab := b.tab()
	b.do(tab, "page", chromedp.Navigate(s.URL+"/"))

	res := evalJS[map[string]any](b, tab, "vectors", `(async (v) => {
	  const B = await import("/static/bytes.js"), api = await import("/static/api.js");
	  const srp = await import("/static/srp.js"), picl = await import("/static/picl.js");
	  const hawk = await import("/static/hawk.js"), st = await import("/static/stretch.js");
	  const h = B.fromHex, x = B.toHex, out = {checked: 0, failed: []};
	  const eq = (name, got, want) => { out.checked++; if (got !== want) out.failed.push(name + ": " + got + " != " + want); };
	  for (const ks of v.stretch) {
	    const w = await api.stretchPassword(h(ks.email), h(ks.password), h(ks.passwordSalt));
	    eq(ks.id + " srpPw (worker)", x(w.srpPw), ks.srpPw);
	    eq(ks.id + " unwrapBKey (worker)", x(w.unwrapBKey), ks.unwrapBKey);
	    if (ks.id === "KS-1") { out.srpPw = x(w.srpPw); out.unwrapBKey = x(w.unwrapBKey); }
	  }
	  const m = await st.stretch(h(v.stretch[0].email), h(v.stretch[0].password), h(v.stretch[0].passwordSalt));
	  eq("KS-1 srpPw (main thread)", x(m.srpPw), v.stretch[0].srpPw);
	  for (const u of v.unwrap) { out.kB = x(B.xor(h(u.wrapKb), h(u.unwrapBKey))); eq(u.id, out.kB, u.kB); }
	  for (const s of v.srp) {
	    eq(s.id + " v", x(await srp.verifier(h(s.I), h(s.P), h(s.salt))), s.v);
	    const r = await srp.clientProof(h(s.I), h(s.P), h(s.salt), h(s.B), h(s.a));
	    eq(s.id + " A", x(r.A), s.A); eq(s.id + " M1", x(r.M1), s.M1); eq(s.id + " K", x(r.K), s.K);
	  }
	  for (const t of v.tokens) {
	    const d = await picl.deriveToken(t.tokenType, h(t.seed));
	    eq(t.id, x(d.tokenId) + x(d.authKey) + x(d.bundleKey), t.tokenId + t.authKey + t.bundleKey);
	  }
	  for (const b of v.bundles) {
	    eq(b.id, x(await picl.bundle(h(b.key), b.context, h(b.plaintext))), b.bundle);
	    eq(b.id + " open", x(await picl.unbundle(h(b.key), b.context, h(b.bundle))), b.plaintext);
	    const bad = h(b.bundle); bad[0] ^= 1;
	    eq(b.id + " tampered", await picl.unbundle(h(b.key), b.context, bad).then(() => "opened", () => "rejected"), "rejected");
	  }
	  for (const c of v.hawk) {
	    const hash = c.payload_utf8 === null ? "" : await hawk.payloadHash(c.content_type, c.payload_utf8);
	    eq(c.id + " hash", hash || null, c.hash);
	    eq(c.id + " header", await hawk.header({id: c.credentials_id, key: h(c.key), method: c.method, resource: c.resource,
	      host: c.host, port: c.port, ts: c.ts, nonce: c.nonce, hash, ext: c.ext}), c.header);
	  }
	  return out;
	})(`+string(raw)+`)`)
	t.Logf("vectors checked in the page: %v", res["checked"])
	if failed, _ := res["failed"].([]any); len(failed) > 0 || res["checked"].(float64) < 30 {
		t.Fatalf("vectors in the page: %d checked, failures: %v", int(res["checked"].(float64)), failed)
	}
	if res["srpPw"] != ks1.SrpPw || res["unwrapBKey"] != ks1.UnwrapBKey {
		t.Fatalf("KS-1 in the page: %v, want the vectors' %s %s", res, ks1.SrpPw, ks1.UnwrapBKey)
	}
	if res["srpPw"] != hex.EncodeToString(goSrpPw) || res["unwrapBKey"] != hex.EncodeToString(goUnwrap) {
		t.Fatal("KS-1: the page and keywrap.Stretch differ")
	}
	// kB of KB-1 (whose unwrapBKey is KS-1's) as the page and keywrap compute it.
	if goKB := keywrap.UnwrapKB(unhex(t, v.Unwrap[0].WrapKb), goUnwrap); res["kB"] != hex.EncodeToString(goKB) || v.Unwrap[0].KB != hex.EncodeToString(goKB) {
		t.Fatalf("KB-1: page %v, keywrap %x, vector %s", res["kB"], goKB, v.Unwrap[0].KB)
	}

	// Stretching time as the pages do it (worker, full parameters): median of 5.
	times := evalJS[[]float64](b, tab, "timing", `(async () => {
	  const B = await import("/static/bytes.js"), api = await import("/static/api.js");
	  const times = [];
	  for (let i = 0; i < 5; i++) {
	    const t0 = performance.now();
	    await api.stretchPassword(B.utf8("timing@example.org"), B.utf8("a password " + i), B.random(32));
	    times.push(performance.now() - t0);
	  }
	  return times;
	})()`)
	sorted := slices.Clone(times)
	slices.Sort(sorted)
	t.Logf("stretching in headless Chromium (worker, N=65536 r=8 p=1): median %.0f ms of %.0f ms", sorted[2], times)
}
