package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/keyserver/keyserver/store"
)

const deviceCols = `id, uid, session_id, name, type, push_callback, push_public_key, push_auth_key,
	created_at, last_access_at`

var insertDevice = insertSQL("devices", deviceCols)

func scanDevice(r scanner) (*store.Device, error) {
	var d store.Device
	var callback, publicKey, authKey sql.NullString
	var created, lastAccess int64
	err := r.Scan(&d.ID, &d.UID, &d.SessionID, &d.Name, &d.Type, &callback, &publicKey, &authKey, &created, &lastAccess)
	if err != nil {
		return nil, err
	}
	d.PushCallback, d.PushPublicKey, d.PushAuthKey = callback.String, publicKey.String, authKey.String
	d.CreatedAt, d.LastAccessAt = fromMS(created), fromMS(lastAccess)
	return &d, nil
}

func (q *queries) CreateDevice(ctx context.Context, d *store.Device) error {
	_, err := q.exec(ctx, insertDevice, d.ID, d.UID, d.SessionID, d.Name, d.Type,
		nullString(d.PushCallback), nullString(d.PushPublicKey), nullString(d.PushAuthKey), ms(d.CreatedAt), ms(d.LastAccessAt))
	if err != nil {
		return q.fail(ctx, "create device", err)
	}
	return nil
}

func (q *queries) device(ctx context.Context, op, where string, args ...any) (*store.Device, error) {
	d, err := scanDevice(q.row(ctx, "SELECT "+deviceCols+" FROM devices WHERE "+where, args...))
	if err != nil {
		return nil, q.fail(ctx, op, err)
	}
	return d, nil
}

func (q *queries) Device(ctx context.Context, uid, id []byte) (*store.Device, error) {
	return q.device(ctx, "device", "uid = ? AND id = ?", uid, id)
}

func (q *queries) DeviceBySession(ctx context.Context, sessionID []byte) (*store.Device, error) {
	return q.device(ctx, "device by session", "session_id = ?", sessionID)
}

func (q *queries) UpdateDevice(ctx context.Context, d *store.Device) error {
	return q.mustAffect(ctx, "update device",
		"UPDATE devices SET name = ?, type = ?, push_callback = ?, push_public_key = ?, push_auth_key = ? WHERE id = ?",
		d.Name, d.Type, nullString(d.PushCallback), nullString(d.PushPublicKey), nullString(d.PushAuthKey), d.ID)
}

// TouchDevice reports false, not an error, for an unknown device.
func (q *queries) TouchDevice(ctx context.Context, id []byte, at time.Time, minAge time.Duration) (bool, error) {
	n, err := affected(q.exec(ctx, "UPDATE devices SET last_access_at = ? WHERE id = ? AND last_access_at < ?",
		ms(at), id, ms(at.Add(-minAge))))
	if err != nil {
		return false, q.fail(ctx, "touch device", err)
	}
	return n > 0, nil
}

func (q *queries) Devices(ctx context.Context, uid []byte) ([]store.Device, error) {
	rows, err := q.rows(ctx, "SELECT "+deviceCols+" FROM devices WHERE uid = ? ORDER BY created_at, id", uid)
	if err != nil {
		return nil, q.fail(ctx, "devices", err)
	}
	ds, err := collect(rows, scanDevice)
	if err != nil {
		return nil, q.fail(ctx, "devices", err)
	}
	return ds, nil
}

func (q *queries) DeleteDevices(ctx context.Context, uid []byte) error {
	if _, err := q.exec(ctx, "DELETE FROM devices WHERE uid = ?", uid); err != nil {
		return q.fail(ctx, "delete devices", err)
	}
	return nil
}
