package keyserver_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/keyserver/keyserver/hawk"
	"github.com/keyserver/keyserver/keyserver"
	"github.com/keyserver/keyserver/keywrap"
	"github.com/keyserver/keyserver/protocol"
	"github.com/keyserver/keyserver/srp"
	"github.com/keyserver/keyserver/store/sqlstore"
	"github.com/keyserver/keyserver/store/sqlstore/pgtest"
)

const benchURL = "http://127.0.0.1:9000"

// signInFixture is a server with one verified account whose srpPw is known,
// so the client side needs no stretching.
type signInFixture struct {
	h     http.Handler
	email []byte
	srpPw []byte
	salt  []byte
}

func newSignInFixture(b *testing.B, dsn string) *signInFixture {
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, dsn, sqlstore.Options{Migrate: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	// httptest requests come from 192.0.2.1, exempt from the abuse rules
	// like the address of `keyserver bench` (--rate-limit-exempt).
	srv, err := keyserver.New(keyserver.Config{PublicURL: benchURL, Dev: true,
		RateLimitExempt: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}, st)
	if err != nil {
		b.Fatal(err)
	}
	f := &signInFixture{h: srv.Handler(), email: []byte("bench@example.com"), srpPw: randBytes(32), salt: randBytes(32)}
	body := map[string]any{
		"email": hex.EncodeToString(f.email),
		"srp": map[string]string{"type": srp.Type, "salt": hex.EncodeToString(f.salt),
			"verifier": hex.EncodeToString(srp.Verifier(f.email, f.srpPw, f.salt))},
		"passwordStretching": map[string]any{"type": keywrap.StretchType, "PBKDF2_rounds_1": 20000,
			"scrypt_N": 65536, "scrypt_r": 8, "scrypt_p": 1, "PBKDF2_rounds_2": 20000, "salt": hex.EncodeToString(randBytes(32))},
		"preVerified": true,
	}
	f.call(b, "POST", "/v1/account/create", body, nil, &struct{}{})
	return f
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// sign builds a request, Hawk-signed with the token of type typ made from
// seed when seed is non-nil.
func (f *signInFixture) sign(method, path string, body any, typ protocol.TokenType, seed []byte) *http.Request {
	var raw []byte
	if body != nil {
		raw, _ = json.Marshal(body)
	}
	req := httptest.NewRequest(method, benchURL+path, bytes.NewReader(raw))
	req.RequestURI = path
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if seed != nil {
		id, key, _ := keywrap.DeriveToken(string(typ), seed)
		hash := ""
		if body != nil {
			hash = hawk.PayloadHash("application/json", raw)
		}
		nonce, _ := hawk.NewNonce(rand.Reader)
		req.Header.Set("Authorization", hawk.Sign(hex.EncodeToString(id), key, method, path, "127.0.0.1", 9000, time.Now().Unix(), nonce, hash, ""))
	}
	return req
}

// serve runs req in-process and decodes a 200 answer into out.
func (f *signInFixture) serve(b testing.TB, req *http.Request, out any) {
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	if rec.Code != 200 {
		b.Fatalf("%s %s: %d %s", req.Method, req.RequestURI, rec.Code, rec.Body)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
		b.Fatal(err)
	}
}

// call is an unauthenticated JSON request.
func (f *signInFixture) call(b testing.TB, method, path string, body any, _ *[2][]byte, out any) {
	f.serve(b, f.sign(method, path, body, "", nil), out)
}

func unhex(b testing.TB, s string) []byte {
	v, err := hex.DecodeString(s)
	if err != nil {
		b.Fatal(err)
	}
	return v
}

// cpuTime is the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkSignInServer measures the server's cost of one complete sign-in
// (auth/start, auth/finish, session/create, account/keys) in-process on
// SQLite and PostgreSQL; the client's work is outside the timer. cpu-ns/op
// counts only this process's CPU time in the timed parts: the fsyncs of
// synchronous=FULL are waits, and PostgreSQL's own work is another process.
func BenchmarkSignInServer(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) {
		benchSignIn(b, newSignInFixture(b, "sqlite:"+filepath.Join(b.TempDir(), "ks.db")))
	})
	b.Run("postgres", func(b *testing.B) { benchSignIn(b, newSignInFixture(b, pgtest.DSN(b))) })
}

