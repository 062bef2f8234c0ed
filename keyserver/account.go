package keyserver

import (
	"io"

	"github.com/keyserver/keyserver/accounts"
	"github.com/keyserver/keyserver/customs"
	"github.com/keyserver/keyserver/protocol"
	"github.com/keyserver/keyserver/srp"
)

// POST /v1/account/create (spec 6.3); R5 (spec 14.2) comes before the body.
func (s *Server) accountCreate(req *request) (any, error) {
	if err := s.accounts.Throttle(req.r.Context(), req.caller, customs.CreateIP); err != nil {
		return nil, err
	}
	o, err := parseObject(req.r, req.body)
	if err != nil {
		return nil, err
	}
	var n accounts.NewAccount
	if n.Email, err = o.Email("email"); err != nil {
		return nil, err
	}
	if n.SRPType, n.SRPVerifier, n.SRPSalt, err = o.SRP("srp", true); err != nil {
		return nil, err
	}
	if n.Stretching, err = o.Stretching("passwordStretching"); err != nil {
		return nil, err
	}
	if n.Service, _, err = o.OptionalString("service", validService); err != nil {
		return nil, err
	}
	preVerified, present, err := o.OptionalBool("preVerified")
	if err != nil {
		return nil, err
	}
	if present && !s.cfg.Dev {
		return nil, errInvalidParam("preVerified")
	}
	n.PreVerified = preVerified
	if err := o.End(); err != nil {
		return nil, err
	}
	uid, err := s.accounts.Create(req.r.Context(), req.caller, n)
	if err != nil {
		return nil, err
	}
	return map[string]string{"uid": hexString(uid)}, nil
}

// emailBody reads a body whose one member is the hex email (spec 1.3).
func emailBody(req *request) (string, error) {
	o, err := parseObject(req.r, req.body)
	if err != nil {
		return "", err
	}
	email, err := o.Email("email")
	if err != nil {
		return "", err
	}
	return email, o.End()
}

