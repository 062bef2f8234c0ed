package sqlstore

import (
	"context"

	"github.com/keyserver/keyserver/store"
)

const eventCols = `id, time, actor, action, outcome, uid, device_id, session_id, ip, details`

var insertEvent = insertSQL("audit_events", eventCols)

func scanEvent(r scanner) (*store.Event, error) {
	var e store.Event
	var t int64
	err := r.Scan(&e.ID, &t, &e.Actor, &e.Action, &e.Outcome, &e.UID, &e.DeviceID, &e.SessionID, &e.IP, &e.Details)
	if err != nil {
		return nil, err
	}
	e.Time = fromMS(t)
	return &e, nil
}

func (q *queries) AppendEvent(ctx context.Context, e *store.Event) error {
	_, err := q.exec(ctx, insertEvent, e.ID, ms(e.Time), e.Actor, e.Action, e.Outcome,
		nullBytes(e.UID), nullBytes(e.DeviceID), nullBytes(e.SessionID), e.IP, e.Details)
	if err != nil {
		return q.fail(ctx, "append event", err)
	}
	return nil
}

func (q *queries) Events(ctx context.Context, eq store.EventQuery) ([]store.Event, error) {
	query := "SELECT " + eventCols + " FROM audit_events WHERE "
	var args []any
	if eq.After != nil {
		// time >= Since, skipping (Since, id <= After): a row-value
		// comparison that an index on (time, id) serves directly.
		query += "(time, id) > (?, ?)"
		args = append(args, ms(eq.Since), eq.After)
	} else {
		query += "time >= ?"
		args = append(args, ms(eq.Since))
	}
	if eq.UID != nil {
		query += " AND uid = ?"
		args = append(args, eq.UID)
	}
	if eq.Newest {
		query += " ORDER BY time DESC, id DESC"
	} else {
		query += " ORDER BY time, id"
	}
	if eq.Limit > 0 {
		query += " LIMIT ?"
		args = append(args, eq.Limit)
	}
	rows, err := q.rows(ctx, query, args...)
	if err != nil {
		return nil, q.fail(ctx, "events", err)
	}
	es, err := collect(rows, scanEvent)
	if err != nil {
		return nil, q.fail(ctx, "events", err)
	}
	return es, nil
}
