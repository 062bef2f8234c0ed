package sqlstore

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/jmoiron/sqlx"
)

// stmtCache holds a Store's prepared statements by query text (before
// Rebind: one Store has one dialect). database/sql prepares a statement on
// each connection the first time it runs there, also on the connection that
// replaces a broken one.
type stmtCache struct {
	db       *sqlx.DB
	m        sync.Map     // query → *sqlx.Stmt
	prepared atomic.Int64 // statements prepared on the pool, for tests
	closed   atomic.Bool  // set by Store.Close: every later error is ErrUnavailable
}

// get returns the statement for query, prepared on the pool on first use.
func (c *stmtCache) get(ctx context.Context, query string) (*sqlx.Stmt, error) {
	if st, ok := c.m.Load(query); ok {
		return st.(*sqlx.Stmt), nil
	}
	st, err := c.db.PreparexContext(ctx, c.db.Rebind(query))
	if err != nil {
		return nil, err
	}
	c.prepared.Add(1)
	if prev, loaded := c.m.LoadOrStore(query, st); loaded {
		st.Close() // a concurrent get won
		return prev.(*sqlx.Stmt), nil
	}
	return st, nil
}

// close closes the cached statements.
func (c *stmtCache) close() {
	c.m.Range(func(query, st any) bool {
		st.(*sqlx.Stmt).Close()
		c.m.Delete(query)
		return true
	})
}
