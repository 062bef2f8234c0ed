package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/keyserver/keyserver/client"
	"github.com/keyserver/keyserver/keywrap"
)

// The recovery key of docs/recovery-key.md in the web client: made on the
// account page from the kB the page holds and shown once, typed on the
// forgot-password page after the emailed code so that the reset keeps kB,
// and the page's recoverykey.js against the vectors of RK.10 and the Go
// keywrap package.

// keyStringRE is a recovery key string as the account page shows it:
// twelve groups of four and one of five characters.
var keyStringRE = regexp.MustCompile(`^(?:[0-9A-HJKMNP-TV-Z]{4} ){12}[0-9A-HJKMNP-TV-Z]{5}$`)

// signUpInBrowser creates an account on the sign-up page, opens the mailed
// link in the same tab and continues to the account page; it returns the
// page's session (kA and kB known).
func (b *browser) signUpInBrowser(tab context.Context, s *server, email, pw string) *pageSession {
	b.t.Helper()
	b.do(tab, "sign-up page", chromedp.Navigate(s.URL+"/signup"),
		fill("email", email), fill("password", pw), fill("confirm", pw), click("signup-submit"))
	b.waitJS(tab, "waiting for the verification", `location.pathname === "/account" && !document.getElementById("verify-pending").hidden`, 60*time.Second)
	m := waitMail(b.t, s, email, "X-Verify-Code", 1)
	b.do(tab, "verify page", chromedp.Navigate(m["X-Link"]))
	b.waitText(tab, "verified", "#verify-status", regexp.MustCompile(`is verified`))
	b.do(tab, "continue", click("continue-link"))
	b.waitAccount(tab, "account page after verification")
	ps := b.session(tab)
	if ps == nil || ps.KA == "" || ps.KB == "" || ps.UID == "" {
		b.t.Fatalf("no keys in sessionStorage: %+v", ps)
	}
	return ps
}

// recoveryState is the account page's sentence on the recovery key, once
// the page has loaded it.
func (b *browser) recoveryState(tab context.Context) string {
	b.t.Helper()
	b.waitJS(tab, "recovery key state", `!document.getElementById("recovery").hidden && document.getElementById("recovery-state").textContent !== ""`, 30*time.Second)
	return b.textOf(tab, "recovery-state")
}

// createRecoveryKey clicks "Create a (new) recovery key" on the account
// page (confirming the replacement when replace), reads the key the page
// shows once, and checks the focus moved to it.
func (b *browser) createRecoveryKey(tab context.Context, replace bool) string {
	b.t.Helper()
	b.do(tab, "create a recovery key", click("recovery-create"))
	if replace {
		b.waitText(tab, "replace confirmation", "#recovery-confirm-text", regexp.MustCompile(`^Create a new recovery key\? The one you have stops working at once`))
		b.do(tab, "confirm the replacement", click("recovery-confirm-yes"))
	}
	b.waitJS(tab, "the new key", `!document.getElementById("recovery-new").hidden && document.getElementById("recovery-key").textContent.length === 65`, 30*time.Second)
	key := b.textOf(tab, "recovery-key")
	if !keyStringRE.MatchString(key) {
		b.t.Fatalf("the page shows the recovery key %q: not 13 groups of the alphabet", key)
	}
	if _, err := keywrap.ParseRecoveryKey(key); err != nil {
		b.t.Fatalf("keywrap does not read the page's key %q: %v", key, err)
	}
	if !evalJS[bool](b, tab, "focus", `document.activeElement.id === "recovery-new-title"`) {
		b.t.Fatal("the new key does not take the focus (its heading)")
	}
	return key
}

// finishRecoveryKey ticks "I have stored it" and clicks Done.
func (b *browser) finishRecoveryKey(tab context.Context) {
	b.t.Helper()
	b.do(tab, "stored", click("recovery-saved"), click("recovery-done"))
	b.waitText(tab, "key stored", "#recovery-status", regexp.MustCompile(`^Your recovery key is ready\.`))
	if !evalJS[bool](b, tab, "key gone", `document.getElementById("recovery-new").hidden && document.getElementById("recovery-key").textContent === "" && !document.body.innerText.includes("It is shown only this once")`) {
		b.t.Fatal("the key stays on the page after Done")
	}
}

