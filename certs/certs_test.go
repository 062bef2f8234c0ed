package certs

import (
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// Certificates of both algorithms verify with the published key and carry
// the claims they were signed with.
func TestSignVerify(t *testing.T) {
	client := rsaClientKey(t, 2048, 65537)
	for _, alg := range []string{RS256, EdDSA} {
		t.Run(alg, func(t *testing.T) {
			s := newSigner(t, serverKey(t, alg, 0))
			if s.Algorithm() != alg {
				t.Fatalf("algorithm %q", s.Algorithm())
			}
			c := testClaims(client.pub)
			cert, err := s.Sign(c)
			if err != nil {
				t.Fatal(err)
			}
			jwks, err := keySet(t, s.Public()).JWKS()
			if err != nil {
				t.Fatal(err)
			}
			ks, err := ParseJWKS(jwks)
			if err != nil {
				t.Fatal(err)
			}
			v := verifier(ks)
			got, err := v.VerifyCertificate(cert)
			if err != nil {
				t.Fatal(err)
			}
			if got.Algorithm != alg || got.KeyID != s.KeyID() || got.Principal != c.Principal || got.Issuer != testIssuer ||
				!got.IssuedAt.Equal(c.IssuedAt.Add(-IssuedAtBackdate)) || !got.ExpiresAt.Equal(c.ExpiresAt) || !got.Generation.Equal(c.Generation) ||
				got.DeviceID != c.DeviceID || got.PublicKey.N.Cmp(client.pub.N) != 0 {
				t.Fatalf("claims %+v, want %+v", got, c)
			}

			// Expiry: valid until the millisecond before exp.
			v.Now = func() time.Time { return c.ExpiresAt.Add(-time.Millisecond) }
			if _, err := v.VerifyCertificate(cert); err != nil {
				t.Fatalf("just before exp: %v", err)
			}
			v.Now = func() time.Time { return c.ExpiresAt }
			if _, err := v.VerifyCertificate(cert); !errors.Is(err, ErrExpired) {
				t.Fatalf("at exp: %v", err)
			}
			// iat (10 s before the moment of issue) beyond the skew.
			iat := c.IssuedAt.Add(-IssuedAtBackdate)
			v.Now = func() time.Time { return iat.Add(-time.Minute) }
			if _, err := v.VerifyCertificate(cert); err != nil {
				t.Fatalf("iat at the skew: %v", err)
			}
			v.Now = func() time.Time { return iat.Add(-time.Minute - time.Millisecond) }
			if _, err := v.VerifyCertificate(cert); !errors.Is(err, ErrNotYetValid) {
				t.Fatalf("iat in the future: %v", err)
			}
			v.Now = func() time.Time { return testNow }
			v.Issuer = "other.example.com"
			if _, err := v.VerifyCertificate(cert); !errors.Is(err, ErrIssuer) {
				t.Fatalf("other issuer: %v", err)
			}
		})
	}
}

// Without a device the payload has no picl-deviceId.
func TestNoDeviceID(t *testing.T) {
	c := testClaims(rsaClientKey(t, 2048, 65537).pub)
	c.DeviceID = ""
	b, err := c.MarshalJSON()
	if err != nil || strings.Contains(string(b), "picl-deviceId") {
		t.Fatalf("%s %v", b, err)
	}
	s := newSigner(t, serverKey(t, EdDSA, 0))
	cert, _ := s.Sign(c)
	got, err := verifier(keySet(t, s.Public())).VerifyCertificate(cert)
	if err != nil || got.DeviceID != "" {
		t.Fatalf("%+v %v", got, err)
	}
}

// Rotation: a retired key verifies while it is in the set, and not after.
func TestRetiredKey(t *testing.T) {
	old := newSigner(t, serverKey(t, RS256, 0))
	cur := newSigner(t, serverKey(t, EdDSA, 0))
	cert, err := old.Sign(testClaims(rsaClientKey(t, 2048, 65537).pub))
	if err != nil {
		t.Fatal(err)
	}
	published := keySet(t, cur.Public(), old.Public(), cur.Public())
	if ids := published.KeyIDs(); len(ids) != 2 || ids[0] != cur.KeyID() || ids[1] != old.KeyID() {
		t.Fatalf("kids %v", ids)
	}
	if _, err := verifier(published).VerifyCertificate(cert); err != nil {
		t.Fatalf("retired key still published: %v", err)
	}
	if _, err := verifier(keySet(t, cur.Public())).VerifyCertificate(cert); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("retired key withdrawn: %v", err)
	}
}

