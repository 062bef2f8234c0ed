package keyserver

import (
	"io"
	"net/http"
)

// GET /v1/recovery_email/status (Hawk sessionToken; spec 6.6).
func (s *Server) recoveryEmailStatus(req *request) (any, error) {
	if err := noBody(req); err != nil {
		return nil, err
	}
	a := req.caller.Account
	return struct {
		Email    string `json:"email"`
		Verified bool   `json:"verified"`
	}{a.Email, a.Verified}, nil
}

// POST /v1/recovery_email/resend_code (Hawk sessionToken; spec 6.6, C8).
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
	return emptyObject, s.accounts.ResendVerification(req.r.Context(), req.caller, service)
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
	return emptyObject, s.accounts.VerifyEmail(req.r.Context(), req.caller, uid, code)
}

// GET /v1/verify_email?uid=&code=[&service=] (spec 6.6, C9): redirects to
// the content server when one is configured, else verifies directly. A
// browser opening the link from its mail (Accept: text/html) is sent to the
// web client's /verify page instead, which verifies with verify_code and
// says in words what happened; API clients keep the plain-text answer.
func (s *Server) verifyEmailLink(req *request) (any, error) {
	if err := noBody(req); err != nil {
		return nil, err
	}
	q := req.r.URL.Query()
	uid, err := queryHex32(q, "uid")
	if err == nil && uid == nil {
		err = errMissingParam("uid")
	}
	if err != nil {
		return nil, err
	}
	code, err := queryHex32(q, "code")
	if err == nil && code == nil {
		err = errMissingParam("code")
	}
	if err != nil {
		return nil, err
	}
	if service, given, err := queryValue(q, "service"); err != nil {
		return nil, err
	} else if given && !validService(service) {
		return nil, errInvalidParam("service")
	}
	if s.cfg.ContentServerURL != "" {
		target := s.cfg.ContentServerURL + "/v1/verify_email?" + req.r.URL.RawQuery
		http.Redirect(req.w, req.r, target, http.StatusFound)
		return written, nil
	}
	if acceptsHTML(req.r) {
		http.Redirect(req.w, req.r, "/verify?"+req.r.URL.RawQuery, http.StatusFound)
		return written, nil
	}
	if err := s.accounts.VerifyEmail(req.r.Context(), req.caller, uid, code); err != nil {
		return nil, err
	}
	req.w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	req.w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(req.w, "Email address verified")
	return written, nil
}
