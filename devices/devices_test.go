package devices_test

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyserver/keyserver/devices"
	"github.com/keyserver/keyserver/protocol"
	"github.com/keyserver/keyserver/store"
	"github.com/keyserver/keyserver/store/sqlstore"
	"github.com/keyserver/keyserver/store/sqlstore/pgtest"
)

func rnd(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func str(s string) *string { return &s }

// pushKeys returns a valid pushPublicKey and pushAuthKey.
func pushKeys(t *testing.T) (pub, auth string) {
	t.Helper()
	k, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(k.PublicKey().Bytes()), base64.RawURLEncoding.EncodeToString(rnd(16))
}

func TestValidators(t *testing.T) {
	pub, auth := pushKeys(t)
	offCurve := make([]byte, 65)
	offCurve[0], offCurve[64] = 4, 1
	compressed := make([]byte, 33)
	compressed[0] = 2
	b64 := base64.RawURLEncoding.EncodeToString
	tests := []struct {
		name  string
		valid func(string) bool
		in    string
		want  bool
	}{
		{"name", devices.ValidName, "My Laptop", true},
		{"name unicode", devices.ValidName, "Andrés 💻 ノート", true},
		{"name 255 code points", devices.ValidName, strings.Repeat("é", 255), true},
		{"name 256 code points", devices.ValidName, strings.Repeat("é", 256), false},
		{"name empty", devices.ValidName, "", false},
		{"name NUL", devices.ValidName, "a\x00b", false},
		{"name newline", devices.ValidName, "a\nb", false},
		{"name DEL", devices.ValidName, "a\x7fb", false},
		{"name C1 control", devices.ValidName, "a\u0085b", false},
		{"name U+00A0", devices.ValidName, "a\u00a0b", true},
		{"name invalid UTF-8", devices.ValidName, "a\xffb", false},
		{"type desktop", devices.ValidType, "desktop", true},
		{"type cli", devices.ValidType, "cli", true},
		{"type upper case", devices.ValidType, "Desktop", false},
		{"type unknown", devices.ValidType, "phone", false},
		{"type empty", devices.ValidType, "", false},
		{"callback", devices.ValidPushCallback, "https://push.example.com/v1/abc?x=1", true},
		{"callback empty clears", devices.ValidPushCallback, "", true},
		{"callback http", devices.ValidPushCallback, "http://push.example.com/", false},
		{"callback relative", devices.ValidPushCallback, "/push", false},
		{"callback no host", devices.ValidPushCallback, "https:///x", false},
		{"callback opaque", devices.ValidPushCallback, "https:push.example.com", false},
		{"callback 2048", devices.ValidPushCallback, "https://p.example/" + strings.Repeat("a", 2048-18), true},
		{"callback 2049", devices.ValidPushCallback, "https://p.example/" + strings.Repeat("a", 2049-18), false},
		{"callback space", devices.ValidPushCallback, "https://push.example.com/a b", false},
		{"callback tab in host", devices.ValidPushCallback, "https://push.exa\tmple.com/", false},
		{"callback non-ASCII", devices.ValidPushCallback, "https://push.example.com/é", false},
		{"callback quote", devices.ValidPushCallback, "https://push.example.com/\"x", false},
		{"callback port 65535", devices.ValidPushCallback, "https://push.example.com:65535/", true},
		{"callback port too big", devices.ValidPushCallback, "https://push.example.com:99999/", false},
		{"callback port 0", devices.ValidPushCallback, "https://push.example.com:0/", false},
		{"callback empty host", devices.ValidPushCallback, "https://:443/", false},
		{"callback bad escape", devices.ValidPushCallback, "https://push.example.com/%zz", false},
		{"public key", devices.ValidPushPublicKey, pub, true},
		{"public key empty clears", devices.ValidPushPublicKey, "", true},
		{"public key padded", devices.ValidPushPublicKey, base64.URLEncoding.EncodeToString(mustDecode(t, pub)), false},
		{"public key std alphabet", devices.ValidPushPublicKey, strings.NewReplacer("-", "+", "_", "/").Replace(pub) + "+", false},
		{"public key off curve", devices.ValidPushPublicKey, b64(offCurve), false},
		{"public key compressed", devices.ValidPushPublicKey, b64(compressed), false},
		{"public key short", devices.ValidPushPublicKey, b64(mustDecode(t, pub)[:64]), false},
		{"auth key", devices.ValidPushAuthKey, auth, true},
		{"auth key empty clears", devices.ValidPushAuthKey, "", true},
		{"auth key 15 bytes", devices.ValidPushAuthKey, b64(rnd(15)), false},
		{"auth key 17 bytes", devices.ValidPushAuthKey, b64(rnd(17)), false},
		{"auth key padded", devices.ValidPushAuthKey, base64.URLEncoding.EncodeToString(rnd(16)), false},
	}
	for _, tt := range tests {
		if got := tt.valid(tt.in); got != tt.want {
			t.Errorf("%s: valid(%.40q) = %v, want %v", tt.name, tt.in, got, tt.want)
		}
	}
}

func mustDecode(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestValidatePairing(t *testing.T) {
	pub, auth := pushKeys(t)
	tests := []struct {
		name string
		f    devices.Fields
		bad  string // "" = valid
	}{
		{"neither", devices.Fields{Name: str("x")}, ""},
		{"both", devices.Fields{PushPublicKey: &pub, PushAuthKey: &auth}, ""},
		{"both cleared", devices.Fields{PushPublicKey: str(""), PushAuthKey: str("")}, ""},
		{"public key alone", devices.Fields{PushPublicKey: &pub}, "pushAuthKey"},
		{"auth key alone", devices.Fields{PushAuthKey: &auth}, "pushAuthKey"},
		{"public key cleared alone", devices.Fields{PushPublicKey: str(""), PushAuthKey: &auth}, "pushAuthKey"},
		{"auth key cleared alone", devices.Fields{PushPublicKey: &pub, PushAuthKey: str("")}, "pushAuthKey"},
		{"first bad member wins", devices.Fields{Name: str(""), Type: str("phone")}, "name"},
		{"bad type", devices.Fields{Type: str("phone")}, "type"},
		{"bad callback", devices.Fields{PushCallback: str("http://x")}, "pushCallback"},
	}
	for _, tt := range tests {
		err := tt.f.Validate()
		var fe *devices.FieldError
		switch {
		case tt.bad == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.bad != "" && (!errors.As(err, &fe) || fe.Field != tt.bad || fe.Missing):
			t.Errorf("%s: got %v, want invalid %s", tt.name, err, tt.bad)
		}
	}
}

// fixture is a store with one account and sessions on it.
type fixture struct {
	st  store.Store
	reg *devices.Registry
	now time.Time
	uid []byte
	// events collects what the record function saw.
	mu     sync.Mutex
	events []devices.Change
}

func newFixture(t *testing.T, dsn string) *fixture {
	t.Helper()
	st, err := sqlstore.Open(t.Context(), dsn, sqlstore.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &fixture{st: st, now: time.UnixMilli(1_700_000_000_000).UTC()}
	f.reg = devices.New(st, func() time.Time {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.now
	}, rand.Reader)
	f.uid = f.account(t)
	return f
}

func sqliteDSN(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "ks.db") }

func (f *fixture) account(t *testing.T) []byte {
	t.Helper()
	uid := rnd(16)
	email := hex.EncodeToString(uid) + "@example.com"
	a := &store.Account{UID: uid, Email: email, NormalizedEmail: email, SRPType: "x", SRPVerifier: rnd(256), SRPSalt: rnd(32), Stretching: store.Stretching{Salt: rnd(32)},
		KA: rnd(32), WrapKb: rnd(32), EmailCode: rnd(16), CreatedAt: f.now, Generation: f.now}
	if err := f.st.CreateAccount(t.Context(), a); err != nil {
		t.Fatal(err)
	}
	return uid
}

func (f *fixture) token(t *testing.T, typ protocol.TokenType, uid, sessionID []byte) []byte {
	t.Helper()
	tok := &store.Token{ID: rnd(32), Type: typ, UID: uid, AuthKey: rnd(32), BundleKey: rnd(32), CreatedAt: f.now, SessionID: sessionID}
	if err := f.st.CreateToken(t.Context(), tok); err != nil {
		t.Fatal(err)
	}
	return tok.ID
}

func (f *fixture) record(q store.Queries, c devices.Change, d *store.Device) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, c)
	return nil
}

