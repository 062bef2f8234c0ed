package e2e

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyserver/keyserver/certs"
	"github.com/keyserver/keyserver/client"
)

const storageAudience = "https://storage.example.com"

// certClient is a client's 2048-bit RSA key: its jwcrypto public key goes
// into certificates, its private key signs assertions.
var certClient = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

func certClientKey() map[string]string {
	k := certClient()
	return map[string]string{"algorithm": "RS", "n": k.N.String(), "e": "65537"}
}

// backedAssertion is cert~assertion for aud, signed like jwcrypto (RS256).
func backedAssertion(t *testing.T, cert, aud string) string {
	t.Helper()
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	input := enc(map[string]string{"alg": "RS256"}) + "." + enc(map[string]any{"aud": aud, "exp": time.Now().Add(2 * time.Minute).UnixMilli()})
	digest := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(nil, certClient(), crypto.SHA256, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	return cert + "~" + input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// generateKey runs `keyserver keys generate` and returns the file.
func generateKey(t *testing.T, alg string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), alg+".pem")
	out, errOut, code := runKeyserver(t, "keys", "generate", "--alg", alg, "--out", file)
	if code != 0 || !strings.Contains(out, file) {
		t.Fatalf("keys generate: exit %d %q %q", code, out, errOut)
	}
	return file
}

// issuer is host:port of the server's URL, the certificates' issuer domain.
func issuer(s *server) string { return strings.TrimPrefix(s.URL, "http://") }