// forgotCode asks the forgot page of tab for a code and returns the n-th
// code mailed to email.
func (b *browser) forgotCode(tab context.Context, s *server, email string, n int) string {
	b.t.Helper()
	b.do(tab, "forgot page", chromedp.Navigate(s.URL+"/forgot"))
	b.waitPath(tab, "forgot page", "/forgot")
	b.do(tab, "send the code", fill("email", email), click("send-code"))
	b.waitJS(tab, "code form", `!document.getElementById("forgot-reset").hidden`, 30*time.Second)
	return waitMail(b.t, s, email, "X-Recovery-Code", n)["X-Recovery-Code"]
}

// watchCalls records the URL of every fetch of the page in window.calls.
const watchCalls = `(() => {
  const real = window.fetch;
  window.calls = [];
  window.fetch = (url, opts) => { window.calls.push(String(url)); return real(url, opts); };
})()`

func (b *browser) calls(tab context.Context) []string {
	b.t.Helper()
	return evalJS[[]string](b, tab, "calls", `window.calls || []`)
}

// allEvents shows the whole activity list ("Show all"), if it is cut.
func (b *browser) allEvents(tab context.Context) {
	b.t.Helper()
	if evalJS[bool](b, tab, "show all", `document.getElementById("events-more").hidden`) {
		return
	}
	b.do(tab, "show all", click("events-more"))
	b.waitJS(tab, "all events", `document.getElementById("events-more").hidden`, 10*time.Second)
}

// mistyped returns key with one character replaced so that the check of
// RK.1 fails (keywrap says so), and the position changed (1-based).
func mistyped(t *testing.T, key string) string {
	t.Helper()
	const alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	for _, i := range []int{7, 20, 31, 2} { // a character of R, not a space
		for _, c := range alphabet {
			if byte(c) == key[i] {
				continue
			}
			cand := key[:i] + string(c) + key[i+1:]
			if _, err := keywrap.ParseRecoveryKey(cand); errors.Is(err, keywrap.ErrRecoveryKeyCheck) {
				return cand
			}
		}
	}
	t.Fatalf("no mistyped variant of %q", key)
	return ""
}

