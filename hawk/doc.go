// Package hawk implements Hawk request authentication as used by PICL v1 (protocol.md
// section 5): the header scheme "Hawk 1" exactly as implemented by the hawk@1.1.2 npm
// package of the historic server and client, restricted to the parts the protocol uses.
// Hawk is not an IETF standard; this package follows that implementation, not a
// specification document.
//
// What is implemented:
//
//   - Authorization header parsing ([ParseHeader]) with the strict rules of spec 5: the
//     attributes id, ts, nonce, hash, ext and mac only, each at most once, id, ts,
//     nonce and mac required, values non-empty printable ASCII without '"' or '\',
//     at most [MaxHeaderBytes]. The Oz attributes app and dlg are refused (spec C4).
//   - The normalized string "hawk.1.header\n" ts nonce METHOD resource host port hash
//     ext, each followed by "\n" ([Normalized]), its HMAC-SHA256 mac ([MAC],
//     [Header.VerifyMAC]) and the payload hash "hawk.1.payload\n" contentType body
//     ([PayloadHash], [VerifyPayload]); the algorithm is always sha256 and base64 is
//     standard with padding.
//   - Client-side signing ([Sign], [NewNonce]) producing the header exactly as hawk
//     1.1.2's client does, and the timestamp MAC of the optional WWW-Authenticate
//     response ([TimestampMAC], [StaleTimestampHeader]).
//   - The host and port of the normalized string, derived from the server's public
//     URL (an http(s) origin) by server and client alike ([ParseOrigin]).
//
// Not implemented: Server-Authorization responses, bewit (URL) authentication, Oz
// (app/dlg) and the ext escaping of hawk's client (a '\' or newline cannot appear in a
// valid header value anyway). Token lookup, timestamp skew and nonce replay checks are
// the caller's (spec 5, D9); the package is pure: no I/O, clock or randomness of its
// own.
package hawk