// published fetches the server's JWK Set and returns a verifier of its keys.
func published(t *testing.T, s *server) *certs.Verifier {
	t.Helper()
	resp, err := http.Get(s.URL + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Cache-Control"), "max-age") {
		t.Fatalf("jwks: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	ks, err := certs.ParseJWKS(body)
	if err != nil {
		t.Fatal(err)
	}
	return &certs.Verifier{Keys: ks, Issuer: issuer(s), Skew: time.Minute}
}

// signIn creates a verified account and returns a client and a session.
func signIn(t *testing.T, s *server, email, pw string) (*client.Client, *client.Session) {
	t.Helper()
	c := newClient(t, s)
	ctx := ctxT(t)
	if _, err := c.CreateAccount(ctx, email, pw, client.CreateOptions{PreVerified: true}); err != nil {
		t.Fatal(err)
	}
	sess, err := c.Login(ctx, email, pw)
	if err != nil {
		t.Fatal(err)
	}
	return c, sess
}

// certsVerify runs `keyserver certs verify` and returns stdout and the exit
// status.
func certsVerify(t *testing.T, args ...string) (string, int) {
	t.Helper()
	out, _, code := runKeyserver(t, append([]string{"certs", "verify"}, args...)...)
	return out, code
}

// Certificates from the real binary verify with its published key, in both
// key configurations, and carry uid, issuer, iat, exp, generation and device.
func TestCertificates(t *testing.T) {
	run := func(t *testing.T, db string, extra ...string) {
		start := time.Now().Add(-time.Second)
		s := startServer(t, append([]string{"--db", db, "--dev"}, extra...)...)
		c, sess := signIn(t, s, "cert@example.org", "pw")
		ctx := ctxT(t)
		name, typ := "Laptop", "desktop"
		d, err := c.RegisterDevice(ctx, sess.SessionToken, client.DeviceFields{Name: &name, Type: &typ})
		if err != nil {
			t.Fatal(err)
		}
		cert, err := c.CertificateSign(ctx, sess.SessionToken, certClientKey(), 10_000)
		if err != nil {
			t.Fatal(err)
		}
		v := published(t, s)
		got, err := v.VerifyCertificate(cert)
		if err != nil {
			t.Fatal(err)
		}
		// iat is the moment of issue - 10 s, exp the moment of issue +
		// duration (spec 7.2, C21).
		issued := got.IssuedAt.Add(certs.IssuedAtBackdate)
		if got.Principal != hex.EncodeToString(sess.UID)+"@"+issuer(s) || got.Issuer != issuer(s) ||
			issued.Before(start) || issued.After(time.Now()) || got.ExpiresAt.Sub(issued) != 10*time.Second ||
			got.Generation.Before(start) || got.Generation.After(issued) || got.DeviceID != d.ID ||
			got.PublicKey.N.Cmp(certClient().N) != 0 {
			t.Fatalf("claims %+v", got.Claims)
		}
		// It stops verifying at exp.
		v.Now = func() time.Time { return got.ExpiresAt }
		if _, err := v.VerifyCertificate(cert); !errors.Is(err, certs.ErrExpired) {
			t.Fatalf("at exp: %v", err)
		}

		// The CLI agrees, for the certificate and for a backed assertion.
		jwks := s.URL + "/.well-known/jwks.json"
		out, code := certsVerify(t, "--jwks", jwks, "--issuer", issuer(s), cert)
		if code != 0 || !strings.Contains(out, got.Principal) || !strings.Contains(out, `"picl-deviceId": "`+d.ID+`"`) {
			t.Fatalf("certs verify: exit %d\n%s", code, out)
		}
		backed := backedAssertion(t, cert, storageAudience)
		if out, code := certsVerify(t, "--jwks", jwks, "--audience", storageAudience, backed); code != 0 || !strings.Contains(out, storageAudience) {
			t.Fatalf("certs verify assertion: exit %d\n%s", code, out)
		}
		if _, code := certsVerify(t, "--jwks", jwks, "--audience", "https://other.example.com", backed); code != 1 {
			t.Fatalf("wrong audience: exit %d", code)
		}

		// After a password change new certificates carry a newer generation.
		if err := c.ChangePassword(ctx, "cert@example.org", "pw", "pw2"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.CertificateSign(ctx, sess.SessionToken, certClientKey(), 10_000); !client.IsErrno(err, 110) {
			t.Fatalf("old session after the change: %v", err)
		}
		sess2, err := c.Login(ctx, "cert@example.org", "pw2")
		if err != nil {
			t.Fatal(err)
		}
		cert2, err := c.CertificateSign(ctx, sess2.SessionToken, certClientKey(), 10_000)
		if err != nil {
			t.Fatal(err)
		}
		v.Now = nil
		got2, err := v.VerifyCertificate(cert2)
		if err != nil {
			t.Fatal(err)
		}
		if !got2.Generation.After(got.Generation) || got2.DeviceID != "" {
			t.Fatalf("generation %v after the change, %v before; device %q", got2.Generation, got.Generation, got2.DeviceID)
		}
	}
	t.Run("rs256", func(t *testing.T) { backends(t, run) })
	t.Run("eddsa", func(t *testing.T) { run(t, sqliteDB(t), "--signing-key", generateKey(t, "eddsa")) })
}

// Rotation: the new key signs while the retired one stays published and
// its certificates verify; once it is withdrawn they no longer do.
func TestKeyRotation(t *testing.T) {
	db := sqliteDB(t)
	oldKey, newKey := generateKey(t, "rs256"), generateKey(t, "eddsa")
	// The retired key may be given as its public half only.
	data, err := os.ReadFile(oldKey)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := certs.ParsePublicKeyPEM(data)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(pub)
	oldPub := filepath.Join(t.TempDir(), "old.pub.pem")
	if err := os.WriteFile(oldPub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}

	s1 := startServer(t, "--db", db, "--dev", "--signing-key", oldKey)
	c, sess := signIn(t, s1, "rotate@example.org", "pw")
	oldCert, err := c.CertificateSign(ctxT(t), sess.SessionToken, certClientKey(), 3600_000)
	if err != nil {
		t.Fatal(err)
	}
	if err := s1.stop(); err != nil {
		t.Fatal(err)
	}

	s2 := startServer(t, "--db", db, "--dev", "--signing-key", newKey, "--retired-key", oldPub)
	v := published(t, s2)
	if ids := v.Keys.KeyIDs(); len(ids) != 2 {
		t.Fatalf("published kids %v", ids)
	}
	v.Issuer = issuer(s1)
	if _, err := v.VerifyCertificate(oldCert); err != nil {
		t.Fatalf("certificate of the retired key: %v", err)
	}
	c2 := newClient(t, s2)
	sess2, err := c2.Login(ctxT(t), "rotate@example.org", "pw")
	if err != nil {
		t.Fatal(err)
	}
	newCert, err := c2.CertificateSign(ctxT(t), sess2.SessionToken, certClientKey(), 3600_000)
	if err != nil {
		t.Fatal(err)
	}
	v.Issuer = issuer(s2)
	if got, err := v.VerifyCertificate(newCert); err != nil || got.Algorithm != certs.EdDSA || got.KeyID != v.Keys.KeyIDs()[0] {
		t.Fatalf("certificate of the new key: %+v %v", got, err)
	}
	if _, code := certsVerify(t, "--jwks", s2.URL+"/.well-known/jwks.json", oldCert); code != 0 {
		t.Fatalf("certs verify of the retired key's certificate: exit %d", code)
	}

	s3 := startServer(t, "--db", db, "--dev", "--signing-key", newKey)
	if _, code := certsVerify(t, "--jwks", s3.URL+"/.well-known/jwks.json", oldCert); code != 1 {
		t.Fatalf("certs verify after the retired key was withdrawn: exit %d", code)
	}
}

// While the signing key is RSA, /.well-known/browserid lists RSA keys
// only; an Ed25519 key (retired, or published in advance) is in
// /.well-known/jwks.json alone (spec 7.4, C21). With the Ed25519 key
// current, both list both.
func TestBrowserIDDocumentKeys(t *testing.T) {
	rsaKey, edKey := generateKey(t, "rs256"), generateKey(t, "eddsa")
	docs := func(s *server) (browserID map[string]any, kids []string) {
		t.Helper()
		code, browserID, _ := getJSON(t, s.URL+"/.well-known/browserid")
		if code != 200 {
			t.Fatalf("browserid: %d", code)
		}
		return browserID, published(t, s).Keys.KeyIDs()
	}
	algorithms := func(doc map[string]any) (current string, keys []string) {
		for _, k := range doc["keys"].([]any) {
			keys = append(keys, k.(map[string]any)["algorithm"].(string))
		}
		return doc["public-key"].(map[string]any)["algorithm"].(string), keys
	}

	s := startServer(t, "--db", sqliteDB(t), "--dev", "--signing-key", rsaKey, "--retired-key", edKey)
	doc, kids := docs(s)
	if cur, keys := algorithms(doc); cur != "RS" || len(keys) != 1 || keys[0] != "RS" || len(kids) != 2 {
		t.Fatalf("RSA current: browserid %v %v, jwks kids %v", cur, keys, kids)
	}
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}

	s = startServer(t, "--db", sqliteDB(t), "--dev", "--signing-key", edKey, "--retired-key", rsaKey)
	doc, kids = docs(s)
	if cur, keys := algorithms(doc); cur != "ED" || len(keys) != 2 || keys[0] != "ED" || keys[1] != "RS" || len(kids) != 2 {
		t.Fatalf("Ed25519 current: browserid %v %v, jwks kids %v", cur, keys, kids)
	}
}

// Tampered certificates fail in the CLI with exit 1; usage errors exit 2.
func TestCertsVerifyCLI(t *testing.T) {
	s := startServer(t, "--db", sqliteDB(t), "--dev")
	c, sess := signIn(t, s, "cli@example.org", "pw")
	cert, err := c.CertificateSign(ctxT(t), sess.SessionToken, certClientKey(), 60_000)
	if err != nil {
		t.Fatal(err)
	}
	// A JWKS file works as well as the URL.
	_, body, _ := getJSON(t, s.URL+"/.well-known/jwks.json")
	b, _ := json.Marshal(body)
	jwksFile := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(jwksFile, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, code := certsVerify(t, "--jwks", jwksFile, cert); code != 0 {
		t.Fatalf("valid certificate: exit %d", code)
	}
	p := strings.Split(cert, ".")
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	payload, _ := base64.RawURLEncoding.DecodeString(p[1])
	forged := strings.Replace(string(payload), `"iat":`, `"iat":1`, 1)
	for name, bad := range map[string]string{
		"payload":   p[0] + "." + enc(forged) + "." + p[2],
		"signature": p[0] + "." + p[1] + "." + p[2][:10] + strings.Repeat("A", len(p[2])-10),
		"header":    enc(`{"alg":"RS256","kid":"other"}`) + "." + p[1] + "." + p[2],
		"alg none":  enc(`{"alg":"none","kid":"x"}`) + "." + p[1] + ".",
		"issuer":    cert,
	} {
		args := []string{"--jwks", jwksFile, bad}
		if name == "issuer" {
			args = []string{"--jwks", jwksFile, "--issuer", "evil.example.com", bad}
		}
		if out, code := certsVerify(t, args...); code != 1 || out != "" {
			t.Errorf("%s: exit %d %q", name, code, out)
		}
	}
	for _, args := range [][]string{
		{},
		{"--jwks", jwksFile},
		{cert},
		{"--jwks", jwksFile, "--no-such-flag", cert},
		{"--jwks", jwksFile, backedAssertion(t, cert, storageAudience)}, // no --audience
	} {
		if _, code := certsVerify(t, args...); code != 2 {
			t.Errorf("certs verify %.40q: exit %d, want 2", args, code)
		}
	}
}

// Bad certificate requests answer 400 with the spec's errno, never 500.
func TestCertificateSignErrorsE2E(t *testing.T) {
	s := startServer(t, "--db", sqliteDB(t), "--dev")
	c, sess := signIn(t, s, "errors@example.org", "pw")
	ctx := ctxT(t)
	huge := map[string]string{"algorithm": "RS", "n": strings.Repeat("9", 64<<10), "e": "65537"}
	for _, tc := range []struct {
		name     string
		key      any
		duration int64
		errno    int
		param    string
	}{
		{"64 KB key", huge, 1000, 107, "publicKey"},
		{"legacy key without --legacy-client-keys", map[string]string{"algorithm": "RS", "n": "4759385967235610503571494339196749614544606692567785790953934768202714280652973091341316862993582789079872007974809511698859885077002492642203267408776123", "e": "65537"}, 1000, 107, "publicKey"},
		{"DS with a small p", map[string]string{"algorithm": "DS", "y": "2", "p": "ffff", "q": "ff", "g": "2"}, 1000, 107, "publicKey"},
		{"key as a string", "RS", 1000, 107, "publicKey"},
		{"duration 0", certClientKey(), 0, 107, "duration"},
		{"duration over 24 h", certClientKey(), 86_400_001, 107, "duration"},
	} {
		start := time.Now()
		_, err := c.CertificateSign(ctx, sess.SessionToken, tc.key, tc.duration)
		if ce := wantErrno(t, err, tc.errno, tc.name); ce.Body["param"] != tc.param {
			t.Fatalf("%s: param %v", tc.name, ce.Body["param"])
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("%s took %v", tc.name, time.Since(start))
		}
	}
	// An unverified account gets 104.
	u := newClient(t, s)
	if _, err := u.CreateAccount(ctx, "unverified@example.org", "pw", client.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	us, err := u.Login(ctx, "unverified@example.org", "pw")
	if err != nil {
		t.Fatal(err)
	}
	_, err = u.CertificateSign(ctx, us.SessionToken, certClientKey(), 1000)
	wantErrno(t, err, 104, "unverified")
}

// Keys: generate writes a 0600 file and never overwrites; serve refuses a
// missing or unreadable key, and without one outside --dev; --dev alone
// runs on an ephemeral key and says so.
func TestSigningKeyFiles(t *testing.T) {
	file := generateKey(t, "rs256")
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode: %v %v", fi.Mode(), err)
	}
	if _, _, code := runKeyserver(t, "keys", "generate", "--out", file); code == 0 {
		t.Fatal("keys generate overwrote a file")
	}
	if _, _, code := runKeyserver(t, "keys", "generate", "--alg", "hs256", "--out", file+"2"); code != 2 {
		t.Fatalf("keys generate --alg hs256: exit %d", code)
	}
	// keys generate makes 2048-bit RSA keys (spec 7.3).
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if pub, err := certs.ParsePublicKeyPEM(data); err != nil || pub.(*rsa.PublicKey).N.BitLen() != 2048 {
		t.Fatalf("generated key: %v", err)
	}
	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	// An RSA key of another size than 2048 bits is refused at startup.
	odd, err := rsa.GenerateKey(rand.Reader, 3072)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(odd)
	oddFile := filepath.Join(t.TempDir(), "rsa3072.pem")
	if err := os.WriteFile(oddFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, args := range map[string][]string{
		"no key":           {},
		"missing file":     {"--signing-key", filepath.Join(t.TempDir(), "absent.pem")},
		"not a key":        {"--signing-key", garbage},
		"retired junk":     {"--signing-key", file, "--retired-key", garbage},
		"missing retired":  {"--signing-key", file, "--retired-key", filepath.Join(t.TempDir(), "absent.pem")},
		"3072-bit key":     {"--signing-key", oddFile},
		"3072-bit retired": {"--signing-key", file, "--retired-key", oddFile},
	} {
		_, errOut, code := runKeyserver(t, append([]string{"serve", "--listen", "127.0.0.1:0", "--db", sqliteDB(t)}, args...)...)
		if code == 0 || !strings.Contains(errOut, "keyserver: error:") {
			t.Errorf("%s: exit %d %q", name, code, errOut)
		}
		if name == "no key" && (code != 2 || !strings.Contains(errOut, "keys generate")) {
			t.Errorf("no key: exit %d %q", code, errOut)
		}
		if strings.HasPrefix(name, "3072") && (!strings.Contains(errOut, "3072 bits") || !strings.Contains(errOut, "exactly 2048 bits")) {
			t.Errorf("%s: the message names neither the size nor the rule: %q", name, errOut)
		}
	}
	s := startServer(t, "--db", sqliteDB(t), "--dev", "--signing-key=")
	if !s.waitLog("EPHEMERAL") {
		t.Fatalf("no ephemeral-key warning in the log:\n%s", s.logs)
	}
	published(t, s)
}
