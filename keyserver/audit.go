package keyserver

import (
	"context"
	"fmt"
	"io"

	"github.com/keyserver/keyserver/store"
)

// event describes one audit event (spec 10.4) before it is stamped.
type event struct {
	action   string
	uid      []byte
	deviceID []byte
	session  []byte // the sessionToken id; only its first 8 bytes are kept
	errno    int    // 0 on success
	actor    string // default user
}

// audit appends e through q, which is the transaction of the change it
// records when there is one.
func (s *Server) audit(ctx context.Context, q store.Queries, e event) error {
	id, err := s.random(16)
	if err != nil {
		return err
	}
	ev := &store.Event{
		ID: id, Time: s.now(), Actor: store.ActorUser, Action: e.action, Outcome: store.OutcomeSuccess,
		UID: e.uid, DeviceID: e.deviceID, Details: "{}",
	}
	if info := requestInfoFrom(ctx); info != nil {
		ev.IP = info.clientIP
	}
	if e.actor != "" {
		ev.Actor = e.actor
	}
	if len(e.session) >= 8 {
		ev.SessionID = e.session[:8]
	}
	if e.errno != 0 {
		ev.Outcome = store.OutcomeFailure
		ev.Details = fmt.Sprintf(`{"errno":%d}`, e.errno)
	}
	return q.AppendEvent(ctx, ev)
}

// auditFailure records a failed action outside any transaction; a failure
// to record is logged, and the client still gets the original error.
func (s *Server) auditFailure(ctx context.Context, e event, cause error) error {
	if ae := asError(cause); ae.Status < 500 {
		e.errno = ae.Errno
		if err := s.audit(ctx, s.store, e); err != nil {
			s.log.WarnContext(ctx, "audit event not recorded", "action", e.action, "err", err)
		}
	}
	return cause
}

// random returns n bytes from the configured CSPRNG.
func (s *Server) random(n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(s.cfg.Rand, b); err != nil {
		return nil, fmt.Errorf("random: %w", err)
	}
	return b, nil
}
