package keyserver

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gorilla/mux"

	"github.com/keyserver/keyserver/accounts"
	"github.com/keyserver/keyserver/protocol"
	"github.com/keyserver/keyserver/store"
)

// MinAdminTokenLength is the shortest admin token accepted (spec 10.1).
const MinAdminTokenLength = 32

// Audit paging limits of spec 10.4.
const (
	auditDefaultLimit = 1000
	auditMaxLimit     = 1000
)

// AdminHandler returns the admin API (spec 10, D14, C18), to be served on
// its own listener, never the public one. Every request must carry
// "Authorization: Bearer <token>"; anything else gets 401/110 before routing,
// so unauthenticated callers learn nothing about paths. token must have at
// least MinAdminTokenLength characters. The API can neither read kA, wrapKb
// or the verifier nor set a password.
func (s *Server) AdminHandler(token []byte) (http.Handler, error) {
	if !utf8.Valid(token) || utf8.RuneCount(token) < MinAdminTokenLength {
		return nil, fmt.Errorf("admin token must be at least %d characters", MinAdminTokenLength)
	}
	want := sha256.Sum256(token)
	routes := s.adminRoutes()
	return s.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !adminTokenOK(r.Header.Values("Authorization"), want) {
			writeError(w, r, errAdminToken())
			return
		}
		routes.ServeHTTP(w, r)
	}), routes, false), nil
}

