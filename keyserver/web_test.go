package keyserver_test

import (
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/keyserver/keyserver/keyserver"
	"github.com/keyserver/keyserver/store/sqlstore"
)

func webServer(t *testing.T) http.Handler {
	t.Helper()
	st, err := sqlstore.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "ks.db"), sqlstore.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	srv, err := keyserver.New(keyserver.Config{PublicURL: "http://127.0.0.1:9000", Dev: true}, st)
	if err != nil {
		t.Fatal(err)
	}
	return srv.Handler()
}

func get(h http.Handler, path string, header ...string) *http.Response {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w.Result()
}

// webFiles lists the files of keyserver/web by the URL that serves them.
func webFiles(t *testing.T) map[string]string {
	t.Helper()
	pages := map[string]string{"index.html": "/", "signup.html": "/signup", "verify.html": "/verify",
		"account.html": "/account", "forgot.html": "/forgot"}
	files := map[string]string{}
	err := filepath.WalkDir("web", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel("web", p)
		if rel == "404.html" { // served for unknown paths (TestWebNotFound)
			return nil
		}
		if u, ok := pages[rel]; ok {
			files[u] = p
		} else if strings.HasPrefix(rel, "static/") {
			files["/"+rel] = p
		} else {
			t.Errorf("web/%s is neither a page nor under static/", rel)
		}
		return nil
	})
	if err != nil || len(files) < 10 {
		t.Fatalf("web files: %v (%d)", err, len(files))
	}
	return files
}

// Every page and static file: its type, the security headers, revalidation
// with its ETag, and the same bytes as the file in the tree.
func TestWebHeaders(t *testing.T) {
	h := webServer(t)
	types := map[string]string{".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
		".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
	for u, file := range webFiles(t) {
		resp := get(h, u)
		body, _ := io.ReadAll(resp.Body)
		want, _ := os.ReadFile(file)
		if resp.StatusCode != 200 || string(body) != string(want) {
			t.Errorf("GET %s: %d, body differs from %s: %v", u, resp.StatusCode, file, string(body) != string(want))
			continue
		}
		for name, value := range map[string]string{
			"Content-Type": types[filepath.Ext(file)],
			"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
				"img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
			"X-Content-Type-Options":      "nosniff",
			"Referrer-Policy":             "no-referrer",
			"X-Frame-Options":             "DENY",
			"Cache-Control":               "no-cache",
			"Access-Control-Allow-Origin": "",
		} {
			if got := resp.Header.Get(name); got != value {
				t.Errorf("GET %s: %s %q, want %q", u, name, got, value)
			}
		}
		etag := resp.Header.Get("ETag")
		if r := get(h, u, "If-None-Match", etag); etag == "" || r.StatusCode != http.StatusNotModified {
			t.Errorf("GET %s with If-None-Match %s: %d, want 304", u, etag, r.StatusCode)
		}
	}
	if r := get(h, "/favicon.ico"); r.StatusCode != 200 || r.Header.Get("Content-Type") != "image/svg+xml" {
		t.Errorf("GET /favicon.ico: %d %s", r.StatusCode, r.Header.Get("Content-Type"))
	}
	for _, u := range []string{"/static/nope.js", "/static/", "/index.html", "/account/", "/static/../web.go", "/404.html", "/static/404.html"} {
		if r := get(h, u); r.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", u, r.StatusCode)
		}
	}
	// The API keeps its CORS header.
	if r := get(h, "/__lbheartbeat__"); r.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Error("the API lost its CORS header")
	}
}

