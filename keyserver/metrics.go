package keyserver

import (
	"context"
	"errors"
	"net/http"
	"runtime"
	"strconv"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/keyserver/keyserver/accounts"
	"github.com/keyserver/keyserver/customs"
	"github.com/keyserver/keyserver/protocol"
	"github.com/keyserver/keyserver/store"
)

// VersionInfo describes the build: GET /__version__ answers it (the
// Dockerflow convention) and the keyserver_build_info metric carries it.
type VersionInfo struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
	Source  string `json:"source"`
}

// GET /__version__: the build, as JSON (Dockerflow).
func (s *Server) versionInfo(req *request) (any, error) {
	if err := noBody(req); err != nil {
		return nil, err
	}
	return s.cfg.Version, nil
}

// otherLabel is the label value of anything outside a metric's known
// values: an unmatched path, an unusual method.
const otherLabel = "other"

// metrics are the collectors of the HTTP edge, registered on
// Config.Metrics. Labels are route templates, methods, statuses, errnos,
// algorithms and fixed outcomes: never a uid, an email, an IP or a token id.
//
// Collectors of other layers register on the same registry: the Go and
// process collectors and the store's transaction durations and errors by
// durability class (internal/metrics). A new edge metric is a field here,
// registered in newMetrics and fed from observe (or, like the mail and
// rate-limit counts, from a decorator or callback set up in New).
type metrics struct {
	handler http.Handler // the exposition format of the whole registry

	requests         *prometheus.CounterVec   // route, method, status
	duration         *prometheus.HistogramVec // route
	errors           *prometheus.CounterVec   // errno
	signIns          *prometheus.CounterVec   // result
	certs            *prometheus.CounterVec   // algorithm
	shed             *prometheus.CounterVec   // route
	mails            *prometheus.CounterVec   // result
	refusals         *prometheus.CounterVec   // rule
	storeUnavailable prometheus.Counter
	certAlg          string // of the signer; "" without one
}

// newMetrics registers the edge's collectors on reg.
func newMetrics(reg *prometheus.Registry, cfg *Config) (*metrics, error) {
	m := &metrics{
		handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyserver_http_requests_total",
			Help: "HTTP requests answered, by route template (\"other\" when none matched), method and status.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "keyserver_http_request_duration_seconds",
			Help:    "Time from the request's arrival to the end of its answer, by route template.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyserver_errors_total",
			Help: "Error responses by errno (spec 1.5), requests whose client hung up excepted.",
		}, []string{"errno"}),
		signIns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyserver_signins_total",
			Help: "Sign-ins (POST /v1/auth/finish): succeeded (200) or failed (incorrect password, 400 errno 103).",
		}, []string{"result"}),
		certs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyserver_certificates_issued_total",
			Help: "Identity certificates issued, by the signing key's algorithm.",
		}, []string{"algorithm"}),
		shed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyserver_requests_shed_total",
			Help: "CPU-heavy requests answered 503 errno 201 because the queue was full, by route template.",
		}, []string{"route"}),
		mails: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyserver_mails_total",
			Help: "Mail handed to the mailer: sent, or failed.",
		}, []string{"result"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyserver_rate_limit_refusals_total",
			Help: "Requests refused by an abuse-protection rule (spec 14), by rule name (R1, R2, ...).",
		}, []string{"rule"}),
		storeUnavailable: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "keyserver_store_unavailable_total",
			Help: "Requests answered 503 errno 201 because the database could not serve.",
		}),
	}
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "keyserver_build_info",
		Help: "Always 1: the version and commit of the running keyserver and the Go version that built it.",
	}, []string{"version", "commit", "goversion"})
	build.WithLabelValues(cfg.Version.Version, cfg.Version.Commit, runtime.Version()).Set(1)

	for _, c := range []prometheus.Collector{m.requests, m.duration, m.errors, m.signIns, m.certs, m.shed, m.mails, m.refusals, m.storeUnavailable, build} {
		if err := reg.Register(c); err != nil {
			return nil, errors.Join(errors.New("registering metrics"), err)
		}
	}
	// Series that exist from the start, so that rates work from the first
	// event.
	m.signIns.WithLabelValues("succeeded")
	m.signIns.WithLabelValues("failed")
	m.mails.WithLabelValues("sent")
	m.mails.WithLabelValues("failed")
	rules := cfg.Limits
	if rules == nil {
		rules = customs.DefaultRules()
	}
	for _, r := range rules {
		m.refusals.WithLabelValues(r.Name)
	}
	if cfg.Signer != nil {
		m.certAlg = cfg.Signer.Algorithm()
		m.certs.WithLabelValues(m.certAlg)
	}
	return m, nil
}

