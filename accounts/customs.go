package accounts

import (
	"context"
	"errors"
	"time"

	"github.com/keyserver/keyserver/customs"
	"github.com/keyserver/keyserver/store"
)

// Abuse protection (spec 14): where the operations meet package customs.

// Throttle applies the rules keyed by the client ip alone at point p, one
// of the throttling-step points (customs.AuthStartIP, AuthFinishIP,
// CreateIP, ForgotSendIP, UnblockSendIP, RecoverIP): the HTTP edge calls it
// before it reads the body (spec 1.6, 14.2).
func (s *Service) Throttle(ctx context.Context, c Caller, p customs.Point) error {
	return customsError(s.customs.Check(ctx, p, customs.Request{IP: c.IP}))
}

// check applies the rules of point p to a request that identified account
// a (nil: none).
func (s *Service) check(ctx context.Context, p customs.Point, req customs.Request) error {
	return customsError(s.customs.Check(ctx, p, req))
}

// customsRequest is the request of caller c about account a.
func customsRequest(c Caller, a *store.Account) customs.Request {
	return customs.Request{IP: c.IP, Fold: a.NormalizedEmail, UID: a.UID}
}

// count counts outcome o of a request (ephemerally, in its own
// transaction when q is nil); a failure to count is a server failure, so
// that no outcome goes uncounted.
func (s *Service) count(ctx context.Context, q store.Queries, req customs.Request, o customs.Outcome) error {
	return s.customs.Record(ctx, q, req, o)
}

// mailable refuses (107 email) an account whose email may not receive
// mail (C20), before a mail endpoint does anything else.
func mailable(a *store.Account) error {
	if !Mailable(a.Email) {
		return InvalidParam("email")
	}
	return nil
}

// mailCheck applies C20 and R6 to a mail to address for caller c (uid:
// the account, whose known ips R6 exempts; nil for none) and returns the
// request to record once the mail is out.
func (s *Service) mailCheck(ctx context.Context, c Caller, uid []byte, address string) (customs.Request, error) {
	req := customs.Request{IP: c.IP, Fold: Fold(address), UID: uid}
	if !Mailable(address) {
		return req, InvalidParam("email")
	}
	return req, s.check(ctx, customs.Mail, req)
}

// mailSent counts a mail handed to the mail server for R6. It is out
// whatever happens here: a failure to count is logged.
func (s *Service) mailSent(ctx context.Context, req customs.Request) {
	if err := s.count(context.WithoutCancel(ctx), nil, req, customs.MailSent); err != nil {
		s.log.WarnContext(ctx, "mail not counted (R6)", "err", err)
	}
}

// deliver is send behind C20 and R6: ErrMailNotSent when the mail cannot
// be handed over, 429 or 107 when the rules refuse it.
func (s *Service) deliver(ctx context.Context, c Caller, uid []byte, what string, m *Message) error {
	req, err := s.mailCheck(ctx, c, uid, m.To)
	if err != nil {
		return err
	}
	if err := s.send(ctx, what, m); err != nil {
		return err
	}
	s.mailSent(ctx, req)
	return nil
}

// Purge deletes what has expired (store.Store.Purge: tokens, nonces,
// counts, unblock codes, known ips, audit events older than eventsBefore)
// and the accounts still unverified Config.UnverifiedTTL after creation,
// each audited as account.expire by the system (spec 14.5). It returns the
// rows deleted.
func (s *Service) Purge(ctx context.Context, now, eventsBefore time.Time) (int64, error) {
	n, err := s.st.Purge(ctx, now, eventsBefore)
	if err != nil {
		return n, err
	}
	before := now.Add(-s.cfg.UnverifiedTTL)
	for {
		uids, err := s.st.UnverifiedAccounts(ctx, before, 100)
		if err != nil || len(uids) == 0 {
			return n, err
		}
		expired := 0
		for _, uid := range uids {
			err := s.st.WithTx(ctx, func(q store.Queries) error {
				if err := q.DeleteUnverifiedAccount(ctx, uid, before); err != nil {
					return err
				}
				return s.audit(ctx, q, Caller{}, event{action: "account.expire", uid: uid, actor: store.ActorSystem})
			})
			switch {
			case err == nil:
				expired++
				n++
			case !errors.Is(err, store.ErrNotFound): // verified meanwhile: kept
				return n, err
			}
		}
		if expired == 0 {
			return n, nil
		}
	}
}

// Block is a count that refuses requests now (spec 14.4), with the account
// of its fold when there is one.
type Block struct {
	customs.Block
	UID []byte
}

// AdminBlocks lists the blocks of account uid and/or the ip (both nil/"":
// every block); 102 for an unknown uid.
func (s *Service) AdminBlocks(ctx context.Context, uid []byte, ip string) ([]Block, error) {
	fold := ""
	if uid != nil {
		a, err := s.account(ctx, uid)
		if err != nil {
			return nil, err
		}
		fold = a.NormalizedEmail
	}
	bs, err := s.customs.Blocks(ctx, fold, ip)
	if err != nil {
		return nil, err
	}
	out := make([]Block, len(bs))
	uids := map[string][]byte{}
	for i, b := range bs {
		out[i].Block = b
		if b.Key.Fold == "" {
			continue
		}
		u, ok := uids[b.Key.Fold]
		if !ok {
			if a, err := s.st.AccountByEmail(ctx, b.Key.Fold); err == nil {
				u = a.UID
			} else if !errors.Is(err, store.ErrNotFound) {
				return nil, err
			}
			uids[b.Key.Fold] = u
		}
		out[i].UID = u
	}
	return out, nil
}

