package keyserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keyserver/keyserver/protocol"
	"github.com/keyserver/keyserver/store"
)

func post(body string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/v1/x", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json; charset=utf-8")
	return r
}

func errno(t *testing.T, err error) int {
	t.Helper()
	if err == nil {
		return 0
	}
	e := asError(err)
	return e.Errno
}

func TestParseObjectRejects(t *testing.T) {
	cases := map[string]string{
		"not an object":       `[1]`,
		"string":              `"x"`,
		"trailing data":       `{} {}`,
		"duplicate":           `{"a":1,"a":2}`,
		"nested duplicate":    `{"a":{"b":1,"b":1}}`,
		"duplicate in array":  `{"a":[{"b":1,"b":2}]}`,
		"invalid utf8":        "{\"a\":\"\xff\"}",
		"truncated":           `{"a":`,
		"bare word":           `{a:1}`,
		"too deep":            `{"a":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`,
		"unterminated string": `{"a":"x}`,
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := parseObject(post(body), []byte(body))
			if got := errno(t, err); got != protocol.ErrnoInvalidJSON {
				t.Fatalf("errno = %d, want 106", got)
			}
		})
	}
}

func TestParseObjectContentType(t *testing.T) {
	r := post(`{}`)
	r.Header.Set("Content-Type", "text/plain")
	if _, err := parseObject(r, []byte(`{}`)); errno(t, err) != protocol.ErrnoInvalidJSON {
		t.Fatalf("text/plain body: %v", err)
	}
	r.Header.Del("Content-Type")
	if _, err := parseObject(r, []byte(`{}`)); errno(t, err) != protocol.ErrnoInvalidJSON {
		t.Fatalf("body without content type: %v", err)
	}
	// An empty body needs no content type and counts as {}.
	o, err := parseObject(r, nil)
	if err != nil || o.End() != nil {
		t.Fatalf("empty body: %v", err)
	}
	// Whitespace is not empty, and not a JSON object.
	r.Header.Set("Content-Type", "application/json")
	if _, err := parseObject(r, []byte(" \n")); errno(t, err) != protocol.ErrnoInvalidJSON {
		t.Fatalf("whitespace body: %v", err)
	}
	get := httptest.NewRequest(http.MethodGet, "/v1/x", nil)
	if _, err := parseObject(get, []byte(`{}`)); errno(t, err) != protocol.ErrnoInvalidJSON {
		t.Fatalf("GET with a body: %v", err)
	}
}

