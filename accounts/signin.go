package accounts

import (
	"context"
	"errors"

	"github.com/keyserver/keyserver/customs"
	"github.com/keyserver/keyserver/keywrap"
	"github.com/keyserver/keyserver/protocol"
	"github.com/keyserver/keyserver/srp"
	"github.com/keyserver/keyserver/store"
)

// Challenge is the answer of auth/start: the srpToken id and what the
// client needs to compute its proof.
type Challenge struct {
	SRPToken   []byte
	Stretching store.Stretching
	SRPType    string
	SRPSalt    []byte
	B          []byte
}

// AuthStart begins an SRP sign-in for email (spec 6.3): a new srpToken
// whose bundleKey is the server's secret b. R1 and R2 (spec 14.2) are
// checked once the account is known; unblockCode ("" for none) lifts R2
// when it is a live code of the account (spec 14.3), and the srpToken then
// remembers it; a wrong one counts for R1 and answers 125 again.
func (s *Service) AuthStart(ctx context.Context, c Caller, email, unblockCode string) (*Challenge, error) {
	a, err := s.accountByEmail(ctx, email)
	if err != nil {
		return nil, err
	}
	req := customsRequest(c, a)
	unblocked := false
	if unblockCode != "" {
		req.Unblock = func() (bool, error) {
			ok, err := s.useUnblockCode(ctx, c, a, unblockCode)
			if err == nil && !ok {
				err = s.count(ctx, nil, customsRequest(c, a), customs.UnblockFailure)
			}
			unblocked = ok
			return ok, err
		}
	}
	if err := s.check(ctx, customs.AuthStart, req); err != nil {
		return nil, err
	}
	var tok *store.Token
	for {
		if _, tok, err = s.newToken(protocol.SRPToken, a.UID); err != nil {
			return nil, err
		}
		// C3: a b giving B = 0 is discarded. The srpToken seed never
		// leaves the server.
		tok.SRPB, err = srp.ServerB(a.SRPVerifier, tok.BundleKey)
		if !errors.Is(err, srp.ErrDegenerateB) {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	tok.ExpiresAt = tok.CreatedAt.Add(s.cfg.SRPTokenTTL)
	if unblocked {
		err = s.st.WithTx(store.Ephemeral(ctx), func(q store.Queries) error {
			if err := q.CreateToken(ctx, tok); err != nil {
				return err
			}
			return setOrigin(ctx, q, c, tok, true)
		})
	} else {
		err = s.st.CreateToken(store.Ephemeral(ctx), tok) // one statement, no transaction
	}
	if err != nil {
		return nil, err
	}
	return &Challenge{SRPToken: tok.ID, Stretching: a.Stretching, SRPType: a.SRPType, SRPSalt: a.SRPSalt, B: tok.SRPB}, nil
}

// ProofFunc reads the client's A and M from the request; auth/finish calls
// it only once the srpToken is known and the account is not disabled
// (spec 6.3 gives that order).
type ProofFunc func() (A, M []byte, err error)

// AuthFinish checks the SRP proof of srpToken id and returns the bundle of
// a new authToken seed under K. Every outcome after the lookup consumes
// the srpToken (D2), in the one (ephemeral) transaction that records the
// outcome, so of concurrent finishers exactly one gets it and the others get
// 110. R1 and R2 are checked once the srpToken is known, before any SRP
// arithmetic; a refusal there leaves the srpToken (spec 14.2). The outcome
// is counted in the same transaction (a 103 for R1 to R3; a success clears
// R1 and makes the ip known), after the rules were checked again under
// their lock, so that concurrent guesses never overrun a limit.
func (s *Service) AuthFinish(ctx context.Context, c Caller, id []byte, proof ProofFunc) ([]byte, error) {
	tok, acct, err := s.st.TokenWithAccount(ctx, protocol.SRPToken, id) // one query for both
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrInvalidToken
	} else if err != nil {
		return nil, err
	}
	var (
		a       *store.Account
		K, seed []byte
		authTok *store.Token
		req     customs.Request
	)
	var failure error = ErrInvalidToken
	if !tok.Expired(s.now()) {
		a, failure = acct, nil
	}
	if failure == nil {
		req = customsRequest(c, a)
		req.SRPToken = tok.ID
		if err := s.check(ctx, customs.AuthFinish, req); err != nil {
			return nil, err
		}
		K, failure = checkProof(a, tok, proof)
	}
	if failure == nil {
		seed, authTok, failure = s.newToken(protocol.AuthToken, a.UID)
		if failure == nil {
			authTok.ExpiresAt = authTok.CreatedAt.Add(TokenTTL)
		}
	}
	ev := event{action: "login", uid: tok.UID}
	err = s.st.WithTx(store.Ephemeral(ctx), func(q store.Queries) error {
		// The rules again, under their lock, before the srpToken (whose
		// origin may lift R2) is consumed.
		guessed := failure == nil || errnoOf(failure) == protocol.ErrnoIncorrectPassword
		if guessed {
			if err := s.customs.Guard(ctx, q, req, customs.AuthFinishIP, customs.AuthFinish); err != nil {
				return err
			}
		}
		if _, err := q.ConsumeToken(ctx, protocol.SRPToken, tok.ID); err != nil {
			return err
		}
		if failure != nil {
			if guessed {
				if err := s.count(ctx, q, req, customs.LoginFailure); err != nil {
					return err
				}
			}
			if ev.errno = errnoOf(failure); ev.errno != 0 && ev.errno != protocol.ErrnoInvalidToken {
				return s.audit(ctx, q, c, ev)
			}
			return nil
		}
		if err := s.customs.Succeeded(ctx, q, req); err != nil {
			return err
		}
		if err := q.CreateToken(ctx, authTok); err != nil {
			return err
		}
		return s.audit(ctx, q, c, ev)
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, ErrInvalidToken
	case err != nil:
		return nil, customsError(s.customs.Report(ctx, customs.AuthFinish, req, err))
	case failure != nil:
		return nil, failure
	}
	return keywrap.Bundle(K, keywrap.ContextAuthFinish, seed), nil
}

// checkProof does the part of auth/finish after the srpToken is known:
// disabled (127), the request's A and M, then the proof (103).
func checkProof(a *store.Account, tok *store.Token, proof ProofFunc) (K []byte, err error) {
	if a.Disabled {
		return nil, ErrDisabled
	}
	A, M, err := proof()
	if err != nil {
		return nil, err
	}
	K, err = srp.ServerVerify(a.SRPVerifier, tok.BundleKey, tok.SRPB, A, M)
	switch {
	case errors.Is(err, srp.ErrBadProof):
		return nil, ErrIncorrectPassword
	case errors.Is(err, srp.ErrBadPublicValue):
		return nil, InvalidParam("A")
	}
	return K, err
}

// Session is the answer of session/create.
type Session struct {
	UID      []byte
	Verified bool
	// Bundle is keyFetchToken seed || sessionToken seed under the
	// authToken's bundleKey.
	Bundle []byte
}

// SessionCreate trades the caller's authToken (consumed) for a
// sessionToken and a keyFetchToken bound to it (spec 6.3), ephemerally.
func (s *Service) SessionCreate(ctx context.Context, c Caller) (*Session, error) {
	var out *Session
	err := s.consume(store.Ephemeral(ctx), c, func(q store.Queries, c Caller) error {
		a := c.Account
		kfSeed, kf, err := s.newToken(protocol.KeyFetchToken, a.UID)
		if err != nil {
			return err
		}
		sessSeed, sess, err := s.newToken(protocol.SessionToken, a.UID)
		if err != nil {
			return err
		}
		kf.SessionID = sess.ID
		if a.Verified { // else its hour starts at verification (spec 9.2)
			kf.ExpiresAt = kf.CreatedAt.Add(TokenTTL)
		}
		if err := q.CreateToken(ctx, sess); err != nil {
			return err
		}
		if err := q.CreateToken(ctx, kf); err != nil {
			return err
		}
		if err := s.audit(ctx, q, c, event{action: "session.create", uid: a.UID, session: sess.ID}); err != nil {
			return err
		}
		bundle := keywrap.Bundle(c.Token.BundleKey, keywrap.ContextSessionCreate, append(kfSeed, sessSeed...))
		out = &Session{UID: a.UID, Verified: a.Verified, Bundle: bundle}
		return nil
	})
	return out, err
}

// SessionDestroy ends the caller's session with its device and unused
// keyFetchTokens (C6).
func (s *Service) SessionDestroy(ctx context.Context, c Caller) error {
	err := s.st.WithTx(ctx, func(q store.Queries) error {
		ev := event{action: "session.destroy", uid: c.Account.UID, session: c.Token.ID}
		if d, err := q.DeviceBySession(ctx, c.Token.ID); err == nil {
			ev.deviceID = d.ID
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if err := q.DeleteToken(ctx, protocol.SessionToken, c.Token.ID); err != nil {
			return err
		}
		return s.audit(ctx, q, c, ev)
	})
	if errors.Is(err, store.ErrNotFound) {
		return ErrInvalidToken
	}
	return err
}

// FetchKeys consumes the caller's keyFetchToken and returns kA || wrapKb
// sealed for it (spec 4.2, 6.4); 104 for an unverified account, which
// consumes the token too. The consumption is ephemeral.
func (s *Service) FetchKeys(ctx context.Context, c Caller) ([]byte, error) {
	var bundle []byte
	err := s.consume(store.Ephemeral(ctx), c, func(q store.Queries, c Caller) error {
		a := c.Account
		if !a.Verified {
			return ErrUnverified
		}
		if err := s.audit(ctx, q, c, event{action: "keys.fetch", uid: a.UID, session: c.Token.SessionID}); err != nil {
			return err
		}
		keys := make([]byte, 0, len(a.KA)+len(a.WrapKb))
		bundle = keywrap.Bundle(c.Token.BundleKey, keywrap.ContextAccountKeys, append(append(keys, a.KA...), a.WrapKb...))
		return nil
	})
	return bundle, err
}
