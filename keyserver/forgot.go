package keyserver

import (
	"github.com/keyserver/keyserver/accounts"
	"github.com/keyserver/keyserver/customs"
)

// forgotAnswer is the response of send_code and resend_code.
type forgotAnswer struct {
	ForgotPasswordToken string `json:"forgotPasswordToken"`
	TTL                 int    `json:"ttl"`
	CodeLength          int    `json:"codeLength"`
	Tries               int    `json:"tries"`
}

func forgotOut(t *accounts.ForgotToken) forgotAnswer {
	return forgotAnswer{hexString(t.Seed), t.TTL, accounts.ForgotCodeLength, t.Tries}
}

// validForgotCode: exactly 8 ASCII digits; anything else is 107 and costs
// no try (D8).
func validForgotCode(s string) bool {
	if len(s) != accounts.ForgotCodeLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// POST /v1/password/forgot/send_code (spec 6.7): the per-ip limit (R9,
// spec 14.2) comes before the body is read.
func (s *Server) forgotSendCode(req *request) (any, error) {
	ctx := req.r.Context()
	if err := s.accounts.Throttle(ctx, req.caller, customs.ForgotSendIP); err != nil {
		return nil, err
	}
	email, err := emailBody(req)
	if err != nil {
		return nil, err
	}
	t, err := s.accounts.ForgotSendCode(ctx, req.caller, email)
	if err != nil {
		return nil, err
	}
	return forgotOut(t), nil
}

// POST /v1/password/forgot/resend_code (Hawk forgotPasswordToken; spec
// 6.7): the code goes to the stored address whatever email the body names.
func (s *Server) forgotResendCode(req *request) (any, error) {
	if _, err := emailBody(req); err != nil {
		return nil, err
	}
	t, err := s.accounts.ForgotResendCode(req.r.Context(), req.caller)
	if err != nil {
		return nil, err
	}
	return forgotOut(t), nil
}

// POST /v1/password/forgot/verify_code (Hawk forgotPasswordToken; spec 6.7).
func (s *Server) forgotVerifyCode(req *request) (any, error) {
	o, err := parseObject(req.r, req.body)
	if err != nil {
		return nil, err
	}
	code, err := o.String("code", validForgotCode)
	if err != nil {
		return nil, err
	}
	if err := o.End(); err != nil {
		return nil, err
	}
	seed, err := s.accounts.ForgotVerifyCode(req.r.Context(), req.caller, code)
	if err != nil {
		return nil, err
	}
	return map[string]string{"accountResetToken": hexString(seed)}, nil
}