func (f *fixture) takeEvents() []devices.Change {
	f.mu.Lock()
	defer f.mu.Unlock()
	e := f.events
	f.events = nil
	return e
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got %v, want %v", what, err, want)
	}
}

func TestSaveRules(t *testing.T) {
	f := newFixture(t, sqliteDSN(t))
	ctx := t.Context()
	s1 := f.token(t, protocol.SessionToken, f.uid, nil)
	s2 := f.token(t, protocol.SessionToken, f.uid, nil)
	laptop := devices.Fields{Name: str("Laptop"), Type: str("desktop")}

	// Registration without id needs name and type.
	for _, tt := range []struct {
		f    devices.Fields
		miss string
	}{{devices.Fields{Type: str("desktop")}, "name"}, {devices.Fields{Name: str("x")}, "type"}} {
		_, err := f.reg.Save(ctx, f.uid, s1, nil, tt.f, f.record)
		var fe *devices.FieldError
		if !errors.As(err, &fe) || !fe.Missing || fe.Field != tt.miss {
			t.Fatalf("registration without %s: %v", tt.miss, err)
		}
	}
	if _, err := f.reg.Save(ctx, f.uid, s1, nil, devices.Fields{Name: str(""), Type: str("desktop")}, f.record); err == nil {
		t.Fatal("empty name accepted")
	}

	d1, err := f.reg.Save(ctx, f.uid, s1, nil, laptop, f.record)
	if err != nil {
		t.Fatal(err)
	}
	if len(d1.ID) != 16 || d1.Name != "Laptop" || !d1.CreatedAt.Equal(f.now) || !d1.LastAccessAt.Equal(f.now) {
		t.Fatalf("registered %+v", d1)
	}
	// An identical retry, or one giving a subset, returns the same device.
	for _, retry := range []devices.Fields{laptop, {Name: str("Laptop"), Type: str("desktop"), PushCallback: str("")}} {
		again, err := f.reg.Save(ctx, f.uid, s1, nil, retry, f.record)
		if err != nil || !bytes.Equal(again.ID, d1.ID) {
			t.Fatalf("idempotent retry: %v, %x", err, again)
		}
	}
	_, err = f.reg.Save(ctx, f.uid, s1, nil, devices.Fields{Name: str("Other"), Type: str("desktop")}, f.record)
	wantErr(t, "second device for a session", err, devices.ErrSessionHasDevice)
	if got := f.takeEvents(); len(got) != 1 || got[0] != devices.Registered {
		t.Fatalf("events %v, want one registration", got)
	}

	// Update with id.
	pub, auth := pushKeys(t)
	upd := devices.Fields{Name: str("Work laptop"), PushCallback: str("https://push.example/x"), PushPublicKey: &pub, PushAuthKey: &auth}
	d, err := f.reg.Save(ctx, f.uid, s1, d1.ID, upd, f.record)
	if err != nil || d.Name != "Work laptop" || d.Type != "desktop" || d.PushPublicKey != pub || d.PushAuthKey != auth {
		t.Fatalf("update: %v %+v", err, d)
	}
	stored, err := f.st.Device(ctx, f.uid, d1.ID)
	if err != nil || stored.Name != "Work laptop" || stored.PushCallback != "https://push.example/x" {
		t.Fatalf("stored after update: %v %+v", err, stored)
	}
	// id alone, or equal values, change nothing and record nothing.
	f.takeEvents()
	for _, same := range []devices.Fields{{}, {Name: str("Work laptop")}} {
		if d, err := f.reg.Save(ctx, f.uid, s1, d1.ID, same, f.record); err != nil || d.Name != "Work laptop" {
			t.Fatalf("no-op update: %v", err)
		}
	}
	if got := f.takeEvents(); len(got) != 0 {
		t.Fatalf("no-op updates recorded %v", got)
	}
	// Clearing the push fields.
	d, err = f.reg.Save(ctx, f.uid, s1, d1.ID, devices.Fields{PushCallback: str(""), PushPublicKey: str(""), PushAuthKey: str("")}, f.record)
	if err != nil || d.PushCallback != "" || d.PushPublicKey != "" || d.PushAuthKey != "" {
		t.Fatalf("clearing push fields: %v %+v", err, d)
	}
	if got := f.takeEvents(); len(got) != 1 || got[0] != devices.Updated {
		t.Fatalf("events %v, want one update", got)
	}

	// Another session cannot claim or update d1; an unknown id is the same.
	_, err = f.reg.Save(ctx, f.uid, s2, d1.ID, devices.Fields{Name: str("Mine now")}, f.record)
	wantErr(t, "other session's device", err, devices.ErrUnknownDevice)
	_, err = f.reg.Save(ctx, f.uid, s2, d1.ID, devices.Fields{}, f.record)
	wantErr(t, "other session's device, id alone", err, devices.ErrUnknownDevice)
	_, err = f.reg.Save(ctx, f.uid, s2, rnd(16), devices.Fields{Name: str("x")}, f.record)
	wantErr(t, "unknown device", err, devices.ErrUnknownDevice)
	// Another account's session cannot see it either.
	other := f.account(t)
	so := f.token(t, protocol.SessionToken, other, nil)
	_, err = f.reg.Save(ctx, other, so, d1.ID, devices.Fields{Name: str("x")}, f.record)
	wantErr(t, "other account's device", err, devices.ErrUnknownDevice)
	if stored, _ := f.st.Device(ctx, f.uid, d1.ID); stored.Name != "Work laptop" || !bytes.Equal(stored.SessionID, s1) {
		t.Fatalf("device changed by others: %+v", stored)
	}

	// A session that no longer exists cannot register.
	gone := f.token(t, protocol.SessionToken, f.uid, nil)
	if err := f.st.DeleteToken(ctx, protocol.SessionToken, gone); err != nil {
		t.Fatal(err)
	}
	_, err = f.reg.Save(ctx, f.uid, gone, nil, laptop, f.record)
	wantErr(t, "deleted session", err, store.ErrNotFound)

	// A failing record function rolls the change back.
	boom := errors.New("boom")
	_, err = f.reg.Save(ctx, f.uid, s2, nil, laptop, func(store.Queries, devices.Change, *store.Device) error { return boom })
	wantErr(t, "record failure", err, boom)
	if _, err := f.st.DeviceBySession(ctx, s2); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("device kept after a failed record: %v", err)
	}
}

