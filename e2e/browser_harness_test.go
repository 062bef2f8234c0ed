package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// chromiumPath finds Debian's Chromium (KEYSERVER_TEST_CHROMIUM overrides).
// Without one the browser tests skip on a developer machine and fail under
// CI=true (.ci/run installs the chromium package).
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("KEYSERVER_TEST_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"/usr/lib/chromium/chromium", "/usr/bin/chromium", "chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("Chromium not found (install Debian's chromium package, or set KEYSERVER_TEST_CHROMIUM); the browser tests must run in CI")
	}
	t.Skip("Chromium not found: browser tests skipped (they run under CI=true)")
	return ""
}

// browser is one headless Chromium with a fresh profile, watching every tab
// it opens: the origin of every request (the keyserver's only), console
// messages, exceptions and browser-log errors. Any problem fails the test
// when it ends.
type browser struct {
	t      *testing.T
	origin string
	ctx    context.Context // the browser's first tab

	mu       sync.Mutex
	problems []string
	allowed  []string // URL substrings of expected failed API calls
	requests int
}

// newBrowser starts Chromium for tests against s.
func newBrowser(t *testing.T, s *server) *browser {
	t.Helper()
	exe := chromiumPath(t)
	netlog := filepath.Join(t.TempDir(), "netlog.json")
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Headless,
		chromedp.NoSandbox, // root in CI containers
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-breakpad", true),
		chromedp.Flag("disable-crash-reporter", true),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.WindowSize(1000, 1400),
		// Quieten the browser's own services, and let none of them resolve a
		// name: whatever is left of its background traffic stays on the
		// machine. The NetLog records every request of every process.
		chromedp.Flag("disable-features", "AutofillServerCommunication,NetworkTimeServiceQuerying,"+
			"OptimizationHints,MediaRouter,Translate,CertificateTransparencyComponentUpdater"),
		chromedp.Flag("disable-component-extensions-with-background-pages", true),
		chromedp.Flag("no-pings", true),
		chromedp.Flag("no-service-autorun", true),
		chromedp.Flag("disable-field-trial-config", true),
		chromedp.Flag("allow-browser-signin", "false"),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
		chromedp.Flag("log-net-log", netlog),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	b := &browser{t: t, origin: s.URL}
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithListener(b.listen))
	deadline, cancelTimeout := context.WithTimeout(ctx, 5*time.Minute)
	b.ctx = deadline
	t.Cleanup(func() {
		cancelTimeout()
		cancel()
		cancelAlloc() // waits for Chromium to exit and write the end of its NetLog
		b.checkNetLog(netlog)
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, p := range b.problems {
			t.Errorf("browser: %s", p)
		}
		t.Logf("browser: DevTools saw %d requests of the pages (origin %s)", b.requests, b.origin)
	})
	if err := chromedp.Do(b.ctx); err != nil { // start the browser
		t.Fatalf("starting Chromium (%s): %v", exe, err)
	}
	return b
}

// tab opens a new tab in a new browser context: its own sessionStorage, as
// another person or device would have.
func (b *browser) tab() context.Context {
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext(), chromedp.WithListener(b.listen))
	b.t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		b.t.Fatalf("opening a tab: %v", err)
	}
	return ctx
}

// allow marks failed requests whose URL contains pattern as expected (a
// negative step such as a wrong password): Chromium logs any 4xx answer as a
// console error.
func (b *browser) allow(pattern string) func() {
	b.mu.Lock()
	b.allowed = append(b.allowed, pattern)
	b.mu.Unlock()
	return func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if i := slices.Index(b.allowed, pattern); i >= 0 {
			b.allowed = slices.Delete(b.allowed, i, i+1)
		}
	}
}

func (b *browser) problem(format string, args ...any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.problems = append(b.problems, fmt.Sprintf(format, args...))
}

// listen gets the events of every tab (DevTools: requests, console, log) on
// its event loop, so it must be fast. Workers' requests are in the NetLog.
func (b *browser) listen(ev any) {
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		b.mu.Lock()
		b.requests++
		b.mu.Unlock()
		if !b.sameOrigin(ev.Request.URL) {
			b.problem("request to another origin: %s %s", ev.Request.Method, ev.Request.URL)
		}
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		text := d.Text
		if d.Exception != nil && d.Exception.Description != "" {
			text += " " + d.Exception.Description
		}
		b.problem("uncaught exception at %s:%d: %s", d.URL, d.LineNumber, text)
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeWarning || ev.Type == runtime.ConsoleAPICalledTypeAssert {
			var args []string
			for _, a := range ev.Args {
				if len(a.Value) > 0 {
					args = append(args, string(a.Value))
				} else {
					args = append(args, a.Description)
				}
			}
			b.problem("console.%s: %s", ev.Type, strings.Join(args, " "))
		}
	case *log.EventEntryAdded:
		e := ev.Entry
		if e.Level != log.EntryLevelError && e.Level != log.EntryLevelWarning {
			return
		}
		if e.Source == log.EntrySourceNetwork && b.expected(e.URL) {
			return
		}
		b.problem("browser log %s/%s: %s %s", e.Source, e.Level, e.Text, e.URL)
	}
}

