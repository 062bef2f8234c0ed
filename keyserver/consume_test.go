package keyserver_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/keyserver/keyserver/client"
	"github.com/keyserver/keyserver/keyserver"
	"github.com/keyserver/keyserver/store"
	"github.com/keyserver/keyserver/store/sqlstore"
)

// eventFailStore fails every audit write inside a transaction while failing
// is set, as a database failing mid-request would.
type eventFailStore struct {
	store.Store
	failing atomic.Bool
}

func (s *eventFailStore) WithTx(ctx context.Context, fn func(q store.Queries) error) error {
	return s.Store.WithTx(ctx, func(q store.Queries) error { return fn(eventFailQueries{q, s}) })
}

type eventFailQueries struct {
	store.Queries
	s *eventFailStore
}

func (q eventFailQueries) AppendEvent(ctx context.Context, e *store.Event) error {
	if q.s.failing.Load() {
		return errors.New("injected failure")
	}
	return q.Queries.AppendEvent(ctx, e)
}

// A consuming endpoint's writes share the consumption's transaction: a
// server error rolls the consumption back (the token still works), a client
// error (104) commits it (D2).
func TestConsumptionSharesTheHandlersTransaction(t *testing.T) {
	ctx := t.Context()
	st, err := sqlstore.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "ks.db"), sqlstore.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	fs := &eventFailStore{Store: st}
	ts := httptest.NewUnstartedServer(nil)
	url := "http://" + ts.Listener.Addr().String()
	srv, err := keyserver.New(keyserver.Config{PublicURL: url, Dev: true, Mailer: discardMailer{}}, fs)
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = srv.Handler()
	ts.Start()
	defer ts.Close()
	c, err := client.New(url, client.WithStretching(cheap))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateAccount(ctx, "tx@example.org", "pw", client.CreateOptions{PreVerified: true}); err != nil {
		t.Fatal(err)
	}
	sess, err := c.Login(ctx, "tx@example.org", "pw")
	if err != nil {
		t.Fatal(err)
	}

	fs.failing.Store(true)
	_, err = c.Keys(ctx, sess.KeyFetchToken, sess.UnwrapBKey)
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != 500 {
		t.Fatalf("keys with a failing audit write: %v, want 500", err)
	}
	fs.failing.Store(false)
	if _, err := c.Keys(ctx, sess.KeyFetchToken, sess.UnwrapBKey); err != nil {
		t.Fatalf("keyFetchToken burnt by a server error: %v", err)
	}

	if _, err := c.CreateAccount(ctx, "unverified@example.org", "pw", client.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	u, err := c.Login(ctx, "unverified@example.org", "pw")
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Keys(ctx, u.KeyFetchToken, u.UnwrapBKey)
	wantErrno(t, "keys of an unverified account", err, 104)
	_, err = c.Keys(ctx, u.KeyFetchToken, u.UnwrapBKey)
	wantErrno(t, "keyFetchToken after a 104", err, 110)
}
