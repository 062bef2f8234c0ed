package keyserver

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"regexp"
	"strconv"
	"unicode/utf8"
)

// readBody applies the length rules of spec 1.2 (411, 413) and returns the
// raw body, which Hawk needs for the payload hash.
func (s *Server) readBody(r *http.Request) ([]byte, error) {
	if len(r.TransferEncoding) > 0 || r.ContentLength < 0 {
		return nil, errMissingLength()
	}
	if r.ContentLength > s.cfg.BodyLimit {
		return nil, errBodyTooLarge()
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, r.ContentLength+1))
	if err != nil {
		return nil, errInvalidJSON()
	}
	if int64(len(body)) != r.ContentLength {
		return nil, errInvalidJSON()
	}
	return body, nil
}

// object is a request body (or a nested member) being validated member by
// member in the order of spec C12: each accessor reports 108 when the member
// is missing and 107 when it is malformed; end reports unknown members.
type object struct {
	path     string
	members  map[string]json.RawMessage
	order    []string // member names in document order
	used     map[string]bool
	children map[string]*object // nested objects read with Object
}

// parseObject parses a request body: empty counts as {}; anything that is
// not a JSON object of valid UTF-8 without repeated member names (at any
// level), a non-empty body (whitespace included) with a content type other
// than JSON, or any body of a GET, is 400/106.
func parseObject(r *http.Request, body []byte) (*object, error) {
	if len(body) == 0 {
		return newObject("", nil, nil), nil
	}
	if r.Method == http.MethodGet {
		return nil, errInvalidJSON()
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return nil, errInvalidJSON()
		}
	} else {
		return nil, errInvalidJSON()
	}
	if !utf8.Valid(body) || checkJSON(body) != nil {
		return nil, errInvalidJSON()
	}
	return objectFrom("", body)
}

func newObject(path string, members map[string]json.RawMessage, order []string) *object {
	if members == nil {
		members = map[string]json.RawMessage{}
	}
	return &object{path: path, members: members, order: order, used: map[string]bool{}}
}

// objectFrom decodes an already checked JSON object.
func objectFrom(path string, raw []byte) (*object, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, errInvalidJSON()
	}
	members := map[string]json.RawMessage{}
	var order []string
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, errInvalidJSON()
		}
		name := t.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, errInvalidJSON()
		}
		members[name] = v
		order = append(order, name)
	}
	return newObject(path, members, order), nil
}

// checkJSON reports whether body is exactly one JSON object with no member
// name repeated inside any object.
func checkJSON(body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	t, err := dec.Token()
	if err != nil || t != json.Delim('{') {
		return errInvalidJSON()
	}
	if err := checkValue(dec, t, 1); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errInvalidJSON()
	}
	return nil
}

const maxJSONDepth = 32

func checkValue(dec *json.Decoder, t json.Token, depth int) error {
	if depth > maxJSONDepth {
		return errInvalidJSON()
	}
	switch t {
	case json.Delim('{'):
		seen := map[string]bool{}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return err
			}
			name := k.(string)
			if seen[name] {
				return errInvalidJSON()
			}
			seen[name] = true
			v, err := dec.Token()
			if err != nil {
				return err
			}
			if err := checkValue(dec, v, depth+1); err != nil {
				return err
			}
		}
		_, err := dec.Token()
		return err
	case json.Delim('['):
		for dec.More() {
			v, err := dec.Token()
			if err != nil {
				return err
			}
			if err := checkValue(dec, v, depth+1); err != nil {
				return err
			}
		}
		_, err := dec.Token()
		return err
	}
	return nil
}

func (o *object) param(name string) string { return o.path + name }

// get returns a member's raw value: ok false when it is absent, and a 107
// error when it is JSON null (never valid).
func (o *object) get(name string) (json.RawMessage, bool, error) {
	o.used[name] = true
	v, ok := o.members[name]
	if !ok {
		return nil, false, nil
	}
	if string(v) == "null" {
		return nil, true, errInvalidParam(o.param(name))
	}
	return v, true, nil
}