// checkNetLog reads Chromium's NetLog, which records the requests of every
// process, workers included (DevTools shows a tab's own requests only):
// every request a page or a worker started must go to the keyserver. The
// browser's own background requests (initiator "not an origin": updaters,
// account checks) are reported in the log; they cannot leave the machine
// (host-resolver-rules) and carry nothing of the pages.
func (b *browser) checkNetLog(path string) {
	f, err := os.Open(path)
	if err != nil {
		b.problem("NetLog: %v", err)
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	pages, background := 0, map[string]int{}
	for sc.Scan() {
		line := bytes.TrimSuffix(bytes.TrimSpace(sc.Bytes()), []byte(","))
		if !bytes.HasPrefix(line, []byte(`{"params":`)) || !bytes.Contains(line, []byte(`"initiator"`)) {
			continue
		}
		var ev struct {
			Params struct {
				URL       string `json:"url"`
				Initiator string `json:"initiator"`
				Method    string `json:"method"`
			} `json:"params"`
		}
		if json.Unmarshal(line, &ev) != nil || ev.Params.URL == "" {
			continue
		}
		p := ev.Params
		switch {
		case p.Initiator == "not an origin" && !b.sameOrigin(p.URL):
			u, _ := url.Parse(p.URL)
			background[u.Scheme+"://"+u.Host]++
		case p.Initiator != "not an origin" && p.Initiator != b.origin:
			b.problem("NetLog: request started by %s: %s %s", p.Initiator, p.Method, p.URL)
		case !b.sameOrigin(p.URL):
			b.problem("NetLog: request from the keyserver's pages to another origin: %s %s", p.Method, p.URL)
		default:
			pages++
		}
	}
	if err := sc.Err(); err != nil {
		b.problem("NetLog: %v", err)
	}
	if pages == 0 {
		b.problem("NetLog: no request to the keyserver recorded (is the NetLog written?)")
	}
	b.t.Logf("NetLog: %d requests to %s; browser background requests (not from the pages, unresolvable here): %v", pages, b.origin, background)
}

func (b *browser) expected(u string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.allowed {
		if strings.Contains(u, p) {
			return true
		}
	}
	return false
}

// sameOrigin reports whether u is on the keyserver's origin.
func (b *browser) sameOrigin(u string) bool {
	p, err := url.Parse(u)
	if err != nil {
		return false
	}
	return p.Scheme+"://"+p.Host == b.origin
}

// do runs actions in ctx and fails the test on error, with a screenshot.
func (b *browser) do(ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.fail(ctx, what, err)
	}
}

// evalJS evaluates JavaScript in ctx's tab (awaiting a promise) and decodes
// the result.
func evalJS[T any](b *browser, ctx context.Context, what, expr string) T {
	b.t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		b.fail(ctx, what, err)
	}
	return v
}