func splitCert(cert string) []string { return strings.Split(cert, ".") }

// flip changes one base64url character in the middle of s.
func flip(s string) string {
	i := len(s) / 2
	c := byte('A')
	if s[i] == 'A' {
		c = 'B'
	}
	return s[:i] + string(c) + s[i+1:]
}

// Tampering with any part of a certificate makes it fail.
func TestTamper(t *testing.T) {
	client := rsaClientKey(t, 2048, 65537)
	for _, alg := range []string{RS256, EdDSA} {
		t.Run(alg, func(t *testing.T) {
			s := newSigner(t, serverKey(t, alg, 0))
			other := newSigner(t, serverKey(t, alg, 1))
			pub := s.Public()
			v := verifier(keySet(t, pub))
			cert, err := s.Sign(testClaims(client.pub))
			if err != nil {
				t.Fatal(err)
			}
			p := splitCert(cert)
			evil := testClaims(client.pub)
			evil.Principal = "00000000000000000000000000000000@" + testIssuer
			evilPayload, _ := evil.MarshalJSON()
			otherCert, _ := other.Sign(testClaims(client.pub))
			hs := b64JSON(map[string]string{"alg": "HS256", "kid": s.KeyID()}) + "." + p[1]
			var secret []byte
			if rk, ok := pub.(*rsa.PublicKey); ok {
				secret = pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(rk)})
			} else {
				der, _ := x509.MarshalPKIXPublicKey(pub)
				secret = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
			}
			mac := hmac.New(sha256.New, secret)
			mac.Write([]byte(hs))
			otherAlg := map[string]string{RS256: EdDSA, EdDSA: RS256}[alg]

			for _, tc := range []struct {
				name string
				cert string
				want error
			}{
				{"header byte", flip(p[0]) + "." + p[1] + "." + p[2], nil},
				{"payload byte", p[0] + "." + flip(p[1]) + "." + p[2], nil},
				{"signature byte", p[0] + "." + p[1] + "." + flip(p[2]), ErrSignature},
				{"payload replaced", p[0] + "." + b64(evilPayload) + "." + p[2], ErrSignature},
				{"signature of another key", p[0] + "." + p[1] + "." + splitCert(otherCert)[2], ErrSignature},
				{"unknown kid", otherCert, ErrUnknownKey},
				{"kid changed", b64JSON(map[string]string{"alg": alg, "kid": other.KeyID()}) + "." + p[1] + "." + p[2], ErrUnknownKey},
				{"alg none", b64JSON(map[string]string{"alg": "none", "kid": s.KeyID()}) + "." + p[1] + ".", ErrMalformed},
				{"alg none signed", b64JSON(map[string]string{"alg": "none", "kid": s.KeyID()}) + "." + p[1] + "." + p[2], ErrAlgorithm},
				{"HS256 with the public key", hs + "." + b64(mac.Sum(nil)), ErrAlgorithm},
				{"other algorithm", b64JSON(map[string]string{"alg": otherAlg, "kid": s.KeyID()}) + "." + p[1] + "." + p[2], ErrAlgorithm},
				{"extra header", b64JSON(map[string]string{"alg": alg, "kid": s.KeyID(), "jku": "https://evil.example"}) + "." + p[1] + "." + p[2], ErrMalformed},
				{"no kid", b64JSON(map[string]string{"alg": alg}) + "." + p[1] + "." + p[2], ErrMalformed},
				{"null kid", b64(fmt.Appendf(nil, `{"alg":%q,"kid":null}`, alg)) + "." + p[1] + "." + p[2], ErrMalformed},
				{"repeated alg", b64(fmt.Appendf(nil, `{"alg":"none","alg":%q,"kid":%q}`, alg, s.KeyID())) + "." + p[1] + "." + p[2], ErrMalformed},
				{"crit header", b64JSON(map[string]any{"alg": alg, "kid": s.KeyID(), "crit": []string{"b64"}, "b64": false}) + "." + p[1] + "." + p[2], ErrMalformed},
				{"padding", cert + "=", ErrMalformed},
				{"two parts", p[0] + "." + p[1], ErrMalformed},
				{"four parts", cert + "." + p[2], ErrMalformed},
				{"JSON serialisation", `{"payload":"` + p[1] + `"}`, ErrMalformed},
				{"too long", cert + strings.Repeat("A", MaxTokenSize), ErrMalformed},
				{"empty", "", ErrMalformed},
			} {
				_, err := v.VerifyCertificate(tc.cert)
				if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
					t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
				}
			}
			// Non-canonical base64url: unused low bits of the last character set.
			last := p[2][len(p[2])-1]
			alt := strings.IndexByte(b64alphabet, last) ^ 1
			if _, err := v.VerifyCertificate(p[0] + "." + p[1] + "." + p[2][:len(p[2])-1] + string(b64alphabet[alt])); err == nil {
				t.Error("non-canonical signature encoding accepted")
			}
		})
	}
}

