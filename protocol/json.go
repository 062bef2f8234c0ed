package protocol

import (
	"encoding/hex"
	"encoding/json"
)

// Stretching is the passwordStretching object of spec 2, members in the
// spec's order.
type Stretching struct {
	Type          string `json:"type"`
	PBKDF2Rounds1 int    `json:"PBKDF2_rounds_1"`
	ScryptN       int    `json:"scrypt_N"`
	ScryptR       int    `json:"scrypt_r"`
	ScryptP       int    `json:"scrypt_p"`
	PBKDF2Rounds2 int    `json:"PBKDF2_rounds_2"`
	Salt          string `json:"salt"`
}

// SRP is the srp object: with verifier at account/create, type and salt
// only at account/reset, with B in the answer of auth/start.
type SRP struct {
	Type     string `json:"type"`
	Verifier string `json:"verifier,omitempty"`
	Salt     string `json:"salt"`
	B        string `json:"B,omitempty"`
}

// Device is the device record of spec 6.5: ids in hex, times in ms, unset
// push fields null. IsCurrentDevice is nil in the admin API's listing
// (spec 10.2), which omits it.
type Device struct {
	ID              string  `json:"id"`
	Name            string  `json:"name"`
	Type            string  `json:"type"`
	CreatedAt       int64   `json:"createdAt"`
	LastAccessTime  int64   `json:"lastAccessTime"`
	IsCurrentDevice *bool   `json:"isCurrentDevice,omitempty"`
	PushCallback    *string `json:"pushCallback"`
	PushPublicKey   *string `json:"pushPublicKey"`
	PushAuthKey     *string `json:"pushAuthKey"`
}

// Current reports whether the record is the requesting session's device.
func (d *Device) Current() bool { return d.IsCurrentDevice != nil && *d.IsCurrentDevice }

// AuditEvent is an audit event as the admin API shows it (spec 10.4).
type AuditEvent struct {
	ID        string          `json:"id"`
	Time      int64           `json:"time"`
	Actor     string          `json:"actor"`
	Action    string          `json:"action"`
	Outcome   string          `json:"outcome"`
	UID       *string         `json:"uid"`
	DeviceID  *string         `json:"deviceId"`
	SessionID *string         `json:"sessionId"`
	IP        string          `json:"ip"`
	Details   json.RawMessage `json:"details"`
}

// UserEvent is an event as GET /v1/account/events shows it to the account
// holder (spec 10.4); IP is null for admin actions.
type UserEvent struct {
	Time     int64   `json:"time"`
	Action   string  `json:"action"`
	Outcome  string  `json:"outcome"`
	Actor    string  `json:"actor"`
	DeviceID *string `json:"deviceId"`
	IP       *string `json:"ip"`
}

// AdminAccount is the account record of the admin API (spec 10.2): no
// keys, no verifier, no codes. Email is the hex of the stored bytes.
type AdminAccount struct {
	UID          string `json:"uid"`
	Email        string `json:"email"`
	Verified     bool   `json:"verified"`
	Disabled     bool   `json:"disabled"`
	CreatedAt    int64  `json:"createdAt"`
	Generation   int64  `json:"generation"`
	SessionCount int    `json:"sessionCount"`
	DeviceCount  int    `json:"deviceCount"`
	// HasRecoveryKey: the account has a recovery key (docs/recovery-key.md,
	// RK.7); never its id or data.
	HasRecoveryKey bool `json:"hasRecoveryKey"`
}

// RecoveryKeyStatus is the response of GET /v1/recoveryKey
// (docs/recovery-key.md, RK.4); CreatedAt (ms) is 0 and absent when there
// is none.
type RecoveryKeyStatus struct {
	Exists    bool  `json:"exists"`
	CreatedAt int64 `json:"createdAt,omitempty"`
}

// RecoveryKeyData is the response of POST /v1/recoveryKey/data: the
// account's uid (hex32) and its recoveryData (hex120).
type RecoveryKeyData struct {
	UID          string `json:"uid"`
	RecoveryData string `json:"recoveryData"`
}

// EmailString returns the email as text: Email decoded from hex, or Email
// itself when it is not hex.
func (a *AdminAccount) EmailString() string {
	b, err := hex.DecodeString(a.Email)
	if err != nil {
		return a.Email
	}
	return string(b)
}

// ErrorBody is the fixed part of the error body of spec 1.4; an error may
// carry further members (param, email, retryAfter, serverTime, tries, ttl).
type ErrorBody struct {
	Code    int    `json:"code"`
	Errno   Errno  `json:"errno"`
	Error   string `json:"error"`
	Message string `json:"message"`
}