// require is get for a required member.
func (o *object) require(name string) (json.RawMessage, error) {
	v, ok, err := o.get(name)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errMissingParam(o.param(name))
	}
	return v, nil
}

// stringValue decodes a JSON string member.
func (o *object) stringValue(name string, v json.RawMessage) (string, error) {
	var s string
	if len(v) == 0 || v[0] != '"' || json.Unmarshal(v, &s) != nil {
		return "", errInvalidParam(o.param(name))
	}
	return s, nil
}

// String returns a required string member accepted by valid.
func (o *object) String(name string, valid func(string) bool) (string, error) {
	v, err := o.require(name)
	if err != nil {
		return "", err
	}
	s, err := o.stringValue(name, v)
	if err != nil {
		return "", err
	}
	if valid != nil && !valid(s) {
		return "", errInvalidParam(o.param(name))
	}
	return s, nil
}

// OptionalString is String for an optional member; present reports whether
// it was given.
func (o *object) OptionalString(name string, valid func(string) bool) (s string, present bool, err error) {
	if _, ok := o.members[name]; !ok {
		o.used[name] = true
		return "", false, nil
	}
	s, err = o.String(name, valid)
	return s, err == nil, err
}

// Hex returns a required member that is a hex string of exactly n bytes
// (either case of digit, spec 1.2).
func (o *object) Hex(name string, n int) ([]byte, error) {
	s, err := o.String(name, nil)
	if err != nil {
		return nil, err
	}
	b, ok := decodeHex(s, n)
	if !ok {
		return nil, errInvalidParam(o.param(name))
	}
	return b, nil
}

// decodeHex decodes s when it is hex of exactly n bytes (n < 0: any length).
func decodeHex(s string, n int) ([]byte, bool) {
	if n >= 0 && len(s) != 2*n {
		return nil, false
	}
	b, err := hex.DecodeString(s)
	return b, err == nil
}

var integerRE = regexp.MustCompile(`^-?(0|[1-9][0-9]*)$`)

// Int returns a required integer member (a JSON number without fraction or
// exponent) accepted by valid.
func (o *object) Int(name string, valid func(int64) bool) (int64, error) {
	v, err := o.require(name)
	if err != nil {
		return 0, err
	}
	if !integerRE.Match(v) {
		return 0, errInvalidParam(o.param(name))
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil || (valid != nil && !valid(n)) {
		return 0, errInvalidParam(o.param(name))
	}
	return n, nil
}

// OptionalBool returns an optional boolean member.
func (o *object) OptionalBool(name string) (value, present bool, err error) {
	v, ok, err := o.get(name)
	if err != nil || !ok {
		return false, ok, err
	}
	switch string(v) {
	case "true":
		return true, true, nil
	case "false":
		return false, true, nil
	}
	return false, true, errInvalidParam(o.param(name))
}

// Object returns a required member that is itself an object.
func (o *object) Object(name string) (*object, error) {
	v, err := o.require(name)
	if err != nil {
		return nil, err
	}
	if v[0] != '{' {
		return nil, errInvalidParam(o.param(name))
	}
	c, err := objectFrom(o.param(name)+".", v)
	if err != nil {
		return nil, err
	}
	if o.children == nil {
		o.children = map[string]*object{}
	}
	o.children[name] = c
	return c, nil
}

// End reports the first member that no accessor asked for (400/107), in
// document order and including those inside nested objects (e.g.
// "srp.foo"). Call it on the top-level object once every listed member,
// nested ones included, has been read: unknown members come last (C12).
func (o *object) End() error {
	for _, name := range o.order {
		if !o.used[name] {
			return errInvalidParam(o.param(name))
		}
		if c := o.children[name]; c != nil {
			if err := c.End(); err != nil {
				return err
			}
		}
	}
	return nil
}
