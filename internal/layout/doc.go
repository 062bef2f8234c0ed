// Package layout holds no code: its test enforces the dependency rules of
// the project's architecture (shared/design.md, "Layout") on every package
// of the module, from the import graph that `go list -deps` reports.
//
//   - srp, keywrap, hawk, certs, sealing and protocol are pure: they import
//     nothing from the project and neither net/http, database/sql, os, log
//     nor log/slog.
//   - store declares the storage interface and imports no SQL driver.
//   - keyserver, the HTTP edge, imports neither store/sqlstore, an SQL
//     driver, database/sql/driver, the project's mail package nor an SMTP
//     library: it sees the store and the mailer through interfaces.
//   - client imports only protocol, srp, keywrap and hawk from the project.
//   - accounts imports neither net/http nor an SQL driver, and neither
//     store/sqlstore nor mail: it works on the store interface and declares
//     the mailer interface that mail implements.
//
// A package is held to a rule through everything it imports: a forbidden
// package may appear neither among its own imports nor among those of any
// non-standard package it depends on (the standard library's own imports,
// such as crypto/rand's of os, are not the project's choice). Test files
// are not covered: tests may do I/O.
package layout
