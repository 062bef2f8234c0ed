package devices

import (
	"crypto/ecdh"
	"encoding/base64"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/keyserver/keyserver/store"
)

// Fields are the writable members of a device record; nil means "not
// given". An empty push field clears it (stored as null).
type Fields struct {
	Name          *string
	Type          *string
	PushCallback  *string
	PushPublicKey *string
	PushAuthKey   *string
	// Rest, when set, is called once the fields are valid and before
	// anything is written: the caller's check of the rest of its request
	// (C12: unknown members are reported after every listed one).
	Rest func() error
}

// Member is a writable member of a device record, in the order of spec
// 6.5: its wire name, its rule, and whether a registration needs it.
type Member struct {
	Name     string
	Valid    func(string) bool
	Required bool
	field    func(*Fields) **string
}

// Set gives the member the value v in f.
func (m Member) Set(f *Fields, v string) { *m.field(f) = &v }

// Members is the one table of device members: the HTTP edge decodes them
// with it, and Validate applies its rules.
var Members = []Member{
	{"name", ValidName, true, func(f *Fields) **string { return &f.Name }},
	{"type", ValidType, true, func(f *Fields) **string { return &f.Type }},
	{"pushCallback", ValidPushCallback, false, func(f *Fields) **string { return &f.PushCallback }},
	{"pushPublicKey", ValidPushPublicKey, false, func(f *Fields) **string { return &f.PushPublicKey }},
	{"pushAuthKey", ValidPushAuthKey, false, func(f *Fields) **string { return &f.PushAuthKey }},
}

// FieldError reports a member that breaks the rules of C16 (errno 107), or
// a required one that is missing (Missing, errno 108).
type FieldError struct {
	Field   string
	Missing bool
}

func (e *FieldError) Error() string {
	if e.Missing {
		return "devices: missing " + e.Field
	}
	return "devices: invalid " + e.Field
}

// Types are the device types of spec 6.5.
var Types = []string{"desktop", "mobile", "tablet", "vr", "tv", "cli", "web"}

// Limits of C16.
const (
	MaxNameLength         = 255  // code points
	MaxPushCallbackLength = 2048 // characters
)

// ValidName: 1 to 255 code points of valid UTF-8, none a control character
// (U+0000-U+001F, U+007F-U+009F).
func ValidName(s string) bool {
	if s == "" || !utf8.ValidString(s) || utf8.RuneCountInString(s) > MaxNameLength {
		return false
	}
	for _, r := range s {
		if r <= 0x1f || (r >= 0x7f && r <= 0x9f) {
			return false
		}
	}
	return true
}

// ValidType: one of Types.
func ValidType(s string) bool {
	for _, t := range Types {
		if s == t {
			return true
		}
	}
	return false
}

// ValidPushCallback: empty (clear), or an absolute https URL with a host of
// at most 2048 characters. url.Parse is lenient, so characters no URL may
// hold (spaces, controls, non-ASCII: RFC 3986 section 2) and ports beyond
// 65535 are refused here.
func ValidPushCallback(s string) bool {
	if s == "" {
		return true
	}
	if utf8.RuneCountInString(s) > MaxPushCallbackLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || strings.IndexByte(`"<>\^`+"`{|}", c) >= 0 {
			return false
		}
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.Hostname() == "" || u.Opaque != "" {
		return false
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return false
		}
	}
	return true
}

// ValidPushPublicKey: empty (clear), or unpadded base64url of an
// uncompressed P-256 point (65 bytes starting 0x04) on the curve.
func ValidPushPublicKey(s string) bool {
	if s == "" {
		return true
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != 65 || b[0] != 4 {
		return false
	}
	_, err = ecdh.P256().NewPublicKey(b)
	return err == nil
}

// ValidPushAuthKey: empty (clear), or unpadded base64url of 16 bytes.
func ValidPushAuthKey(s string) bool {
	if s == "" {
		return true
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	return err == nil && len(b) == 16
}

// Validate checks every given member in the order of spec 6.5, then that
// pushPublicKey and pushAuthKey come together: both or neither, both values
// or both empty. A broken pairing is reported on pushAuthKey.
func (f Fields) Validate() error { return f.validate(false) }

// validate is Validate; for a registration the required members must be
// given too, each reported in its turn.
func (f Fields) validate(register bool) error {
	for _, m := range Members {
		v := *m.field(&f)
		switch {
		case v == nil && register && m.Required:
			return &FieldError{Field: m.Name, Missing: true}
		case v != nil && !m.Valid(*v):
			return &FieldError{Field: m.Name}
		}
	}
	pub, auth := f.PushPublicKey, f.PushAuthKey
	if (pub == nil) != (auth == nil) || (pub != nil && (*pub == "") != (*auth == "")) {
		return &FieldError{Field: "pushAuthKey"}
	}
	return nil
}

// pairs lists each given field with its stored counterpart.
func (f Fields) pairs(d *store.Device) []struct {
	given  *string
	stored *string
} {
	return []struct {
		given  *string
		stored *string
	}{
		{f.Name, &d.Name}, {f.Type, &d.Type}, {f.PushCallback, &d.PushCallback},
		{f.PushPublicKey, &d.PushPublicKey}, {f.PushAuthKey, &d.PushAuthKey},
	}
}

// matches reports whether every given field equals the stored value.
func (f Fields) matches(d *store.Device) bool {
	for _, p := range f.pairs(d) {
		if p.given != nil && *p.given != *p.stored {
			return false
		}
	}
	return true
}

// apply copies the given fields into d.
func (f Fields) apply(d *store.Device) {
	for _, p := range f.pairs(d) {
		if p.given != nil {
			*p.stored = *p.given
		}
	}
}