// fail stops the test with the page's visible text and a screenshot.
func (b *browser) fail(ctx context.Context, what string, err error) {
	b.t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	text, _ := chromedp.Run(sctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	loc, _ := chromedp.Run(sctx, chromedp.Location())
	if png, serr := chromedp.Run(sctx, chromedp.CaptureScreenshot()); serr == nil {
		p := artifactPath(b.t, "failure.png")
		if os.WriteFile(p, png, 0o644) == nil {
			b.t.Logf("screenshot: %s", p)
		}
	}
	b.t.Fatalf("%s: %v\npage %s:\n%s", what, err, loc, text)
}

// waitText waits until the element sel's text matches re.
func (b *browser) waitText(ctx context.Context, what, sel string, re *regexp.Regexp) string {
	b.t.Helper()
	js := fmt.Sprintf(`(() => { const e = document.querySelector(%q); return e && !e.hidden && %s.test(e.textContent) ? e.textContent : ""; })()`,
		sel, jsRegexp(re))
	v, err := chromedp.Run(ctx, chromedp.Poll[string](js, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(60*time.Second)))
	if err != nil {
		b.fail(ctx, what, fmt.Errorf("waiting for %s to match %s: %w", sel, re, err))
	}
	return v
}

func jsRegexp(re *regexp.Regexp) string {
	s, _ := json.Marshal(re.String())
	return "new RegExp(" + string(s) + ")"
}

// artifactPath is a file in e2e/artifacts/<test name>/ (git-ignored), kept
// after the test for people and CI to look at.
func artifactPath(t *testing.T, name string) string {
	dir := filepath.Join("artifacts", strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p, _ := filepath.Abs(filepath.Join(dir, name))
	return p
}

// axeSource is the vendored axe-core (testdata/README.md), read once.
var axeSource = sync.OnceValues(func() (string, error) {
	b, err := os.ReadFile(filepath.Join("testdata", "axe.min.js"))
	return string(b), err
})

// axeTags are the rule sets that must pass: WCAG 2.0, 2.1 and 2.2 at levels
// A and AA.
var axeTags = []string{"wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"}

// checkA11y runs axe-core in the tab's page (injected through DevTools, so
// the pages' CSP does not apply) and fails the test on any violation of
// axeTags, then runs the checks axe does not make (pageChecks).
func (b *browser) checkA11y(ctx context.Context, what string) {
	b.t.Helper()
	src, err := axeSource()
	if err != nil {
		b.t.Fatalf("axe-core fixture: %v", err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](`window.axe ? undefined : (() => {`+src+`
	})()`)); err != nil {
		b.fail(ctx, what+": injecting axe-core", err)
	}
	tags, _ := json.Marshal(axeTags)
	res := evalJS[struct{ Violations, Incomplete []string }](b, ctx, what+": axe", `(async () => {
	  const r = await axe.run(document, {runOnly: {type: "tag", values: `+string(tags)+`}});
	  const list = (vs) => vs.map(v => v.id + " (" + v.impact + "): " + v.help + " at " +
	    v.nodes.map(n => n.target.join(" ") + (n.failureSummary ? " [" + n.failureSummary.replace(/\s+/g, " ") + "]" : "")).join("; "));
	  return {violations: list(r.violations), incomplete: r.incomplete.map(v => v.id + ": " + v.nodes.map(n => n.target.join(" ") + " (" + (n.any[0]?.message || "") + ")").join(", "))};
	})()`)
	violations := res.Violations
	if len(res.Incomplete) > 0 { // what axe leaves to a person: logged, and looked at in the screenshots
		b.t.Logf("%s: axe-core could not decide (needs review): %s", what, strings.Join(res.Incomplete, "; "))
	}
	if len(violations) > 0 {
		b.fail(ctx, what, fmt.Errorf("%d accessibility violations (axe-core, WCAG A/AA):\n  %s", len(violations), strings.Join(violations, "\n  ")))
	}
	if problems := evalJS[[]string](b, ctx, what+": page checks", pageChecksJS); len(problems) > 0 {
		b.fail(ctx, what, fmt.Errorf("accessibility checks:\n  %s", strings.Join(problems, "\n  ")))
	}
}

// pageChecksJS: what axe does not check. Form-control borders have a 3:1
// contrast with what is behind them (WCAG 1.4.11); every invalid field is
// described by a visible message that is announced (role=alert or a live
// region); every visible error message is announced; every form with a
// password field has a username field (autocomplete=username, hidden or
// not) for password managers.
const pageChecksJS = `(() => {
  const out = [];
  const name = (e) => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + (e.className && typeof e.className === "string" ? "." + e.className.trim().split(/\s+/).join(".") : "");
  const rgba = (s) => { const m = s.match(/[\d.]+/g) || []; return m.map(Number).concat([1]).slice(0, 4); };
  const lum = ([r, g, b]) => { const f = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; }; return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
  const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
  const behind = (e) => { for (let p = e.parentElement; p; p = p.parentElement) { const c = rgba(getComputedStyle(p).backgroundColor); if (c[3] > 0) return c; } return [255, 255, 255, 1]; };
  const announced = (e) => !!e.closest('[role=alert], [role=status], [aria-live]:not([aria-live=off])');
  for (const e of document.querySelectorAll("input:not([type=checkbox]):not([type=radio]):not([type=hidden]), select, textarea")) {
    if (!e.checkVisibility()) continue;
    const cs = getComputedStyle(e);
    const r = ratio(rgba(cs.borderTopColor), behind(e));
    if (parseFloat(cs.borderTopWidth) < 1 || r < 3) out.push(name(e) + ": border contrast " + r.toFixed(2) + ":1 (" + cs.borderTopColor + "), want 3:1");
  }
  for (const e of document.querySelectorAll("[aria-invalid=true]")) {
    const ids = (e.getAttribute("aria-describedby") || "").split(/\s+/).filter(Boolean);
    const msgs = ids.map((id) => document.getElementById(id)).filter((m) => m && m.checkVisibility() && m.textContent.trim());
    if (!msgs.length) out.push(name(e) + ": invalid, but aria-describedby names no visible message");
    else if (!msgs.some(announced)) out.push(name(e) + ": its error message is not announced (role=alert or a live region)");
  }
  for (const e of document.querySelectorAll(".error, .field-error")) {
    if (e.checkVisibility() && e.textContent.trim() && !announced(e)) out.push(name(e) + ": a visible error that is not announced");
  }
  for (const f of document.forms) {
    if (f.querySelector("input[type=password]") && !f.querySelector("input[autocomplete=username]")) out.push(name(f) + ": a password form without a username field");
  }
  return out;
})()`

// checkLayout fails the test if anything on the page is wider than the
// viewport or sticks out of it sideways (the page would scroll
// horizontally, or content be cut off).
func (b *browser) checkLayout(ctx context.Context, what string) {
	b.t.Helper()
	problems := evalJS[[]string](b, ctx, what+": layout", `(() => {
	  const w = document.documentElement.clientWidth, out = [];
	  const name = (e) => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + (e.className && typeof e.className === "string" ? "." + e.className.trim().split(/\s+/).join(".") : "");
	  if (document.documentElement.scrollWidth > w) out.push("the page scrolls sideways: scrollWidth " + document.documentElement.scrollWidth + " > " + w);
	  for (const e of document.body.querySelectorAll("*")) {
	    if (!e.checkVisibility()) continue;
	    const r = e.getBoundingClientRect();
	    if (r.width === 0 && r.height === 0) continue;
	    if (r.width > w + 0.5 || r.left < -0.5 || r.right > w + 0.5) out.push(name(e) + ": " + Math.round(r.left) + " to " + Math.round(r.right) + " px, viewport " + w + " px");
	    if (!/^(INPUT|TEXTAREA|SELECT|PROGRESS)$/.test(e.tagName) && e.scrollWidth > e.clientWidth + 1 && e.clientWidth > 0 && getComputedStyle(e).overflowX !== "visible") out.push(name(e) + ": its content (" + e.scrollWidth + " px) is cut off at " + e.clientWidth + " px");
	  }
	  return out;
	})()`)
	if len(problems) > 0 {
		b.fail(ctx, what, fmt.Errorf("layout at this width:\n  %s", strings.Join(problems, "\n  ")))
	}
}

// Widths of checkPage: a desktop window and a 390 px phone (at device
// scale 2, as phones render).
const desktopWidth, phoneWidth = 1280, 390

// checkPage checks the tab's page as it is now at both widths: layout
// (at 390 px), accessibility, and a full-page screenshot of each
// (<name>-desktop.png, <name>-390.png under e2e/artifacts/<test>/).
// want are texts the page must show.
func (b *browser) checkPage(ctx context.Context, name string, want ...string) {
	b.t.Helper()
	defer b.do(ctx, "restoring the viewport", chromedp.ResetViewport())
	for _, v := range []struct {
		suffix string
		action chromedp.Action[chromedp.Void]
	}{
		{"desktop", chromedp.EmulateViewport(desktopWidth, 900)},
		{"390", chromedp.EmulateViewport(phoneWidth, 844, chromedp.EmulateMobile, chromedp.EmulateScale(2), chromedp.EmulatePortrait)},
	} {
		what := name + " at " + v.suffix
		b.do(ctx, what, v.action)
		// two frames, so the new width is laid out
		b.do(ctx, what, chromedp.Evaluate[chromedp.Void](`new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))`, chromedp.EvalAwaitPromise))
		if v.suffix == "390" {
			if w := evalJS[float64](b, ctx, what, `document.documentElement.clientWidth`); w != phoneWidth {
				b.fail(ctx, what, fmt.Errorf("viewport %v px wide, want %d", w, phoneWidth))
			}
		}
		b.checkLayout(ctx, what)
		b.checkA11y(ctx, what)
		b.screenshot(ctx, name+"-"+v.suffix+".png", want...)
	}
}
