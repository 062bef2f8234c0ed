package accounts

import (
	"bytes"
	"context"
	"errors"
	"time"

	"github.com/keyserver/keyserver/devices"
	"github.com/keyserver/keyserver/protocol"
	"github.com/keyserver/keyserver/store"
)

// Token returns the live token of type typ with this id, whose key the
// HTTP edge checks the request's Hawk MAC against: ErrInvalidToken when
// there is none or it has expired.
func (s *Service) Token(ctx context.Context, typ protocol.TokenType, id []byte) (*store.Token, error) {
	return s.live(s.st.Token(ctx, typ, id))
}

// live maps a token lookup's result: ErrInvalidToken when there is no
// such token or it has expired.
func (s *Service) live(tok *store.Token, err error) (*store.Token, error) {
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrInvalidToken
	} else if err != nil {
		return nil, err
	}
	if tok.Expired(s.now()) {
		return nil, ErrInvalidToken
	}
	return tok, nil
}

// TokenWithAccount is Token that also returns the token's account, read
// with it in one query, for Hawk.Account: Authenticate then needs no second
// read. The account is nil for the token types that every request consumes
// (authToken, keyFetchToken): consume reads it inside its transaction, so
// reading it here too would read the row twice.
func (s *Service) TokenWithAccount(ctx context.Context, typ protocol.TokenType, id []byte) (*store.Token, *store.Account, error) {
	var tok *store.Token
	var a *store.Account
	var err error
	switch typ {
	case protocol.AuthToken, protocol.KeyFetchToken:
		tok, err = s.st.Token(ctx, typ, id)
	default:
		tok, a, err = s.st.TokenWithAccount(ctx, typ, id)
	}
	if tok, err = s.live(tok, err); err != nil {
		return nil, nil, err
	}
	return tok, a, nil
}

// hawkAccount is the account of h's token: the one read with it (Hawk.Account)
// or, when there is none, read now with q.
func (s *Service) hawkAccount(ctx context.Context, q store.Queries, h *Hawk) (*store.Account, error) {
	if h.Account != nil && bytes.Equal(h.Account.UID, h.Token.UID) {
		return h.Account, nil
	}
	return q.AccountByUID(ctx, h.Token.UID)
}

// Authenticate completes the authentication of a request whose token is
// not consumed (spec 5, 1.6): it records the nonce (ErrInvalidNonce on a
// replay), checks that the account exists and is not disabled, and for a
// sessionToken updates its device's last access; both writes are
// ephemeral. It returns the caller with Token and Account set.
func (s *Service) Authenticate(ctx context.Context, c Caller) (Caller, error) {
	h := c.Hawk
	if err := s.useNonce(store.Ephemeral(ctx), s.st, h); err != nil {
		return c, err
	}
	a, err := s.hawkAccount(ctx, s.st, h)
	if errors.Is(err, store.ErrNotFound) {
		return c, ErrInvalidToken
	} else if err != nil {
		return c, err
	}
	if a.Disabled {
		return c, ErrDisabled
	}
	if h.Token.Type == protocol.SessionToken { // last access of its device (spec 6.5)
		if err := s.devices.Touch(ctx, h.Token.ID); err != nil {
			return c, err
		}
	}
	c.Token, c.Account = h.Token, a
	return c, nil
}

// useNonce records the request's (tokenId, ts, nonce) until ts + NonceTTL,
// so a replay inside the accepted window is caught by every instance.
func (s *Service) useNonce(ctx context.Context, q store.Queries, h *Hawk) error {
	err := q.UseNonce(ctx, h.Token.ID, h.Timestamp, h.Nonce, time.Unix(h.Timestamp, 0).Add(s.cfg.NonceTTL))
	if errors.Is(err, store.ErrConflict) {
		return ErrInvalidNonce
	}
	return err
}

// consume runs an operation of a consuming endpoint in one transaction, of
// ctx's durability class (the caller's: store.Ephemeral for sign-in state
// only): the nonce is recorded, the token consumed, and op's writes made
// together. A replay or an already consumed token rolls everything back; a
// refusal by op (or a disabled account) still commits the consumption (D2);
// a server failure rolls back, so an outage does not burn the token.
func (s *Service) consume(ctx context.Context, c Caller, op func(q store.Queries, c Caller) error) error {
	var failure error
	err := s.st.WithTx(ctx, func(q store.Queries) error {
		if err := s.useNonce(ctx, q, c.Hawk); err != nil {
			return err
		}
		tok, err := q.ConsumeToken(ctx, c.Hawk.Token.Type, c.Hawk.Token.ID)
		if err != nil {
			return err
		}
		// Read again inside the transaction, not taken from c.Hawk.Account:
		// an account disabled (or changed) after the edge read it and
		// before this commit must still refuse the consumption.
		a, err := q.AccountByUID(ctx, tok.UID)
		if err != nil {
			return err
		}
		if a.Disabled {
			failure = ErrDisabled
			return nil
		}
		c.Token, c.Account = tok, a
		if failure = op(q, c); failure != nil && errnoOf(failure) == 0 {
			return failure
		}
		return nil
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return ErrInvalidToken
	case err != nil:
		return err
	}
	return failure
}

// Reject consumes the token of a consuming endpoint whose request the edge
// refused (a malformed body, D2) and returns refusal, unless the token
// could not be consumed (replay, already consumed, disabled account), whose
// error comes first. Nothing but the token changes, so it is ephemeral.
func (s *Service) Reject(ctx context.Context, c Caller, refusal error) error {
	return s.consume(store.Ephemeral(ctx), c, func(store.Queries, Caller) error { return refusal })
}

// deviceError maps the registry's errors to refusals.
func deviceError(err error) error {
	var fe *devices.FieldError
	switch {
	case errors.As(err, &fe) && fe.Missing:
		return MissingParam(fe.Field)
	case errors.As(err, &fe):
		return InvalidParam(fe.Field)
	case errors.Is(err, devices.ErrUnknownDevice):
		return ErrUnknownDevice
	case errors.Is(err, devices.ErrSessionHasDevice):
		return ErrDeviceExists
	case errors.Is(err, store.ErrNotFound):
		return ErrInvalidToken // the session ended meanwhile
	}
	return err
}
