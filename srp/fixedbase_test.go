package srp

import (
	"bytes"
	"fmt"
	"math/big"
	"math/rand/v2"
	"testing"

	"filippo.io/bigmod"
)

// TestFixedTable checks every table entry against math/big.
func TestFixedTable(t *testing.T) {
	tab := table()
	want := new(big.Int)
	for i := range fixedWindows {
		for j := 1; j < 1<<windowWidth(i); j++ {
			e := new(big.Int).Lsh(big.NewInt(int64(j)), uint(fixedW*i))
			want.Exp(grp.g, e, grp.N)
			got := bigmod.NewNat().ExpandFor(grp.mod)
			tab.lookup(got.Bits(), i, uint(j))
			if !bytes.Equal(got.Bytes(grp.mod), pad(want)) {
				t.Fatalf("entry (%d, %d) is not g^(%d * 2^%d)", i, j, j, fixedW*i)
			}
		}
	}
}

// TestExpGFixed compares the fixed-base exponentiation with bigmod's Exp
// (expG) and with math/big on edge and pseudo-random exponents of every
// length from 0 to fixedBytes, and expGServer also beyond.
func TestExpGFixed(t *testing.T) {
	rng := rand.New(rand.NewChaCha8([32]byte{'g', '^', 'b'}))
	read := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	ones := func(n int) []byte { return bytes.Repeat([]byte{0xff}, n) }
	one := func(n int) []byte { b := make([]byte, n); b[n-1] = 1; return b }
	type tc struct {
		name string
		e    []byte
	}
	cases := []tc{{"empty", nil}}
	for _, n := range []int{1, 2, 8, 16, 31, fixedBytes, fixedBytes + 1, 64, size} {
		cases = append(cases,
			tc{fmt.Sprintf("zero/%d", n), make([]byte, n)},
			tc{fmt.Sprintf("one/%d", n), one(n)},
			tc{fmt.Sprintf("ones/%d", n), ones(n)},
			tc{fmt.Sprintf("top bit/%d", n), append([]byte{0x80}, make([]byte, n-1)...)},
		)
		for k := range 4 {
			cases = append(cases, tc{fmt.Sprintf("random/%d/%d", n, k), read(n)})
		}
	}
	// Every single-bit exponent of the server's length: each window and
	// every bit position inside it.
	for bit := range 8 * fixedBytes {
		e := make([]byte, fixedBytes)
		e[fixedBytes-1-bit/8] = 1 << (bit % 8)
		cases = append(cases, tc{fmt.Sprintf("bit %d", bit), e})
	}
	// Every digit value in every window (digit j in window j mod windows).
	for d := range 1 << fixedW {
		e := new(big.Int).Lsh(big.NewInt(int64(d)), uint(fixedW*(d%(fixedWindows-1))))
		cases = append(cases, tc{fmt.Sprintf("digit %d", d), e.FillBytes(make([]byte, fixedBytes))})
	}
	cases = append(cases, tc{"N-1 as exponent", pad(new(big.Int).Sub(grp.N, big.NewInt(1)))})

	for _, c := range cases {
		want := pad(new(big.Int).Exp(grp.g, new(big.Int).SetBytes(c.e), grp.N))
		if got := expG(c.e).Bytes(grp.mod); len(c.e) > 0 && !bytes.Equal(got, want) {
			t.Fatalf("%s: expG differs from math/big", c.name)
		}
		if got := expGServer(c.e).Bytes(grp.mod); !bytes.Equal(got, want) {
			t.Fatalf("%s: expGServer(%x) differs from math/big", c.name, c.e)
		}
		if len(c.e) <= fixedBytes {
			if got := expGFixed(c.e).Bytes(grp.mod); !bytes.Equal(got, want) {
				t.Fatalf("%s: expGFixed(%x) differs from math/big", c.name, c.e)
			}
		}
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("expGFixed accepted a 33-byte exponent")
			}
		}()
		expGFixed(make([]byte, fixedBytes+1))
	}()
}

// TestServerBFixed checks that ServerB equals the plain computation on
// pseudo-random b of the server's length and others.
func TestServerBFixed(t *testing.T) {
	s := loadVectors(t).SRP[0]
	v := unhex(t, s.V)
	rng := rand.New(rand.NewChaCha8([32]byte{'B'}))
	for i := range 16 {
		b := make([]byte, []int{32, 32, 33, 48, 64, 256}[i%6])
		for k := range b {
			b[k] = byte(rng.Uint32())
		}
		got, err := ServerB(v, b)
		if err != nil {
			t.Fatal(err)
		}
		want, err := serverB(v, b, expG)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("case %d (%d-byte b): ServerB differs from the plain exponentiation", i, len(b))
		}
	}
}

// TestFixedConcurrent runs the first use of the table from several
// goroutines (run with -race).
func TestFixedConcurrent(t *testing.T) {
	e := bytes.Repeat([]byte{0x3c}, fixedBytes)
	want := expG(e).Bytes(grp.mod)
	done := make(chan []byte)
	for range 4 {
		go func() { done <- expGFixed(e).Bytes(grp.mod) }()
	}
	for range 4 {
		if !bytes.Equal(<-done, want) {
			t.Error("concurrent expGFixed differs")
		}
	}
}

// BenchmarkGB_Plain and BenchmarkGB_Fixed compare g^b for a 32-byte b (the
// server's bundleKey) with bigmod's Exp and with the fixed-base table.
func BenchmarkGB_Plain(b *testing.B) {
	e := bytes.Repeat([]byte{0xa5}, fixedBytes)
	for b.Loop() {
		expG(e)
	}
}

func BenchmarkGB_Fixed(b *testing.B) {
	e := bytes.Repeat([]byte{0xa5}, fixedBytes)
	table()
	for b.Loop() {
		expGFixed(e)
	}
}

// BenchmarkServerB_Plain is ServerB (BenchmarkServerB) with the plain g^b.
func BenchmarkServerB_Plain(b *testing.B) {
	s := loadVectors(b).SRP[0]
	v := unhex(b, s.V)
	secret := bytes.Repeat([]byte{0xa5}, 32)
	for b.Loop() {
		if _, err := serverB(v, secret, expG); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFixedTable measures the one-time precomputation.
func BenchmarkFixedTable(b *testing.B) {
	for b.Loop() {
		newFixedTable()
	}
	b.ReportMetric(float64(table().bytes()), "table-bytes")
}