// The whole life of a recovery key: made on device A (kept by a password
// change there), a forgotten password on another browser where a mistyped
// key is refused without asking the server and a replaced (valid, other)
// key is refused by the server with nothing reset, then the right key keeps
// kB; device B signs in with the new password and sees the same kB, and no
// recovery key any more.
func TestBrowserRecoveryKey(t *testing.T) {
	s := startWebServer(t)
	b := newBrowser(t, s)
	ctx := ctxT(t)
	const email, pw1, pw2, pw3 = "rosa.recovery@example.org", "first password here", "second password here", "third pässword here"
	devA := b.tab()

	ps := b.signUpInBrowser(devA, s, email, pw1)
	kA, kB := unhex(t, ps.KA), unhex(t, ps.KB)
	fpB := fingerprint(kB)
	if got := b.textOf(devA, "kb-fp"); got != fpB {
		t.Fatalf("kB fingerprint on the page %q, want %q", got, fpB)
	}
	if st := b.recoveryState(devA); !strings.HasPrefix(st, "You have no recovery key.") {
		t.Fatalf("a new account's recovery key state: %q", st)
	}
	if got := b.textOf(devA, "recovery-create"); got != "Create a recovery key" {
		t.Fatalf("create button %q", got)
	}
	b.checkWords(devA, "account page with the recovery key section")

	// Create: the key is shown once, with copy, print and a text file.
	first := b.createRecoveryKey(devA, false)
	b.checkWords(devA, "the key shown once")
	b.checkPage(devA, "account-recovery-key-shown", "Your new recovery key", "It is shown only this once", first, "Copy", "Print", "Save as a text file")
	// The key wraps between its groups at 390 px, on several lines, and
	// never inside a group.
	b.do(devA, "390 px", chromedp.EmulateViewport(phoneWidth, 844, chromedp.EmulateMobile, chromedp.EmulateScale(2), chromedp.EmulatePortrait))
	lines := evalJS[[]float64](b, devA, "key lines", `(() => {
	  const tops = new Set();
	  for (const g of document.querySelectorAll("#recovery-key .group")) {
	    const rs = g.getClientRects();
	    if (rs.length !== 1) return [-1];
	    tops.add(Math.round(rs[0].top));
	  }
	  return [...tops];
	})()`)
	b.do(devA, "restore", chromedp.ResetViewport())
	if len(lines) < 2 || slices.Contains(lines, -1) {
		t.Fatalf("the key at 390 px: line tops %v (want several lines, no group broken)", lines)
	}

	// Copy (the clipboard recorded), the text file, and print (only the key).
	b.do(devA, "copy", chromedp.Evaluate[chromedp.Void](`(() => {
	  window.copied = null;
	  Object.defineProperty(navigator, "clipboard", {configurable: true, value: {writeText: async (t) => { window.copied = t; }}});
	})()`), click("recovery-copy"))
	b.waitText(devA, "copied", "#recovery-tool-status", regexp.MustCompile(`^Copied\.`))
	if got := evalJS[string](b, devA, "clipboard", `window.copied || ""`); got != first {
		t.Fatalf("copied %q, want the key %q", got, first)
	}
	dl := evalJS[map[string]string](b, devA, "download", `(() => { const a = document.getElementById("recovery-download"); return {href: a.href, name: a.download}; })()`)
	const dataPrefix = "data:text/plain;charset=utf-8,"
	if !strings.HasPrefix(dl["href"], dataPrefix) || !strings.HasSuffix(dl["name"], ".txt") {
		t.Fatalf("the text file link: %v", dl)
	}
	file, err := url.PathUnescape(strings.TrimPrefix(dl["href"], dataPrefix))
	if err != nil || !strings.Contains(file, "\n"+first+"\n") || !strings.Contains(file, email) || !strings.Contains(file, s.URL) {
		t.Fatalf("the text file (%v):\n%s", err, file)
	}
	b.do(devA, "print", chromedp.Evaluate[chromedp.Void](`window.printed = 0; window.print = () => { window.printed++; }`), click("recovery-print"))
	if !evalJS[bool](b, devA, "printed", `window.printed === 1 && document.body.classList.contains("printing-key")`) {
		t.Fatal("Print did not print with the key-only layout")
	}
	b.do(devA, "print media", chromedp.EmulateViewport(desktopWidth, 900), chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Media: "print"})
		return err
	}))
	printed := b.visibleText(devA)
	b.screenshot(devA, "account-recovery-print.png", first)
	b.do(devA, "screen media", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Features: []*emulation.MediaFeature{}})
		return err
	}), chromedp.ResetViewport(), chromedp.Evaluate[chromedp.Void](`dispatchEvent(new Event("afterprint"))`))
	if !strings.Contains(printed, first) || !strings.Contains(printed, email) ||
		strings.Contains(printed, "Devices") || strings.Contains(printed, "Change password") || strings.Contains(printed, "Copy") {
		t.Fatalf("the printed page:\n%s", printed)
	}
	if evalJS[bool](b, devA, "print class", `document.body.classList.contains("printing-key")`) {
		t.Fatal("the key-only print layout stays after printing")
	}

	// Done needs the box ticked; then the key is gone from the page.
	b.do(devA, "done, unticked", click("recovery-done"))
	b.waitFieldError(devA, "unticked", "recovery-saved", regexp.MustCompile(`Tick the box once your recovery key is stored`))
	b.finishRecoveryKey(devA)
	if !evalJS[bool](b, devA, "focus", `document.activeElement.id === "recovery-title"`) {
		t.Fatal("after Done the focus is not on the recovery key section")
	}
	if st := b.recoveryState(devA); !strings.HasPrefix(st, "You have a recovery key, created on ") {
		t.Fatalf("state after creating: %q", st)
	}
	b.checkPage(devA, "account-recovery-exists", "You have a recovery key, created on", "Create a new recovery key", "Delete the recovery key")

	// Creating again replaces, after a confirmation; Cancel keeps it.
	b.do(devA, "create again", click("recovery-create"))
	b.waitText(devA, "replace confirmation", "#recovery-confirm-text", regexp.MustCompile(`^Create a new recovery key\?`))
	if !evalJS[bool](b, devA, "focus", `document.activeElement.id === "recovery-confirm-no"`) {
		t.Fatal("the confirmation does not take the focus (on Cancel)")
	}
	b.checkPage(devA, "account-recovery-replace", "Create a new recovery key?", "Create a new key", "Cancel")
	b.do(devA, "cancel", click("recovery-confirm-no"))
	if !evalJS[bool](b, devA, "cancelled", `document.getElementById("recovery-confirm").hidden && document.activeElement.id === "recovery-create"`) {
		t.Fatal("Cancel does not close the confirmation and give the focus back")
	}
	second := b.createRecoveryKey(devA, true)
	if second == first {
		t.Fatal("the replacement is the same key")
	}
	b.finishRecoveryKey(devA)

	// The Go client sees it; the activity says so.
	gc := fullClient(t, s)
	if st, err := gc.RecoveryKeyStatus(ctx, unhex(t, b.session(devA).SessionToken)); err != nil || !st.Exists {
		t.Fatalf("the server's recovery key status: %+v, %v", st, err)
	}
	b.do(devA, "reload", chromedp.Reload())
	b.waitAccount(devA, "account page")
	if ev := b.events(devA); !slices.ContainsFunc(ev, func(e shownEvent) bool { return e.Action == "Recovery key created" }) {
		t.Fatalf("activity after creating a recovery key: %+v", ev)
	}

	// A password change on this page keeps kB, and so the recovery key.
	b.do(devA, "change password", fill("old-password", pw1), fill("new-password", pw2), fill("new-confirm", pw2), click("change-submit"))
	b.waitJS(devA, "password changed", `location.search === "?notice=changed"`, 60*time.Second)
	b.waitAccount(devA, "account page after the change")
	if st := b.recoveryState(devA); !strings.HasPrefix(st, "You have a recovery key, created on ") {
		t.Fatalf("the password change lost the recovery key: %q", st)
	}
	if b.session(devA).KB != ps.KB {
		t.Fatal("the password change changed kB")
	}
	b.signOut(devA)

	// Forgotten password, on a browser that knows nothing.
	lost := b.tab()
	code := b.forgotCode(lost, s, email, 1)
	b.checkWords(lost, "forgot page, code")
	if text := b.visibleText(lost); !strings.Contains(text, "is lost when you set the new password") {
		t.Fatalf("the reset form does not say that the data is lost without a recovery key:\n%s", text)
	}
	b.do(lost, "I have a recovery key", click("have-recovery-key"))
	b.waitJS(lost, "recovery key field", `!document.getElementById("recovery-entry").hidden`, 10*time.Second)
	b.checkWords(lost, "forgot page, recovery key field")
	b.checkPage(lost, "forgot-recovery-key", "I have a recovery key", "Recovery key", "your most private data is kept")

	// Mistyped keys are refused here, before anything is sent.
	b.do(lost, "watch the calls", chromedp.Evaluate[chromedp.Void](watchCalls))
	b.do(lost, "fill", fill("code", code), fill("new-password", pw3), fill("new-confirm", pw3))
	for _, c := range []struct{ name, typed, want string }{
		{"mistyped", mistyped(t, second), `^This is not the recovery key: a character is mistyped\.`},
		{"too short", second[:len(second)-6], `^A recovery key has 53 letters and digits \(spaces do not count\); this has 48 characters\.`},
		{"U", second[:5] + "U" + second[6:], `^The 5th character, “U”, is never in a recovery key\.`},
		{"empty", "", `^Enter your recovery key, or untick`},
	} {
		b.do(lost, c.name, fill("recovery-key", c.typed), click("reset-submit"))
		b.waitFieldError(lost, c.name, "recovery-key", regexp.MustCompile(c.want))
		if c.name == "mistyped" {
			b.checkWords(lost, "mistyped key")
			b.checkPage(lost, "forgot-recovery-key-mistyped", "a character is mistyped")
		}
	}
	if calls := b.calls(lost); len(calls) != 0 {
		t.Fatalf("a malformed recovery key made requests: %v", calls)
	}

	// The first key, replaced since: valid, but not the account's (400/128).
	done := b.allow("/v1/recoveryKey/data")
	b.do(lost, "the replaced key", fill("recovery-key", strings.ToLower(first)), click("reset-submit"))
	b.waitFieldError(lost, "the replaced key", "recovery-key", regexp.MustCompile(`^This recovery key does not belong to this account\.`))
	done()
	if calls := b.calls(lost); !slices.Equal(calls, []string{"/v1/password/forgot/verify_code", "/v1/recoveryKey/data"}) {
		t.Fatalf("calls for the replaced key: %v", calls)
	}
	if text := b.textOf(lost, "code-sent"); text != "The code from the email is accepted." || !evalJS[bool](b, lost, "code hidden", `document.getElementById("code-entry").hidden`) {
		t.Fatalf("after the accepted code: %q", text)
	}
	b.checkWords(lost, "the replaced key")
	b.checkPage(lost, "forgot-recovery-key-wrong", "does not belong to this account")
	// Nothing was reset: the password of before still works, the key is still there.
	if gs, err := gc.Login(ctx, email, pw2); err != nil {
		t.Fatalf("after a refused recovery key the password of before fails: %v", err)
	} else if st, err := gc.RecoveryKeyStatus(ctx, gs.SessionToken); err != nil || !st.Exists {
		t.Fatalf("after a refused recovery key: %+v, %v", st, err)
	}

	// The right key, typed as people do (lower case, hyphens): the same
	// accountResetToken goes on, the reset keeps kB.
	b.do(lost, "the right key", chromedp.Evaluate[chromedp.Void](`window.calls = []`),
		fill("recovery-key", strings.ReplaceAll(strings.ToLower(second), " ", "-")), click("reset-submit"))
	b.waitJS(lost, "reset with the key", `location.search === "?notice=recovered"`, 60*time.Second)
	text := b.waitAccount(lost, "account page after the reset with the key")
	if ls := b.session(lost); ls.KB != ps.KB || ls.KA != ps.KA {
		t.Fatalf("the reset with the recovery key changed the keys: kA same %v, kB same %v", ls.KA == ps.KA, ls.KB == ps.KB)
	}
	for _, want := range []string{"your recovery key kept your data", "That recovery key is now used up. Create a new one below", fpB} {
		if !strings.Contains(text, want) {
			t.Fatalf("account page after the reset with the key lacks %q:\n%s", want, text)
		}
	}
	if st := b.recoveryState(lost); !strings.HasPrefix(st, "You have no recovery key.") {
		t.Fatalf("after the reset the recovery key is used up, but the page says %q", st)
	}
	b.checkWords(lost, "account page after the reset with the key")
	b.checkPage(lost, "account-recovered", "your recovery key kept your data", "Create a recovery key")

	// Device B: the new password, the same kB, no recovery key.
	devB := b.tab()
	b.do(devB, "device B: sign-in page", chromedp.Navigate(s.URL+"/"))
	_, text = b.signIn(devB, email, pw3)
	if got := b.textOf(devB, "kb-fp"); got != fpB || !strings.Contains(text, fingerprint(kA)) {
		t.Fatalf("device B: kB fingerprint %q, want %q\n%s", got, fpB, text)
	}
	if st := b.recoveryState(devB); !strings.HasPrefix(st, "You have no recovery key.") {
		t.Fatalf("device B: %q", st)
	}
	b.allEvents(devB)
	if ev := b.events(devB); !slices.ContainsFunc(ev, func(e shownEvent) bool { return e.Action == "Wrong recovery key entered" }) ||
		!slices.ContainsFunc(ev, func(e shownEvent) bool { return e.Action == "Recovery key entered to set a new password" }) {
		t.Fatalf("activity after the reset with the key: %+v", ev)
	}
	// And the Go client agrees.
	gs, err := gc.Login(ctx, email, pw3)
	if err != nil {
		t.Fatal(err)
	}
	gk, err := gc.Keys(ctx, gs.KeyFetchToken, gs.UnwrapBKey)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(gk.KA, kA) || !bytes.Equal(gk.KB, kB) {
		t.Fatal("the Go client sees other keys after the reset with the recovery key")
	}
}