// POST /v1/auth/start (spec 6.3, 14.3): R3 and R4 come before the body;
// the optional unblockCode is 8 ASCII digits.
func (s *Server) authStart(req *request) (any, error) {
	if err := s.accounts.Throttle(req.r.Context(), req.caller, customs.AuthStartIP); err != nil {
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
	unblockCode, _, err := o.OptionalString("unblockCode", validForgotCode)
	if err != nil {
		return nil, err
	}
	if err := o.End(); err != nil {
		return nil, err
	}
	ch, err := s.accounts.AuthStart(req.r.Context(), req.caller, email, unblockCode)
	if err != nil {
		return nil, err
	}
	return struct {
		SRPToken           string              `json:"srpToken"`
		PasswordStretching protocol.Stretching `json:"passwordStretching"`
		SRP                protocol.SRP        `json:"srp"`
	}{hexString(ch.SRPToken), stretchingOut(ch.Stretching), protocol.SRP{Type: ch.SRPType, Salt: hexString(ch.SRPSalt), B: hexString(ch.B)}}, nil
}

// POST /v1/auth/finish (spec 6.3): the members after srpToken are read
// only once the rules know the token (the spec's order of checks); R3
// comes before the body.
func (s *Server) authFinish(req *request) (any, error) {
	if err := s.accounts.Throttle(req.r.Context(), req.caller, customs.AuthFinishIP); err != nil {
		return nil, err
	}
	o, err := parseObject(req.r, req.body)
	if err != nil {
		return nil, err
	}
	id, err := o.Hex("srpToken", 32)
	if err != nil {
		return nil, err
	}
	proof := func() (A, M []byte, err error) {
		if A, err = o.Hex("A", 256); err != nil {
			return nil, nil, err
		}
		if srp.ValidatePublic(A) != nil { // D3
			return nil, nil, errInvalidParam("A")
		}
		if M, err = o.Hex("M", 32); err != nil {
			return nil, nil, err
		}
		return A, M, o.End()
	}
	bundle, err := s.accounts.AuthFinish(req.r.Context(), req.caller, id, proof)
	if err != nil {
		return nil, err
	}
	return map[string]string{"bundle": hexString(bundle)}, nil
}

// noBody checks that a request without parameters has an empty body or {}.
func noBody(req *request) error {
	o, err := parseObject(req.r, req.body)
	if err != nil {
		return err
	}
	return o.End()
}

// POST /v1/session/create (Hawk authToken, consumed; spec 6.3).
func (s *Server) sessionCreate(req *request) (any, error) {
	if err := noBody(req); err != nil {
		return nil, s.rejectBody(req, err)
	}
	sess, err := s.accounts.SessionCreate(req.r.Context(), req.caller)
	if err != nil {
		return nil, err
	}
	return struct {
		UID      string `json:"uid"`
		Verified bool   `json:"verified"`
		Bundle   string `json:"bundle"`
	}{hexString(sess.UID), sess.Verified, hexString(sess.Bundle)}, nil
}

// POST /v1/session/destroy (Hawk sessionToken; C6).
func (s *Server) sessionDestroy(req *request) (any, error) {
	if err := noBody(req); err != nil {
		return nil, err
	}
	return emptyObject, s.accounts.SessionDestroy(req.r.Context(), req.caller)
}

// GET /v1/account/keys (Hawk keyFetchToken, consumed; spec 6.4).
func (s *Server) accountKeys(req *request) (any, error) {
	if err := noBody(req); err != nil {
		return nil, s.rejectBody(req, err)
	}
	bundle, err := s.accounts.FetchKeys(req.r.Context(), req.caller)
	if err != nil {
		return nil, err
	}
	return map[string]string{"bundle": hexString(bundle)}, nil
}

// POST /v1/password/change/start (Hawk authToken, consumed; spec 6.7).
func (s *Server) passwordChangeStart(req *request) (any, error) {
	if err := noBody(req); err != nil {
		return nil, s.rejectBody(req, err)
	}
	bundle, err := s.accounts.PasswordChangeStart(req.r.Context(), req.caller)
	if err != nil {
		return nil, err
	}
	return map[string]string{"bundle": hexString(bundle)}, nil
}

// POST /v1/account/reset (Hawk accountResetToken; spec 6.4, D13).
func (s *Server) accountReset(req *request) (any, error) {
	o, err := parseObject(req.r, req.body)
	if err != nil {
		return nil, err
	}
	var n accounts.NewPassword
	if n.Bundle, err = o.Hex("bundle", 32+256+32); err != nil {
		return nil, err
	}
	if n.SRPType, _, n.SRPSalt, err = o.SRP("srp", false); err != nil {
		return nil, err
	}
	if n.Stretching, err = o.Stretching("passwordStretching"); err != nil {
		return nil, err
	}
	// docs/recovery-key.md, RK.6: an extension member, after the listed ones.
	if n.KeepRecoveryKey, _, err = o.OptionalBool("keepRecoveryKey"); err != nil {
		return nil, err
	}
	if err := o.End(); err != nil {
		return nil, err
	}
	return emptyObject, s.accounts.Reset(req.r.Context(), req.caller, n)
}

// POST /v1/account/destroy (Hawk authToken, consumed; spec 6.4).
func (s *Server) accountDestroy(req *request) (any, error) {
	if err := noBody(req); err != nil {
		return nil, s.rejectBody(req, err)
	}
	return emptyObject, s.accounts.Destroy(req.r.Context(), req.caller)
}

// POST /v1/get_random_bytes (spec 6.8).
func (s *Server) getRandomBytes(req *request) (any, error) {
	if err := noBody(req); err != nil {
		return nil, err
	}
	b := make([]byte, 32)
	if _, err := io.ReadFull(s.cfg.Rand, b); err != nil {
		return nil, err
	}
	return map[string]string{"data": hexString(b)}, nil
}
