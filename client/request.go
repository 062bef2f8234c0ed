package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/keyserver/keyserver/hawk"
	"github.com/keyserver/keyserver/protocol"
)

// maxResponseBytes caps the response bodies the client reads.
const maxResponseBytes = 4 << 20

// ErrBadResponse is wrapped by errors about a response that does not have the
// shape the protocol gives it (bad JSON, wrong hex length, unknown SRP type).
var ErrBadResponse = errors.New("client: malformed server response")

// Error is a failed response (spec 1.4): HTTP status, errno and message of the
// error body, the whole body (Body, nil when it was not JSON) and the response
// headers (Retry-After, WWW-Authenticate). Errno is 0 for a non-2xx answer
// without a JSON error body.
type Error struct {
	Method  string
	Path    string
	Status  int
	Errno   int
	Message string
	Body    map[string]any
	Header  http.Header
}

func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	path, _, _ := strings.Cut(e.Path, "?") // a query may carry a code
	s := fmt.Sprintf("%s %s: %d/%d %s", e.Method, path, e.Status, e.Errno, msg)
	switch {
	case e.Blocked():
		s += " (sign-in from this place needs an unblock code sent by email)"
	case e.Errno == protocol.ErrnoTooManyRequests:
		if d, ok := e.RetryAfter(); ok {
			s += " (try again in " + HumanWait(d) + ")"
		}
	}
	return s
}

// RetryAfter is the wait a 429 or 503 asks for: the retryAfter member of
// the error body, else the Retry-After header (seconds).
func (e *Error) RetryAfter() (time.Duration, bool) {
	if v, ok := e.Body["retryAfter"].(float64); ok && v >= 0 {
		return time.Duration(v) * time.Second, true
	}
	if n, err := strconv.Atoi(e.Header.Get("Retry-After")); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, true
	}
	return 0, false
}

// Blocked reports a 400/125 that an emailed unblock code lifts (spec
// 14.3): send one with SendUnblockCode, then sign in again with
// SignInOptions.UnblockCode.
func (e *Error) Blocked() bool {
	return e.Errno == protocol.ErrnoRequestBlocked && e.Body["verificationMethod"] == "email"
}

// HumanWait renders a wait for people: "45 seconds", "15 minutes", "about
// 3 hours".
func HumanWait(d time.Duration) string {
	s := int64((d + time.Second - 1) / time.Second)
	switch {
	case s <= 1:
		return "1 second"
	case s < 90:
		return fmt.Sprintf("%d seconds", s)
	case s < 90*60:
		return fmt.Sprintf("%d minutes", (s+59)/60)
	}
	return fmt.Sprintf("about %d hours", (s+1800)/3600)
}

// RetryAfter is the wait of err when it is (or wraps) a 429 or 503 *Error.
func RetryAfter(err error) (time.Duration, bool) {
	var e *Error
	if !errors.As(err, &e) || (e.Status != 429 && e.Status != 503) {
		return 0, false
	}
	return e.RetryAfter()
}

// IsBlocked reports whether err is (or wraps) a 400/125 that an unblock
// code lifts.
func IsBlocked(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Blocked()
}

// IsErrno reports whether err is (or wraps) an *Error with this errno.
func IsErrno(err error, errno int) bool {
	var e *Error
	return errors.As(err, &e) && e.Errno == errno
}

// RawRequest is one API request as DoRaw sends it. The fields after Cred
// exist for negative tests; their zero values give a correct request.
type RawRequest struct {
	Method      string
	Path        string // request target: path and optional ?query, e.g. "/v1/account/keys"
	Body        []byte // sent as is; nil means no body
	ContentType string // sent when non-empty
	Cred        *Credentials

	SignedBody []byte      // when non-nil, the Hawk payload hash covers these bytes instead of Body
	NoHash     bool        // omit the payload hash although there is a body
	TS         int64       // Hawk ts; 0 means ServerTime()
	Nonce      string      // Hawk nonce; "" means a fresh random one
	Ext        string      // Hawk ext
	Header     http.Header // extra headers; an Authorization here replaces the Hawk header
}

// Response is the raw answer to a request.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Do sends a request whose body is the JSON encoding of body (nil: no body,
// no Content-Type, no payload hash), Hawk-signed with cred when cred is not
// nil, and decodes a successful JSON answer into out (unless out is nil).
// A failed response is returned as an *Error.
func (c *Client) Do(ctx context.Context, method, path string, body any, cred *Credentials, out any) error {
	req := &RawRequest{Method: method, Path: path, Cred: cred}
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("client: encoding %s request: %w", path, err)
		}
		req.Body, req.ContentType = b, "application/json"
	}
	_, err := c.DoRaw(ctx, req, out)
	return err
}

