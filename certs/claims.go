package certs

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Claims are the payload of a certificate (spec 7.2). Times are kept to the
// millisecond. The JSON encoding is the payload as written; [Signer.Sign]
// takes IssuedAt as the moment of issue and backdates iat.
type Claims struct {
	PublicKey *PublicKey
	// Principal is principal.email: "<uid hex>@<issuer domain>".
	Principal string
	// IssuedAt is iat (of a verified certificate: as written in it).
	IssuedAt  time.Time
	ExpiresAt time.Time
	// Issuer is the issuer domain: host[:port] of the public URL.
	Issuer string
	// Generation is picl-generation, the time the password was set; zero
	// when absent (certificates of other identity providers have none).
	Generation time.Time
	// DeviceID is picl-deviceId (hex), "" when the session has no device.
	DeviceID string
}

type principal struct {
	Email string `json:"email"`
}

// claimsJSON is the wire form, members in the order of spec 7.2.
type claimsJSON struct {
	PublicKey  *PublicKey `json:"public-key"`
	Principal  principal  `json:"principal"`
	IssuedAt   int64      `json:"iat"`
	ExpiresAt  int64      `json:"exp"`
	Issuer     string     `json:"iss"`
	Generation *int64     `json:"picl-generation,omitempty"`
	DeviceID   string     `json:"picl-deviceId,omitempty"`
}

// MarshalJSON writes the compact payload of spec 7.2.
func (c *Claims) MarshalJSON() ([]byte, error) {
	if c.PublicKey == nil {
		return nil, fmt.Errorf("%w: no public key", ErrInvalidKey)
	}
	w := claimsJSON{
		PublicKey: c.PublicKey,
		Principal: principal{c.Principal},
		IssuedAt:  c.IssuedAt.UnixMilli(),
		ExpiresAt: c.ExpiresAt.UnixMilli(),
		Issuer:    c.Issuer,
		DeviceID:  c.DeviceID,
	}
	if !c.Generation.IsZero() {
		ms := c.Generation.UnixMilli()
		w.Generation = &ms
	}
	return marshalCompact(w)
}

// parseClaims decodes a certificate payload; public-key, principal, iat,
// exp and iss are required, the picl- members optional. Unknown members
// are ignored.
func parseClaims(payload []byte, legacy bool) (*Claims, error) {
	var w struct {
		PublicKey  json.RawMessage `json:"public-key"`
		Principal  *principal      `json:"principal"`
		IssuedAt   *int64          `json:"iat"`
		ExpiresAt  *int64          `json:"exp"`
		Issuer     *string         `json:"iss"`
		Generation *int64          `json:"picl-generation"`
		DeviceID   *string         `json:"picl-deviceId"`
	}
	if err := json.Unmarshal(payload, &w); err != nil {
		return nil, fmt.Errorf("%w: payload: %v", ErrMalformed, err)
	}
	if w.PublicKey == nil || w.Principal == nil || w.IssuedAt == nil || w.ExpiresAt == nil || w.Issuer == nil {
		return nil, fmt.Errorf("%w: payload lacks a required member", ErrMalformed)
	}
	if w.DeviceID != nil && *w.DeviceID == "" {
		return nil, fmt.Errorf("%w: empty picl-deviceId", ErrMalformed)
	}
	pk, err := ParsePublicKey(w.PublicKey, legacy)
	if err != nil {
		return nil, errors.Join(ErrMalformed, err)
	}
	c := &Claims{
		PublicKey: pk,
		Principal: w.Principal.Email,
		IssuedAt:  time.UnixMilli(*w.IssuedAt).UTC(),
		ExpiresAt: time.UnixMilli(*w.ExpiresAt).UTC(),
		Issuer:    *w.Issuer,
	}
	if w.Generation != nil {
		c.Generation = time.UnixMilli(*w.Generation).UTC()
	}
	if w.DeviceID != nil {
		c.DeviceID = *w.DeviceID
	}
	return c, nil
}
