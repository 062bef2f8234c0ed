package storetest

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/keyserver/keyserver/store"
)

func testEvents(t *testing.T, s store.Store) {
	ctx := t.Context()
	u1, u2 := rnd(16), rnd(16)
	tA, tB, tC := t0, t0.Add(time.Millisecond), t0.Add(time.Hour)
	var all []*store.Event
	add := func(uid []byte, at time.Time, mutate func(*store.Event)) {
		e := newEvent(uid, at)
		if mutate != nil {
			mutate(e)
		}
		all = append(all, mustEvent(t, s, e))
	}
	add(u1, tA, nil)
	add(u2, tA, func(e *store.Event) {
		e.Actor, e.Action, e.Outcome, e.Details = store.ActorAdmin, "admin.account.disable", store.OutcomeSuccess, `{"x":1}`
	})
	add(nil, tA, func(e *store.Event) { e.Outcome, e.Details = store.OutcomeFailure, `{"errno":102}` })
	add(u1, tB, func(e *store.Event) { e.DeviceID, e.SessionID = rnd(16), rnd(8) })
	add(u1, tB, nil)
	add(u2, tC, nil)
	add(u1, tC, nil)
	slices.SortFunc(all, func(a, b *store.Event) int {
		if c := a.Time.Compare(b.Time); c != 0 {
			return c
		}
		return bytes.Compare(a.ID, b.ID)
	})
	filter := func(keep func(*store.Event) bool) []*store.Event {
		var out []*store.Event
		for _, e := range all {
			if keep(e) {
				out = append(out, e)
			}
		}
		return out
	}
	check := func(what string, q store.EventQuery, want []*store.Event) {
		t.Helper()
		got, err := s.Events(ctx, q)
		if err != nil {
			t.Fatalf("Events(%s): %v", what, err)
		}
		if len(got) != len(want) {
			t.Fatalf("Events(%s) returned %d events, want %d", what, len(got), len(want))
		}
		for i := range want {
			sameRecord(t, &got[i], want[i])
		}
	}

	check("all", store.EventQuery{}, all)
	check("since tB", store.EventQuery{Since: tB}, filter(func(e *store.Event) bool { return !e.Time.Before(tB) }))
	check("uid", store.EventQuery{UID: u1}, filter(func(e *store.Event) bool { return bytes.Equal(e.UID, u1) }))
	check("limit", store.EventQuery{Limit: 2}, all[:2])
	check("after the 2nd", store.EventQuery{Since: all[1].Time, After: all[1].ID}, all[2:])
	check("newest", store.EventQuery{Newest: true, Limit: 3}, []*store.Event{all[6], all[5], all[4]})
	check("newest of uid since tB", store.EventQuery{UID: u2, Since: tB, Newest: true},
		filter(func(e *store.Event) bool { return bytes.Equal(e.UID, u2) && !e.Time.Before(tB) }))

	// Paging with the cursor of spec 10.4 walks every event once, in order,
	// also across pages that end inside a run of equal times.
	for _, uid := range [][]byte{nil, u1} {
		for limit := 1; limit <= 3; limit++ {
			var got []store.Event
			q := store.EventQuery{UID: uid, Limit: limit}
			for pages := 0; ; pages++ {
				if pages > len(all) {
					t.Fatalf("paging with limit %d does not end", limit)
				}
				page, err := s.Events(ctx, q)
				if err != nil {
					t.Fatalf("Events(page): %v", err)
				}
				got = append(got, page...)
				if len(page) < limit {
					break
				}
				last := page[len(page)-1]
				q.Since, q.After = last.Time, last.ID
			}
			want := filter(func(e *store.Event) bool { return uid == nil || bytes.Equal(e.UID, uid) })
			if len(got) != len(want) {
				t.Fatalf("paging (uid %x, limit %d) returned %d events, want %d", uid, limit, len(got), len(want))
			}
			for i := range want {
				sameRecord(t, &got[i], want[i])
			}
		}
	}
}