const b64alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// Backed assertions with RS and DS client keys, including legacy 511-bit keys
// and exponents crypto/rsa would refuse.
func TestAssertions(t *testing.T) {
	s := newSigner(t, serverKey(t, RS256, 0))
	const aud = "https://storage.example.com"
	rs2048 := rsaClientKey(t, 2048, 65537)
	rsBigE := rsaClientKey(t, 2048, 1<<40+1)
	rs511 := rsaClientKey(t, 511, 65537)
	ds128 := dsaClientKey(t, "DS128")
	ds256 := dsaClientKey(t, "DS256")
	type client struct {
		name   string
		pub    *PublicKey
		alg    string
		sign   func([]byte) []byte
		legacy bool
	}
	for _, c := range []client{
		{"RS256", rs2048.pub, "RS256", rs2048.sign, false},
		{"RS large e", rsBigE.pub, "RS256", rsBigE.sign, false},
		{"RS64 legacy", rs511.pub, "RS64", rs511.sign, true},
		{"DS128", ds128.pub, "DS128", ds128.sign, false},
		{"DS256", ds256.pub, "DS256", ds256.sign, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			cert, err := s.Sign(testClaims(c.pub))
			if err != nil {
				t.Fatal(err)
			}
			v := verifier(keySet(t, s.Public()))
			v.LegacyClientKeys = c.legacy
			exp := testNow.Add(2 * time.Minute)
			backed := cert + "~" + assertion(c.alg, c.sign, aud, exp)
			a, err := v.VerifyAssertion(backed, aud+"/")
			if err != nil {
				t.Fatal(err)
			}
			if a.Audience != aud || !a.ExpiresAt.Equal(exp) || a.Certificate.Principal != testPrincipal {
				t.Fatalf("%+v", a)
			}
			ap := splitCert(assertion(c.alg, c.sign, aud, exp))
			for _, tc := range []struct {
				name, backed, aud string
				now               time.Time
				want              error
			}{
				{"wrong audience", backed, "https://other.example.com", testNow, ErrAudience},
				{"no audience", backed, "", testNow, ErrAudience},
				{"expired", backed, aud, exp, ErrExpired},
				{"iat in the future", backed, aud, testNow.Add(-2 * time.Minute), ErrNotYetValid},
				{"tampered signature", cert + "~" + ap[0] + "." + ap[1] + "." + flip(ap[2]), aud, testNow, ErrSignature},
				{"tampered payload", cert + "~" + ap[0] + "." + b64JSON(map[string]any{"aud": aud, "exp": exp.UnixMilli() + 1}) + "." + ap[2], aud, testNow, ErrSignature},
				{"wrong alg", cert + "~" + b64JSON(map[string]string{"alg": "HS256"}) + "." + ap[1] + "." + ap[2], aud, testNow, ErrAlgorithm},
				{"two certificates", cert + "~" + backed, aud, testNow, ErrMalformed},
				{"no assertion", cert + "~", aud, testNow, ErrMalformed},
				{"certificate only", cert, aud, testNow, ErrMalformed},
			} {
				v.Now = func() time.Time { return tc.now }
				if _, err := v.VerifyAssertion(tc.backed, tc.aud); !errors.Is(err, tc.want) {
					t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
				}
			}
		})
	}
}