// Resets that do not keep kB: one without the recovery key (a new kB, and
// the key deleted with the reset, RK.6), then one typing the key that is
// gone (400/129) that goes on without it; deleting a key after a
// confirmation; and a key the Go client made, used on the page.
func TestBrowserRecoveryKeyNotUsed(t *testing.T) {
	s := startWebServer(t)
	b := newBrowser(t, s)
	ctx := ctxT(t)
	gc := fullClient(t, s)
	const email, pw1, pw2, pw3, pw4 = "nils.nokey@example.org", "password number one", "password number two", "password number three", "password number four"
	if _, err := gc.CreateAccount(ctx, email, pw1, client.CreateOptions{PreVerified: true}); err != nil {
		t.Fatal(err)
	}
	tab := b.tab()
	b.do(tab, "sign-in page", chromedp.Navigate(s.URL+"/"))
	b.signIn(tab, email, pw1)
	ps := b.session(tab)

	// Delete asks first; Cancel keeps the key, Delete deletes it.
	b.createRecoveryKey(tab, false)
	b.finishRecoveryKey(tab)
	b.do(tab, "delete", click("recovery-delete"))
	b.waitText(tab, "delete confirmation", "#recovery-confirm-text", regexp.MustCompile(`^Delete your recovery key\? It stops working at once\.`))
	b.checkPage(tab, "account-recovery-delete", "Delete your recovery key?", "Delete recovery key", "Cancel")
	b.do(tab, "cancel", click("recovery-confirm-no"))
	if !evalJS[bool](b, tab, "cancelled", `document.activeElement.id === "recovery-delete"`) {
		t.Fatal("Cancel does not give the focus back to Delete")
	}
	if st := b.recoveryState(tab); !strings.HasPrefix(st, "You have a recovery key") {
		t.Fatalf("after Cancel: %q", st)
	}
	b.do(tab, "delete", click("recovery-delete"), click("recovery-confirm-yes"))
	b.waitText(tab, "deleted", "#recovery-status", regexp.MustCompile(`^Your recovery key was deleted\.`))
	if st := b.recoveryState(tab); !strings.HasPrefix(st, "You have no recovery key.") || evalJS[bool](b, tab, "delete button", `!document.getElementById("recovery-delete").hidden`) {
		t.Fatalf("after deleting: %q", st)
	}

	// A key the Go client makes works on the page, and one the page makes
	// works for the Go client (below).
	key, err := gc.CreateRecoveryKey(ctx, unhex(t, ps.SessionToken), unhex(t, ps.UID), unhex(t, ps.KB))
	if err != nil {
		t.Fatal(err)
	}
	b.do(tab, "reload", chromedp.Reload())
	b.waitAccount(tab, "account page")
	if st := b.recoveryState(tab); !strings.HasPrefix(st, "You have a recovery key, created on ") {
		t.Fatalf("after the Go client made one: %q", st)
	}
	b.signOut(tab)

	// A reset without the key: the page warns, kB changes, the key goes.
	code := b.forgotCode(tab, s, email, 1)
	b.do(tab, "reset without the key", fill("code", code), fill("new-password", pw2), fill("new-confirm", pw2), click("reset-submit"))
	b.waitJS(tab, "reset", `location.search === "?notice=reset"`, 60*time.Second)
	text := b.waitAccount(tab, "account page after the reset")
	after := b.session(tab)
	if after.KA != ps.KA || after.KB == ps.KB {
		t.Fatalf("a reset without the recovery key: kA same %v (want true), kB same %v (want false)", after.KA == ps.KA, after.KB == ps.KB)
	}
	if !strings.Contains(text, fingerprint(unhex(t, after.KB))) || strings.Contains(text, fingerprint(unhex(t, ps.KB))) {
		t.Fatalf("the account page after the reset shows the old kB fingerprint:\n%s", text)
	}
	if st := b.recoveryState(tab); !strings.HasPrefix(st, "You have no recovery key.") {
		t.Fatalf("the reset kept the recovery key: %q", st)
	}
	b.signOut(tab)

	// The key of before, typed now: the account has none (400/129); the
	// page offers to go on without it, which resets.
	code = b.forgotCode(tab, s, email, 2)
	done := b.allow("/v1/recoveryKey/data")
	b.do(tab, "the deleted key", fill("code", code), click("have-recovery-key"), fill("recovery-key", key),
		fill("new-password", pw3), fill("new-confirm", pw3), click("reset-submit"))
	b.waitFieldError(tab, "no recovery key", "recovery-key", regexp.MustCompile(`^This account has no recovery key`))
	done()
	if !evalJS[bool](b, tab, "continue button", `!document.getElementById("no-recovery").hidden`) {
		t.Fatal("no way to go on without a recovery key")
	}
	b.checkWords(tab, "no recovery key")
	b.checkPage(tab, "forgot-recovery-key-none", "This account has no recovery key", "Set the new password without a recovery key")
	b.do(tab, "go on without", click("continue-without"))
	b.waitJS(tab, "reset", `location.search === "?notice=reset"`, 60*time.Second)
	b.waitAccount(tab, "account page after the reset")
	again := b.session(tab)
	if again.KB == after.KB || again.KA != ps.KA {
		t.Fatal("going on without the recovery key should replace kB and keep kA")
	}

	// The page makes a key; the Go client resets with it and keeps kB.
	pageKey := b.createRecoveryKey(tab, false)
	b.finishRecoveryKey(tab)
	b.signOut(tab)
	ft, err := gc.ForgotSendCode(ctx, email)
	if err != nil {
		t.Fatal(err)
	}
	art, err := gc.ForgotVerifyCode(ctx, ft, waitMail(t, s, email, "X-Recovery-Code", 3)["X-Recovery-Code"])
	if err != nil {
		t.Fatal(err)
	}
	gkB, err := gc.RecoveryKB(ctx, art, strings.ToLower(pageKey))
	if err != nil {
		t.Fatalf("the Go client with the page's recovery key: %v", err)
	}
	if hex.EncodeToString(gkB) != again.KB {
		t.Fatal("the page's recovery key holds another kB for the Go client")
	}
	if err := gc.ResetAccountWithKB(ctx, art, email, pw4, gkB); err != nil {
		t.Fatal(err)
	}
	b.signIn(tab, email, pw4)
	if b.session(tab).KB != again.KB {
		t.Fatal("after the Go client's reset with the page's key, the page sees another kB")
	}
}