// DoRaw sends req and returns the response, also when it failed (then with
// an *Error); the error alone is returned when no answer was received. A
// successful answer is decoded into out unless out is nil.
func (c *Client) DoRaw(ctx context.Context, req *RawRequest, out any) (*Response, error) {
	if !strings.HasPrefix(req.Path, "/") {
		return nil, fmt.Errorf("client: path %q must start with '/'", req.Path)
	}
	u, err := url.Parse(c.base + req.Path)
	if err != nil {
		return nil, fmt.Errorf("client: bad path %q: %w", req.Path, err)
	}
	var body io.Reader
	if req.Body != nil {
		body = bytes.NewReader(req.Body)
	}
	hr, err := http.NewRequestWithContext(ctx, req.Method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("client: %s %s: %w", req.Method, u.Path, err)
	}
	hr.Header.Set("Accept", "application/json")
	if req.ContentType != "" {
		hr.Header.Set("Content-Type", req.ContentType)
	}
	if req.Cred != nil {
		auth, err := c.sign(req, u.RequestURI())
		if err != nil {
			return nil, err
		}
		hr.Header.Set("Authorization", auth)
	}
	for name, values := range req.Header {
		hr.Header[http.CanonicalHeaderKey(name)] = values
	}

	hresp, err := c.http.Do(hr)
	if err != nil {
		var ue *url.Error // its message has the whole URL, query included
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("client: %s %s: %w", req.Method, u.Path, err)
	}
	defer hresp.Body.Close()
	c.trackClock(hresp.Header)
	raw, err := io.ReadAll(io.LimitReader(hresp.Body, maxResponseBytes))
	if err != nil {
		return nil, fmt.Errorf("client: %s %s: reading response: %w", req.Method, u.Path, err)
	}
	resp := &Response{Status: hresp.StatusCode, Header: hresp.Header, Body: raw}

	var obj map[string]any
	if json.Unmarshal(raw, &obj) != nil {
		obj = nil
	}
	if truthy(obj["error"]) || hresp.StatusCode/100 != 2 {
		return resp, newError(req.Method, req.Path, resp, obj)
	}
	if out != nil {
		if obj == nil {
			return resp, fmt.Errorf("%w: %s %s: response is not a JSON object", ErrBadResponse, req.Method, u.Path)
		}
		if err := json.Unmarshal(raw, out); err != nil {
			return resp, fmt.Errorf("%w: %s %s: %v", ErrBadResponse, req.Method, u.Path, err)
		}
	}
	return resp, nil
}

// sign returns the Hawk Authorization header of req (spec 5).
func (c *Client) sign(req *RawRequest, resource string) (string, error) {
	var hash string
	if req.Body != nil && !req.NoHash {
		signed := req.Body
		if req.SignedBody != nil {
			signed = req.SignedBody
		}
		hash = hawk.PayloadHash(req.ContentType, signed)
	}
	ts := req.TS
	if ts == 0 {
		ts = c.ServerTime().Unix()
	}
	nonce := req.Nonce
	if nonce == "" {
		var err error
		if nonce, err = hawk.NewNonce(c.rand); err != nil {
			return "", fmt.Errorf("client: %w", err)
		}
	}
	return hawk.Sign(req.Cred.ID, req.Cred.Key, req.Method, resource, c.host, c.port, ts, nonce, hash, req.Ext), nil
}

// newError builds the *Error of a failed response; obj is its JSON body, if any.
func newError(method, path string, resp *Response, obj map[string]any) *Error {
	e := &Error{Method: method, Path: path, Status: resp.Status, Body: obj, Header: resp.Header}
	if n, ok := obj["errno"].(float64); ok && n == math.Trunc(n) && math.Abs(n) < 1<<31 {
		e.Errno = int(n)
	}
	if m, ok := obj["message"].(string); ok {
		e.Message = m
	} else if m, ok := obj["error"].(string); ok {
		e.Message = m
	}
	return e
}

// truthy is JavaScript truthiness, which the historic client applies to the
// "error" member (spec 1.4).
func truthy(v any) bool {
	switch v := v.(type) {
	case nil:
		return false
	case bool:
		return v
	case string:
		return v != ""
	case float64:
		return v != 0 && !math.IsNaN(v)
	}
	return true // objects and arrays
}