func TestPEMKeys(t *testing.T) {
	for _, alg := range []string{RS256, EdDSA} {
		key := serverKey(t, alg, 0)
		pemBytes, err := MarshalPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParsePrivateKey(pemBytes)
		if err != nil {
			t.Fatal(err)
		}
		s1, s2 := newSigner(t, key), newSigner(t, back)
		if s1.KeyID() != s2.KeyID() {
			t.Fatalf("%s: kid changed by the PEM round trip", alg)
		}
		pub, err := ParsePublicKeyPEM(pemBytes)
		if err != nil {
			t.Fatal(err)
		}
		der, _ := x509.MarshalPKIXPublicKey(key.Public())
		pub2, err := ParsePublicKeyPEM(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
		if err != nil {
			t.Fatal(err)
		}
		k1, _ := KeyID(pub)
		k2, _ := KeyID(pub2)
		if k1 != s1.KeyID() || k2 != s1.KeyID() {
			t.Fatalf("%s: public key kids %q %q, want %q", alg, k1, k2, s1.KeyID())
		}
		if _, err := ParsePrivateKey(append(pemBytes, "junk"...)); err == nil {
			t.Fatalf("%s: trailing data accepted", alg)
		}
		if _, err := ParsePrivateKey(pemBytes[:len(pemBytes)/2]); err == nil {
			t.Fatalf("%s: truncated file accepted", alg)
		}
	}
	rsaKey := serverKey(t, RS256, 0).(*rsa.PrivateKey)
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)})
	if _, err := ParsePrivateKey(pkcs1); err != nil {
		t.Fatalf("PKCS #1: %v", err)
	}
	small, err := rsa.GenerateKey(randReader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewSigner(small); !errors.Is(err, ErrUnsupportedKey) {
		t.Fatalf("1024-bit server key: %v", err)
	}
	smallPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(small)})
	if _, err := ParsePrivateKey(smallPEM); !errors.Is(err, ErrUnsupportedKey) {
		t.Fatalf("1024-bit key file: %v", err)
	}
	for _, bad := range []string{"", "not pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"} {
		if _, err := ParsePrivateKey([]byte(bad)); err == nil {
			t.Fatalf("%q accepted", bad)
		}
	}
	if _, err := GenerateKey("HS256", randReader); err == nil {
		t.Fatal("HS256 key generated")
	}
	for name, want := range map[string]string{"rs256": RS256, "EDDSA": EdDSA, "EdDSA": EdDSA} {
		if got, err := ParseAlgorithm(name); err != nil || got != want {
			t.Fatalf("ParseAlgorithm(%q) = %q, %v", name, got, err)
		}
	}
	if _, err := ParseAlgorithm("none"); err == nil {
		t.Fatal("algorithm none accepted")
	}
}

// A private key whose halves do not match is refused by NewSigner.
func TestMismatchedKey(t *testing.T) {
	a := serverKey(t, RS256, 0).(*rsa.PrivateKey)
	b := serverKey(t, RS256, 1).(*rsa.PrivateKey)
	broken := &rsa.PrivateKey{PublicKey: a.PublicKey, D: b.D}
	if _, err := NewSigner(broken); err == nil {
		t.Fatal("mismatched RSA key accepted")
	}
}

func TestParseJWKS(t *testing.T) {
	for _, bad := range []string{
		``, `{}`, `{"keys":[]}`, `[]`,
		`{"keys":[{"kty":"oct","k":"AAAA","kid":"x"}]}`,
		`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}`,
		`{"keys":[{"kty":"OKP","crv":"Ed25519","alg":"RS256","kid":"a","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}`,
		`{"keys":[{"kty":"OKP","crv":"Ed25519","use":"enc","kid":"a","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}`,
		`{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"a","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},{"kty":"OKP","crv":"Ed25519","kid":"a","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}`,
	} {
		if _, err := ParseJWKS([]byte(bad)); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	if _, err := ParseJWKS([]byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","alg":"EdDSA","use":"sig","kid":"a","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}`)); err != nil {
		t.Fatal(err)
	}
}

// A Signer and a Verifier are used by concurrent requests.
func TestConcurrentUse(t *testing.T) {
	c := testClaims(rsaClientKey(t, 2048, 65537).pub)
	for _, alg := range []string{RS256, EdDSA} {
		s := newSigner(t, serverKey(t, alg, 0))
		v := verifier(keySet(t, s.Public()))
		errs := make(chan error, 8)
		for range 8 {
			go func() {
				cert, err := s.Sign(c)
				if err == nil {
					_, err = v.VerifyCertificate(cert)
				}
				errs <- err
			}()
		}
		for range 8 {
			if err := <-errs; err != nil {
				t.Fatalf("%s: %v", alg, err)
			}
		}
	}
}
