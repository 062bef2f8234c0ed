// Package protocol is the wire vocabulary of the PICL key server
// (../shared/spec/protocol.md) shared by the server, the Go client and the
// tests: the errno table of spec 1.5 with its messages, the token-type
// names of spec 4.1, and the JSON shapes both sides read and write (device
// record, audit events, the passwordStretching and srp objects, the error
// body).
//
// It is a pure leaf: it imports nothing from the project and does no I/O.
package protocol
