package keyserver

import "github.com/keyserver/keyserver/customs"

// maxAssertionLength bounds the assertion member (spec 8.1).
const maxAssertionLength = 16384

// validAssertion: ASCII, at most 16384 characters.
func validAssertion(s string) bool {
	if len(s) > maxAssertionLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// POST /v1/account/recover (spec 8, D12); R10 per ip (spec 14.2) comes
// before the body.
func (s *Server) accountRecover(req *request) (any, error) {
	if err := s.accounts.Throttle(req.r.Context(), req.caller, customs.RecoverIP); err != nil {
		return nil, err
	}
	o, err := parseObject(req.r, req.body)
	if err != nil {
		return nil, err
	}
	email, err := o.Email("email")
	if err != nil {
		return nil, err
	}
	assertion, err := o.String("assertion", validAssertion)
	if err != nil {
		return nil, err
	}
	if err := o.End(); err != nil {
		return nil, err
	}
	seed, err := s.accounts.Recover(req.r.Context(), req.caller, email, assertion)
	if err != nil {
		return nil, err
	}
	return map[string]string{"accountResetToken": hexString(seed)}, nil
}