// The pages work under the strict CSP: no inline script, style or event
// handler, no eval, and nothing loaded from another origin.
func TestWebStrictContent(t *testing.T) {
	inlineScript := regexp.MustCompile(`(?is)<script\b[^>]*>\s*[^<\s]`)
	scriptTag := regexp.MustCompile(`(?is)<script\b([^>]*)>`)
	handler := regexp.MustCompile(`(?i)\son[a-z]+\s*=`)
	urlAttr := regexp.MustCompile(`(?i)\b(?:src|href|action)\s*=\s*"([^"]*)"`)
	absolute := regexp.MustCompile(`(?i)\b(?:https?|wss?|ftp)://|["'(]//[a-z0-9.-]+`)
	evalish := regexp.MustCompile(`\beval\s*\(|\bnew\s+Function\b|\bsetTimeout\s*\(\s*["'\x60]|innerHTML|document\.write|localStorage\.setItem|document\.cookie\s*=`)
	for u, file := range webFiles(t) {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		switch filepath.Ext(file) {
		case ".html":
			if inlineScript.MatchString(s) || strings.Contains(s, "<style") || strings.Contains(s, "style=") || handler.MatchString(s) {
				t.Errorf("%s: inline script, style or event handler", file)
			}
			for _, m := range scriptTag.FindAllStringSubmatch(s, -1) {
				if !strings.Contains(m[1], `type="module"`) || !strings.Contains(m[1], `src="/static/`) {
					t.Errorf("%s: script %s is not a module from /static/", file, m[0])
				}
			}
			for _, m := range urlAttr.FindAllStringSubmatch(s, -1) {
				if !strings.HasPrefix(m[1], "/") || strings.HasPrefix(m[1], "//") {
					t.Errorf("%s: %s is not a same-origin path", file, m[0])
				}
			}
		case ".js":
			if m := evalish.FindString(s); m != "" {
				t.Errorf("%s: %q", file, m)
			}
		}
		if m := absolute.FindString(s); m != "" && filepath.Ext(file) != ".svg" {
			t.Errorf("%s (%s): absolute URL %q: the pages load nothing from elsewhere", file, u, m)
		}
	}
}

// Unknown paths: a browser navigating (Accept: text/html) gets the HTML 404
// page with the pages' headers; API clients, API paths, credentials and
// other methods keep the JSON 404/999 of spec 1.4.
func TestWebNotFound(t *testing.T) {
	h := webServer(t)
	page, err := os.ReadFile("web/404.html")
	if err != nil {
		t.Fatal(err)
	}
	const browser = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
	for _, c := range []struct {
		method, path, accept, auth string
		html                       bool
	}{
		{"GET", "/nope", browser, "", true},
		{"GET", "/account/settings", "text/html", "", true},
		{"GET", "/static/nope.js", browser, "", true},
		{"HEAD", "/nope", browser, "", true},
		{"GET", "/nope", "TEXT/HTML; charset=utf-8", "", true},
		{"GET", "/nope", "", "", false},
		{"GET", "/nope", "application/json", "", false},
		{"GET", "/nope", "*/*", "", false},
		{"GET", "/nope", "text/html;q=0", "", false},
		{"GET", "/nope", browser, `Hawk id="x"`, false},
		{"POST", "/nope", browser, "", false},
		{"GET", "/v1/nope", browser, "", false},
		{"GET", "/v1/raw_password/change/start", browser, "", false},
		{"GET", "/admin/v1/accounts", browser, "", false},
		{"GET", "/.well-known/nope", browser, "", false},
		{"GET", "/__nope__", browser, "", false},
		{"PUT", "/", browser, "", false},
	} {
		req := httptest.NewRequest(c.method, c.path, nil)
		if c.accept != "" {
			req.Header.Set("Accept", c.accept)
		}
		if c.auth != "" {
			req.Header.Set("Authorization", c.auth)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		resp := w.Result()
		body, _ := io.ReadAll(resp.Body)
		name := c.method + " " + c.path + " (Accept " + c.accept + ")"
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", name, resp.StatusCode)
			continue
		}
		ct := resp.Header.Get("Content-Type")
		if c.html {
			wantBody := string(page)
			if c.method == http.MethodHead {
				wantBody = ""
			}
			if ct != "text/html; charset=utf-8" || string(body) != wantBody || resp.Header.Get("Content-Security-Policy") == "" ||
				resp.Header.Get("X-Frame-Options") != "DENY" || resp.Header.Get("Access-Control-Allow-Origin") != "" ||
				resp.Header.Get("Content-Length") != strconv.Itoa(len(page)) {
				t.Errorf("%s: want the HTML 404 page with the pages' headers; got %s %v %q", name, ct, resp.Header, body)
			}
			continue
		}
		var e struct {
			Code, Errno    int
			Error, Message string
		}
		if !strings.HasPrefix(ct, "application/json") || json.Unmarshal(body, &e) != nil || e.Code != 404 || e.Errno != 999 || e.Message != "Not Found" {
			t.Errorf("%s: want the JSON 404/999; got %s %q", name, ct, body)
		}
	}
	if !strings.Contains(string(page), "Page not found") || !strings.Contains(string(page), `href="/"`) {
		t.Error("the 404 page says nothing useful")
	}
}