// KnownRule reports whether name selects a rule (customs.Rule.Matches).
func (s *Service) KnownRule(name string) bool {
	for _, r := range s.customs.Rules() {
		if r.Matches(name) {
			return true
		}
	}
	return false
}

// AdminClearBlocks clears the counts of rule ("" every rule) for account
// uid and/or the ip (at least one), audited as admin.blocks.clear; 102 for
// an unknown uid.
func (s *Service) AdminClearBlocks(ctx context.Context, c Caller, rule string, uid []byte, ip string) error {
	fold := ""
	if uid != nil {
		a, err := s.account(ctx, uid)
		if err != nil {
			return err
		}
		fold = a.NormalizedEmail
	}
	if fold == "" && ip == "" {
		return MissingParam("uid")
	}
	if _, err := s.customs.Clear(ctx, rule, fold, ip); err != nil {
		return err
	}
	return s.audit(ctx, s.st, c, adminEvent("admin.blocks.clear", uid))
}

// unblockCodeTTL and maxUnblockCodes: spec 14.3.
const (
	unblockCodeTTL  = time.Hour
	maxUnblockCodes = 3
)

// SendUnblockCode mails an unblock code for the account of email (spec
// 14.3): 102, 127, 120 as for send_code, 107 for an email that may not
// receive mail (C20), 429 when 3 codes are live or R6 refuses, and
// ErrMailNotSent (the code withdrawn) when the mail cannot be handed over.
func (s *Service) SendUnblockCode(ctx context.Context, c Caller, email string) error {
	a, err := s.accountByEmail(ctx, email)
	if err != nil {
		return err
	}
	if err := mailable(a); err != nil {
		return err
	}
	now := s.now()
	live, err := s.st.UnblockCodes(ctx, a.UID, now)
	if err != nil {
		return err
	}
	if len(live) >= maxUnblockCodes {
		return tooMany(live[len(live)-maxUnblockCodes].ExpiresAt.Sub(now))
	}
	req, err := s.mailCheck(ctx, c, a.UID, a.Email)
	if err != nil {
		return err
	}
	code, err := s.forgotCode() // 8 digits, as D8
	if err != nil {
		return err
	}
	id, err := s.random(16)
	if err != nil {
		return err
	}
	uc := &store.UnblockCode{ID: id, UID: a.UID, Code: code, CreatedAt: now, ExpiresAt: now.Add(unblockCodeTTL)}
	err = s.st.WithTx(store.Ephemeral(ctx), func(q store.Queries) error { return q.CreateUnblockCode(ctx, uc) })
	if err != nil {
		return err
	}
	if err := s.send(ctx, "unblock-code", unblockCodeMail(a.Email, code)); err != nil {
		if derr := s.st.DeleteUnblockCode(context.WithoutCancel(ctx), id); derr != nil && !errors.Is(derr, store.ErrNotFound) {
			s.log.ErrorContext(ctx, "unblock code of a failed mail not deleted", "uid", hexString(a.UID), "err", derr)
		}
		return err
	}
	s.mailSent(ctx, req)
	return s.st.WithTx(store.Ephemeral(ctx), func(q store.Queries) error {
		return s.audit(ctx, q, c, event{action: "login.send_unblock_code", uid: a.UID})
	})
}

// useUnblockCode consumes the live unblock code of account a that equals
// code (constant-time), auditing login.unblock; false when none does.
func (s *Service) useUnblockCode(ctx context.Context, c Caller, a *store.Account, code string) (bool, error) {
	live, err := s.st.UnblockCodes(ctx, a.UID, s.now())
	if err != nil {
		return false, err
	}
	var match []byte
	for _, uc := range live {
		if equalSecret([]byte(uc.Code), []byte(code)) {
			match = uc.ID
		}
	}
	if match == nil {
		return false, nil
	}
	err = s.st.WithTx(store.Ephemeral(ctx), func(q store.Queries) error {
		if err := q.DeleteUnblockCode(ctx, match); err != nil {
			return err
		}
		return s.audit(ctx, q, c, event{action: "login.unblock", uid: a.UID})
	})
	if errors.Is(err, store.ErrNotFound) { // used meanwhile
		return false, nil
	}
	return err == nil, err
}

// tokenIP is the client ip recorded for the token id (store.TokenOrigin),
// "" when none.
func tokenIP(ctx context.Context, q store.Queries, id []byte) (string, error) {
	o, err := q.TokenOrigin(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	} else if err != nil {
		return "", err
	}
	return o.IP, nil
}

// setOrigin records the caller's ip key as the origin of tok.
func setOrigin(ctx context.Context, q store.Queries, c Caller, tok *store.Token, unblocked bool) error {
	return q.SetTokenOrigin(ctx, &store.TokenOrigin{TokenID: tok.ID, IP: customs.IPKey(c.IP), Unblocked: unblocked})
}