// Route templates observe counts specially.
const (
	routeAuthFinish = "/v1/auth/finish"
	routeCertSign   = "/v1/certificate/sign"
)

// observe counts one answered request; routes is the router that served
// it (its route templates label the request).
func (m *metrics) observe(routes http.Handler, r *http.Request, status int, e *Error, elapsed time.Duration) {
	route := routeTemplate(routes, r)
	if status == 0 { // nothing written: net/http answers 200
		status = http.StatusOK
	}
	m.requests.WithLabelValues(route, methodLabel(r.Method), strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(route).Observe(elapsed.Seconds())
	switch {
	case route == routeAuthFinish && status == http.StatusOK:
		m.signIns.WithLabelValues("succeeded").Inc()
	case route == routeAuthFinish && e != nil && e.Errno == protocol.ErrnoIncorrectPassword:
		m.signIns.WithLabelValues("failed").Inc()
	case route == routeCertSign && status == http.StatusOK && m.certAlg != "":
		m.certs.WithLabelValues(m.certAlg).Inc()
	}
	if e == nil || e.Status == errClientGone.Status {
		return
	}
	m.errors.WithLabelValues(strconv.Itoa(e.Errno)).Inc()
	switch {
	case errors.Is(e, errOverloaded):
		m.shed.WithLabelValues(route).Inc()
	case errors.Is(e, store.ErrUnavailable):
		m.storeUnavailable.Inc()
	}
}

// routeMatcher is a router whose routes can be looked up without serving:
// *mux.Router.
type routeMatcher interface {
	Match(*http.Request, *mux.RouteMatch) bool
}

// routeTemplate is the path template of the route of routes that r
// matches ("/admin/v1/accounts/{uid}"), never the raw path: otherLabel
// when none does.
func routeTemplate(routes http.Handler, r *http.Request) string {
	rm, ok := routes.(routeMatcher)
	if !ok {
		return otherLabel
	}
	var match mux.RouteMatch
	if !rm.Match(r, &match) || match.MatchErr != nil || match.Route == nil {
		return otherLabel
	}
	t, err := match.Route.GetPathTemplate()
	if err != nil {
		return otherLabel
	}
	return t
}

// methodLabel keeps the method label to the methods HTTP defines.
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return method
	}
	return otherLabel
}

// countingMailer counts the messages its mailer sent and failed to send.
type countingMailer struct {
	accounts.Mailer
	sent, failed prometheus.Counter
}

func (m *metrics) countMail(mailer accounts.Mailer) accounts.Mailer {
	return countingMailer{Mailer: mailer, sent: m.mails.WithLabelValues("sent"), failed: m.mails.WithLabelValues("failed")}
}

func (c countingMailer) Send(ctx context.Context, msg *accounts.Message) error {
	err := c.Mailer.Send(ctx, msg)
	if err != nil {
		c.failed.Inc()
	} else {
		c.sent.Inc()
	}
	return err
}

// countRefusals is the Config.OnRefusal that counts a refusal by rule,
// then calls next (the caller's own, if any).
func (m *metrics) countRefusals(next func(rule string)) func(rule string) {
	return func(rule string) {
		m.refusals.WithLabelValues(rule).Inc()
		if next != nil {
			next(rule)
		}
	}
}

// MetricsHandler serves GET /metrics alone (404 for anything else), for a
// listener of its own that needs no admin token (serve --metrics-listen);
// nil when Config.Metrics is nil. The admin API serves the same at
// /metrics behind its token.
func (s *Server) MetricsHandler() http.Handler {
	if s.metrics == nil {
		return nil
	}
	r := mux.NewRouter().SkipClean(true)
	r.NotFoundHandler = http.HandlerFunc(s.notFound)
	r.MethodNotAllowedHandler = http.HandlerFunc(s.notFound)
	s.metricsRoute(r)
	return s.wrap(r, r, false)
}

// metricsRoute adds GET /metrics to r when metrics are on.
func (s *Server) metricsRoute(r *mux.Router) {
	if s.metrics != nil {
		r.Handle("/metrics", s.metrics.handler).Methods(http.MethodGet)
	}
}
