// Package pgtest gives tests a fresh, empty PostgreSQL schema.
//
// The server is named by the environment variable KEYSERVER_TEST_POSTGRES, a
// postgres:// URL such as
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable. When it is unset
// the PostgreSQL tests are skipped, except under CI=true where that is a
// failure; a configured server that does not answer is always a failure.
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	_ "github.com/lib/pq" // registers the "postgres" driver
)

// EnvVar names the environment variable holding the base DSN.
const EnvVar = "KEYSERVER_TEST_POSTGRES"

// DSN creates a schema kstest_<random hex> on the configured server and
// returns a DSN whose search_path is that schema (lib/pq sends unknown URL
// parameters as run-time parameters). The schema is dropped with everything
// in it when the test ends; close every connection to it before then.
func DSN(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvVar)
	if base == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but %s is not set", EnvVar)
		}
		t.Skipf("%s is not set; skipping PostgreSQL tests", EnvVar)
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		// The value may hold a password: do not print it.
		t.Fatalf("%s is not a postgres:// URL", EnvVar)
	}

	db, err := sql.Open("postgres", base)
	if err != nil {
		t.Fatalf("pgtest: %s (%s): %v", EnvVar, u.Redacted(), err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		t.Fatalf("pgtest: PostgreSQL at %s does not answer: %v", u.Redacted(), err)
	}

	var suffix [8]byte
	_, _ = rand.Read(suffix[:]) // crypto/rand.Read never fails
	schema := "kstest_" + hex.EncodeToString(suffix[:])
	if _, err := db.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		db.Close()
		t.Fatalf("pgtest: creating schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("pgtest: dropping schema %s: %v", schema, err)
		}
	})

	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	t.Logf("PostgreSQL tests on %s, schema %s", u.Redacted(), schema)
	return u.String()
}
