package client

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyserver/keyserver/hawk"
	"github.com/keyserver/keyserver/keywrap"
	"github.com/keyserver/keyserver/protocol"
)

const vectorsPath = "../../shared/spec/vectors.json"

type hawkVector struct {
	ID            string  `json:"id"`
	CredentialsID string  `json:"credentials_id"`
	Key           string  `json:"key"`
	Method        string  `json:"method"`
	Resource      string  `json:"resource"`
	Host          string  `json:"host"`
	Port          int     `json:"port"`
	TS            int64   `json:"ts"`
	Nonce         string  `json:"nonce"`
	Ext           string  `json:"ext"`
	ContentType   *string `json:"content_type"`
	Payload       *string `json:"payload_utf8"`
	Header        string  `json:"header"`
}

type chainToken struct {
	Seed    string `json:"seed"`
	TokenID string `json:"tokenId"`
	AuthKey string `json:"authKey"`
}

type chainVector struct {
	ID            string     `json:"id"`
	AuthToken     chainToken `json:"authToken"`
	KeyFetchToken chainToken `json:"keyFetchToken"`
	SessionToken  chainToken `json:"sessionToken"`
	HawkHeader    string     `json:"session_create_hawk_header"`
}

func loadVectors(t *testing.T) (hawks []hawkVector, chains []chainVector) {
	t.Helper()
	b, err := os.ReadFile(vectorsPath)
	if err != nil {
		t.Fatalf("reading vectors: %v", err)
	}
	var v struct {
		Hawk       []hawkVector  `json:"hawk"`
		LoginChain []chainVector `json:"login_chain"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decoding vectors: %v", err)
	}
	if len(v.Hawk) == 0 || len(v.LoginChain) == 0 {
		t.Fatal(`no vectors found in group "hawk" or "login_chain"`)
	}
	return v.Hawk, v.LoginChain
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// roundTripFunc is an http.RoundTripper made of a function.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// fakeServer returns an HTTP client that records each request (with its
// body) and answers with status, headers and body.
func fakeServer(status int, header http.Header, body string, seen *[]*http.Request) *http.Client {
	return &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.Body != nil {
			b, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(b))
		}
		*seen = append(*seen, r)
		h := http.Header{}
		for k, v := range header {
			h[k] = v
		}
		return &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(strings.NewReader(body)), Request: r}, nil
	})}
}

func origin(host string, port int) string {
	if port == 443 {
		return "https://" + host
	}
	return "http://" + host + ":" + strconv.Itoa(port)
}

// TestHawkVectors checks the Authorization header the client sends against
// the hawk group of vectors.json, with the clock and nonce injected.
func TestHawkVectors(t *testing.T) {
	hawks, _ := loadVectors(t)
	for _, v := range hawks {
		t.Run(v.ID, func(t *testing.T) {
			var seen []*http.Request
			c, err := New(origin(v.Host, v.Port),
				WithHTTPClient(fakeServer(200, nil, `{}`, &seen)),
				WithNow(func() time.Time { return time.Unix(v.TS, 0) }))
			if err != nil {
				t.Fatal(err)
			}
			req := &RawRequest{
				Method: v.Method, Path: v.Resource, Nonce: v.Nonce, Ext: v.Ext,
				Cred: &Credentials{ID: v.CredentialsID, Key: unhex(t, v.Key)},
			}
			if v.Payload != nil {
				req.Body = []byte(*v.Payload)
			}
			if v.ContentType != nil {
				req.ContentType = *v.ContentType
			}
			if _, err := c.DoRaw(context.Background(), req, nil); err != nil {
				t.Fatal(err)
			}
			if got := seen[0].Header.Get("Authorization"); got != v.Header {
				t.Errorf("Authorization\n got %s\nwant %s", got, v.Header)
			}
			if got := seen[0].URL.RequestURI(); got != v.Resource {
				t.Errorf("request target %q, want %q", got, v.Resource)
			}
		})
	}
}

// TestTokenCredentials checks token derivation against the login chain and
// the session/create header of that chain.
func TestTokenCredentials(t *testing.T) {
	_, chains := loadVectors(t)
	for _, ch := range chains {
		for typ, tok := range map[protocol.TokenType]chainToken{
			protocol.AuthToken:     ch.AuthToken,
			protocol.KeyFetchToken: ch.KeyFetchToken,
			protocol.SessionToken:  ch.SessionToken,
		} {
			cred := TokenCredentials(typ, unhex(t, tok.Seed))
			if cred.ID != tok.TokenID || hex.EncodeToString(cred.Key) != tok.AuthKey {
				t.Errorf("%s %s: got id %s key %x", ch.ID, typ, cred.ID, cred.Key)
			}
		}
		var seen []*http.Request
		c, err := New("http://127.0.0.1:9000", WithHTTPClient(fakeServer(200, nil, `{}`, &seen)),
			WithNow(func() time.Time { return time.Unix(1388707200, 0) }))
		if err != nil {
			t.Fatal(err)
		}
		cred := TokenCredentials(protocol.AuthToken, unhex(t, ch.AuthToken.Seed))
		if _, err := c.DoRaw(context.Background(), &RawRequest{Method: "POST", Path: "/v1/session/create", Cred: cred, Nonce: "abcdef"}, nil); err != nil {
			t.Fatal(err)
		}
		if got := seen[0].Header.Get("Authorization"); got != ch.HawkHeader {
			t.Errorf("%s session/create header\n got %s\nwant %s", ch.ID, got, ch.HawkHeader)
		}
	}
}

func TestDoBodyAndHash(t *testing.T) {
	var seen []*http.Request
	c, err := New("http://Example.COM:8080/", WithHTTPClient(fakeServer(200, nil, `{"data":"x"}`, &seen)))
	if err != nil {
		t.Fatal(err)
	}
	cred := &Credentials{ID: "id", Key: []byte("key")}
	ctx := context.Background()

	// No body: no Content-Type, no hash, no body bytes.
	if err := c.Do(ctx, "POST", "/v1/session/destroy", nil, cred, nil); err != nil {
		t.Fatal(err)
	}
	r := seen[0]
	if r.Header.Get("Content-Type") != "" || strings.Contains(r.Header.Get("Authorization"), "hash=") {
		t.Errorf("request without body has Content-Type %q, Authorization %q", r.Header.Get("Content-Type"), r.Header.Get("Authorization"))
	}
	if r.ContentLength > 0 {
		t.Errorf("ContentLength %d for no body", r.ContentLength)
	}
	if r.URL.String() != "http://Example.COM:8080/v1/session/destroy" {
		t.Errorf("URL %s", r.URL)
	}

	// JSON body: Content-Type and the payload hash of the bytes sent.
	var out struct{ Data string }
	if err := c.Do(ctx, "POST", "/v1/recovery_email/resend_code", map[string]string{"service": "sync"}, cred, &out); err != nil {
		t.Fatal(err)
	}
	r = seen[1]
	body, _ := io.ReadAll(r.Body)
	if string(body) != `{"service":"sync"}` || r.Header.Get("Content-Type") != "application/json" {
		t.Errorf("body %q, Content-Type %q", body, r.Header.Get("Content-Type"))
	}
	h, err := hawk.ParseHeader(r.Header.Get("Authorization"))
	if err != nil {
		t.Fatal(err)
	}
	if !hawk.VerifyPayload(h.Hash, "application/json", body) {
		t.Error("payload hash does not match the body")
	}
	// The server's host is lower-cased, the port is explicit.
	if !h.VerifyMAC(cred.Key, "POST", "/v1/recovery_email/resend_code", "example.com", 8080) {
		t.Error("MAC does not verify with host example.com port 8080")
	}
	if out.Data != "x" {
		t.Errorf("decoded %+v", out)
	}

	// Without credentials nothing is signed.
	if err := c.Do(ctx, "POST", "/v1/auth/start", map[string]string{}, nil, nil); err != nil {
		t.Fatal(err)
	}
	if a := seen[2].Header.Get("Authorization"); a != "" {
		t.Errorf("unsigned request has Authorization %q", a)
	}
}

func TestRawRequestHooks(t *testing.T) {
	var seen []*http.Request
	c, err := New("http://127.0.0.1:9000", WithHTTPClient(fakeServer(200, nil, `{}`, &seen)))
	if err != nil {
		t.Fatal(err)
	}
	cred := &Credentials{ID: "id", Key: []byte("key")}
	ctx := context.Background()
	sent, signed := []byte(`{"a":2}`), []byte(`{"a":1}`)
	reqs := []*RawRequest{
		{Method: "POST", Path: "/x", Body: sent, ContentType: "application/json", Cred: cred, SignedBody: signed},
		{Method: "POST", Path: "/x", Body: sent, ContentType: "application/json", Cred: cred, NoHash: true},
		{Method: "POST", Path: "/x", Cred: cred, TS: 42, Header: http.Header{"Authorization": {"Hawk bogus"}}},
		{Method: "POST", Path: "/x", Cred: cred, TS: 42, Nonce: "n"},
	}
	for _, r := range reqs {
		if _, err := c.DoRaw(ctx, r, nil); err != nil {
			t.Fatal(err)
		}
	}
	h0, _ := hawk.ParseHeader(seen[0].Header.Get("Authorization"))
	if h0 == nil || h0.Hash != hawk.PayloadHash("application/json", signed) {
		t.Errorf("SignedBody: header %q", seen[0].Header.Get("Authorization"))
	}
	if b, _ := io.ReadAll(seen[0].Body); !bytes.Equal(b, sent) {
		t.Errorf("SignedBody: sent %q", b)
	}
	if strings.Contains(seen[1].Header.Get("Authorization"), "hash=") {
		t.Error("NoHash: hash sent")
	}
	if got := seen[2].Header.Values("Authorization"); len(got) != 1 || got[0] != "Hawk bogus" {
		t.Errorf("Header override: %q", got)
	}
	if want := hawk.Sign("id", cred.Key, "POST", "/x", "127.0.0.1", 9000, 42, "n", "", ""); seen[3].Header.Get("Authorization") != want {
		t.Errorf("TS/Nonce: %q, want %q", seen[3].Header.Get("Authorization"), want)
	}
	if _, err := c.DoRaw(ctx, &RawRequest{Method: "GET", Path: "v1/x"}, nil); err == nil {
		t.Error("relative path accepted")
	}
}

// TestClockOffset: the Timestamp header of a response moves the Hawk ts of
// the next request.
func TestClockOffset(t *testing.T) {
	local := time.Unix(1_700_000_000, 0)
	var seen []*http.Request
	hdr := http.Header{"Timestamp": {strconv.FormatInt(local.Unix()+100, 10)}}
	c, err := New("http://127.0.0.1:9000", WithHTTPClient(fakeServer(200, hdr, `{}`, &seen)),
		WithNow(func() time.Time { return local }))
	if err != nil {
		t.Fatal(err)
	}
	cred := &Credentials{ID: "id", Key: []byte("key")}
	for range 2 {
		if err := c.Do(context.Background(), "GET", "/v1/account/keys", nil, cred, nil); err != nil {
			t.Fatal(err)
		}
	}
	for i, want := range []int64{local.Unix(), local.Unix() + 100} {
		h, err := hawk.ParseHeader(seen[i].Header.Get("Authorization"))
		if err != nil {
			t.Fatal(err)
		}
		if ts, _ := h.Timestamp(); ts != want {
			t.Errorf("request %d: ts %d, want %d", i, ts, want)
		}
	}
	if got := c.ServerTime(); !got.Equal(local.Add(100 * time.Second)) {
		t.Errorf("ServerTime %v", got)
	}
}

func TestErrorDecoding(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		body    string
		errno   int // -1: success
		message string
	}{
		{"spec error", 400, `{"code":400,"errno":107,"error":"Bad Request","message":"Invalid parameter in request body: srp.salt","param":"srp.salt"}`, 107, "Invalid parameter in request body: srp.salt"},
		{"truthy error on 200", 200, `{"error":"Nope","errno":999}`, 999, "Nope"},
		{"error true", 200, `{"error":true,"errno":5}`, 5, ""},
		{"empty error is success", 200, `{"error":"","uid":"00"}`, -1, ""},
		{"false error is success", 200, `{"error":false}`, -1, ""},
		{"null error is success", 200, `{"error":null}`, -1, ""},
		{"non-JSON 502", 502, `<html>bad gateway</html>`, 0, ""},
		{"JSON without error on 500", 500, `{"errno":201}`, 201, ""},
		{"success", 200, `{"uid":"00"}`, -1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var seen []*http.Request
			hdr := http.Header{"Retry-After": {"30"}}
			c, err := New("http://127.0.0.1:9000", WithHTTPClient(fakeServer(tt.status, hdr, tt.body, &seen)))
			if err != nil {
				t.Fatal(err)
			}
			err = c.Do(context.Background(), "POST", "/v1/account/create", map[string]string{}, nil, nil)
			if tt.errno < 0 {
				if err != nil {
					t.Fatalf("got %v, want success", err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("got %T %v, want *Error", err, err)
			}
			if e.Status != tt.status || e.Errno != tt.errno || e.Message != tt.message {
				t.Errorf("got %d/%d %q", e.Status, e.Errno, e.Message)
			}
			if !IsErrno(err, tt.errno) || IsErrno(err, tt.errno+1) {
				t.Error("IsErrno disagrees")
			}
			if e.Header.Get("Retry-After") != "30" {
				t.Error("headers not kept")
			}
			if !strings.Contains(e.Error(), "POST /v1/account/create: ") {
				t.Errorf("Error() = %q", e.Error())
			}
			if tt.errno == 107 && e.Body["param"] != "srp.salt" {
				t.Errorf("Body %v", e.Body)
			}
		})
	}
	if IsErrno(errors.New("x"), 0) || IsErrno(nil, 0) {
		t.Error("IsErrno true for a non-*Error")
	}
}

func TestErrorHidesQuery(t *testing.T) {
	e := &Error{Method: "GET", Path: "/v1/verify_email?uid=00&code=secret", Status: 400, Errno: 105, Message: "Invalid verification code"}
	if strings.Contains(e.Error(), "secret") {
		t.Errorf("Error() leaks the query: %q", e.Error())
	}
}

func TestParseOrigin(t *testing.T) {
	good := []struct {
		in, base, host string
		port           int
	}{
		{"http://127.0.0.1:9000", "http://127.0.0.1:9000", "127.0.0.1", 9000},
		{"http://127.0.0.1:9000/", "http://127.0.0.1:9000", "127.0.0.1", 9000},
		{"https://API.Example.com", "https://API.Example.com", "api.example.com", 443},
		{"http://example.com", "http://example.com", "example.com", 80},
		{"https://[::1]:8443", "https://[::1]:8443", "::1", 8443},
	}
	for _, g := range good {
		c, err := New(g.in)
		if err != nil {
			t.Errorf("%s: %v", g.in, err)
			continue
		}
		if c.BaseURL() != g.base || c.host != g.host || c.port != g.port {
			t.Errorf("%s: got %s %s %d", g.in, c.BaseURL(), c.host, c.port)
		}
	}
	for _, bad := range []string{"", "127.0.0.1:9000", "ftp://x", "http://", "http://x/v1", "http://x?a=b", "http://x#f", "http://u:p@x", "http://x:0", "http://x:99999", "http://x:port"} {
		if _, err := New(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestBadResponses(t *testing.T) {
	ctx := context.Background()
	for _, body := range []string{`not json`, `{"data":"zz"}`, `{"data":"00"}`} {
		var seen []*http.Request
		c, _ := New("http://127.0.0.1:9000", WithHTTPClient(fakeServer(200, nil, body, &seen)))
		if _, err := c.GetRandomBytes(ctx); !errors.Is(err, ErrBadResponse) {
			t.Errorf("%s: got %v, want ErrBadResponse", body, err)
		}
	}
	// A bundle with a wrong MAC is refused.
	var seen []*http.Request
	bundle := strings.Repeat("00", 96)
	c, _ := New("http://127.0.0.1:9000", WithHTTPClient(fakeServer(200, nil, `{"bundle":"`+bundle+`"}`, &seen)))
	if _, err := c.Keys(ctx, make([]byte, 32), nil); !errors.Is(err, keywrap.ErrBadBundle) {
		t.Errorf("bad bundle: got %v", err)
	}
}

func TestTransportErrorHidesQuery(t *testing.T) {
	c, _ := New("http://127.0.0.1:9000", WithHTTPClient(&http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) {
		return nil, errors.New("connection refused")
	})}))
	err := c.Do(context.Background(), "GET", "/v1/verify_email?uid=00&code=secret", nil, nil, nil)
	if err == nil || strings.Contains(err.Error(), "secret") || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("got %v", err)
	}
}
