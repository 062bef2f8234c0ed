// Package metrics holds the Prometheus instrumentation that is not the HTTP
// edge's (that is in package keyserver, metrics.go): the registry of a
// keyserver process, with the Go runtime and process collectors, and a
// store.Store decorator that times and counts transactions by durability
// class. (Rate-limit refusals by rule are counted by the edge, from
// keyserver.Config.OnRefusal.)
//
// Nothing here registers on the global registry: each server (and each
// test) has its own, passed to keyserver.Config.Metrics. No label carries a
// uid, an email, an IP or a token id.
package metrics

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/keyserver/keyserver/store"
)

// NewRegistry returns a registry with the standard Go runtime and process
// collectors (go_*, process_*).
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Durability classes as labels (see package store).
const (
	ClassDurable   = "durable"
	ClassEphemeral = "ephemeral"
)

// Store is a store.Store whose transactions (WithTx, and the one Throttle
// runs) are timed and counted by durability class, operation and result.
// Every other method is the wrapped store's.
type Store struct {
	store.Store
	duration *prometheus.HistogramVec // class, op
	total    *prometheus.CounterVec   // class, op, result
}

// Operations as labels.
const (
	opTx       = "tx"
	opThrottle = "throttle"
)

// InstrumentStore registers the store metrics on reg and returns st
// instrumented.
func InstrumentStore(st store.Store, reg prometheus.Registerer) (*Store, error) {
	s := &Store{
		Store: st,
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "keyserver_store_transaction_duration_seconds",
			Help:    "Duration of database transactions (op tx: WithTx; op throttle: a rate-limit count), by durability class.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"class", "op"}),
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyserver_store_transactions_total",
			Help: "Database transactions by durability class, op and result: ok, unavailable, conflict, not_found, canceled, or aborted (rolled back on an error of the caller, such as a refusal).",
		}, []string{"class", "op", "result"}),
	}
	for _, c := range []prometheus.Collector{s.duration, s.total} {
		if err := reg.Register(c); err != nil {
			return nil, errors.Join(errors.New("registering store metrics"), err)
		}
	}
	for _, class := range []string{ClassDurable, ClassEphemeral} {
		s.total.WithLabelValues(class, opTx, "ok")
	}
	return s, nil
}

// WithTx implements store.Store.
func (s *Store) WithTx(ctx context.Context, fn func(q store.Queries) error) error {
	start := time.Now()
	err := s.Store.WithTx(ctx, fn)
	s.observe(ctx, opTx, start, err)
	return err
}

// Throttle implements store.Store.
func (s *Store) Throttle(ctx context.Context, name string, now time.Time, window time.Duration, limit int) (time.Duration, error) {
	start := time.Now()
	retry, err := s.Store.Throttle(ctx, name, now, window, limit)
	s.observe(ctx, opThrottle, start, err)
	return retry, err
}

func (s *Store) observe(ctx context.Context, op string, start time.Time, err error) {
	class := ClassDurable
	if store.IsEphemeral(ctx) {
		class = ClassEphemeral
	}
	s.duration.WithLabelValues(class, op).Observe(time.Since(start).Seconds())
	s.total.WithLabelValues(class, op, result(err)).Inc()
}

func result(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, store.ErrUnavailable):
		return "unavailable"
	case errors.Is(err, store.ErrConflict):
		return "conflict"
	case errors.Is(err, store.ErrNotFound):
		return "not_found"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "canceled"
	}
	return "aborted"
}
