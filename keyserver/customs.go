package keyserver

import (
	"context"
	"net/netip"
	"net/url"
	"time"

	"github.com/keyserver/keyserver/customs"
	"github.com/keyserver/keyserver/store"
)

// Abuse protection at the edge (spec 14): the unblock-code endpoint and the
// admin view of the blocks. The rules themselves run in package accounts.

// POST /v1/account/login/send_unblock_code (spec 14.3): R9 per ip comes
// before the body.
func (s *Server) sendUnblockCode(req *request) (any, error) {
	ctx := req.r.Context()
	if err := s.accounts.Throttle(ctx, req.caller, customs.UnblockSendIP); err != nil {
		return nil, err
	}
	email, err := emailBody(req)
	if err != nil {
		return nil, err
	}
	return emptyObject, s.accounts.SendUnblockCode(ctx, req.caller, email)
}

// blockKey is the key of a block in the admin API: the account's uid when
// there is one, the ip (an IPv4 address or an IPv6 /64) and the fold (hex,
// as emails on the wire) where the rule has them.
type blockKey struct {
	UID  string `json:"uid,omitempty"`
	IP   string `json:"ip,omitempty"`
	Fold string `json:"fold,omitempty"`
}

type blockOut struct {
	Rule      string   `json:"rule"`
	Key       blockKey `json:"key"`
	Count     int      `json:"count"`
	UntilTime int64    `json:"untilTime"`
}

// blockQuery reads the ip and uid query parameters of the block
// endpoints: uid hex32, ip an IP address (or an IPv6 /64 as the API shows
// it), 400/107 otherwise.
func blockQuery(q url.Values) (uid []byte, ip string, err error) {
	if uid, err = queryHex32(q, "uid"); err != nil {
		return nil, "", err
	}
	v, given, err := queryValue(q, "ip")
	if err != nil || !given {
		return uid, "", err
	}
	if a, err := netip.ParseAddr(v); err == nil {
		return uid, a.String(), nil
	}
	if p, err := netip.ParsePrefix(v); err == nil && p.Addr().Is6() && p.Bits() == 64 {
		return uid, p.Addr().String(), nil
	}
	return nil, "", errInvalidParam("ip")
}

// GET /admin/v1/blocks?ip=&uid= (spec 14.4): the counts that refuse
// requests now.
func (s *Server) adminBlocks(req *request) (any, error) {
	if err := noBody(req); err != nil {
		return nil, err
	}
	uid, ip, err := blockQuery(req.r.URL.Query())
	if err != nil {
		return nil, err
	}
	bs, err := s.accounts.AdminBlocks(req.r.Context(), uid, ip)
	if err != nil {
		return nil, err
	}
	out := make([]blockOut, len(bs))
	for i, b := range bs {
		out[i] = blockOut{Rule: b.Rule, Count: b.Count, UntilTime: b.Until.UnixMilli(),
			Key: blockKey{UID: hexString(b.UID), IP: b.Key.IP, Fold: hexString([]byte(b.Key.Fold))}}
	}
	return map[string][]blockOut{"blocks": out}, nil
}

// POST /admin/v1/blocks/clear?rule=&ip=&uid= (spec 14.4): no body, at
// least one of ip and uid, no rule means every rule.
func (s *Server) adminClearBlocks(req *request) (any, error) {
	if err := noBody(req); err != nil {
		return nil, err
	}
	q := req.r.URL.Query()
	rule, given, err := queryValue(q, "rule")
	if err != nil {
		return nil, err
	}
	if given && (rule == "" || !s.accounts.KnownRule(rule)) {
		return nil, errInvalidParam("rule")
	}
	uid, ip, err := blockQuery(q)
	if err != nil {
		return nil, err
	}
	if uid == nil && ip == "" {
		return nil, errMissingParam("uid")
	}
	return emptyObject, s.accounts.AdminClearBlocks(req.r.Context(), req.caller, rule, uid, ip)
}

// Purge deletes what has expired at now and the accounts never verified
// in time (spec 14.5; accounts.Service.Purge), with audit events older
// than eventsBefore: store.Store.Purge and more. serve runs it once a
// minute.
func (s *Server) Purge(ctx context.Context, now, eventsBefore time.Time) (int64, error) {
	return s.accounts.Purge(ctx, now, eventsBefore)
}

// newCustoms builds the abuse-protection rules of cfg.
func newCustoms(cfg *Config, st store.Store) (*customs.Customs, error) {
	return customs.New(customs.Config{Rules: cfg.Limits, Exempt: cfg.RateLimitExempt, OnRefusal: cfg.OnRefusal,
		Logger: cfg.Logger, Now: cfg.Now, Rand: cfg.Rand}, st)
}
