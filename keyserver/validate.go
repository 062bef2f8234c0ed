package keyserver

import (
	"bytes"
	"encoding/hex"
	"unicode/utf8"

	"github.com/keyserver/keyserver/keywrap"
	"github.com/keyserver/keyserver/protocol"
	"github.com/keyserver/keyserver/srp"
	"github.com/keyserver/keyserver/store"
)

// Email reads a hex-encoded email member and checks spec 1.3: valid UTF-8,
// 3 to 255 bytes, no control characters, an "@" neither first nor last.
func (o *object) Email(name string) (string, error) {
	s, err := o.String(name, nil)
	if err != nil {
		return "", err
	}
	b, ok := decodeHex(s, -1)
	if !ok || !validEmail(b) {
		return "", errInvalidParam(o.param(name))
	}
	return string(b), nil
}

func validEmail(b []byte) bool {
	if len(b) < 3 || len(b) > 255 || !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return bytes.IndexByte(b[1:len(b)-1], '@') >= 0
}

// SRP reads the srp object of account/create (withVerifier) or
// account/reset (type and salt only). Unknown members inside it are left to
// the top-level End (C12: they come after every listed member).
func (o *object) SRP(name string, withVerifier bool) (typ string, verifier, salt []byte, err error) {
	so, err := o.Object(name)
	if err != nil {
		return "", nil, nil, err
	}
	if typ, err = so.String("type", func(s string) bool { return s == srp.Type }); err != nil {
		return "", nil, nil, err
	}
	if withVerifier {
		if verifier, err = so.Hex("verifier", 256); err != nil {
			return "", nil, nil, err
		}
		if srp.ValidatePublic(verifier) != nil {
			return "", nil, nil, errInvalidParam(so.param("verifier"))
		}
	}
	if salt, err = so.Hex("salt", 32); err != nil {
		return "", nil, nil, err
	}
	return typ, verifier, salt, nil
}

// Stretching reads the passwordStretching object; every number must be the
// protocol's (spec 2). Unknown members inside it are left to the top-level
// End.
func (o *object) Stretching(name string) (store.Stretching, error) {
	var st store.Stretching
	so, err := o.Object(name)
	if err != nil {
		return st, err
	}
	if st.Type, err = so.String("type", func(s string) bool { return s == keywrap.StretchType }); err != nil {
		return st, err
	}
	p := keywrap.DefaultParams()
	ints := []struct {
		name string
		want int64
		dst  *int
	}{
		{"PBKDF2_rounds_1", int64(p.PBKDF2Rounds1), &st.PBKDF2Rounds1},
		{"scrypt_N", int64(p.ScryptN), &st.ScryptN},
		{"scrypt_r", int64(p.ScryptR), &st.ScryptR},
		{"scrypt_p", int64(p.ScryptP), &st.ScryptP},
		{"PBKDF2_rounds_2", int64(p.PBKDF2Rounds2), &st.PBKDF2Rounds2},
	}
	for _, f := range ints {
		n, err := so.Int(f.name, func(n int64) bool { return n == f.want })
		if err != nil {
			return st, err
		}
		*f.dst = int(n)
	}
	if st.Salt, err = so.Hex("salt", 32); err != nil {
		return st, err
	}
	return st, nil
}

// validService: 1 to 16 ASCII letters or digits (spec 6.3).
func validService(s string) bool {
	if len(s) < 1 || len(s) > 16 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

func stretchingOut(st store.Stretching) protocol.Stretching {
	return protocol.Stretching{Type: st.Type, PBKDF2Rounds1: st.PBKDF2Rounds1, ScryptN: st.ScryptN, ScryptR: st.ScryptR,
		ScryptP: st.ScryptP, PBKDF2Rounds2: st.PBKDF2Rounds2, Salt: hexString(st.Salt)}
}

func hexString(b []byte) string { return hex.EncodeToString(b) }
