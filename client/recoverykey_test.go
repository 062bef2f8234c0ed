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
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/keyserver/keyserver/hawk"
	"github.com/keyserver/keyserver/keywrap"
	"github.com/keyserver/keyserver/protocol"
)

const recoveryVectorsPath = "../keywrap/testdata/recovery-key-vectors.json"

type recoveryVector struct {
	ID           string `json:"id"`
	R            string `json:"R"`
	UID          string `json:"uid"`
	KB           string `json:"kB"`
	KeyString    string `json:"keyString"`
	KeyID        string `json:"recoveryKeyId"`
	RecoveryData string `json:"recoveryData"`
}

func loadRecoveryVectors(t *testing.T) []recoveryVector {
	t.Helper()
	b, err := os.ReadFile(recoveryVectorsPath)
	if err != nil {
		t.Fatalf("reading recovery key vectors: %v", err)
	}
	var v struct {
		Vectors []recoveryVector `json:"vectors"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decoding recovery key vectors: %v", err)
	}
	if len(v.Vectors) == 0 {
		t.Fatal(`no vectors found in group "vectors"`)
	}
	return v.Vectors
}

// jsonBody decodes the JSON object a recorded request sent.
func jsonBody(t *testing.T, r *http.Request) map[string]any {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s %s: body %q is not a JSON object", r.Method, r.URL.Path, b)
	}
	return m
}

// hawkID is the Hawk id of a recorded request ("" when it is not signed).
func hawkID(t *testing.T, r *http.Request) string {
	t.Helper()
	h, err := hawk.ParseHeader(r.Header.Get("Authorization"))
	if err != nil {
		return ""
	}
	return h.ID
}

func keys(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func TestCreateRecoveryKeyRequest(t *testing.T) {
	var seen []*http.Request
	c, err := New("http://127.0.0.1:9000", WithHTTPClient(fakeServer(200, nil, `{}`, &seen)))
	if err != nil {
		t.Fatal(err)
	}
	session := bytes.Repeat([]byte{1}, 32)
	uid, kB := bytes.Repeat([]byte{2}, 16), bytes.Repeat([]byte{3}, 32)
	ks, err := c.CreateRecoveryKey(context.Background(), session, uid, kB)
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 1 {
		t.Fatalf("%d requests", len(seen))
	}
	r := seen[0]
	if r.Method != "POST" || r.URL.Path != "/v1/recoveryKey" || hawkID(t, r) != TokenCredentials(protocol.SessionToken, session).ID {
		t.Fatalf("%s %s id %q", r.Method, r.URL.Path, hawkID(t, r))
	}
	body := jsonBody(t, r)
	if got := keys(body); !slices.Equal(got, []string{"recoveryData", "recoveryKeyId"}) {
		t.Fatalf("members %v", got)
	}
	id, _ := hex.DecodeString(body["recoveryKeyId"].(string))
	data, _ := hex.DecodeString(body["recoveryData"].(string))
	if len(body["recoveryKeyId"].(string)) != 32 || len(body["recoveryData"].(string)) != 120 ||
		strings.ToLower(body["recoveryData"].(string)) != body["recoveryData"] {
		t.Fatalf("body %v", body)
	}
	// The string shown is the key of what was sent.
	R, err := keywrap.ParseRecoveryKey(ks)
	if err != nil {
		t.Fatalf("key string %q: %v", ks, err)
	}
	if keywrap.FormatRecoveryKey(R) != ks || !bytes.Equal(keywrap.RecoveryKeyID(R), id) {
		t.Fatal("the key string is not the key of recoveryKeyId")
	}
	if got, err := keywrap.OpenRecoveryData(R, uid, data); err != nil || !bytes.Equal(got, kB) {
		t.Fatalf("recoveryData opens to %x, %v", got, err)
	}
	// A second key is another one.
	ks2, err := c.CreateRecoveryKey(context.Background(), session, uid, kB)
	if err != nil || ks2 == ks {
		t.Fatalf("second key %q, %v", ks2, err)
	}

	// Bad inputs fail before anything is sent; a refusal is the server's.
	n := len(seen)
	if _, err := c.CreateRecoveryKey(context.Background(), session, uid[:15], kB); err == nil {
		t.Error("15-byte uid accepted")
	}
	if _, err := c.CreateRecoveryKey(context.Background(), session, uid, kB[:31]); err == nil {
		t.Error("31-byte kB accepted")
	}
	if len(seen) != n {
		t.Error("a request was sent for bad inputs")
	}
	c, _ = New("http://127.0.0.1:9000", WithHTTPClient(fakeServer(400, nil, `{"code":400,"errno":104,"error":"Bad Request","message":"Unverified account"}`, &seen)))
	if ks, err := c.CreateRecoveryKey(context.Background(), session, uid, kB); ks != "" || !IsErrno(err, 104) {
		t.Errorf("refused: %q, %v", ks, err)
	}
	c, _ = New("http://127.0.0.1:9000", WithRand(bytes.NewReader(make([]byte, 40))), WithHTTPClient(fakeServer(200, nil, `{}`, &seen)))
	if _, err := c.CreateRecoveryKey(context.Background(), session, uid, kB); err == nil {
		t.Error("created with 40 random bytes (R and the nonce need 44)")
	}
}

func TestRecoveryKeyStatusAndDelete(t *testing.T) {
	session := bytes.Repeat([]byte{9}, 32)
	id := TokenCredentials(protocol.SessionToken, session).ID
	for body, want := range map[string]protocol.RecoveryKeyStatus{
		`{"exists":false}`:                          {},
		`{"exists":true,"createdAt":1700000000123}`: {Exists: true, CreatedAt: 1700000000123},
	} {
		var seen []*http.Request
		c, _ := New("http://127.0.0.1:9000", WithHTTPClient(fakeServer(200, nil, body, &seen)))
		st, err := c.RecoveryKeyStatus(context.Background(), session)
		if err != nil || *st != want {
			t.Errorf("%s: %+v, %v", body, st, err)
		}
		r := seen[0]
		if r.Method != "GET" || r.URL.Path != "/v1/recoveryKey" || r.ContentLength > 0 || hawkID(t, r) != id {
			t.Errorf("status request %s %s length %d id %q", r.Method, r.URL.Path, r.ContentLength, hawkID(t, r))
		}
	}
	var seen []*http.Request
	c, _ := New("http://127.0.0.1:9000", WithHTTPClient(fakeServer(200, nil, `{}`, &seen)))
	if err := c.DeleteRecoveryKey(context.Background(), session); err != nil {
		t.Fatal(err)
	}
	r := seen[0]
	if r.Method != "POST" || r.URL.Path != "/v1/recoveryKey/destroy" || r.ContentLength > 0 || r.Header.Get("Content-Type") != "" || hawkID(t, r) != id {
		t.Errorf("destroy request %s %s length %d id %q", r.Method, r.URL.Path, r.ContentLength, hawkID(t, r))
	}
	c, _ = New("http://127.0.0.1:9000", WithHTTPClient(fakeServer(200, nil, `not json`, &seen)))
	if _, err := c.RecoveryKeyStatus(context.Background(), session); !errors.Is(err, ErrBadResponse) {
		t.Errorf("status with a bad answer: %v", err)
	}
}

func TestRecoveryKB(t *testing.T) {
	vecs := loadRecoveryVectors(t)
	reset := bytes.Repeat([]byte{5}, 32)
	resetID := TokenCredentials(protocol.AccountResetToken, reset).ID
	ctx := context.Background()
	answer := func(uid, data string) string {
		b, _ := json.Marshal(protocol.RecoveryKeyData{UID: uid, RecoveryData: data})
		return string(b)
	}
	for _, v := range vecs {
		var seen []*http.Request
		c, _ := New("http://127.0.0.1:9000", WithHTTPClient(fakeServer(200, nil, answer(v.UID, v.RecoveryData), &seen)))
		// The key as a user might type it.
		kB, err := c.RecoveryKB(ctx, reset, strings.ToLower(strings.ReplaceAll(v.KeyString, " ", "-")))
		if err != nil || hex.EncodeToString(kB) != v.KB {
			t.Fatalf("%s: kB %x, %v", v.ID, kB, err)
		}
		r := seen[0]
		if r.Method != "POST" || r.URL.Path != "/v1/recoveryKey/data" || hawkID(t, r) != resetID {
			t.Fatalf("%s: %s %s id %q", v.ID, r.Method, r.URL.Path, hawkID(t, r))
		}
		if body := jsonBody(t, r); len(body) != 1 || body["recoveryKeyId"] != v.KeyID {
			t.Fatalf("%s: body %v, want recoveryKeyId %s", v.ID, body, v.KeyID)
		}
	}

	v, other := vecs[len(vecs)-1], vecs[len(vecs)-2]
	try := func(status int, body, key string) ([]byte, int, error) {
		var seen []*http.Request
		c, _ := New("http://127.0.0.1:9000", WithHTTPClient(fakeServer(status, nil, body, &seen)))
		kB, err := c.RecoveryKB(ctx, reset, key)
		return kB, len(seen), err
	}
	flat := strings.ReplaceAll(v.KeyString, " ", "")
	const alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	wrongCheck := flat[:52] + string(alphabet[(strings.IndexByte(alphabet, flat[52])+1)%32])
	// A mistyped key is refused before anything is sent.
	for key, want := range map[string]error{
		flat[:52]:       keywrap.ErrRecoveryKeyLength,
		"U" + flat[1:]:  keywrap.ErrRecoveryKeyCharacter,
		flat[:52] + "*": keywrap.ErrRecoveryKeyCharacter,
		wrongCheck:      keywrap.ErrRecoveryKeyCheck,
	} {
		if kB, n, err := try(200, answer(v.UID, v.RecoveryData), key); kB != nil || !errors.Is(err, want) || n != 0 {
			t.Errorf("%q: %x, %v after %d requests; want %v and none", key, kB, err, n, want)
		}
	}
	// Data of another uid, another key, or altered: no kB.
	raw, _ := hex.DecodeString(v.RecoveryData)
	raw[30] ^= 1
	tampered := hex.EncodeToString(raw)
	for name, body := range map[string]string{
		"other uid":  answer(other.UID, v.RecoveryData),
		"other data": answer(v.UID, other.RecoveryData),
		"altered":    answer(v.UID, tampered),
	} {
		if kB, _, err := try(200, body, v.KeyString); kB != nil || !errors.Is(err, keywrap.ErrRecoveryData) {
			t.Errorf("%s: %x, %v; want ErrRecoveryData", name, kB, err)
		}
	}
	for name, body := range map[string]string{
		"short uid":  answer(v.UID[:30], v.RecoveryData),
		"short data": answer(v.UID, v.RecoveryData[:118]),
		"not hex":    answer(v.UID, strings.Repeat("zz", 60)),
		"not JSON":   "{",
	} {
		if kB, _, err := try(200, body, v.KeyString); kB != nil || !errors.Is(err, ErrBadResponse) {
			t.Errorf("%s: %x, %v; want ErrBadResponse", name, kB, err)
		}
	}
	for _, errno := range []int{protocol.ErrnoInvalidRecoveryKey, protocol.ErrnoNoRecoveryKey} {
		body := `{"code":400,"errno":` + itoa(errno) + `,"error":"Bad Request","message":"` + protocol.Messages[errno] + `"}`
		if kB, _, err := try(400, body, v.KeyString); kB != nil || !IsErrno(err, errno) {
			t.Errorf("errno %d: %x, %v", errno, kB, err)
		} else if strings.Contains(err.Error(), flat[:8]) {
			t.Errorf("error %q shows the key", err)
		}
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// TestResetBody: ResetAccount and ResetAccountWithKB never send
// keepRecoveryKey; the password change's reset sends it as true, and again
// without it when a server without the extension refuses the member.
func TestResetBody(t *testing.T) {
	ctx := context.Background()
	reset := bytes.Repeat([]byte{6}, 32)
	cred := TokenCredentials(protocol.AccountResetToken, reset)
	bundleWrapKb := func(t *testing.T, body map[string]any) []byte {
		t.Helper()
		b, _ := hex.DecodeString(body["bundle"].(string))
		plain, err := keywrap.Unbundle(cred.BundleKey, keywrap.ContextAccountReset, b)
		if err != nil || len(plain) != 32+256 {
			t.Fatalf("bundle: %v", err)
		}
		return plain[:32]
	}
	var seen []*http.Request
	c := newTestClient(t, "http://127.0.0.1:9000", WithHTTPClient(fakeServer(200, nil, `{}`, &seen)))
	if err := c.ResetAccount(ctx, reset, "a@example.org", "pw", nil); err != nil {
		t.Fatal(err)
	}
	body := jsonBody(t, seen[0])
	if got := keys(body); !slices.Equal(got, []string{"bundle", "passwordStretching", "srp"}) {
		t.Errorf("ResetAccount members %v", got)
	}
	if !bytes.Equal(bundleWrapKb(t, body), make([]byte, 32)) {
		t.Error("ResetAccount(nil) does not send 32 zero bytes")
	}

	kB := bytes.Repeat([]byte{0xab}, 32)
	if err := c.ResetAccountWithKB(ctx, reset, "a@example.org", "new pw", kB); err != nil {
		t.Fatal(err)
	}
	body = jsonBody(t, seen[1])
	if got := keys(body); !slices.Equal(got, []string{"bundle", "passwordStretching", "srp"}) {
		t.Errorf("ResetAccountWithKB members %v", got)
	}
	salt, _ := hex.DecodeString(body["passwordStretching"].(map[string]any)["salt"].(string))
	_, unwrapBKey, err := keywrap.StretchWith(cheap, []byte("a@example.org"), []byte("new pw"), salt)
	if err != nil {
		t.Fatal(err)
	}
	if got := keywrap.UnwrapKB(bundleWrapKb(t, body), unwrapBKey); !bytes.Equal(got, kB) {
		t.Errorf("ResetAccountWithKB stores a wrapKb for kB %x, want %x", got, kB)
	}
	if err := c.ResetAccountWithKB(ctx, reset, "a@example.org", "pw", kB[:31]); err == nil || len(seen) != 2 {
		t.Error("ResetAccountWithKB with a 31-byte kB")
	}

	if err := c.reset(ctx, reset, "a@example.org", "pw", func(u []byte) []byte { return u }, true); err != nil {
		t.Fatal(err)
	}
	if body := jsonBody(t, seen[2]); body["keepRecoveryKey"] != true || len(body) != 4 {
		t.Errorf("password change reset body %v", keys(body))
	}

	// A server that does not know the member: once more without it; any
	// other refusal is not retried.
	var mu sync.Mutex
	var bodies []map[string]any
	refuse := func(param string) *http.Client {
		return &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			mu.Lock()
			defer mu.Unlock()
			body := jsonBody(t, r)
			bodies = append(bodies, body)
			status, answer := 200, `{}`
			if _, ok := body["keepRecoveryKey"]; ok {
				status, answer = 400, `{"code":400,"errno":107,"error":"Bad Request","message":"Invalid parameter in request body: `+param+`","param":"`+param+`"}`
			}
			return &http.Response{StatusCode: status, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(answer)), Request: r}, nil
		})}
	}
	c = newTestClient(t, "http://127.0.0.1:9000", WithHTTPClient(refuse("keepRecoveryKey")))
	if err := c.reset(ctx, reset, "a@example.org", "pw", func(u []byte) []byte { return u }, true); err != nil {
		t.Fatalf("reset against a server without the extension: %v", err)
	}
	if len(bodies) != 2 || bodies[0]["keepRecoveryKey"] != true || bodies[1]["keepRecoveryKey"] != nil || bodies[0]["bundle"] != bodies[1]["bundle"] {
		t.Fatalf("bodies %v", bodies)
	}
	bodies = nil
	c = newTestClient(t, "http://127.0.0.1:9000", WithHTTPClient(refuse("srp.salt")))
	if err := c.reset(ctx, reset, "a@example.org", "pw", func(u []byte) []byte { return u }, true); !IsErrno(err, 107) || len(bodies) != 1 {
		t.Fatalf("another 107: %v after %d requests", err, len(bodies))
	}
}

// recorder is a transport that keeps the bodies of the requests to one path.
type recorder struct {
	path   string
	mu     sync.Mutex
	bodies []map[string]any
}

func (rec *recorder) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Path == rec.path && r.Body != nil {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		r.Body = io.NopCloser(bytes.NewReader(b))
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		rec.mu.Lock()
		rec.bodies = append(rec.bodies, m)
		rec.mu.Unlock()
	}
	return http.DefaultTransport.RoundTrip(r)
}

func (rec *recorder) last(t *testing.T) map[string]any {
	t.Helper()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.bodies) == 0 {
		t.Fatalf("no request to %s", rec.path)
	}
	return rec.bodies[len(rec.bodies)-1]
}

// TestRecoveryKeyRoundTrip against the real server: a recovery key
// survives a password change and gives the current kB after a forgotten
// password; the reset then keeps kA and kB and uses the key up.
func TestRecoveryKeyRoundTrip(t *testing.T) {
	url, mail := newServer(t)
	rec := &recorder{path: "/v1/account/reset"}
	c := newTestClient(t, url, WithHTTPClient(&http.Client{Transport: rec}))
	ctx := context.Background()
	const email = "recovery@example.org"
	if _, err := c.CreateAccount(ctx, email, "pw", CreateOptions{PreVerified: true}); err != nil {
		t.Fatal(err)
	}
	s1, k1 := loginKeys(t, c, email, "pw")
	if st, err := c.RecoveryKeyStatus(ctx, s1.SessionToken); err != nil || st.Exists || st.CreatedAt != 0 {
		t.Fatalf("status before: %+v, %v", st, err)
	}
	keyString, err := c.CreateRecoveryKey(ctx, s1.SessionToken, s1.UID, k1.KB)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if st, err := c.RecoveryKeyStatus(ctx, s1.SessionToken); err != nil || !st.Exists || st.CreatedAt <= 0 {
		t.Fatalf("status after create: %+v, %v", st, err)
	}

	// The password change keeps the key, and says so.
	if err := c.ChangePassword(ctx, email, "pw", "pw2"); err != nil {
		t.Fatalf("change password: %v", err)
	}
	if rec.last(t)["keepRecoveryKey"] != true {
		t.Fatalf("password change reset body %v", keys(rec.last(t)))
	}
	s2, k2 := loginKeys(t, c, email, "pw2")
	if st, err := c.RecoveryKeyStatus(ctx, s2.SessionToken); err != nil || !st.Exists {
		t.Fatalf("status after password change: %+v, %v", st, err)
	}
	if !bytes.Equal(k2.KB, k1.KB) {
		t.Fatal("password change changed kB")
	}

	// Forgotten password: the key gives kB back, the reset keeps it.
	ft, err := c.ForgotSendCode(ctx, email)
	if err != nil {
		t.Fatal(err)
	}
	resetToken, err := c.ForgotVerifyCode(ctx, ft, mail.last(t).Headers["X-Recovery-Code"])
	if err != nil {
		t.Fatalf("verify_code: %v", err)
	}
	otherKey := keywrap.FormatRecoveryKey(bytes.Repeat([]byte{0x42}, 32))
	_, err = c.RecoveryKB(ctx, resetToken, otherKey)
	wantErrno(t, "another recovery key", err, protocol.ErrnoInvalidRecoveryKey)
	kB, err := c.RecoveryKB(ctx, resetToken, keyString)
	if err != nil || !bytes.Equal(kB, k1.KB) {
		t.Fatalf("RecoveryKB: %x, %v; want kB %x", kB, err, k1.KB)
	}
	if err := c.ResetAccountWithKB(ctx, resetToken, ft.Email, "pw3", kB); err != nil {
		t.Fatalf("reset keeping kB: %v", err)
	}
	if _, ok := rec.last(t)["keepRecoveryKey"]; ok {
		t.Fatal("the reset after a forgotten password sent keepRecoveryKey")
	}
	s3, k3 := loginKeys(t, c, email, "pw3")
	if !bytes.Equal(k3.KA, k1.KA) || !bytes.Equal(k3.KB, k1.KB) {
		t.Fatal("reset with the recovery key lost kA or kB")
	}
	if st, err := c.RecoveryKeyStatus(ctx, s3.SessionToken); err != nil || st.Exists {
		t.Fatalf("status after the reset: %+v, %v (the reset uses the key up)", st, err)
	}

	// Without a key: 129; a deleted key is gone.
	ft, err = c.ForgotSendCode(ctx, email)
	if err != nil {
		t.Fatal(err)
	}
	resetToken, err = c.ForgotVerifyCode(ctx, ft, mail.last(t).Headers["X-Recovery-Code"])
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.RecoveryKB(ctx, resetToken, keyString)
	wantErrno(t, "no recovery key", err, protocol.ErrnoNoRecoveryKey)
	s4, k4 := loginKeys(t, c, email, "pw3")
	if _, err := c.CreateRecoveryKey(ctx, s4.SessionToken, s4.UID, k4.KB); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteRecoveryKey(ctx, s4.SessionToken); err != nil {
		t.Fatal(err)
	}
	if st, err := c.RecoveryKeyStatus(ctx, s4.SessionToken); err != nil || st.Exists {
		t.Fatalf("status after delete: %+v, %v", st, err)
	}
	if err := c.DeleteRecoveryKey(ctx, s4.SessionToken); err != nil {
		t.Fatalf("deleting again: %v", err)
	}
}
