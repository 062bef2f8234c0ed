package client

import (
	"context"
	"net/http"

	"github.com/keyserver/keyserver/protocol"
)

// DeviceFields are the members sent to /v1/account/device; nil members are
// not sent, and "" clears a push field.
type DeviceFields struct {
	Name          *string `json:"name,omitempty"`
	Type          *string `json:"type,omitempty"`
	PushCallback  *string `json:"pushCallback,omitempty"`
	PushPublicKey *string `json:"pushPublicKey,omitempty"`
	PushAuthKey   *string `json:"pushAuthKey,omitempty"`
}

// RegisterDevice registers the device of a session (Name and Type
// required); repeating it with the same fields returns the same device
// (spec 6.5).
func (c *Client) RegisterDevice(ctx context.Context, sessionToken []byte, f DeviceFields) (*protocol.Device, error) {
	return c.saveDevice(ctx, sessionToken, f)
}

// UpdateDevice replaces the given fields of the session's own device id.
func (c *Client) UpdateDevice(ctx context.Context, sessionToken []byte, id string, f DeviceFields) (*protocol.Device, error) {
	return c.saveDevice(ctx, sessionToken, struct {
		ID string `json:"id"`
		DeviceFields
	}{id, f})
}

func (c *Client) saveDevice(ctx context.Context, sessionToken []byte, body any) (*protocol.Device, error) {
	var d protocol.Device
	if err := c.Do(ctx, http.MethodPost, "/v1/account/device", body, sessionCred(sessionToken), &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// Devices lists every device of the session's account; the session's own
// device is the one whose Current() is true.
func (c *Client) Devices(ctx context.Context, sessionToken []byte) ([]protocol.Device, error) {
	var resp struct {
		Devices []protocol.Device `json:"devices"`
	}
	err := c.Do(ctx, http.MethodGet, "/v1/account/devices", nil, sessionCred(sessionToken), &resp)
	return resp.Devices, err
}

// DestroyDevice revokes a device of the account: its session and pending
// key fetches end at once (spec 6.5).
func (c *Client) DestroyDevice(ctx context.Context, sessionToken []byte, id string) error {
	return c.Do(ctx, http.MethodPost, "/v1/account/device/destroy", map[string]string{"id": id}, sessionCred(sessionToken), nil)
}

// Events returns the account's events of the last 30 days, newest first
// (spec 10.4; IP is nil for admin actions).
func (c *Client) Events(ctx context.Context, sessionToken []byte) ([]protocol.UserEvent, error) {
	var resp struct {
		Events []protocol.UserEvent `json:"events"`
	}
	err := c.Do(ctx, http.MethodGet, "/v1/account/events", nil, sessionCred(sessionToken), &resp)
	return resp.Events, err
}

func sessionCred(sessionToken []byte) *Credentials {
	return TokenCredentials(protocol.SessionToken, sessionToken)
}