func TestDestroy(t *testing.T) {
	f := newFixture(t, sqliteDSN(t))
	ctx := t.Context()
	sA := f.token(t, protocol.SessionToken, f.uid, nil)
	sB := f.token(t, protocol.SessionToken, f.uid, nil)
	kfB := f.token(t, protocol.KeyFetchToken, f.uid, sB)
	kfA := f.token(t, protocol.KeyFetchToken, f.uid, sA)
	dA, err := f.reg.Save(ctx, f.uid, sA, nil, devices.Fields{Name: str("A"), Type: str("desktop")}, f.record)
	if err != nil {
		t.Fatal(err)
	}
	dB, err := f.reg.Save(ctx, f.uid, sB, nil, devices.Fields{Name: str("B"), Type: str("mobile")}, f.record)
	if err != nil {
		t.Fatal(err)
	}
	other := f.account(t)
	_, err = f.reg.Destroy(ctx, other, dB.ID, f.record)
	wantErr(t, "destroy through another account", err, devices.ErrUnknownDevice)
	_, err = f.reg.Destroy(ctx, f.uid, rnd(16), f.record)
	wantErr(t, "destroy unknown", err, devices.ErrUnknownDevice)

	f.takeEvents()
	got, err := f.reg.Destroy(ctx, f.uid, dB.ID, f.record)
	if err != nil || !bytes.Equal(got.ID, dB.ID) {
		t.Fatalf("destroy: %v", err)
	}
	if ev := f.takeEvents(); len(ev) != 1 || ev[0] != devices.Destroyed {
		t.Fatalf("events %v", ev)
	}
	_, err = f.st.Token(ctx, protocol.SessionToken, sB)
	wantErr(t, "B's session", err, store.ErrNotFound)
	_, err = f.st.Token(ctx, protocol.KeyFetchToken, kfB)
	wantErr(t, "B's keyFetchToken", err, store.ErrNotFound)
	if _, err := f.st.Token(ctx, protocol.SessionToken, sA); err != nil {
		t.Fatalf("A's session: %v", err)
	}
	if _, err := f.st.Token(ctx, protocol.KeyFetchToken, kfA); err != nil {
		t.Fatalf("A's keyFetchToken: %v", err)
	}
	ds, err := f.reg.List(ctx, f.uid)
	if err != nil || len(ds) != 1 || !bytes.Equal(ds[0].ID, dA.ID) {
		t.Fatalf("devices after destroy: %v %v", err, ds)
	}
	_, err = f.reg.Destroy(ctx, f.uid, dB.ID, f.record)
	wantErr(t, "destroy twice", err, devices.ErrUnknownDevice)
}

