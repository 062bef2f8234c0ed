package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/lib/pq"
	"github.com/lib/pq/pqerror"

	"github.com/keyserver/keyserver/migrations"
	"github.com/keyserver/keyserver/store"
)

// TestMapErr checks the mapping on the errors drivers and database/sql
// return: the sentinel it adds, and that the cause stays in the chain.
func TestMapErr(t *testing.T) {
	live := context.Background()
	canceled, cancel := context.WithCancel(live)
	cancel()
	expired, cancel := context.WithDeadline(live, time.Now().Add(-time.Second))
	defer cancel()
	queryCanceled := &pq.Error{Code: pqerror.QueryCanceled} // 57014, also statement_timeout
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	other := errors.New("sql: something else")

	for _, c := range []struct {
		name   string
		ctx    context.Context
		closed bool
		err    error
		want   []error // each must be in the chain
		not    []error // none may be
	}{
		{"no rows", live, false, sql.ErrNoRows, []error{store.ErrNotFound}, nil},
		{"network", live, false, refused, []error{store.ErrUnavailable, refused}, nil},
		{"bad conn", live, false, driver.ErrBadConn, []error{store.ErrUnavailable, driver.ErrBadConn}, nil},
		{"conn done", live, false, sql.ErrConnDone, []error{store.ErrUnavailable, sql.ErrConnDone}, nil},
		{"deadline", live, false, context.DeadlineExceeded, []error{store.ErrUnavailable, context.DeadlineExceeded}, nil},
		{"statement timeout", live, false, queryCanceled, []error{store.ErrUnavailable, queryCanceled}, nil},
		{"other", live, false, other, []error{other}, []error{store.ErrUnavailable, store.ErrNotFound, store.ErrConflict}},
		{"other, store closed", live, true, other, []error{store.ErrUnavailable, other}, nil},
		{"canceled", live, false, context.Canceled, []error{context.Canceled}, []error{store.ErrUnavailable}},
		{"canceled mid-query", canceled, false, queryCanceled, []error{context.Canceled, queryCanceled}, []error{store.ErrUnavailable}},
		{"canceled dial", canceled, false, refused, []error{context.Canceled, refused}, []error{store.ErrUnavailable}},
		{"canceled, store closed", canceled, true, other, []error{context.Canceled}, []error{store.ErrUnavailable}},
		{"expired mid-query", expired, false, queryCanceled, []error{store.ErrUnavailable, context.DeadlineExceeded, queryCanceled}, nil},
		{"expired, other", expired, false, other, []error{store.ErrUnavailable, context.DeadlineExceeded, other}, nil},
		{"conflict, canceled", canceled, false, &pq.Error{Code: pqerror.UniqueViolation}, []error{store.ErrConflict}, []error{context.Canceled}},
	} {
		err := mapErr(c.ctx, postgresDialect, c.closed, "op", c.err)
		if !strings.HasPrefix(err.Error(), "sqlstore: op: ") {
			t.Errorf("%s: %q does not name the operation", c.name, err)
		}
		for _, w := range c.want {
			if !errors.Is(err, w) {
				t.Errorf("%s: %v is not %v", c.name, err, w)
			}
		}
		for _, n := range c.not {
			if errors.Is(err, n) {
				t.Errorf("%s: %v is %v", c.name, err, n)
			}
		}
	}
}

// TestQueryContextEnds ends the context of a query that the database is
// running: a cancellation is context.Canceled, a deadline ErrUnavailable,
// whatever error the driver makes of it; the store goes on working.
func TestQueryContextEnds(t *testing.T) {
	slow := map[string]string{
		migrations.SQLite:   "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c",
		migrations.Postgres: "SELECT 1 FROM pg_sleep(30)",
	}
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			s := mustOpen(t, d.dsn(t), Options{Migrate: true})
			run := func(ctx context.Context) error {
				var n int64
				return s.fail(ctx, "slow", s.row(ctx, slow[d.name]).Scan(&n))
			}

			ctx, cancel := context.WithCancel(t.Context())
			time.AfterFunc(100*time.Millisecond, cancel)
			if err := run(ctx); !errors.Is(err, context.Canceled) || errors.Is(err, store.ErrUnavailable) {
				t.Errorf("query canceled while running: %v; want context.Canceled, not ErrUnavailable", err)
			}

			ctx, cancel = context.WithTimeout(t.Context(), 100*time.Millisecond)
			defer cancel()
			if err := run(ctx); !errors.Is(err, store.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("query past its deadline: %v; want ErrUnavailable and context.DeadlineExceeded", err)
			}

			if _, err := s.AccountByUID(t.Context(), rnd(16)); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("AccountByUID afterwards: %v; want ErrNotFound", err)
			}
		})
	}
}

// An unreachable PostgreSQL at Open is ErrUnavailable, and the error holds
// no password.
func TestOpenUnreachable(t *testing.T) {
	_, err := Open(t.Context(), "postgres://user:s3cret@127.0.0.1:1/db?sslmode=disable&connect_timeout=5", Options{})
	if !errors.Is(err, store.ErrUnavailable) || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("Open(unreachable postgres) = %v; want ErrUnavailable without the password", err)
	}
}