// recoveryVectors is keywrap/testdata/recovery-key-vectors.json (RK.10).
type recoveryVectors struct {
	Alphabet string `json:"alphabet"`
	Vectors  []struct {
		ID, R, UID, KB, Nonce                                  string
		KeyString, RecoveryKeyID, RecoveryEncKey, RecoveryData string
	} `json:"vectors"`
	Parse []struct {
		ID, Input, R, Error string
	} `json:"parse"`
}

// recoverykey.js against every vector and parse case of RK.10, and against
// keywrap both ways: keys the page makes read, derive and open in Go, and
// keys Go makes in the page.
func TestBrowserRecoveryKeyVectors(t *testing.T) {
	path := filepath.Join("..", "keywrap", "testdata", "recovery-key-vectors.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the recovery key vectors (docs/recovery_key_vectors.py writes them): %v", err)
	}
	var v recoveryVectors
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Vectors) == 0 || len(v.Parse) == 0 {
		t.Fatalf("%s: %d vectors, %d parse cases", path, len(v.Vectors), len(v.Parse))
	}
	s := startServer(t, "--db", sqliteDB(t), "--dev")
	b := newBrowser(t, s)
	tab := b.tab()
	b.do(tab, "page", chromedp.Navigate(s.URL+"/"))
	b.waitPath(tab, "page", "/")

	res := evalJS[struct {
		Checked  int
		Failed   []string
		Messages map[string]string
	}](b, tab, "vectors", `(async (v) => {
	  const rk = await import("/static/recoverykey.js"), B = await import("/static/bytes.js");
	  const h = B.fromHex, x = B.toHex, out = {checked: 0, failed: [], messages: {}};
	  const eq = (name, got, want) => { out.checked++; if (got !== want) out.failed.push(name + ": " + got + " != " + want); };
	  eq("alphabet", rk.ALPHABET, v.alphabet);
	  for (const t of v.vectors) {
	    const R = h(t.R), uid = h(t.uid);
	    eq(t.id + " keyString", await rk.formatKey(R), t.keyString);
	    eq(t.id + " recoveryKeyId", x(await rk.recoveryKeyId(R)), t.recoveryKeyId);
	    eq(t.id + " recoveryEncKey", x(await rk.recoveryEncKey(R)), t.recoveryEncKey);
	    eq(t.id + " recoveryData", x(await rk.sealData(R, uid, h(t.kB), h(t.nonce))), t.recoveryData);
	    eq(t.id + " open", x(await rk.openData(R, uid, h(t.recoveryData))), t.kB);
	    eq(t.id + " parse", x(await rk.parseKey(t.keyString)), t.R);
	    const other = h(t.uid); other[15] ^= 1;
	    eq(t.id + " other uid", await rk.openData(R, other, h(t.recoveryData)).then(() => "opened", () => "refused"), "refused");
	    const bad = h(t.recoveryData); bad[20] ^= 0x80;
	    eq(t.id + " changed data", await rk.openData(R, uid, bad).then(() => "opened", () => "refused"), "refused");
	    const wrongR = h(t.R); wrongR[0] ^= 1;
	    eq(t.id + " other key", await rk.openData(wrongR, uid, h(t.recoveryData)).then(() => "opened", () => "refused"), "refused");
	  }
	  for (const c of v.parse) {
	    let got;
	    try { got = "R " + x(await rk.parseKey(c.input)); } catch (e) {
	      if (!(e instanceof rk.RecoveryKeyError)) { got = "exception " + e; } else { got = "error " + e.kind; out.messages[c.id] = e.message; }
	    }
	    eq("parse " + c.id, got, c.R ? "R " + c.R : "error " + c.error);
	  }
	  return out;
	})(`+string(raw)+`)`)
	t.Logf("recovery key vectors checked in the page: %d (%d vectors, %d parse cases)", res.Checked, len(v.Vectors), len(v.Parse))
	if len(res.Failed) > 0 || res.Checked != 1+9*len(v.Vectors)+len(v.Parse) {
		t.Fatalf("recovery key vectors in the page: %d checked, failures:\n  %s", res.Checked, strings.Join(res.Failed, "\n  "))
	}
	// The messages are words for the user: the length says how many, the
	// character names it.
	for id, msg := range res.Messages {
		if msg == "" || strings.Contains(msg, "Error") {
			t.Errorf("parse case %s: message %q", id, msg)
		}
	}
	for id, want := range map[string]string{
		"52-characters": "this has 52 characters", "54-characters": "this has 54 characters", "empty": "nothing was entered",
		"U": "“U”", "asterisk": "“*”", "e-acute": "“é”", "dotless-i": "“ı”", "wrong-check-character": "a character is mistyped",
	} {
		if !strings.Contains(res.Messages[id], want) {
			t.Errorf("parse case %s: message %q lacks %q", id, res.Messages[id], want)
		}
	}

	// Keys the page made, in Go.
	made := evalJS[[]struct{ Key, R, ID, Data, UID, KB string }](b, tab, "made", `(async () => {
	  const rk = await import("/static/recoverykey.js"), B = await import("/static/bytes.js"), out = [];
	  for (let i = 0; i < 8; i++) {
	    const uid = B.random(16), kB = B.random(32), k = await rk.makeRecoveryKey(uid, kB);
	    out.push({key: k.keyString, r: B.toHex(k.R), id: B.toHex(k.id), data: B.toHex(k.data), uid: B.toHex(uid), kB: B.toHex(kB)});
	  }
	  return out;
	})()`)
	nonces := map[string]bool{}
	for _, m := range made {
		r, err := keywrap.ParseRecoveryKey(m.Key)
		if err != nil || hex.EncodeToString(r) != m.R {
			t.Fatalf("keywrap reads the page's key %q as %x, %v; want %s", m.Key, r, err, m.R)
		}
		if keywrap.FormatRecoveryKey(r) != m.Key || hex.EncodeToString(keywrap.RecoveryKeyID(r)) != m.ID {
			t.Fatalf("keywrap formats or derives the page's key %s otherwise", m.Key)
		}
		kB, err := keywrap.OpenRecoveryData(r, unhex(t, m.UID), unhex(t, m.Data))
		if err != nil || hex.EncodeToString(kB) != m.KB {
			t.Fatalf("keywrap opens the page's recoveryData: %x, %v", kB, err)
		}
		nonces[m.Data[:24]] = true
	}
	if len(nonces) != len(made) {
		t.Fatal("the page reuses recoveryData nonces")
	}

	// Keys Go made, in the page.
	type goKey struct{ Key, R, UID, KB, Data string }
	var goKeys []goKey
	for range 4 {
		r, err := keywrap.NewRecoveryKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		uid, kB := make([]byte, 16), make([]byte, 32)
		rand.Read(uid)
		rand.Read(kB)
		data, err := keywrap.SealRecoveryData(rand.Reader, r, uid, kB)
		if err != nil {
			t.Fatal(err)
		}
		goKeys = append(goKeys, goKey{keywrap.FormatRecoveryKey(r), hex.EncodeToString(r), hex.EncodeToString(uid), hex.EncodeToString(kB), hex.EncodeToString(data)})
	}
	in, _ := json.Marshal(goKeys)
	failed := evalJS[[]string](b, tab, "Go keys", fmt.Sprintf(`(async (keys) => {
	  const rk = await import("/static/recoverykey.js"), B = await import("/static/bytes.js"), out = [];
	  for (const k of keys) {
	    const R = await rk.parseKey(k.Key.toLowerCase());
	    if (B.toHex(R) !== k.R) out.push(k.Key + ": read as " + B.toHex(R));
	    if (await rk.formatKey(R) !== k.Key) out.push(k.Key + ": formatted otherwise");
	    const kB = await rk.openData(R, B.fromHex(k.UID), B.fromHex(k.Data));
	    if (B.toHex(kB) !== k.KB) out.push(k.Key + ": opens to another kB");
	  }
	  return out;
	})(%s)`, in))
	if len(failed) > 0 {
		t.Fatalf("keys made by keywrap, in the page: %v", failed)
	}
}
