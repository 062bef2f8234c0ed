package certs

import (
	"crypto"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"sync"
	"testing"
	"time"
)

// Server keys are made once per test binary: RSA key generation is slow
// under the race detector.
var (
	serverKeys    = map[string][]crypto.Signer{}
	serverKeysMu  sync.Mutex
	testNow       = time.UnixMilli(1700000000000).UTC()
	testIssuer    = "keys.example.com"
	testPrincipal = "5a7e1b3c9d2f4a6b8c0d1e2f3a4b5c6d@keys.example.com"
)

// serverKey returns the i-th test server key of algorithm alg.
func serverKey(tb testing.TB, alg string, i int) crypto.Signer {
	tb.Helper()
	serverKeysMu.Lock()
	defer serverKeysMu.Unlock()
	for len(serverKeys[alg]) <= i {
		k, err := GenerateKey(alg, rand.Reader)
		if err != nil {
			tb.Fatal(err)
		}
		serverKeys[alg] = append(serverKeys[alg], k)
	}
	return serverKeys[alg][i]
}

func newSigner(tb testing.TB, key crypto.Signer) *Signer {
	tb.Helper()
	s, err := NewSigner(key)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func keySet(tb testing.TB, keys ...crypto.PublicKey) *KeySet {
	tb.Helper()
	ks, err := NewKeySet(keys...)
	if err != nil {
		tb.Fatal(err)
	}
	return ks
}

// clientRSA is a client RS key pair (n, e, d) made from two primes.
type clientRSA struct {
	pub *PublicKey
	d   *big.Int
}

var (
	clientKeys   = map[[2]int]*clientRSA{}
	clientKeysMu sync.Mutex
)

// rsaClientKey returns a client key with an n of exactly bits bits and
// public exponent e (odd, >= 3). crypto/rsa makes no keys under 1024 bits,
// so this one is made by hand.
func rsaClientKey(tb testing.TB, bits int, e int64) *clientRSA {
	tb.Helper()
	clientKeysMu.Lock()
	defer clientKeysMu.Unlock()
	if k := clientKeys[[2]int{bits, int(e)}]; k != nil {
		return k
	}
	E := big.NewInt(e)
	one := big.NewInt(1)
	for {
		p, err := rand.Prime(rand.Reader, (bits+1)/2)
		if err != nil {
			tb.Fatal(err)
		}
		q, err := rand.Prime(rand.Reader, bits/2)
		if err != nil {
			tb.Fatal(err)
		}
		n := new(big.Int).Mul(p, q)
		if p.Cmp(q) == 0 || n.BitLen() != bits {
			continue
		}
		phi := new(big.Int).Mul(new(big.Int).Sub(p, one), new(big.Int).Sub(q, one))
		d := new(big.Int).ModInverse(E, phi)
		if d == nil {
			continue
		}
		k := &clientRSA{pub: &PublicKey{Algorithm: AlgorithmRS, N: n, E: E}, d: d}
		clientKeys[[2]int{bits, int(e)}] = k
		return k
	}
}

// sign is RSASSA-PKCS1-v1_5 with SHA-256 by hand.
func (k *clientRSA) sign(msg []byte) []byte {
	digest := sha256.Sum256(msg)
	size := (k.pub.N.BitLen() + 7) / 8
	em := make([]byte, size)
	em[1] = 1
	tLen := len(sha256DigestInfo) + len(digest)
	for i := 2; i < size-tLen-1; i++ {
		em[i] = 0xff
	}
	copy(em[size-tLen:], sha256DigestInfo)
	copy(em[size-len(digest):], digest[:])
	s := new(big.Int).Exp(new(big.Int).SetBytes(em), k.d, k.pub.N)
	return s.FillBytes(make([]byte, size))
}

// The DSA groups of jwcrypto (lib/algs/ds.js): DS128 is 1024/160 with SHA-1,
// DS256 2048/256 with SHA-256 (FIPS 186-3 test parameters).
var dsGroups = map[string][3]string{
	"DS128": {
		"ff600483db6abfc5b45eab78594b3533d550d9f1bf2a992a7a8daa6dc34f8045ad4e6e0c429d334eeeaaefd7e23d4810be00e4cc1492cba325ba81ff2d5a5b305a8d17eb3bf4a06a349d392e00d329744a5179380344e82a18c47933438f891e22aeef812d69c8f75e326cb70ea000c3f776dfdbd604638c2ef717fc26d02e17",
		"e21e04f911d1ed7991008ecaab3bf775984309c3",
		"c52a4a0ff3b7e61fdf1867ce84138369a6154f4afa92966e3c827e25cfa6cf508b90e5de419e1337e07a2e9e2a3cd5dea704d175f8ebf6af397d69e110b96afb17c7a03259329e4829b0d03bbc7896b15b4ade53e130858cc34d96269aa89041f409136c7242a38895c9d5bccad4f389af1d7a4bd1398bd072dffa896233397a",
	},
	"DS256": {
		"d6c4e5045697756c7a312d02c2289c25d40f9954261f7b5876214b6df109c738b76226b199bb7e33f8fc7ac1dcc316e1e7c78973951bfc6ff2e00cc987cd76fcfb0b8c0096b0b460fffac960ca4136c28f4bfb580de47cf7e7934c3985e3b3d943b77f06ef2af3ac3494fc3c6fc49810a63853862a02bb1c824a01b7fc688e4028527a58ad58c9d512922660db5d505bc263af293bc93bcd6d885a157579d7f52952236dd9d06a4fc3bc2247d21f1a70f5848eb0176513537c983f5a36737f01f82b44546e8e7f0fabc457e3de1d9c5dba96965b10a2a0580b0ad0f88179e10066107fb74314a07e6745863bc797b7002ebec0b000a98eb697414709ac17b401",
		"b1e370f6472c8754ccd75e99666ec8ef1fd748b748bbbc08503d82ce8055ab3b",
		"9a8269ab2e3b733a5242179d8f8ddb17ff93297d9eab00376db211a22b19c854dfa80166df2132cbc51fb224b0904abb22da2c7b7850f782124cb575b116f41ea7c4fc75b1d77525204cd7c23a15999004c23cdeb72359ee74e886a1dde7855ae05fe847447d0a68059002c3819a75dc7dcbb30e39efac36e07e2c404b7ca98b263b25fa314ba93c0625718bd489cea6d04ba4b0b7f156eeb4c56c44b50e4fb5bce9d7ae0d55b379225feb0214a04bed72f33e0664d290e7c840df3e2abb5e48189fa4e90646f1867db289c6560476799f7be8420a6dc01d078de437f280fff2d7ddf1248d56e1a54b933a41629d6c252983c58795105802d30d7bcd819cf6ef",
	},
}

func bigHex(s string) *big.Int {
	n, _ := new(big.Int).SetString(s, 16)
	return n
}

// clientDSA is a client DS key pair in one of jwcrypto's groups.
type clientDSA struct {
	alg string
	pub *PublicKey
	x   *big.Int
}

func dsaClientKey(tb testing.TB, alg string) *clientDSA {
	tb.Helper()
	grp := dsGroups[alg]
	p, q, g := bigHex(grp[0]), bigHex(grp[1]), bigHex(grp[2])
	x, err := rand.Int(rand.Reader, new(big.Int).Sub(q, big.NewInt(1)))
	if err != nil {
		tb.Fatal(err)
	}
	x.Add(x, big.NewInt(1))
	y := new(big.Int).Exp(g, x, p)
	return &clientDSA{alg: alg, pub: &PublicKey{Algorithm: AlgorithmDS, Y: y, P: p, Q: q, G: g}, x: x}
}

// sign is jwcrypto's DSA: r || s, each padded to the length of q.
func (k *clientDSA) sign(msg []byte) []byte {
	var z *big.Int
	if k.alg == "DS128" {
		d := sha1.Sum(msg)
		z = new(big.Int).SetBytes(d[:])
	} else {
		d := sha256.Sum256(msg)
		z = new(big.Int).SetBytes(d[:])
	}
	q, qLen := k.pub.Q, (k.pub.Q.BitLen()+7)/8
	for {
		kk, _ := rand.Int(rand.Reader, q)
		if kk.Sign() == 0 {
			continue
		}
		r := new(big.Int).Exp(k.pub.G, kk, k.pub.P)
		r.Mod(r, q)
		s := new(big.Int).Mul(k.x, r)
		s.Add(s, z).Mul(s, new(big.Int).ModInverse(kk, q)).Mod(s, q)
		if r.Sign() == 0 || s.Sign() == 0 {
			continue
		}
		sig := make([]byte, 2*qLen)
		r.FillBytes(sig[:qLen])
		s.FillBytes(sig[qLen:])
		return sig
	}
}

// testClaims are valid claims at testNow for pk.
func testClaims(pk *PublicKey) *Claims {
	return &Claims{
		PublicKey:  pk,
		Principal:  testPrincipal,
		IssuedAt:   testNow,
		ExpiresAt:  testNow.Add(time.Hour),
		Issuer:     testIssuer,
		Generation: testNow.Add(-time.Hour),
		DeviceID:   "d3c1b2a4e5f60718293a4b5c6d7e8f90",
	}
}

func verifier(ks *KeySet) *Verifier {
	return &Verifier{Keys: ks, Issuer: testIssuer, Skew: time.Minute, Now: func() time.Time { return testNow }}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func b64JSON(v any) string {
	b, _ := json.Marshal(v)
	return b64(b)
}

// assertion makes a client assertion for aud with the given signing
// function and header alg.
func assertion(alg string, sign func([]byte) []byte, aud string, exp time.Time) string {
	input := b64JSON(map[string]string{"alg": alg}) + "." + b64JSON(map[string]any{"aud": aud, "exp": exp.UnixMilli(), "iat": testNow.UnixMilli()})
	return input + "." + b64(sign([]byte(input)))
}

// randReader is the randomness of tests.
var randReader = rand.Reader
