package srp

import (
	"crypto/subtle"
	"math/bits"
	"sync"

	"filippo.io/bigmod"
)

// Fixed-base exponentiation g^e mod N for exponents of at most fixedBytes
// bytes, used for g^b in ServerB (b is a 32-byte bundleKey).
//
// Construction (fixed-window, no squarings): write e = sum_i d_i*2^(w*i)
// with w-bit digits d_i, fixedWindows of them (w = fixedW = 6, the top
// window has topW = 4 bits). A table computed once, on first use, holds
// g^(j*2^(w*i)) for every window i and 1 <= j < 2^w_i, so that
// g^e = prod_i T[i][d_i]: one lookup per window and one bigmod Mul per
// window after the first (42 Mul for 256 bits; bigmod's Exp does 256
// squarings and 64 multiplications plus a 15-entry table). bigmod's exported
// Mul costs two Montgomery multiplications (it converts an operand into the
// Montgomery domain each time), which is why a 6-bit window, with its larger
// table, beats 4 bits. The table is 2661 entries of 256 bytes (681 KiB),
// stored quad-major (see fixedTable) so that a lookup streams through it.
//
// Constant time: the number of windows, the bytes and bits of e read for
// each window, the entries read and the operations done depend only on the
// public constant fixedBytes (not even on len(e) <= fixedBytes), never on
// the value of e. A lookup reads every entry of its window and keeps the
// wanted one with masks from subtle.ConstantTimeEq (no secret-dependent
// branch or index); digit 0 yields 1 by the same masking, and the Mul by it
// is done all the same. bigmod's Mul is fixed-width constant-time Montgomery
// arithmetic. The table itself depends only on g and N.
const (
	fixedBytes   = minSecret
	fixedW       = 6                                   // window width in bits
	fixedBits    = 8 * fixedBytes                      // exponent bits covered
	fixedWindows = (fixedBits + fixedW - 1) / fixedW   // number of windows
	topW         = fixedBits - fixedW*(fixedWindows-1) // width of the top window
)

// digit reads a window from at most two bytes: fixedW must not exceed 8.
var _ [8 - fixedW]struct{}

// limbsN is the number of bigmod limbs of a Nat modulo N (2048 bits).
const limbsN = 8 * size / bits.UintSize

// quad is four consecutive limbs of a value modulo N. The table stores each
// window quad-major, quad q of every entry together, so that a lookup
// accumulates four limbs in registers while it streams over the entries.
type quad [4]uint

const quads = limbsN / 4

// fixedTable holds the precomputed powers of g. For window i with n
// entries, win[i][q*n + j-1] is quad q of g^(j * 2^(w*i)), 1 <= j <= n.
type fixedTable struct {
	win [fixedWindows][]quad
}

var (
	fixedOnce sync.Once
	fixedTab  *fixedTable
)

// table returns the precomputed table, computing it on first use (the
// computation uses only public values).
func table() *fixedTable {
	fixedOnce.Do(func() { fixedTab = newFixedTable() })
	return fixedTab
}

// windowWidth is the number of bits of window i.
func windowWidth(i int) int {
	if i == fixedWindows-1 {
		return topW
	}
	return fixedW
}

func newFixedTable() *fixedTable {
	if len(grp.mod.Nat().Bits()) != limbsN || limbsN%4 != 0 {
		panic("srp: unexpected limb count for N")
	}
	t := new(fixedTable)
	total := 0
	for i := range fixedWindows {
		total += (1<<windowWidth(i) - 1) * quads
	}
	all := make([]quad, total) // one allocation for the whole table
	base := nat(grp.gPad)      // g^(2^(w*i))
	for i := range fixedWindows {
		n := 1<<windowWidth(i) - 1
		t.win[i], all = all[:n*quads], all[n*quads:]
		acc := bigmod.NewNat().ExpandFor(grp.mod)
		copy(acc.Bits(), base.Bits()) // j = 1
		for j := 1; j <= n; j++ {
			if j > 1 {
				acc.Mul(base, grp.mod)
			}
			l := acc.Bits()
			for q := range quads {
				copy(t.win[i][q*n+j-1][:], l[4*q:])
			}
		}
		base = acc.Mul(base, grp.mod) // g^(2^w_i * 2^(w*i))
	}
	return t
}

// bytes returns the table's size in bytes.
func (t *fixedTable) bytes() int {
	n := 0
	for _, w := range t.win {
		n += len(w) * len(quad{}) * bits.UintSize / 8
	}
	return n
}

// lookup sets dst (limbsN limbs) to g^(d * 2^(w*i)) in constant time:
// every entry of window i is read, and d only enters through masks.
func (t *fixedTable) lookup(dst []uint, i int, d uint) {
	win := t.win[i]
	n := len(win) / quads
	var masks [1<<fixedW - 1]uint
	for j := range n {
		masks[j] = -uint(subtle.ConstantTimeEq(int32(d), int32(j+1)))
	}
	ms := masks[:n]
	dst = dst[:limbsN]
	for q := range quads {
		src := win[q*n : q*n+n]
		var r0, r1, r2, r3 uint
		for j := range src {
			m, e := ms[j], &src[j]
			r0 |= m & e[0]
			r1 |= m & e[1]
			r2 |= m & e[2]
			r3 |= m & e[3]
		}
		dst[4*q], dst[4*q+1], dst[4*q+2], dst[4*q+3] = r0, r1, r2, r3
	}
	dst[0] |= uint(subtle.ConstantTimeEq(int32(d), 0)) // g^0 = 1
}

// digit returns bits [w*i, w*i + w_i) of the exponent held in le, its
// fixedBytes bytes in little-endian order. The positions read depend only on
// i.
func digit(le *[fixedBytes + 1]byte, i int) uint {
	bit := fixedW * i
	v := uint(le[bit/8]) | uint(le[bit/8+1])<<8
	return v >> (bit % 8) & (1<<windowWidth(i) - 1)
}

// expGFixed returns g^e mod N for len(e) <= fixedBytes, in time that does
// not depend on e (nor on len(e)). It equals expG(e).
func expGFixed(e []byte) *bigmod.Nat {
	if len(e) > fixedBytes {
		panic("srp: fixed-base exponent too long")
	}
	t := table()
	var le [fixedBytes + 1]byte // one spare zero byte for digit
	for k, c := range e {
		le[len(e)-1-k] = c
	}
	acc := bigmod.NewNat().ExpandFor(grp.mod)
	t.lookup(acc.Bits(), 0, digit(&le, 0))
	f := bigmod.NewNat().ExpandFor(grp.mod)
	for i := 1; i < fixedWindows; i++ {
		t.lookup(f.Bits(), i, digit(&le, i))
		acc.Mul(f, grp.mod)
	}
	return acc
}

// expGServer returns g^e mod N in constant time for a given len(e): the
// fixed-base table for exponents of up to fixedBytes bytes (the server's b),
// bigmod's Exp beyond.
func expGServer(e []byte) *bigmod.Nat {
	if len(e) <= fixedBytes {
		return expGFixed(e)
	}
	return expG(e)
}