// adminTokenOK compares the bearer token with the wanted one in constant
// time; hashing first hides the length too.
func adminTokenOK(values []string, want [sha256.Size]byte) bool {
	if len(values) != 1 {
		return false
	}
	scheme, token, ok := strings.Cut(values[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	got := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

// adminRoutes declares the whole admin API (spec 10.2).
func (s *Server) adminRoutes() http.Handler {
	r := mux.NewRouter().SkipClean(true)
	r.NotFoundHandler = http.HandlerFunc(s.notFound)
	r.MethodNotAllowedHandler = http.HandlerFunc(s.notFound)

	get, post := http.MethodGet, http.MethodPost
	const account = "/admin/v1/accounts/{uid}"
	r.Handle("/admin/v1/accounts", s.open(s.adminAccounts)).Methods(get)
	r.Handle(account, s.open(s.adminAccount)).Methods(get)
	r.Handle(account+"/devices", s.open(s.adminDevices)).Methods(get)
	r.Handle(account+"/devices/{deviceId}/revoke", s.open(s.adminRevokeDevice)).Methods(post)
	r.Handle(account+"/sessions/revoke", s.open(s.adminRevokeSessions)).Methods(post)
	r.Handle(account+"/disable", s.open(s.adminSetDisabled(true))).Methods(post)
	r.Handle(account+"/enable", s.open(s.adminSetDisabled(false))).Methods(post)
	r.Handle("/admin/v1/audit", s.open(s.adminAudit)).Methods(get)
	r.Handle("/admin/v1/blocks", s.open(s.adminBlocks)).Methods(get) // customs.go
	r.Handle("/admin/v1/blocks/clear", s.open(s.adminClearBlocks)).Methods(post)
	s.metricsRoute(r) // GET /metrics with Config.Metrics (metrics.go)
	return r
}

func adminRecordOut(rec *accounts.AccountRecord) *protocol.AdminAccount {
	a := rec.Account
	return &protocol.AdminAccount{
		UID: hexString(a.UID), Email: hexString([]byte(a.Email)), Verified: a.Verified, Disabled: a.Disabled,
		CreatedAt: a.CreatedAt.UnixMilli(), Generation: a.Generation.UnixMilli(),
		SessionCount: rec.Sessions, DeviceCount: rec.Devices, HasRecoveryKey: rec.HasRecoveryKey,
	}
}

// pathHex32 returns the path parameter name, which must be hex32 (400/107
// with that name otherwise, whose message says it is a path parameter).
func pathHex32(r *http.Request, name string) ([]byte, error) {
	b, ok := decodeHex(mux.Vars(r)[name], 16)
	if !ok {
		return nil, errInvalidPathParam(name)
	}
	return b, nil
}

// invalidPathParamMessage replaces protocol.Messages' "Invalid parameter
// in request body: " of a 400/107 for a path parameter.
const invalidPathParamMessage = "Invalid path parameter: "

// errInvalidPathParam is the 400/107 of a bad path parameter: the errno,
// status and param of errInvalidParam, a message naming the path.
func errInvalidPathParam(name string) *Error {
	e := refusal(accounts.InvalidParam(name))
	e.Message = invalidPathParamMessage + name
	return e
}

// adminTarget checks that the request has no body (an empty one or {})
// and that the path parameters are hex32 (a deviceId too, before any
// lookup: spec 1.6), and returns the uid path parameter. The rules answer
// 102 when there is no such account.
func adminTarget(req *request) ([]byte, error) {
	if err := noBody(req); err != nil {
		return nil, err
	}
	uid, err := pathHex32(req.r, "uid")
	if err != nil {
		return nil, err
	}
	if _, ok := mux.Vars(req.r)["deviceId"]; ok {
		if _, err := pathHex32(req.r, "deviceId"); err != nil {
			return nil, err
		}
	}
	return uid, nil
}

// GET /admin/v1/accounts?email=<hex>: lookup by fold.
func (s *Server) adminAccounts(req *request) (any, error) {
	if err := noBody(req); err != nil {
		return nil, err
	}
	v, ok, err := queryValue(req.r.URL.Query(), "email")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errMissingParam("email")
	}
	email, valid := decodeHex(v, -1)
	if !valid || !validEmail(email) {
		return nil, errInvalidParam("email")
	}
	recs, err := s.accounts.AdminFind(req.r.Context(), string(email))
	if err != nil {
		return nil, err
	}
	out := []*protocol.AdminAccount{}
	for _, rec := range recs {
		out = append(out, adminRecordOut(rec))
	}
	return map[string][]*protocol.AdminAccount{"accounts": out}, nil
}

// GET /admin/v1/accounts/{uid}.
func (s *Server) adminAccount(req *request) (any, error) {
	uid, err := adminTarget(req)
	if err != nil {
		return nil, err
	}
	rec, err := s.accounts.AdminAccount(req.r.Context(), uid)
	if err != nil {
		return nil, err
	}
	return adminRecordOut(rec), nil
}

// GET /admin/v1/accounts/{uid}/devices: records without isCurrentDevice.
func (s *Server) adminDevices(req *request) (any, error) {
	uid, err := adminTarget(req)
	if err != nil {
		return nil, err
	}
	ds, err := s.accounts.AdminDevices(req.r.Context(), uid)
	if err != nil {
		return nil, err
	}
	out := make([]protocol.Device, len(ds))
	for i := range ds {
		out[i] = deviceOut(&ds[i], nil)
	}
	return map[string][]protocol.Device{"devices": out}, nil
}

// POST /admin/v1/accounts/{uid}/devices/{deviceId}/revoke: as
// /v1/account/device/destroy.
func (s *Server) adminRevokeDevice(req *request) (any, error) {
	uid, err := adminTarget(req)
	if err != nil {
		return nil, err
	}
	id, err := pathHex32(req.r, "deviceId")
	if err != nil {
		return nil, err
	}
	return emptyObject, s.accounts.AdminRevokeDevice(req.r.Context(), req.caller, uid, id)
}

// POST /admin/v1/accounts/{uid}/sessions/revoke: every token and device of
// the account.
func (s *Server) adminRevokeSessions(req *request) (any, error) {
	uid, err := adminTarget(req)
	if err != nil {
		return nil, err
	}
	return emptyObject, s.accounts.AdminRevokeSessions(req.r.Context(), req.caller, uid)
}

// POST /admin/v1/accounts/{uid}/disable and /enable (idempotent; spec 10.3).
func (s *Server) adminSetDisabled(disabled bool) handlerFunc {
	return func(req *request) (any, error) {
		uid, err := adminTarget(req)
		if err != nil {
			return nil, err
		}
		return emptyObject, s.accounts.AdminSetDisabled(req.r.Context(), req.caller, uid, disabled)
	}
}

// GET /admin/v1/audit?uid=&since=&after=&limit= (spec 10.4): events with
// time >= since ordered by (time, id), after the event (since, after) when
// after is given; truncated when more than limit match.
func (s *Server) adminAudit(req *request) (any, error) {
	if err := noBody(req); err != nil {
		return nil, err
	}
	q := req.r.URL.Query()
	uid, err := queryHex32(q, "uid")
	if err != nil {
		return nil, err
	}
	since, err := queryInt(q, "since", 0, 0, 1<<62)
	if err != nil {
		return nil, err
	}
	after, err := queryHex32(q, "after")
	if err != nil {
		return nil, err
	}
	limit, err := queryInt(q, "limit", auditDefaultLimit, 1, auditMaxLimit)
	if err != nil {
		return nil, err
	}
	es, err := s.accounts.Audit(req.r.Context(), store.EventQuery{
		UID: uid, Since: time.UnixMilli(since), After: after, Limit: int(limit) + 1,
	})
	if err != nil {
		return nil, err
	}
	truncated := len(es) > int(limit)
	if truncated {
		es = es[:limit]
	}
	out := make([]protocol.AuditEvent, len(es))
	for i, e := range es {
		details := json.RawMessage(e.Details)
		if !json.Valid(details) {
			details = json.RawMessage("{}")
		}
		out[i] = protocol.AuditEvent{
			ID: hexString(e.ID), Time: e.Time.UnixMilli(), Actor: e.Actor, Action: e.Action, Outcome: e.Outcome,
			UID: nullHex(e.UID), DeviceID: nullHex(e.DeviceID), SessionID: nullHex(e.SessionID), IP: e.IP, Details: details,
		}
	}
	return struct {
		Events    []protocol.AuditEvent `json:"events"`
		Truncated bool                  `json:"truncated"`
	}{out, truncated}, nil
}

// queryValue returns the query parameter name when it is given; given more
// than once it is 400/107 (spec 1.2).
func queryValue(q url.Values, name string) (string, bool, error) {
	vs, ok := q[name]
	switch {
	case !ok:
		return "", false, nil
	case len(vs) != 1:
		return "", true, errInvalidParam(name)
	}
	return vs[0], true, nil
}

// queryHex32 returns an optional hex32 query parameter (nil when absent).
func queryHex32(q url.Values, name string) ([]byte, error) {
	v, ok, err := queryValue(q, name)
	if err != nil || !ok {
		return nil, err
	}
	b, valid := decodeHex(v, 16)
	if !valid {
		return nil, errInvalidParam(name)
	}
	return b, nil
}

// queryInt returns an optional decimal integer query parameter in
// [lo, hi], def when absent.
func queryInt(q url.Values, name string, def, lo, hi int64) (int64, error) {
	v, ok, err := queryValue(q, name)
	if err != nil || !ok {
		return def, err
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if !integerRE.MatchString(v) || err != nil || n < lo || n > hi {
		return 0, errInvalidParam(name)
	}
	return n, nil
}
