package keyserver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// requestInfo is what the middleware learns about a request, for handlers and
// the access log.
type requestInfo struct {
	id       string
	clientIP string
	hawkID   string // the Hawk id (a tokenId), the only Authorization part we log
	err      *Error
}

type ctxKey struct{}

func requestInfoFrom(ctx context.Context) *requestInfo {
	info, _ := ctx.Value(ctxKey{}).(*requestInfo)
	return info
}

// statusWriter remembers the status code for the access log.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += n
	return n, err
}

// outer wraps every request, matched or not: request id, the headers every
// response carries (spec 1.2, C1), CORS, panic recovery, the access log and
// the request metrics.
func (s *Server) outer(next http.Handler) http.Handler { return s.wrap(next, next, true) }

// wrap is outer, with CORS (and preflight answers) only when cors is set:
// the admin API has none (C18). routes is the router behind next, whose
// route templates label the request metrics (next itself, or a router
// behind a check such as the admin token's).
func (s *Server) wrap(next, routes http.Handler, cors bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := s.now()
		info := &requestInfo{id: newRequestID(), clientIP: s.clientIP(r)}
		r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, info))
		sw := &statusWriter{ResponseWriter: w}

		h := sw.Header()
		h.Set("Timestamp", strconv.FormatInt(start.Unix(), 10))
		if s.hsts {
			h.Set("Strict-Transport-Security", "max-age=10886400")
		}
		h.Set("X-Request-Id", info.id)
		if cors {
			s.cors(h, r)
		}

		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				e := errInternal(fmt.Errorf("panic: %v", p))
				if sw.status == 0 {
					writeError(sw, r, e)
				}
				info.err = e
			}
			s.logAccess(r, info, sw, start)
			if s.metrics != nil {
				s.metrics.observe(routes, r, sw.status, info.err, s.now().Sub(start))
			}
		}()

		if cors && r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			sw.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(sw, r)
	})
}

// cors sets the CORS headers of spec 1.2.
func (s *Server) cors(h http.Header, r *http.Request) {
	origin := r.Header.Get("Origin")
	allowed := "*"
	if len(s.cfg.CORSOrigins) > 0 {
		// The answer depends on the origin, matched or not: caches must
		// key on it.
		h.Add("Vary", "Origin")
		allowed = ""
		for _, o := range s.cfg.CORSOrigins {
			if o == origin {
				allowed = origin
				break
			}
		}
	}
	if allowed == "" {
		return
	}
	h.Set("Access-Control-Allow-Origin", allowed)
	h.Set("Access-Control-Expose-Headers", "Timestamp")
	if r.Method == http.MethodOptions {
		h.Set("Access-Control-Allow-Methods", "GET, POST")
		h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Accept-Language")
		h.Set("Access-Control-Max-Age", "86400")
	}
}

// logAccess writes one access-log line. Request bodies and Authorization
// values are never logged (spec C14); the code of a verification link is
// redacted.
func (s *Server) logAccess(r *http.Request, info *requestInfo, sw *statusWriter, start time.Time) {
	attrs := []slog.Attr{ // the request id comes from requestIDHandler
		slog.String("method", r.Method),
		slog.String("path", redactedTarget(r)),
		slog.Int("status", sw.status),
		slog.Int("bytes", sw.bytes),
		slog.Duration("duration", s.now().Sub(start)),
		slog.String("ip", info.clientIP),
	}
	if info.hawkID != "" {
		attrs = append(attrs, slog.String("hawk_id", info.hawkID))
	}
	level := slog.LevelInfo
	if info.err != nil {
		attrs = append(attrs, slog.Int("errno", info.err.Errno))
		if info.err.Cause != nil {
			attrs = append(attrs, slog.String("cause", info.err.Cause.Error()))
		}
		if info.err.Status >= 500 {
			level = slog.LevelError
		}
	}
	if r.Context().Err() != nil { // the client hung up: not a server failure
		attrs = append(attrs, slog.Bool("client_gone", true))
		level = slog.LevelInfo
	}
	s.log.LogAttrs(r.Context(), level, "request", attrs...)
}

// redactedTarget is the request path and query with secret query values
// (the email verification code) replaced. A query that does not parse is
// left out whole: the code may hide in a part ParseQuery skips.
func redactedTarget(r *http.Request) string {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return r.URL.Path + "?REDACTED"
	}
	redacted := false
	for name := range q {
		if strings.EqualFold(name, "code") { // in any letter case
			q[name] = []string{"REDACTED"}
			redacted = true
		}
	}
	if redacted {
		return r.URL.Path + "?" + q.Encode()
	}
	if r.URL.RawQuery != "" {
		return r.URL.Path + "?" + r.URL.RawQuery
	}
	return r.URL.Path
}

// clientIP is the socket peer, or the right-most X-Forwarded-For entry that
// is not a trusted proxy when the peer is one (spec 10.4).
func (s *Server) clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if !s.trustedProxy(host) {
		return host
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop := strings.TrimSpace(hops[i])
		if net.ParseIP(hop) == nil {
			break
		}
		host = hop
		if !s.trustedProxy(hop) {
			break
		}
	}
	return host
}

func (s *Server) trustedProxy(ip string) bool {
	addr := net.ParseIP(ip)
	if addr == nil {
		return false
	}
	for _, n := range s.cfg.TrustedProxies {
		if n.Contains(addr) {
			return true
		}
	}
	return false
}

func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// requestIDHandler adds the request id to every log line written with the
// request's context, not only to the access log.
type requestIDHandler struct{ slog.Handler }

func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if info := requestInfoFrom(ctx); info != nil && info.id != "" {
		r = r.Clone()
		r.AddAttrs(slog.String("req", info.id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestIDHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(attrs)}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}

// writeJSON writes v as the JSON response body.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		body, _ = json.Marshal(errInternal(err).body())
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
