package keyserver

import (
	"context"
	"errors"
	"time"

	"github.com/keyserver/keyserver/keywrap"
	"github.com/keyserver/keyserver/protocol"
	"github.com/keyserver/keyserver/srp"
	"github.com/keyserver/keyserver/store"
)

// emptyObject is the {} answer.
var emptyObject = struct{}{}

// POST /v1/account/create (spec 6.3).
func (s *Server) accountCreate(req *request) (any, error) {
	o, err := parseObject(req.r, req.body)
	if err != nil {
		return nil, err
	}
	email, err := o.Email("email")
	if err != nil {
		return nil, err
	}
	srpType, verifier, srpSalt, err := o.SRP("srp", true)
	if err != nil {
		return nil, err
	}
	stretching, err := o.Stretching("passwordStretching")
	if err != nil {
		return nil, err
	}
	service, _, err := o.OptionalString("service", validService)
	if err != nil {
		return nil, err
	}
	preVerified, present, err := o.OptionalBool("preVerified")
	if err != nil {
		return nil, err
	}
	if present && !s.cfg.Dev {
		return nil, errInvalidParam("preVerified")
	}
	if err := o.End(); err != nil {
		return nil, err
	}

	secrets, err := s.random(16 + 32 + 32 + 16)
	if err != nil {
		return nil, err
	}
	now := s.now()
	a := &store.Account{
		UID: secrets[:16], Email: email, NormalizedEmail: fold(email),
		SRPType: srpType, SRPVerifier: verifier, SRPSalt: srpSalt, Stretching: stretching,
		KA: secrets[16:48], WrapKb: secrets[48:80], EmailCode: secrets[80:96],
		Verified: preVerified, CreatedAt: now, Generation: now,
	}
	ctx := req.r.Context()
	err = s.store.WithTx(ctx, func(q store.Queries) error {
		if err := q.CreateAccount(ctx, a); err != nil {
			return err
		}
		return s.audit(ctx, q, event{action: "account.create", uid: a.UID})
	})
	if errors.Is(err, store.ErrConflict) {
		return nil, errAccountExists(email)
	} else if err != nil {
		return nil, err
	}
	if !a.Verified {
		// C5: the account exists now; a mail failure is logged and the
		// client can resend.
		if err := s.cfg.Mailer.Send(ctx, s.verificationMail(a.UID, a.Email, hexString(a.EmailCode), service)); err != nil {
			s.log.WarnContext(ctx, "verification mail not sent", "uid", hexString(a.UID), "err", err)
		}
	}
	return map[string]string{"uid": hexString(a.UID)}, nil
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

// accountByEmail finds the account for a requested email: 102 when none,
// 127 when disabled, 120 when only the case differs (spec 1.3).
func (s *Server) accountByEmail(ctx context.Context, email string) (*store.Account, error) {
	a, err := s.store.AccountByEmail(ctx, fold(email))
	if errors.Is(err, store.ErrNotFound) {
		return nil, errUnknownAccount().with("email", email)
	} else if err != nil {
		return nil, err
	}
	if a.Disabled {
		return nil, errDisabled()
	}
	if a.Email != email {
		return nil, errIncorrectEmailCase(hexString([]byte(a.Email)))
	}
	return a, nil
}

// POST /v1/auth/start (spec 6.3).
func (s *Server) authStart(req *request) (any, error) {
	email, err := emailBody(req)
	if err != nil {
		return nil, err
	}
	ctx := req.r.Context()
	a, err := s.accountByEmail(ctx, email)
	if err != nil {
		return nil, err
	}
	var seed []byte
	var tok *store.Token
	for {
		if seed, tok, err = s.newToken(protocol.SRPToken, a.UID); err != nil {
			return nil, err
		}
		// b is the token's bundleKey; C3: a b giving B = 0 is discarded.
		tok.SRPB, err = srp.ServerB(a.SRPVerifier, tok.BundleKey)
		if !errors.Is(err, srp.ErrDegenerateB) {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	tok.ExpiresAt = tok.CreatedAt.Add(s.cfg.SRPTokenTTL)
	if err := s.store.CreateToken(ctx, tok); err != nil {
		return nil, err
	}
	_ = seed // the srpToken seed never leaves the server
	return struct {
		SRPToken           string         `json:"srpToken"`
		PasswordStretching stretchingJSON `json:"passwordStretching"`
		SRP                srpJSON        `json:"srp"`
	}{hexString(tok.ID), stretchingOut(a.Stretching), srpJSON{a.SRPType, hexString(a.SRPSalt), hexString(tok.SRPB)}}, nil
}

type srpJSON struct {
	Type string `json:"type"`
	Salt string `json:"salt"`
	B    string `json:"B"`
}

// POST /v1/auth/finish (spec 6.3): the checks interleave with the srpToken
// consumption in the order the spec gives.
func (s *Server) authFinish(req *request) (any, error) {
	o, err := parseObject(req.r, req.body)
	if err != nil {
		return nil, err
	}
	id, err := o.Hex("srpToken", 32)
	if err != nil {
		return nil, err
	}
	ctx := req.r.Context()
	tok, err := s.store.Token(ctx, protocol.SRPToken, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errInvalidToken()
	} else if err != nil {
		return nil, err
	}
	// From here every outcome consumes the srpToken (D2). It is consumed in
	// the one transaction that records the outcome, so of concurrent
	// finishers exactly one gets it and the others get 110.
	var (
		a       *store.Account
		K, seed []byte
		authTok *store.Token
	)
	var failure error = errInvalidToken()
	if !tok.Expired(s.now()) {
		if a, failure = s.store.AccountByUID(ctx, tok.UID); errors.Is(failure, store.ErrNotFound) {
			failure = errInvalidToken()
		}
	}
	if failure == nil {
		K, failure = s.checkProof(o, a, tok)
	}
	if failure == nil {
		seed, authTok, failure = s.newToken(protocol.AuthToken, a.UID)
	}
	ev := event{action: "login", uid: tok.UID}
	err = s.store.WithTx(ctx, func(q store.Queries) error {
		if _, err := q.ConsumeToken(ctx, protocol.SRPToken, tok.ID); err != nil {
			return err
		}
		if failure != nil {
			if e := asError(failure); e.Status < 500 && e.Errno != ErrnoInvalidToken {
				ev.errno = e.Errno
				return s.audit(ctx, q, ev)
			}
			return nil
		}
		if err := q.CreateToken(ctx, authTok); err != nil {
			return err
		}
		return s.audit(ctx, q, ev)
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, errInvalidToken()
	case err != nil:
		return nil, err
	case failure != nil:
		return nil, failure
	}
	return map[string]string{"bundle": hexString(keywrap.Bundle(K, keywrap.ContextAuthFinish, seed))}, nil
}

// checkProof does the part of auth/finish after the srpToken is consumed:
// disabled (127), A (D3), M, unknown members, then the proof (103).
func (s *Server) checkProof(o *object, a *store.Account, tok *store.Token) (K []byte, err error) {
	if a.Disabled {
		return nil, errDisabled()
	}
	A, err := o.Hex("A", 256)
	if err != nil {
		return nil, err
	}
	if srp.ValidatePublic(A) != nil {
		return nil, errInvalidParam("A")
	}
	M, err := o.Hex("M", 32)
	if err != nil {
		return nil, err
	}
	if err := o.End(); err != nil {
		return nil, err
	}
	K, err = srp.ServerVerify(a.SRPVerifier, tok.BundleKey, tok.SRPB, A, M)
	switch {
	case errors.Is(err, srp.ErrBadProof):
		return nil, errIncorrectPassword()
	case errors.Is(err, srp.ErrBadPublicValue):
		return nil, errInvalidParam("A")
	}
	return K, err
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
		return nil, err
	}
	a := req.account
	kfSeed, kf, err := s.newToken(protocol.KeyFetchToken, a.UID)
	if err != nil {
		return nil, err
	}
	sessSeed, sess, err := s.newToken(protocol.SessionToken, a.UID)
	if err != nil {
		return nil, err
	}
	kf.SessionID = sess.ID
	ctx := req.r.Context()
	err = s.write(req, func(q store.Queries) error {
		if err := q.CreateToken(ctx, sess); err != nil {
			return err
		}
		if err := q.CreateToken(ctx, kf); err != nil {
			return err
		}
		return s.audit(ctx, q, event{action: "session.create", uid: a.UID, session: sess.ID})
	})
	if err != nil {
		return nil, err
	}
	bundle := keywrap.Bundle(req.token.BundleKey, keywrap.ContextSessionCreate, append(kfSeed, sessSeed...))
	return struct {
		UID      string `json:"uid"`
		Verified bool   `json:"verified"`
		Bundle   string `json:"bundle"`
	}{hexString(a.UID), a.Verified, hexString(bundle)}, nil
}

// POST /v1/session/destroy (Hawk sessionToken; C6): the session, its device
// and its unused keyFetchTokens go together.
func (s *Server) sessionDestroy(req *request) (any, error) {
	if err := noBody(req); err != nil {
		return nil, err
	}
	ctx := req.r.Context()
	err := s.store.WithTx(ctx, func(q store.Queries) error {
		ev := event{action: "session.destroy", uid: req.account.UID, session: req.token.ID}
		if d, err := q.DeviceBySession(ctx, req.token.ID); err == nil {
			ev.deviceID = d.ID
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if err := q.DeleteToken(ctx, protocol.SessionToken, req.token.ID); err != nil {
			return err
		}
		return s.audit(ctx, q, ev)
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, errInvalidToken()
	} else if err != nil {
		return nil, err
	}
	return emptyObject, nil
}

// GET /v1/account/keys (Hawk keyFetchToken, consumed; spec 6.4).
func (s *Server) accountKeys(req *request) (any, error) {
	if err := noBody(req); err != nil {
		return nil, err
	}
	a := req.account
	if !a.Verified {
		return nil, errUnverified()
	}
	ctx := req.r.Context()
	err := s.write(req, func(q store.Queries) error {
		return s.audit(ctx, q, event{action: "keys.fetch", uid: a.UID, session: req.token.SessionID})
	})
	if err != nil {
		return nil, err
	}
	return map[string]string{"bundle": keysBundle(req.token, a)}, nil
}

// POST /v1/password/change/start (Hawk authToken, consumed; spec 6.7).
func (s *Server) passwordChangeStart(req *request) (any, error) {
	if err := noBody(req); err != nil {
		return nil, err
	}
	a := req.account
	kfSeed, kf, err := s.newToken(protocol.KeyFetchToken, a.UID)
	if err != nil {
		return nil, err
	}
	artSeed, art, err := s.newToken(protocol.AccountResetToken, a.UID)
	if err != nil {
		return nil, err
	}
	ctx := req.r.Context()
	err = s.write(req, func(q store.Queries) error {
		if err := q.DeleteAccountTokens(ctx, a.UID, protocol.AccountResetToken); err != nil {
			return err
		}
		if err := q.CreateToken(ctx, kf); err != nil {
			return err
		}
		if err := q.CreateToken(ctx, art); err != nil {
			return err
		}
		return s.audit(ctx, q, event{action: "password.change.start", uid: a.UID})
	})
	if err != nil {
		return nil, err
	}
	return map[string]string{"bundle": hexString(keywrap.Bundle(req.token.BundleKey, keywrap.ContextPasswordChange, append(kfSeed, artSeed...)))}, nil
}

// POST /v1/account/reset (Hawk accountResetToken; spec 6.4, D13).
func (s *Server) accountReset(req *request) (any, error) {
	o, err := parseObject(req.r, req.body)
	if err != nil {
		return nil, err
	}
	sealed, err := o.Hex("bundle", 32+256+32)
	if err != nil {
		return nil, err
	}
	srpType, _, srpSalt, err := o.SRP("srp", false)
	if err != nil {
		return nil, err
	}
	stretching, err := o.Stretching("passwordStretching")
	if err != nil {
		return nil, err
	}
	if err := o.End(); err != nil {
		return nil, err
	}
	plain, err := keywrap.Unbundle(req.token.BundleKey, keywrap.ContextAccountReset, sealed)
	if err != nil {
		return nil, errInvalidSignature()
	}
	wrapKb, verifier := plain[:32], plain[32:]
	if srp.ValidatePublic(verifier) != nil {
		return nil, errInvalidParam("bundle")
	}
	if isZero(wrapKb) { // 4.3: all zero means a fresh random wrapKb
		if wrapKb, err = s.random(32); err != nil {
			return nil, err
		}
	}
	a := req.account
	// D13: max(now_ms, generation + 1), in the whole milliseconds that are
	// stored, so that a reset within the generation's millisecond still
	// advances it.
	gen := time.UnixMilli(max(s.now().UnixMilli(), a.Generation.UnixMilli()+1)).UTC()
	creds := &store.Credentials{SRPType: srpType, SRPVerifier: verifier, SRPSalt: srpSalt,
		Stretching: stretching, WrapKb: wrapKb, Generation: gen}
	ctx := req.r.Context()
	err = s.store.WithTx(ctx, func(q store.Queries) error {
		// C13: the reset commits only if its token still exists.
		if _, err := q.ConsumeToken(ctx, protocol.AccountResetToken, req.token.ID); err != nil {
			return err
		}
		if err := q.SetCredentials(ctx, a.UID, creds); err != nil {
			return err
		}
		if err := q.DeleteDevices(ctx, a.UID); err != nil {
			return err
		}
		if err := q.DeleteAccountTokens(ctx, a.UID); err != nil {
			return err
		}
		return s.audit(ctx, q, event{action: "account.reset", uid: a.UID})
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, errInvalidToken()
	} else if err != nil {
		return nil, err
	}
	s.notify(ctx, passwordChangedMail(a.Email))
	return emptyObject, nil
}

func isZero(b []byte) bool {
	var acc byte
	for _, c := range b {
		acc |= c
	}
	return acc == 0
}

// POST /v1/account/destroy (Hawk authToken, consumed; spec 6.4).
func (s *Server) accountDestroy(req *request) (any, error) {
	if err := noBody(req); err != nil {
		return nil, err
	}
	ctx := req.r.Context()
	uid := req.account.UID
	err := s.write(req, func(q store.Queries) error {
		if err := q.DeleteAccount(ctx, uid); err != nil {
			return err
		}
		return s.audit(ctx, q, event{action: "account.destroy", uid: uid})
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, errInvalidToken()
	} else if err != nil {
		return nil, err
	}
	return emptyObject, nil
}

// POST /v1/get_random_bytes (spec 6.8).
func (s *Server) getRandomBytes(req *request) (any, error) {
	if err := noBody(req); err != nil {
		return nil, err
	}
	b, err := s.random(32)
	if err != nil {
		return nil, err
	}
	return map[string]string{"data": hexString(b)}, nil
}
