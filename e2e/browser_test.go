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
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
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
// from the click to the loaded account page.
func (b *browser) signIn(ctx context.Context, email, password, device string) (time.Duration, string) {
	b.t.Helper()
	b.waitPath(ctx, "sign-in page", "/")
	b.do(ctx, "filling the sign-in form", fill("email", email), fill("password", password), fill("device", device))
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

// The whole life of an account in the browser: sign up, verify the email
// with the mailed code, sign in on a second "device", see two devices,
// revoke one, change the password (kB kept), sign out, forgot password
// (kB replaced, kA kept), sign in again, delete the account.
func TestBrowserAccountFlow(t *testing.T) {
	s := startServer(t, "--db", sqliteDB(t), "--dev")
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

	// The mailed link's uid and code, opened on the verify page.
	m := waitMail(t, s, email, "X-Verify-Code", 1)
	if !strings.Contains(m["X-Link"], "uid="+m["X-Uid"]) || !strings.Contains(m["X-Link"], "code="+m["X-Verify-Code"]) {
		t.Fatalf("verification mail: %v", m)
	}
	b.do(laptop, "verify page", chromedp.Navigate(s.URL+"/verify?uid="+m["X-Uid"]+"&code="+m["X-Verify-Code"]))
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
	for _, want := range []string{email, fingerprint(kA), fingerprint(kB), "this device"} {
		if !strings.Contains(text, want) {
			t.Fatalf("account page lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, ls.KA) || strings.Contains(text, ls.KB) {
		t.Fatal("the account page shows a key, not its fingerprint")
	}
	b.checkStorage(laptop)

	// A second device signs in.
	b.do(phone, "phone: sign-in page", chromedp.Navigate(s.URL+"/"))
	took, text := b.signIn(phone, email, pw1, "Phone")
	t.Logf("sign-in, click to account page: %v", took)
	ps := b.session(phone)
	if ps.KA != ls.KA || ps.KB != ls.KB {
		t.Fatal("the second device got other keys")
	}
	if !strings.Contains(text, "Phone") || strings.Count(text, "this device") != 1 {
		t.Fatalf("phone's account page:\n%s", text)
	}

	// The laptop sees two devices, itself marked, and revokes the phone.
	b.do(laptop, "reload", chromedp.Reload())
	b.waitAccount(laptop, "laptop: account page")
	devices := evalJS[[]struct {
		ID, Name string
		Current  bool
	}](b, laptop, "device list", `[...document.querySelectorAll("#device-list li")].map(li => ({id: li.dataset.id, name: li.querySelector(".device-name").textContent, current: li.classList.contains("current")}))`)
	if len(devices) != 2 || !devices[0].Current || devices[1].Current || devices[1].Name != "Phone" || devices[1].ID != ps.DeviceID {
		t.Fatalf("laptop's device list: %+v (phone device %s)", devices, ps.DeviceID)
	}
	b.screenshot(laptop, "account.png", email, fingerprint(kA), fingerprint(kB), "Phone", "this device", "Revoke")
	b.do(laptop, "revoke the phone", chromedp.Click(chromedp.CSS(`#device-list li[data-id="`+ps.DeviceID+`"] button.revoke`)))
	b.waitJS(laptop, "device list after revocation", `document.querySelectorAll("#device-list li").length === 1`, 30*time.Second)

	// The phone's session is gone: its next request says so.
	done := b.allow("/v1/account/devices")
	b.do(phone, "phone: reload", chromedp.Reload())
	b.waitJS(phone, "phone signed out", `location.pathname === "/" && /session has ended/.test(document.getElementById("notice").textContent)`, 30*time.Second)
	done()
	if b.session(phone) != nil {
		t.Fatal("the revoked phone keeps its session in sessionStorage")
	}

	// Change the password: kB is re-wrapped, so both keys stay.
	b.do(laptop, "change password", fill("old-password", pw1), fill("new-password", pw2), fill("new-confirm", pw2))
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

	// The old password no longer works; the page says so, after showing the
	// progress of the stretching.
	done = b.allow("/v1/auth/finish")
	b.do(laptop, "old password", fill("email", email), fill("password", pw1), chromedp.Evaluate[chromedp.Void](`
	  window.progressSeen = [];
	  new MutationObserver(() => {
	    const bar = document.querySelector("#signin progress"), status = document.querySelector("#signin .status");
	    if (!bar.hidden) window.progressSeen.push(status.textContent);
	  }).observe(document.getElementById("signin"), {attributes: true, childList: true, subtree: true, characterData: true});`),
		click("signin-submit"))
	b.waitText(laptop, "wrong password", "#signin .error", regexp.MustCompile(`Incorrect password`))
	done()
	if seen := evalJS[[]string](b, laptop, "progress", `window.progressSeen`); !slices.ContainsFunc(seen, func(s string) bool {
		return strings.HasPrefix(s, "Stretching password…") && s != "Stretching password… 100%"
	}) {
		t.Fatalf("no progress shown while stretching: %q", seen)
	}

	// Forgot password: the mailed code, a new password; kA stays, kB is new.
	b.do(laptop, "forgot page", chromedp.Navigate(s.URL+"/forgot"), fill("email", email), click("send-code"))
	b.waitJS(laptop, "code form", `!document.getElementById("forgot-reset").hidden`, 30*time.Second)
	code := waitMail(t, s, email, "X-Recovery-Code", 1)["X-Recovery-Code"]
	done = b.allow("/v1/password/forgot/verify_code")
	b.do(laptop, "wrong code", fill("code", "00000000"), fill("new-password", pw3), fill("new-confirm", pw3), click("reset-submit"))
	b.waitText(laptop, "wrong code", "#forgot-reset .error", regexp.MustCompile(`Wrong code \(2 tries left\)`))
	done()
	b.do(laptop, "forgot: reset", fill("code", code), click("reset-submit"))
	b.waitJS(laptop, "reset", `location.search === "?notice=reset"`, 60*time.Second)
	text = b.waitAccount(laptop, "account page after the reset")
	ls3 := b.session(laptop)
	if ls3.KA != ls.KA || ls3.KB == ls.KB {
		t.Fatalf("after a forgotten password kA must stay and kB change: kA same %v, kB same %v", ls3.KA == ls.KA, ls3.KB == ls.KB)
	}
	if !strings.Contains(text, fingerprint(unhex(t, ls3.KB))) {
		t.Fatalf("account page after the reset:\n%s", text)
	}

	// Sign in again with the newest password.
	b.signOut(laptop)
	took2, _ := b.signIn(laptop, email, pw3, "Laptop")
	t.Logf("sign-in, click to account page: %v", took2)
	if b.session(laptop).KB != ls3.KB {
		t.Fatal("sign-in after the reset: other kB")
	}

	// Delete the account.
	b.do(laptop, "delete account", fill("destroy-password", pw3), click("destroy-confirm"), click("destroy-submit"))
	b.waitJS(laptop, "deleted", `location.pathname === "/" && /deleted/.test(document.getElementById("notice").textContent)`, 60*time.Second)
	if b.session(laptop) != nil {
		t.Fatal("sessionStorage keeps a session of a deleted account")
	}
	if _, err := gc.SignIn(ctx, email, pw3); !client.IsErrno(err, 102) {
		t.Fatalf("sign-in after deletion: %v, want errno 102", err)
	}
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
	_, text := b.signIn(tab, "gopher@example.org", goPw, "Interop")
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
	link := waitMail(t, s, webEmail, "X-Verify-Code", 1)["X-Link"]
	if !strings.HasPrefix(link, s.URL+"/v1/verify_email?") {
		t.Fatalf("verification link %q", link)
	}
	mailTab := b.tab()
	b.do(mailTab, "opening the mailed link", chromedp.Navigate(link))
	if got := evalJS[string](b, mailTab, "link page", `document.body.innerText`); !strings.Contains(got, "Email address verified") {
		t.Fatalf("the mailed link shows %q", got)
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
