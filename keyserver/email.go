package keyserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/keyserver/keyserver/store"
)

// GET /v1/recovery_email/status (Hawk sessionToken; spec 6.6).
func (s *Server) recoveryEmailStatus(req *request) (any, error) {
	if err := noBody(req); err != nil {
		return nil, err
	}
	return struct {
		Email    string `json:"email"`
		Verified bool   `json:"verified"`
	}{req.account.Email, req.account.Verified}, nil
}

// POST /v1/recovery_email/resend_code (Hawk sessionToken; spec 6.6, C8):
// sends the same code again while the account is unverified.
func (s *Server) recoveryEmailResendCode(req *request) (any, error) {
	o, err := parseObject(req.r, req.body)
	if err != nil {
		return nil, err
	}
	service, _, err := o.OptionalString("service", validService)
	if err != nil {
		return nil, err
	}
	if err := o.End(); err != nil {
		return nil, err
	}
	a := req.account
	if a.Verified {
		return emptyObject, nil
	}
	ctx := req.r.Context()
	if err := s.throttle(ctx, verifyResendPerAccount, hexString(a.UID)); err != nil {
		return nil, err
	}
	if err := s.cfg.Mailer.Send(ctx, s.verificationMail(a.UID, a.Email, hexString(a.EmailCode), service)); err != nil {
		return nil, errUnavailable(fmt.Errorf("verification mail not sent: %w", err))
	}
	if err := s.audit(ctx, s.store, event{action: "recovery_email.resend_code", uid: a.UID, session: req.token.ID}); err != nil {
		return nil, err
	}
	return emptyObject, nil
}

// POST /v1/recovery_email/verify_code (spec 6.6).
func (s *Server) recoveryEmailVerifyCode(req *request) (any, error) {
	o, err := parseObject(req.r, req.body)
	if err != nil {
		return nil, err
	}
	uid, err := o.Hex("uid", 16)
	if err != nil {
		return nil, err
	}
	code, err := o.Hex("code", 16)
	if err != nil {
		return nil, err
	}
	if err := o.End(); err != nil {
		return nil, err
	}
	if err := s.verifyEmail(req.r.Context(), uid, code); err != nil {
		return nil, err
	}
	return emptyObject, nil
}

// verifyEmail marks the account verified when code is its email code:
// 102 unknown, 127 disabled, 105 wrong code. Idempotent.
func (s *Server) verifyEmail(ctx context.Context, uid, code []byte) error {
	ev := event{action: "account.verify"}
	a, err := s.store.AccountByUID(ctx, uid)
	if errors.Is(err, store.ErrNotFound) {
		return s.auditFailure(ctx, ev, errUnknownAccount())
	} else if err != nil {
		return err
	}
	ev.uid = a.UID
	if a.Disabled {
		return s.auditFailure(ctx, ev, errDisabled())
	}
	if !equalSecret(code, a.EmailCode) {
		return s.auditFailure(ctx, ev, errInvalidCode())
	}
	if a.Verified {
		return nil
	}
	return s.store.WithTx(ctx, func(q store.Queries) error {
		if err := q.SetVerified(ctx, a.UID); err != nil {
			return err
		}
		return s.audit(ctx, q, ev)
	})
}

// GET /v1/verify_email?uid=&code=[&service=] (spec 6.6, C9): redirects to
// the content server when one is configured, else verifies directly.
func (s *Server) verifyEmailLink(req *request) (any, error) {
	if err := noBody(req); err != nil {
		return nil, err
	}
	q := req.r.URL.Query()
	param := func(name string, n int, required bool) ([]byte, string, error) {
		vs, ok := q[name]
		switch {
		case !ok && required:
			return nil, "", errMissingParam(name)
		case !ok:
			return nil, "", nil
		case len(vs) != 1:
			return nil, "", errInvalidParam(name)
		}
		if n == 0 {
			return nil, vs[0], nil
		}
		b, valid := decodeHex(vs[0], n)
		if !valid {
			return nil, "", errInvalidParam(name)
		}
		return b, vs[0], nil
	}
	uid, _, err := param("uid", 16, true)
	if err != nil {
		return nil, err
	}
	code, _, err := param("code", 16, true)
	if err != nil {
		return nil, err
	}
	if _, service, err := param("service", 0, false); err != nil {
		return nil, err
	} else if _, given := q["service"]; given && !validService(service) {
		return nil, errInvalidParam("service")
	}
	if s.cfg.ContentServerURL != "" {
		target := s.cfg.ContentServerURL + "/v1/verify_email?" + req.r.URL.RawQuery
		http.Redirect(req.w, req.r, target, http.StatusFound)
		return nil, nil
	}
	if err := s.verifyEmail(req.r.Context(), uid, code); err != nil {
		return nil, err
	}
	req.w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	req.w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(req.w, "Email address verified")
	return nil, nil
}