func TestTouchCoalesced(t *testing.T) {
	f := newFixture(t, sqliteDSN(t))
	ctx := t.Context()
	s := f.token(t, protocol.SessionToken, f.uid, nil)
	if err := f.reg.Touch(ctx, s); err != nil { // no device: nothing to do
		t.Fatal(err)
	}
	d, err := f.reg.Save(ctx, f.uid, s, nil, devices.Fields{Name: str("A"), Type: str("cli")}, f.record)
	if err != nil {
		t.Fatal(err)
	}
	lastAccess := func() time.Time {
		got, err := f.st.Device(ctx, f.uid, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		return got.LastAccessAt
	}
	start := f.now
	for _, step := range []struct {
		advance time.Duration
		want    time.Time
	}{
		{30 * time.Second, start},                                       // too soon
		{30 * time.Second, start},                                       // 60 s: not more than a minute
		{time.Second, start.Add(61 * time.Second)},                      // written
		{time.Minute, start.Add(61 * time.Second)},                      // a minute after the write
		{time.Hour, start.Add(2*time.Minute + time.Hour + time.Second)}, // written
	} {
		f.mu.Lock()
		f.now = f.now.Add(step.advance)
		f.mu.Unlock()
		if err := f.reg.Touch(ctx, s); err != nil {
			t.Fatal(err)
		}
		if got := lastAccess(); !got.Equal(step.want) {
			t.Fatalf("after +%v: lastAccess %v, want %v", step.advance, got, step.want)
		}
	}
}

// Concurrent registrations with one session create exactly one device, on
// both backends (PostgreSQL takes the unique-violation path).
func TestConcurrentRegistration(t *testing.T) {
	for name, dsn := range map[string]func(*testing.T) string{"sqlite": sqliteDSN, "postgres": func(t *testing.T) string { return pgtest.DSN(t) }} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, dsn(t))
			s := f.token(t, protocol.SessionToken, f.uid, nil)
			const n = 16
			ids := make([][]byte, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			ctx := context.Background()
			for i := range n {
				wg.Go(func() {
					d, err := f.reg.Save(ctx, f.uid, s, nil, devices.Fields{Name: str("Phone"), Type: str("mobile")}, f.record)
					errs[i] = err
					if d != nil {
						ids[i] = d.ID
					}
				})
			}
			wg.Wait()
			for i := range n {
				if errs[i] != nil || !bytes.Equal(ids[i], ids[0]) {
					t.Fatalf("registration %d: %v, id %x vs %x", i, errs[i], ids[i], ids[0])
				}
			}
			ds, err := f.reg.List(ctx, f.uid)
			if err != nil || len(ds) != 1 {
				t.Fatalf("devices: %v, %d", err, len(ds))
			}
			if ev := f.takeEvents(); len(ev) != 1 {
				t.Fatalf("recorded %d registrations, want 1", len(ev))
			}
		})
	}
}
