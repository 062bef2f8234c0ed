package keyserver

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"io/fs"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"
)

// The web client (spec 6.8, D17): static pages whose ES modules stretch the
// password and run SRP in the browser, so the password never leaves the
// page. Embedded, so the binary needs no build step and no files beside it.
//
//go:embed web
var webFiles embed.FS

// webPages maps the page paths to their files in web/. Browsers also ask
// every origin for /favicon.ico (the API's plain-text answers have no icon
// link), so it gets the icon instead of a 404.
var webPages = map[string]string{
	"/":            "index.html",
	"/signup":      "signup.html",
	"/verify":      "verify.html",
	"/account":     "account.html",
	"/forgot":      "forgot.html",
	"/favicon.ico": "static/icon.svg",
}

// webCSP allows only this origin's scripts, styles, images and API calls:
// no inline script or style, no eval, no framing. Workers fall back to
// script-src.
const webCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
	"img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// webAsset is one embedded file with its response headers.
type webAsset struct {
	body        []byte
	contentType string
	etag        string
}

// webAssets holds every file of web/ by its path in the tree.
var webAssets = func() map[string]*webAsset {
	types := map[string]string{
		".html": "text/html; charset=utf-8",
		".js":   "text/javascript; charset=utf-8",
		".css":  "text/css; charset=utf-8",
		".svg":  "image/svg+xml",
	}
	assets := map[string]*webAsset{}
	err := fs.WalkDir(webFiles, "web", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := webFiles.ReadFile(p)
		if err != nil {
			return err
		}
		ct, ok := types[path.Ext(p)]
		if !ok {
			ct = "application/octet-stream"
		}
		sum := sha256.Sum256(body)
		assets[strings.TrimPrefix(p, "web/")] = &webAsset{body, ct, `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`}
		return nil
	})
	if err != nil {
		panic("keyserver: embedded web files: " + err.Error())
	}
	return assets
}()

// webRoutes registers the pages, /favicon.ico and /static/ on r.
func (s *Server) webRoutes(r *mux.Router) {
	for p, file := range webPages {
		r.Handle(p, s.webFile(file)).Methods(http.MethodGet, http.MethodHead)
	}
	r.HandleFunc("/static/{file}", func(w http.ResponseWriter, req *http.Request) {
		s.webFile("static/"+mux.Vars(req)["file"]).ServeHTTP(w, req)
	}).Methods(http.MethodGet, http.MethodHead)
}

// webFile serves one embedded file with the security headers of the web
// client. Caching: revalidate every time (no-cache) against a content ETag,
// so a new binary's files are picked up at once and unchanged ones cost a 304.
func (s *Server) webFile(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := webAssets[name]
		if !ok {
			s.notFound(w, r)
			return
		}
		webHeaders(w.Header(), a.contentType)
		w.Header().Set("ETag", a.etag)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
	})
}

// webHeaders sets the headers of every answer of the web client.
func webHeaders(h http.Header, contentType string) {
	h.Del("Access-Control-Allow-Origin") // CORS is for the API, not the pages
	h.Del("Access-Control-Expose-Headers")
	h.Set("Content-Type", contentType)
	h.Set("Content-Security-Policy", webCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Cache-Control", "no-cache")
}

// wantsHTML reports whether an unknown path was asked for by a browser
// navigating (GET or HEAD accepting text/html, without API credentials,
// outside the API's paths), which gets the HTML 404 page instead of the
// JSON 404/999 of spec 1.4 that every API client keeps.
func wantsHTML(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead || r.Header.Get("Authorization") != "" {
		return false
	}
	for _, prefix := range []string{"/v1/", "/admin/", "/.well-known/", "/__"} {
		if strings.HasPrefix(r.URL.Path, prefix) {
			return false
		}
	}
	return acceptsHTML(r)
}

// acceptsHTML reports whether r is a browser navigating: a GET or HEAD
// without API credentials whose Accept header takes text/html.
func acceptsHTML(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead || r.Header.Get("Authorization") != "" {
		return false
	}
	for _, accept := range r.Header.Values("Accept") {
		for _, rng := range strings.Split(accept, ",") {
			mediaType, params, _ := strings.Cut(rng, ";")
			if !strings.EqualFold(strings.TrimSpace(mediaType), "text/html") {
				continue
			}
			if q, ok := acceptQ(params); !ok || q > 0 {
				return true
			}
		}
	}
	return false
}

// acceptQ returns the q parameter of a media range's parameters, if any.
func acceptQ(params string) (float64, bool) {
	for _, p := range strings.Split(params, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(k, "q") {
			q, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return q, err == nil
		}
	}
	return 1, false
}

// webNotFound answers 404 with the web client's HTML page.
func webNotFound(w http.ResponseWriter, r *http.Request) {
	a := webAssets["404.html"]
	webHeaders(w.Header(), a.contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(a.body)))
	w.WriteHeader(http.StatusNotFound)
	if r.Method != http.MethodHead {
		_, _ = w.Write(a.body)
	}
}
