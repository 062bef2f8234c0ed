// Package e2e holds end-to-end tests: they build ./cmd/keyserver, start
// `keyserver serve` on 127.0.0.1:0 against SQLite and PostgreSQL, and drive
// whole flows over HTTP with the Go client.
package e2e
