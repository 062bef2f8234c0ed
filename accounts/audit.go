package accounts

import (
	"context"
	"fmt"
	"time"

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
	// details is the JSON object of a success, "{}" when empty; a failure
	// has {"errno": errno}.
	details string
}

// audit appends e for the caller through q, which is the transaction of the
// change it records when there is one.
func (s *Service) audit(ctx context.Context, q store.Queries, c Caller, e event) error {
	id, err := s.random(16)
	if err != nil {
		return err
	}
	ev := &store.Event{
		ID: id, Time: s.now(), Actor: store.ActorUser, Action: e.action, Outcome: store.OutcomeSuccess,
		UID: e.uid, DeviceID: e.deviceID, Details: "{}", IP: c.IP,
	}
	if e.details != "" {
		ev.Details = e.details
	}
	if e.actor != "" {
		ev.Actor = e.actor
	}
	if len(e.session) >= 8 {
		ev.SessionID = e.session[:8:8]
	}
	if e.errno != 0 {
		ev.Outcome = store.OutcomeFailure
		ev.Details = fmt.Sprintf(`{"errno":%d}`, e.errno)
	}
	return q.AppendEvent(ctx, ev)
}

// auditFailure records a refused action outside any transaction and returns
// cause. Server failures are not recorded; a failure to record is logged,
// and the client still gets the original error.
func (s *Service) auditFailure(ctx context.Context, c Caller, e event, cause error) error {
	if e.errno = errnoOf(cause); e.errno != 0 {
		if err := s.audit(ctx, s.st, c, e); err != nil {
			s.log.WarnContext(ctx, "audit event not recorded", "action", e.action, "err", err)
		}
	}
	return cause
}

// User view of the audit log (C18).
const (
	userEventsWindow = 30 * 24 * time.Hour
	userEventsLimit  = 100
)

// UserEvents returns the caller's account's events of the last 30 days,
// newest first, at most 100 (spec 10.4).
func (s *Service) UserEvents(ctx context.Context, c Caller) ([]store.Event, error) {
	return s.st.Events(ctx, store.EventQuery{
		UID: c.Account.UID, Since: s.now().Add(-userEventsWindow), Limit: userEventsLimit, Newest: true,
	})
}