func benchSignIn(b *testing.B, f *signInFixture) {
	emailHex := hex.EncodeToString(f.email)
	a := randBytes(32)
	var cpu time.Duration
	timed := func(fn func()) {
		b.StartTimer()
		c0 := cpuTime()
		fn()
		cpu += cpuTime() - c0
		b.StopTimer()
	}
	b.ResetTimer()
	b.StopTimer()
	for i := 0; i < b.N; i++ {
		var start struct {
			SRPToken string             `json:"srpToken"`
			SRP      struct{ B string } `json:"srp"`
		}
		timed(func() { f.call(b, "POST", "/v1/auth/start", map[string]string{"email": emailHex}, nil, &start) })
		A, M, K, err := srp.ClientProof(f.email, f.srpPw, f.salt, a, unhex(b, start.SRP.B))
		if err != nil {
			b.Fatal(err)
		}
		var finish struct{ Bundle string }
		timed(func() {
			f.call(b, "POST", "/v1/auth/finish", map[string]string{"srpToken": start.SRPToken,
				"A": hex.EncodeToString(A), "M": hex.EncodeToString(M)}, nil, &finish)
		})
		authSeed, err := keywrap.Unbundle(K, keywrap.ContextAuthFinish, unhex(b, finish.Bundle))
		if err != nil {
			b.Fatal(err)
		}
		var sess struct{ Bundle string }
		signed := f.sign("POST", "/v1/session/create", nil, protocol.AuthToken, authSeed)
		timed(func() { f.serve(b, signed, &sess) })
		_, _, authBundleKey := keywrap.DeriveToken(string(protocol.AuthToken), authSeed)
		seeds, err := keywrap.Unbundle(authBundleKey, keywrap.ContextSessionCreate, unhex(b, sess.Bundle))
		if err != nil {
			b.Fatal(err)
		}
		var keys struct{ Bundle string }
		signed = f.sign("GET", "/v1/account/keys", nil, protocol.KeyFetchToken, seeds[:32])
		timed(func() { f.serve(b, signed, &keys) })
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// BenchmarkSignInCrypto is the bare cryptography of the same sign-in on the
// server side: g^b and B, the SRP verification, four token derivations,
// three bundles and two Hawk MACs.
func BenchmarkSignInCrypto(b *testing.B) {
	email, srpPw, salt := []byte("bench@example.com"), randBytes(32), randBytes(32)
	v := srp.Verifier(email, srpPw, salt)
	seeds := [4][]byte{randBytes(32), randBytes(32), randBytes(32), randBytes(32)}
	a := randBytes(32)
	// Client values for one fixed b, precomputed outside the timer.
	_, _, bKey := keywrap.DeriveToken("srpToken", seeds[0])
	B, err := srp.ServerB(v, bKey)
	if err != nil {
		b.Fatal(err)
	}
	A, M, _, err := srp.ClientProof(email, srpPw, salt, a, B)
	if err != nil {
		b.Fatal(err)
	}
	h := &hawk.Header{ID: "id", TS: strconv.FormatInt(time.Now().Unix(), 10), Nonce: "n"}
	payload := make([]byte, 64)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_, _, bKey := keywrap.DeriveToken("srpToken", seeds[0])
		if _, err := srp.ServerB(v, bKey); err != nil {
			b.Fatal(err)
		}
		K, err := srp.ServerVerify(v, bKey, B, A, M)
		if err != nil {
			b.Fatal(err)
		}
		for _, typ := range []protocol.TokenType{protocol.AuthToken, protocol.KeyFetchToken, protocol.SessionToken} {
			keywrap.DeriveToken(string(typ), seeds[1])
		}
		keywrap.Bundle(K, keywrap.ContextAuthFinish, payload[:32])
		keywrap.Bundle(K, keywrap.ContextSessionCreate, payload)
		keywrap.Bundle(K, keywrap.ContextAccountKeys, payload)
		h.VerifyMAC(K, "POST", "/v1/session/create", "127.0.0.1", 9000)
		h.VerifyMAC(K, "GET", "/v1/account/keys", "127.0.0.1", 9000)
	}
}
