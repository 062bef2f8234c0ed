package keyserver_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyserver/keyserver/accounts"
	"github.com/keyserver/keyserver/client"
	"github.com/keyserver/keyserver/keyserver"
	"github.com/keyserver/keyserver/keywrap"
	"github.com/keyserver/keyserver/protocol"
	"github.com/keyserver/keyserver/store"
	"github.com/keyserver/keyserver/store/sqlstore"
)

// cheap are stretching parameters for tests that are not about stretching.
var cheap = keywrap.Params{PBKDF2Rounds1: 2, ScryptN: 16, ScryptR: 8, ScryptP: 1, PBKDF2Rounds2: 2}

// adminToken is the admin bearer token of every fixture.
const adminToken = "test-admin-token-0123456789abcdefghij"

// apiFixture is the real server on a fresh SQLite store, with its public API
// and its admin API on two test listeners, a protocol client and an admin
// client.
type apiFixture struct {
	st       store.Store
	url      string
	adminURL string
	c        *client.Client
	admin    *client.Admin
	offset   atomic.Int64 // added to the server clock, in ns
	logs     *lockedBuffer
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// newAPIFixture starts the servers; configure may change the config.
func newAPIFixture(t *testing.T, configure ...func(*keyserver.Config)) *apiFixture {
	t.Helper()
	st, err := sqlstore.Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "ks.db"), sqlstore.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &apiFixture{st: st, logs: &lockedBuffer{}}
	pub := httptest.NewUnstartedServer(nil)
	f.url = "http://" + pub.Listener.Addr().String()
	cfg := keyserver.Config{
		PublicURL: f.url, Dev: true, Mailer: discardMailer{},
		Logger: slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:    func() time.Time { return time.Now().Add(time.Duration(f.offset.Load())) },
	}
	for _, c := range configure {
		c(&cfg)
	}
	srv, err := keyserver.New(cfg, st)
	if err != nil {
		t.Fatal(err)
	}
	pub.Config.Handler = srv.Handler()
	pub.Start()
	t.Cleanup(pub.Close)
	ah, err := srv.AdminHandler([]byte(adminToken))
	if err != nil {
		t.Fatal(err)
	}
	adm := httptest.NewServer(ah)
	t.Cleanup(adm.Close)
	f.adminURL = adm.URL
	if f.c, err = client.New(f.url, client.WithStretching(cheap)); err != nil {
		t.Fatal(err)
	}
	if f.admin, err = client.NewAdmin(f.adminURL, adminToken); err != nil {
		t.Fatal(err)
	}
	return f
}

type discardMailer struct{}

func (discardMailer) Send(context.Context, *accounts.Message) error { return nil }

// advance moves the server clock forward.
func (f *apiFixture) advance(d time.Duration) { f.offset.Add(int64(d)) }

const password = "correct horse battery staple"

// account creates a verified account and returns its uid.
func (f *apiFixture) account(t *testing.T, email string) []byte {
	t.Helper()
	uid, err := f.c.CreateAccount(t.Context(), email, password, client.CreateOptions{PreVerified: true})
	if err != nil {
		t.Fatalf("create %s: %v", email, err)
	}
	return uid
}

func (f *apiFixture) login(t *testing.T, email string) *client.Session {
	t.Helper()
	s, err := f.c.Login(t.Context(), email, password)
	if err != nil {
		t.Fatalf("login %s: %v", email, err)
	}
	return s
}

// device registers the session's device.
func (f *apiFixture) device(t *testing.T, s *client.Session, name, typ string) *protocol.Device {
	t.Helper()
	d, err := f.c.RegisterDevice(t.Context(), s.SessionToken, client.DeviceFields{Name: &name, Type: &typ})
	if err != nil {
		t.Fatalf("register %s: %v", name, err)
	}
	return d
}

// raw sends body (nil: none) Hawk-signed with a sessionToken seed and
// returns the status and the decoded JSON answer.
func (f *apiFixture) raw(t *testing.T, method, path, body string, session []byte) (int, map[string]any) {
	t.Helper()
	req := &client.RawRequest{Method: method, Path: path, Cred: client.TokenCredentials(protocol.SessionToken, session)}
	if body != "" {
		req.Body, req.ContentType = []byte(body), "application/json"
	}
	resp, err := f.c.DoRaw(t.Context(), req, nil)
	if resp == nil {
		t.Fatalf("%s %s: no response: %v", method, path, err)
	}
	var out map[string]any
	if err := json.Unmarshal(resp.Body, &out); err != nil {
		t.Fatalf("%s %s: body is not JSON: %q", method, path, resp.Body)
	}
	return resp.Status, out
}

// adminRaw sends a request to the admin API with the given Authorization
// header ("" for none).
func (f *apiFixture) adminRaw(t *testing.T, method, path, body, auth string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, f.adminURL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("%s %s: body is not JSON: %v", method, path, err)
	}
	return resp.StatusCode, out
}

// wantError checks a 4xx answer's errno and, when param is not "", its
// param.
func wantError(t *testing.T, what string, status int, body map[string]any, wantStatus, errno int, param string) {
	t.Helper()
	if status != wantStatus || body["errno"] != float64(errno) || (param != "" && body["param"] != param) {
		t.Fatalf("%s: %d %v, want %d errno %d param %q", what, status, body, wantStatus, errno, param)
	}
}

// wantErrno checks an error returned by the client.
func wantErrno(t *testing.T, what string, err error, errno int) {
	t.Helper()
	if !client.IsErrno(err, errno) {
		t.Fatalf("%s: got %v, want errno %d", what, err, errno)
	}
}

func hexOf(b []byte) string { return hex.EncodeToString(b) }