// The order of spec C12: members in the listed order, each 108 then 107,
// unknown members last.
func TestObjectValidationOrder(t *testing.T) {
	check := func(body string, wantErrno int, wantParam string) {
		t.Helper()
		o, err := parseObject(post(body), []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		err = func() error {
			if _, err := o.Hex("a", 2); err != nil {
				return err
			}
			n, err := o.Object("n")
			if err != nil {
				return err
			}
			if _, err := n.Int("i", func(v int64) bool { return v == 7 }); err != nil {
				return err
			}
			if _, _, err := o.OptionalBool("b"); err != nil {
				return err
			}
			return o.End()
		}()
		e := asError(err)
		if err == nil {
			e = &Error{}
		}
		if e.Errno != wantErrno || (wantParam != "" && e.Extra["param"] != wantParam) {
			t.Fatalf("%s: got %d %v, want %d %q", body, e.Errno, e.Extra["param"], wantErrno, wantParam)
		}
	}
	check(`{"a":"abcd","n":{"i":7}}`, 0, "")
	check(`{"a":"ABCD","n":{"i":7},"b":true}`, 0, "")
	check(`{"zz":1}`, protocol.ErrnoMissingParameter, "a")
	check(`{"a":"abc","zz":1}`, protocol.ErrnoInvalidParameter, "a")
	check(`{"a":null,"n":{"i":7}}`, protocol.ErrnoInvalidParameter, "a")
	check(`{"a":"abcd","zz":1}`, protocol.ErrnoMissingParameter, "n")
	check(`{"a":"abcd","n":[]}`, protocol.ErrnoInvalidParameter, "n")
	check(`{"a":"abcd","n":{}}`, protocol.ErrnoMissingParameter, "n.i")
	check(`{"a":"abcd","n":{"i":7.0}}`, protocol.ErrnoInvalidParameter, "n.i")
	check(`{"a":"abcd","n":{"i":"7"}}`, protocol.ErrnoInvalidParameter, "n.i")
	check(`{"a":"abcd","n":{"i":8}}`, protocol.ErrnoInvalidParameter, "n.i")
	check(`{"a":"abcd","n":{"i":7,"x":1}}`, protocol.ErrnoInvalidParameter, "n.x")
	check(`{"a":"abcd","n":{"i":7},"b":1}`, protocol.ErrnoInvalidParameter, "b")
	check(`{"y":1,"a":"abcd","n":{"i":7},"x":2}`, protocol.ErrnoInvalidParameter, "y")
	// Unknown members inside a nested object also come after every listed
	// member, and in document order with the top-level ones.
	check(`{"a":"abcd","n":{"i":7,"x":1},"b":1}`, protocol.ErrnoInvalidParameter, "b")
	check(`{"a":"abcd","n":{"x":1,"i":7},"y":1}`, protocol.ErrnoInvalidParameter, "n.x")
	check(`{"y":1,"a":"abcd","n":{"x":1,"i":7}}`, protocol.ErrnoInvalidParameter, "y")
}

func TestValidEmail(t *testing.T) {
	good := []string{"a@b", "andré@example.org", "x@y@z", strings.Repeat("a", 250) + "@b.cd"}
	bad := []string{"", "ab", "@ab", "ab@", "abc", "a\x00@b", "a@b\x7f", "a\n@b", "\xff@bb", strings.Repeat("a", 252) + "@b.cd"}
	for _, e := range good {
		if !validEmail([]byte(e)) {
			t.Errorf("%q rejected", e)
		}
	}
	for _, e := range bad {
		if validEmail([]byte(e)) {
			t.Errorf("%q accepted", e)
		}
	}
}

func TestErrorBody(t *testing.T) {
	rec := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	writeError(rec, r, errInvalidParam("srp.verifier"))
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"code": 400.0, "errno": 107.0, "error": "Bad Request",
		"message": "Invalid parameter in request body: srp.verifier", "param": "srp.verifier"}
	for k, v := range want {
		if body[k] != v {
			t.Errorf("%s = %v, want %v", k, body[k], v)
		}
	}
	rec = httptest.NewRecorder()
	writeError(rec, r, errUnavailable(nil))
	if rec.Code != 503 || rec.Header().Get("Retry-After") != "30" {
		t.Fatalf("503: code %d Retry-After %q", rec.Code, rec.Header().Get("Retry-After"))
	}
	if e := asError(fmt.Errorf("sqlstore: begin: %w", store.ErrUnavailable)); e.Status != 503 || e.Errno != protocol.ErrnoServiceUnavailable {
		t.Fatalf("unavailable database: %d/%d", e.Status, e.Errno)
	}
	// Internal causes are never sent.
	rec = httptest.NewRecorder()
	writeError(rec, r, asError(errSecretCause))
	if bytes.Contains(rec.Body.Bytes(), []byte("s3cr3t")) || rec.Code != 500 {
		t.Fatalf("500 body leaks its cause: %s", rec.Body)
	}
}

var errSecretCause = errors.New("dial postgres://u:s3cr3t@db: refused")

// FuzzDecodeRequest: no body makes request parsing and validation panic,
// and whatever is accepted is a JSON object.
func FuzzDecodeRequest(f *testing.F) {
	for _, seed := range []string{`{}`, `{"email":"6140622e6364"}`, `{"a":{"b":[1,2,{"c":null}]}}`,
		`{"srp":{"type":"SRP-6a/SHA256/2048/v1","salt":"00"},"passwordStretching":{"scrypt_N":65536}}`,
		`{"a":1,"a":2}`, "{\"\xff\":1}", `[`, ``} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		o, err := parseObject(post(string(body)), body)
		if err != nil {
			if e := asError(err); e.Errno != protocol.ErrnoInvalidJSON {
				t.Fatalf("parse error %v", err)
			}
			return
		}
		if len(bytes.TrimSpace(body)) > 0 && !json.Valid(body) {
			t.Fatalf("accepted invalid JSON %q", body)
		}
		_, _ = o.Email("email")
		_, _, _, _ = o.SRP("srp", true)
		_, _ = o.Stretching("passwordStretching")
		_, _, _ = o.OptionalBool("preVerified")
		_, _ = o.Int("n", nil)
		_ = o.End()
	})
}

// A panicking handler answers 500/999 with the generic message, the
// Timestamp and HSTS headers of every response (C1) and no detail (C14).
func TestPanicAnswer(t *testing.T) {
	s, err := New(Config{PublicURL: "http://127.0.0.1:9000"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := s.outer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("s3cr3t") }))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/x", nil))
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if rec.Code != 500 || body["errno"] != 999.0 || body["message"] != "Unspecified error" ||
		bytes.Contains(rec.Body.Bytes(), []byte("s3cr3t")) {
		t.Fatalf("panic answer: %d %s", rec.Code, rec.Body)
	}
	if rec.Header().Get("Timestamp") == "" || rec.Header().Get("Strict-Transport-Security") == "" {
		t.Fatalf("panic answer headers: %v", rec.Header())
	}
}
