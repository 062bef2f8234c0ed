package client

import (
	"context"
	"encoding/hex"
	"net/http"
	"net/url"
	"strconv"

	"github.com/keyserver/keyserver/protocol"
)

// Admin is a client of the admin API (spec 10), which listens on its own
// address and authenticates with a bearer token. uids and device ids are
// hex strings. It is safe for concurrent use.
type Admin struct {
	c     *Client
	token string // never logged or put into errors
}

// NewAdmin returns a client of the admin API at baseURL (an origin such as
// http://127.0.0.1:9001) using token.
func NewAdmin(baseURL, token string, opts ...Option) (*Admin, error) {
	c, err := New(baseURL, opts...)
	if err != nil {
		return nil, err
	}
	return &Admin{c: c, token: token}, nil
}

// AuditQuery selects audit events; zero values are the server's defaults.
// The next page of a truncated answer repeats the query with Since and
// After set to the Time and ID of its last event (see AuditPage.Next).
type AuditQuery struct {
	UID   string
	Since int64 // ms
	After string
	Limit int // 1 to 1000
}

// AuditPage is one answer of /admin/v1/audit.
type AuditPage struct {
	Events    []protocol.AuditEvent `json:"events"`
	Truncated bool                  `json:"truncated"`
}

// Next returns the query of the page after p, or nil when p is the last.
func (p *AuditPage) Next(q AuditQuery) *AuditQuery {
	if !p.Truncated || len(p.Events) == 0 {
		return nil
	}
	last := p.Events[len(p.Events)-1]
	q.Since, q.After = last.Time, last.ID
	return &q
}

func (a *Admin) do(ctx context.Context, method, path string, out any) error {
	req := &RawRequest{Method: method, Path: path, Header: http.Header{"Authorization": {"Bearer " + a.token}}}
	_, err := a.c.DoRaw(ctx, req, out)
	return err
}

func accountPath(uid string) string { return "/admin/v1/accounts/" + url.PathEscape(uid) }

// AccountsByEmail looks accounts up by email (case-insensitively, spec
// 1.3): none or one.
func (a *Admin) AccountsByEmail(ctx context.Context, email string) ([]protocol.AdminAccount, error) {
	var resp struct {
		Accounts []protocol.AdminAccount `json:"accounts"`
	}
	q := url.Values{"email": {hex.EncodeToString([]byte(email))}}
	err := a.do(ctx, http.MethodGet, "/admin/v1/accounts?"+q.Encode(), &resp)
	return resp.Accounts, err
}

// Account returns the record of uid.
func (a *Admin) Account(ctx context.Context, uid string) (*protocol.AdminAccount, error) {
	var acct protocol.AdminAccount
	if err := a.do(ctx, http.MethodGet, accountPath(uid), &acct); err != nil {
		return nil, err
	}
	return &acct, nil
}

// Devices lists the account's devices (IsCurrentDevice is nil: spec 10.2).
func (a *Admin) Devices(ctx context.Context, uid string) ([]protocol.Device, error) {
	var resp struct {
		Devices []protocol.Device `json:"devices"`
	}
	err := a.do(ctx, http.MethodGet, accountPath(uid)+"/devices", &resp)
	return resp.Devices, err
}

// RevokeDevice deletes a device of the account with its session and
// pending key fetches.
func (a *Admin) RevokeDevice(ctx context.Context, uid, deviceID string) error {
	return a.do(ctx, http.MethodPost, accountPath(uid)+"/devices/"+url.PathEscape(deviceID)+"/revoke", nil)
}

// RevokeSessions deletes every token and device of the account.
func (a *Admin) RevokeSessions(ctx context.Context, uid string) error {
	return a.do(ctx, http.MethodPost, accountPath(uid)+"/sessions/revoke", nil)
}

// Disable marks the account disabled: sign-in and every token of it are
// refused (errno 127) until Enable.
func (a *Admin) Disable(ctx context.Context, uid string) error {
	return a.do(ctx, http.MethodPost, accountPath(uid)+"/disable", nil)
}

// Enable clears the disabled mark.
func (a *Admin) Enable(ctx context.Context, uid string) error {
	return a.do(ctx, http.MethodPost, accountPath(uid)+"/enable", nil)
}

// Block is a count that refuses requests now (spec 14.4).
type Block struct {
	Rule string `json:"rule"`
	Key  struct {
		UID  string `json:"uid,omitempty"`
		IP   string `json:"ip,omitempty"`
		Fold string `json:"fold,omitempty"` // hex of the email fold
	} `json:"key"`
	Count     int   `json:"count"`
	UntilTime int64 `json:"untilTime"` // ms
}

func blockQuery(v url.Values, uid, ip string) string {
	if uid != "" {
		v.Set("uid", uid)
	}
	if ip != "" {
		v.Set("ip", ip)
	}
	if len(v) == 0 {
		return ""
	}
	return "?" + v.Encode()
}

// Blocks lists the blocks of the account uid and/or the ip ("" for any).
func (a *Admin) Blocks(ctx context.Context, uid, ip string) ([]Block, error) {
	var resp struct {
		Blocks []Block `json:"blocks"`
	}
	err := a.do(ctx, http.MethodGet, "/admin/v1/blocks"+blockQuery(url.Values{}, uid, ip), &resp)
	return resp.Blocks, err
}

// ClearBlocks clears the counts of rule ("" every rule; "R8" both of R8's
// limits) for the account uid and/or the ip (at least one).
func (a *Admin) ClearBlocks(ctx context.Context, rule, uid, ip string) error {
	v := url.Values{}
	if rule != "" {
		v.Set("rule", rule)
	}
	return a.do(ctx, http.MethodPost, "/admin/v1/blocks/clear"+blockQuery(v, uid, ip), nil)
}

// Audit returns one page of audit events.
func (a *Admin) Audit(ctx context.Context, q AuditQuery) (*AuditPage, error) {
	v := url.Values{}
	if q.UID != "" {
		v.Set("uid", q.UID)
	}
	if q.Since != 0 {
		v.Set("since", strconv.FormatInt(q.Since, 10))
	}
	if q.After != "" {
		v.Set("after", q.After)
	}
	if q.Limit != 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	path := "/admin/v1/audit"
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	var page AuditPage
	if err := a.do(ctx, http.MethodGet, path, &page); err != nil {
		return nil, err
	}
	return &page, nil
}
