package certs

import (
	"testing"
)

func benchmarkSign(b *testing.B, alg string) {
	s := newSigner(b, serverKey(b, alg, 0))
	c := testClaims(rsaClientKey(b, 2048, 65537).pub)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.Sign(c); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "certs/s")
}

// BenchmarkSignRS256 is certificates signed per second with a 2048-bit RSA
// key, in-process.
func BenchmarkSignRS256(b *testing.B) { benchmarkSign(b, RS256) }

// BenchmarkSignEdDSA is the same with Ed25519.
func BenchmarkSignEdDSA(b *testing.B) { benchmarkSign(b, EdDSA) }

func benchmarkVerify(b *testing.B, alg string) {
	s := newSigner(b, serverKey(b, alg, 0))
	cert, err := s.Sign(testClaims(rsaClientKey(b, 2048, 65537).pub))
	if err != nil {
		b.Fatal(err)
	}
	v := verifier(keySet(b, s.Public()))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := v.VerifyCertificate(cert); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyRS256 is a storage server's cost per certificate.
func BenchmarkVerifyRS256(b *testing.B) { benchmarkVerify(b, RS256) }

// BenchmarkVerifyEdDSA is the same with Ed25519.
func BenchmarkVerifyEdDSA(b *testing.B) { benchmarkVerify(b, EdDSA) }
