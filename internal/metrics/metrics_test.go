package metrics

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyserver/keyserver/store"
	"github.com/keyserver/keyserver/store/sqlstore"
)

func value(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, l := range m.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue metric
				}
			}
			switch {
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	return -1
}

// Transactions are timed and counted by class and result.
func TestStore(t *testing.T) {
	ctx := t.Context()
	raw, err := sqlstore.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "ks.db"), sqlstore.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	reg := NewRegistry()
	st, err := InstrumentStore(raw, reg)
	if err != nil {
		t.Fatal(err)
	}
	var _ store.Store = st

	ok := func(store.Queries) error { return nil }
	refused := errors.New("refused")
	if err := st.WithTx(ctx, ok); err != nil {
		t.Fatal(err)
	}
	if err := st.WithTx(store.Ephemeral(ctx), ok); err != nil {
		t.Fatal(err)
	}
	if err := st.WithTx(ctx, func(store.Queries) error { return refused }); !errors.Is(err, refused) {
		t.Fatal(err)
	}
	if err := st.WithTx(ctx, func(q store.Queries) error {
		_, err := q.AccountByUID(ctx, make([]byte, 16))
		return err
	}); !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	const name = "password.forgot.send_code:ip:2001:db8::1"
	now := time.Now()
	for i := range 3 {
		retry, err := st.Throttle(store.Ephemeral(ctx), name, now, time.Hour, 2)
		if err != nil || (retry > 0) != (i == 2) {
			t.Fatalf("throttle %d: %v %v", i, retry, err)
		}
	}

	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"keyserver_store_transactions_total", map[string]string{"class": "durable", "op": "tx", "result": "ok"}, 1},
		{"keyserver_store_transactions_total", map[string]string{"class": "ephemeral", "op": "tx", "result": "ok"}, 1},
		{"keyserver_store_transactions_total", map[string]string{"class": "durable", "op": "tx", "result": "aborted"}, 1},
		{"keyserver_store_transactions_total", map[string]string{"class": "durable", "op": "tx", "result": "not_found"}, 1},
		{"keyserver_store_transactions_total", map[string]string{"class": "ephemeral", "op": "throttle", "result": "ok"}, 3},
		{"keyserver_store_transaction_duration_seconds", map[string]string{"class": "durable", "op": "tx"}, 3},
		{"keyserver_store_transaction_duration_seconds", map[string]string{"class": "ephemeral", "op": "throttle"}, 3},
	} {
		if got := value(t, reg, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if value(t, reg, "go_goroutines", map[string]string{}) < 1 {
		t.Error("no Go collector")
	}

	st.Close()
	if err := st.WithTx(ctx, ok); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("closed store: %v", err)
	}
	if got := value(t, reg, "keyserver_store_transactions_total", map[string]string{"class": "durable", "op": "tx", "result": "unavailable"}); got != 1 {
		t.Errorf("unavailable = %v", got)
	}
	if _, err := InstrumentStore(raw, reg); err == nil {
		t.Error("registered twice on one registry")
	}
}
