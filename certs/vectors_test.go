package certs

import (
	"bytes"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"os"
	"strings"
	"testing"
	"time"
)

const vectorsPath = "../../shared/spec/vectors.json"

type certVector struct {
	ID           string `json:"id"`
	IssuerDomain string `json:"issuer_domain"`
	ServerKey    struct {
		N, E, D string
	} `json:"server_key"`
	Kid     string `json:"kid"`
	Request struct {
		PublicKey json.RawMessage `json:"publicKey"`
		Duration  int64           `json:"duration"`
	} `json:"request"`
	UID          string          `json:"uid"`
	NowMs        int64           `json:"now_ms"`
	GenerationMs int64           `json:"generation_ms"`
	DeviceID     string          `json:"deviceId"`
	Header       string          `json:"header_utf8"`
	Payload      string          `json:"payload_utf8"`
	SigningInput string          `json:"signing_input"`
	Cert         string          `json:"cert"`
	BrowserID    json.RawMessage `json:"browserid_document"`
	JWKS         json.RawMessage `json:"jwks_document"`
}

// loadVectors reads the certificate group and fails tb when it is empty.
func loadVectors(tb testing.TB) []certVector {
	tb.Helper()
	b, err := os.ReadFile(vectorsPath)
	if err != nil {
		tb.Fatalf("reading vectors: %v", err)
	}
	var v struct {
		Certificate []certVector `json:"certificate"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		tb.Fatalf("decoding vectors: %v", err)
	}
	if len(v.Certificate) == 0 {
		tb.Fatal(`no vectors found in group "certificate"`)
	}
	return v.Certificate
}

func bigDec(tb testing.TB, s string) *big.Int {
	tb.Helper()
	n, ok := new(big.Int).SetString(s, 10)
	if !ok {
		tb.Fatalf("bad decimal %q", s)
	}
	return n
}

// vectorSigner is the vector's server key (n, e, d only: Go signs without
// the primes).
func vectorSigner(tb testing.TB, v *certVector) *Signer {
	tb.Helper()
	key := &rsa.PrivateKey{
		PublicKey: rsa.PublicKey{N: bigDec(tb, v.ServerKey.N), E: int(bigDec(tb, v.ServerKey.E).Int64())},
		D:         bigDec(tb, v.ServerKey.D),
	}
	s, err := NewSigner(key)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// vectorClaims are the claims of the vector's request, issued at now_ms.
func vectorClaims(tb testing.TB, v *certVector) *Claims {
	tb.Helper()
	pk, err := ParsePublicKey(v.Request.PublicKey, true) // a 511-bit client key
	if err != nil {
		tb.Fatal(err)
	}
	now := time.UnixMilli(v.NowMs)
	return &Claims{
		PublicKey:  pk,
		Principal:  v.UID + "@" + v.IssuerDomain,
		IssuedAt:   now,
		ExpiresAt:  now.Add(time.Duration(v.Request.Duration) * time.Millisecond),
		Issuer:     v.IssuerDomain,
		Generation: time.UnixMilli(v.GenerationMs),
		DeviceID:   v.DeviceID,
	}
}

func compact(tb testing.TB, raw []byte) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func TestVectors(t *testing.T) {
	for _, v := range loadVectors(t) {
		t.Run(v.ID, func(t *testing.T) {
			s := vectorSigner(t, &v)
			if s.KeyID() != v.Kid || s.Algorithm() != RS256 {
				t.Fatalf("kid %q alg %q, want %q RS256", s.KeyID(), s.Algorithm(), v.Kid)
			}
			// The payload is the claims with iat = now - 10 s (C21).
			c := vectorClaims(t, &v)
			backdated := *c
			backdated.IssuedAt = c.IssuedAt.Add(-IssuedAtBackdate)
			payload, err := backdated.MarshalJSON()
			if err != nil || string(payload) != v.Payload {
				t.Fatalf("payload (%v):\n got %s\nwant %s", err, payload, v.Payload)
			}
			// Sign takes the moment of issue and backdates iat itself.
			cert, err := s.Sign(c)
			if err != nil {
				t.Fatal(err)
			}
			if cert != v.Cert {
				t.Fatalf("cert:\n got %s\nwant %s", cert, v.Cert)
			}
			parts := strings.Split(cert, ".")
			header, _ := base64.RawURLEncoding.DecodeString(parts[0])
			if string(header) != v.Header || parts[0]+"."+parts[1] != v.SigningInput {
				t.Fatalf("header %s, signing input %s", header, parts[0]+"."+parts[1])
			}

			ks, err := NewKeySet(s.Public())
			if err != nil {
				t.Fatal(err)
			}
			browserID, err := ks.BrowserID()
			if err != nil || !bytes.Equal(browserID, compact(t, v.BrowserID)) {
				t.Fatalf("browserid (%v):\n got %s\nwant %s", err, browserID, compact(t, v.BrowserID))
			}
			jwks, err := ks.JWKS()
			if err != nil || !bytes.Equal(jwks, compact(t, v.JWKS)) {
				t.Fatalf("jwks (%v):\n got %s\nwant %s", err, jwks, compact(t, v.JWKS))
			}

			// The published JWK Set verifies the certificate.
			parsed, err := ParseJWKS(jwks)
			if err != nil {
				t.Fatal(err)
			}
			ver := &Verifier{Keys: parsed, Issuer: v.IssuerDomain, LegacyClientKeys: true, Now: func() time.Time { return time.UnixMilli(v.NowMs) }}
			got, err := ver.VerifyCertificate(v.Cert)
			if err != nil {
				t.Fatal(err)
			}
			if got.KeyID != v.Kid || got.Principal != c.Principal || got.IssuedAt.UnixMilli() != v.NowMs-10_000 ||
				!got.ExpiresAt.Equal(c.ExpiresAt) || !got.Generation.Equal(c.Generation) || got.DeviceID != v.DeviceID ||
				got.PublicKey.N.Cmp(c.PublicKey.N) != 0 {
				t.Fatalf("verified claims %+v, want %+v", got.Claims, c)
			}
			// Without legacy client keys the 511-bit certified key is refused.
			ver.LegacyClientKeys = false
			if _, err := ver.VerifyCertificate(v.Cert); err == nil {
				t.Fatal("511-bit certified key accepted without legacy client keys")
			}
		})
	}
}
