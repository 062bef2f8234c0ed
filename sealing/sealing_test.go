package sealing

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
)

type vector struct {
	Name      string `json:"name"`
	Key       string `json:"key"`
	KeyID     string `json:"key_id"`
	Row       string `json:"row"`
	Column    string `json:"column"`
	Plaintext string `json:"plaintext"`
	Nonce     string `json:"nonce"`
	Sealed    string `json:"sealed"`
}

// decoded is a vector with its byte strings decoded.
type decoded struct {
	name, column, keyID                string
	key, row, plaintext, nonce, sealed []byte
}

// loadVectors reads testdata/vectors.json, computed independently of this
// package (testdata/genvectors.py); it fails the test on zero vectors.
func loadVectors(tb testing.TB) []decoded {
	tb.Helper()
	data, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		tb.Fatal(err)
	}
	var file struct{ Vectors []vector }
	if err := json.Unmarshal(data, &file); err != nil {
		tb.Fatal(err)
	}
	if len(file.Vectors) == 0 {
		tb.Fatal("no vectors in testdata/vectors.json")
	}
	var out []decoded
	for _, v := range file.Vectors {
		d := decoded{name: v.Name, column: v.Column, keyID: v.KeyID}
		for _, f := range []struct {
			dst *[]byte
			hex string
		}{{&d.key, v.Key}, {&d.row, v.Row}, {&d.plaintext, v.Plaintext}, {&d.nonce, v.Nonce}, {&d.sealed, v.Sealed}} {
			if *f.dst, err = hex.DecodeString(f.hex); err != nil {
				tb.Fatalf("vector %s: %v", v.Name, err)
			}
		}
		out = append(out, d)
	}
	return out
}

func newKey(t testing.TB) []byte {
	t.Helper()
	k := make([]byte, KeySize)
	rand.Read(k)
	return k
}

func mustRing(t testing.TB, current []byte, retired ...[]byte) *Ring {
	t.Helper()
	r, err := NewRing(current, retired...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// noSecret fails when msg contains any 4-byte window of a secret (as long
// as a key id), raw or in hex.
func noSecret(t *testing.T, msg string, secrets ...[]byte) {
	t.Helper()
	lower := strings.ToLower(msg)
	for _, s := range secrets {
		for i := 0; i+4 <= len(s); i++ {
			w := s[i : i+4]
			if strings.Contains(msg, string(w)) || strings.Contains(lower, hex.EncodeToString(w)) {
				t.Fatalf("message %q contains bytes %x of a secret", msg, w)
			}
		}
	}
}

// The vectors seal deterministically with their nonce as the reader and
// open to their plaintext.
func TestVectors(t *testing.T) {
	for _, v := range loadVectors(t) {
		r := mustRing(t, v.key)
		if id, _ := KeyID(v.key); id != v.keyID || r.KeyID() != v.keyID {
			t.Errorf("%s: key id %s, ring %s, want %s", v.name, id, r.KeyID(), v.keyID)
		}
		sealed, err := r.Seal(bytes.NewReader(v.nonce), v.plaintext, v.row, v.column)
		if err != nil || !bytes.Equal(sealed, v.sealed) {
			t.Errorf("%s: Seal = %x, %v\nwant %x", v.name, sealed, err, v.sealed)
		}
		got, err := r.Open(v.sealed, v.row, v.column)
		if err != nil || !bytes.Equal(got, v.plaintext) || got == nil {
			t.Errorf("%s: Open = %x, %v, want %x", v.name, got, err, v.plaintext)
		}
		if !IsSealed(v.sealed, len(v.plaintext)) || IsSealed(v.plaintext, len(v.plaintext)) {
			t.Errorf("%s: IsSealed wrong", v.name)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	r := mustRing(t, newKey(t))
	row := []byte("0123456789abcdef")
	for _, n := range []int{0, 1, 8, 16, 32, 256, 4096} {
		plaintext := make([]byte, n)
		rand.Read(plaintext)
		a, err := r.Seal(rand.Reader, plaintext, row, "accounts.ka")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := r.Seal(rand.Reader, plaintext, row, "accounts.ka")
		if len(a) != n+Overhead || a[0] != Version || bytes.Equal(a, b) {
			t.Fatalf("%d bytes: sealed %d bytes, version %#x, repeated %v", n, len(a), a[0], bytes.Equal(a, b))
		}
		got, err := r.Open(a, row, "accounts.ka")
		if err != nil || !bytes.Equal(got, plaintext) {
			t.Fatalf("%d bytes: Open = %x, %v", n, got, err)
		}
		// Open's result is a copy: changing it leaves the sealed value.
		if n > 0 {
			got[0] ^= 1
			if again, err := r.Open(a, row, "accounts.ka"); err != nil || !bytes.Equal(again, plaintext) {
				t.Fatalf("%d bytes: Open after changing its result: %v", n, err)
			}
		}
	}
}

// Flipping any bit, truncating or extending a sealed value makes it fail
// to open.
func TestTamper(t *testing.T) {
	for _, v := range loadVectors(t) {
		r := mustRing(t, v.key)
		for i := range len(v.sealed) * 8 {
			bad := bytes.Clone(v.sealed)
			bad[i/8] ^= 1 << (i % 8)
			got, err := r.Open(bad, v.row, v.column)
			if err == nil || got != nil {
				t.Fatalf("%s: bit %d flipped: opened to %x", v.name, i, got)
			}
			want := ErrTampered
			switch {
			case i < 8:
				want = ErrFormat
			case i < 8*(1+keyIDSize):
				want = ErrUnknownKey
			}
			if !errors.Is(err, want) {
				t.Fatalf("%s: bit %d flipped: %v, want %v", v.name, i, err, want)
			}
			noSecret(t, err.Error(), v.key, v.plaintext, v.sealed)
		}
		for _, bad := range [][]byte{v.sealed[:len(v.sealed)-1], append(bytes.Clone(v.sealed), 0), v.sealed[:Overhead-1], nil} {
			if _, err := r.Open(bad, v.row, v.column); err == nil {
				t.Fatalf("%s: %d of %d bytes opened", v.name, len(bad), len(v.sealed))
			}
		}
	}
}

// A sealed value moved to another row or column does not open; the
// length prefixes keep (row, column) pairs with the same bytes apart.
func TestBinding(t *testing.T) {
	r := mustRing(t, newKey(t))
	row := []byte("uid-0000000000001")
	secret := []byte("a secret of 32 bytes, for binds.")
	sealed, err := r.Seal(rand.Reader, secret, row, "accounts.ka")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []struct {
		row    []byte
		column string
	}{
		{[]byte("uid-0000000000002"), "accounts.ka"},
		{row[:len(row)-1], "accounts.ka"},
		{row, "accounts.wrap_kb"},
		{row, "accounts.k"},
		{row, "accounts.ka\x00"},
		{append(bytes.Clone(row), 'a'), "ccounts.ka"},
		{row[:len(row)-1], string(row[len(row)-1:]) + "accounts.ka"},
	} {
		if got, err := r.Open(sealed, o.row, o.column); !errors.Is(err, ErrTampered) || got != nil {
			t.Errorf("opened at row %q column %q: %x, %v", o.row, o.column, got, err)
		}
	}
	// Two bindings with equal concatenations give different values.
	a, _ := r.Seal(bytes.NewReader(make([]byte, 12)), secret, []byte("ab"), "c")
	b, _ := r.Seal(bytes.NewReader(make([]byte, 12)), secret, []byte("a"), "bc")
	if bytes.Equal(a, b) {
		t.Error("row ab column c and row a column bc seal alike")
	}
}

// A retired key opens but does not seal; Reseal moves a value to the
// current key; a key not in the ring is a clear error.
func TestRotation(t *testing.T) {
	k1, k2 := newKey(t), newKey(t)
	id1, _ := KeyID(k1)
	id2, _ := KeyID(k2)
	old := mustRing(t, k1)
	row, column := []byte("uid"), "tokens.auth_key"
	secret := []byte("0123456789abcdef0123456789abcdef")
	s1, err := old.Seal(rand.Reader, secret, row, column)
	if err != nil {
		t.Fatal(err)
	}

	ring := mustRing(t, k2, k1)
	if ring.KeyID() != id2 || strings.Join(ring.RetiredKeyIDs(), ",") != id1 {
		t.Fatalf("ring %s retired %v, want %s and %s", ring.KeyID(), ring.RetiredKeyIDs(), id2, id1)
	}
	if got, err := ring.Open(s1, row, column); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("retired key: Open = %x, %v", got, err)
	}
	s2, err := ring.Seal(rand.Reader, secret, row, column)
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(s2[1:1+keyIDSize]) != id2 {
		t.Fatalf("sealed under %x, want the current key %s", s2[1:1+keyIDSize], id2)
	}
	if !ring.NeedsReseal(s1) || ring.NeedsReseal(s2) || old.NeedsReseal(s1) {
		t.Fatal("NeedsReseal wrong")
	}
	for _, b := range [][]byte{nil, secret, s1[:Overhead-1], append([]byte{2}, s1[1:]...)} {
		if ring.NeedsReseal(b) {
			t.Fatalf("NeedsReseal(%x) for a value that is not sealed", b)
		}
	}
	re, err := ring.Reseal(rand.Reader, s1, row, column)
	if err != nil || ring.NeedsReseal(re) {
		t.Fatalf("Reseal: %v", err)
	}
	if _, err := ring.Reseal(rand.Reader, s1, row, "other"); !errors.Is(err, ErrTampered) {
		t.Fatalf("Reseal at another column: %v", err)
	}

	// Once k1 is dropped, its values no longer open, and the old ring
	// cannot open what the new one sealed.
	only2 := mustRing(t, k2)
	if got, err := only2.Open(re, row, column); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("resealed value: Open = %x, %v", got, err)
	}
	for _, c := range []struct {
		r *Ring
		s []byte
	}{{only2, s1}, {old, s2}, {mustRing(t, newKey(t)), s1}} {
		_, err := c.r.Open(c.s, row, column)
		if !errors.Is(err, ErrUnknownKey) || !strings.Contains(err.Error(), "not in the key ring") || !strings.Contains(err.Error(), column) {
			t.Fatalf("unknown key: %v", err)
		}
		noSecret(t, err.Error(), c.s, k1, k2)
	}

	// A value whose key id is replaced by another key's does not open.
	forged := bytes.Clone(s1)
	copy(forged[1:], s2[1:1+keyIDSize])
	if _, err := ring.Open(forged, row, column); !errors.Is(err, ErrTampered) {
		t.Fatalf("key id of another key: %v", err)
	}
}

func TestFormatErrors(t *testing.T) {
	r := mustRing(t, newKey(t))
	verifier := make([]byte, 256)
	rand.Read(verifier)
	for _, first := range []byte{0, Version, 0xff} {
		verifier[0] = first
		_, err := r.Open(verifier, []byte("uid"), "accounts.srp_verifier")
		if err == nil {
			t.Fatal("a clear verifier opened")
		}
		noSecret(t, err.Error(), verifier)
		if IsSealed(verifier, 256) {
			t.Fatal("a clear verifier IsSealed")
		}
	}
	for _, b := range [][]byte{nil, {Version}, make([]byte, Overhead-1), []byte("12345678")} {
		if _, err := r.Open(b, []byte("uid"), "tokens.code"); !errors.Is(err, ErrFormat) {
			t.Errorf("%d bytes: %v", len(b), err)
		}
	}
	sealed, _ := r.Seal(rand.Reader, []byte("12345678"), []byte("uid"), "tokens.code")
	sealed[0] = 2
	if _, err := r.Open(sealed, []byte("uid"), "tokens.code"); !errors.Is(err, ErrFormat) || strings.Contains(err.Error(), "2") {
		t.Errorf("version 2: %v", err)
	}
	for _, c := range []struct {
		b []byte
		n int
	}{{nil, 0}, {make([]byte, Overhead), -Overhead}, {make([]byte, Overhead+8), 8}, {sealed, 8}} {
		if IsSealed(c.b, c.n) {
			t.Errorf("IsSealed(%d bytes, %d)", len(c.b), c.n)
		}
	}
}

func TestNewRingErrors(t *testing.T) {
	k := newKey(t)
	for name, keys := range map[string][][]byte{
		"short":            {k[:31]},
		"long":             {append(bytes.Clone(k), 0)},
		"empty":            {nil},
		"short retired":    {k, k[:16]},
		"current twice":    {k, bytes.Clone(k)},
		"retired twice":    {newKey(t), k, k},
		"64 hex digits":    {[]byte(hex.EncodeToString(k))},
		"long retired key": {k, make([]byte, 48)},
	} {
		_, err := NewRing(keys[0], keys[1:]...)
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		noSecret(t, err.Error(), k)
	}
	if _, err := KeyID(k[:8]); err == nil {
		t.Error("KeyID of 8 bytes")
	}
}

func TestSealErrors(t *testing.T) {
	r := mustRing(t, newKey(t))
	pt := []byte("secret")
	for name, f := range map[string]func() ([]byte, error){
		"empty row":    func() ([]byte, error) { return r.Seal(rand.Reader, pt, nil, "c") },
		"empty column": func() ([]byte, error) { return r.Seal(rand.Reader, pt, []byte("u"), "") },
		"long row":     func() ([]byte, error) { return r.Seal(rand.Reader, pt, make([]byte, 1<<16), "c") },
		"long column":  func() ([]byte, error) { return r.Seal(rand.Reader, pt, []byte("u"), strings.Repeat("c", 1<<16)) },
		"nil rand":     func() ([]byte, error) { return r.Seal(nil, pt, []byte("u"), "c") },
		"short rand":   func() ([]byte, error) { return r.Seal(bytes.NewReader(make([]byte, 11)), pt, []byte("u"), "c") },
		"failing rand": func() ([]byte, error) {
			return r.Seal(iotest.ErrReader(errors.New("no entropy")), pt, []byte("u"), "c")
		},
		"open no row":   func() ([]byte, error) { return r.Open(make([]byte, 40), nil, "c") },
		"open no colum": func() ([]byte, error) { return r.Open(make([]byte, 40), []byte("u"), "") },
	} {
		if b, err := f(); err == nil || b != nil {
			t.Errorf("%s: %x, %v", name, b, err)
		}
	}
	// The largest row and column still work.
	s, err := r.Seal(rand.Reader, pt, make([]byte, maxBinding), strings.Repeat("c", maxBinding))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Open(s, make([]byte, maxBinding), strings.Repeat("c", maxBinding)); err != nil {
		t.Fatal(err)
	}
}

// A Ring is safe for concurrent use (run with -race).
func TestConcurrent(t *testing.T) {
	k1 := newKey(t)
	old, _ := mustRing(t, k1).Seal(rand.Reader, []byte("old"), []byte("u"), "c")
	r := mustRing(t, newKey(t), k1)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			row := []byte{byte(g) + 1}
			for range 200 {
				s, err := r.Seal(rand.Reader, row, row, "c")
				if err != nil {
					t.Error(err)
					return
				}
				if p, err := r.Open(s, row, "c"); err != nil || !bytes.Equal(p, row) {
					t.Error("round trip", err)
					return
				}
				if p, err := r.Open(old, []byte("u"), "c"); err != nil || string(p) != "old" || !r.NeedsReseal(old) {
					t.Error("retired", err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// FuzzOpen: Open never panics, fails with a documented error, and what it
// opens is exactly what Seal makes from the plaintext and the value's nonce.
func FuzzOpen(f *testing.F) {
	vectors := loadVectors(f)
	var keys [][]byte
	seen := map[string]bool{}
	for _, v := range vectors {
		if !seen[v.keyID] {
			seen[v.keyID] = true
			keys = append(keys, v.key)
		}
		f.Add(v.sealed, v.row, v.column)
		f.Add(v.sealed[:len(v.sealed)-1], v.row, v.column)
		f.Add(v.sealed, v.row, v.column+"x")
	}
	ring := mustRing(f, keys[0], keys[1:]...)
	single := map[string]*Ring{} // key id → a ring with only that key
	for _, k := range keys {
		r := mustRing(f, k)
		single[r.KeyID()] = r
	}
	f.Fuzz(func(t *testing.T, sealed, row []byte, column string) {
		plaintext, err := ring.Open(sealed, row, column)
		if err != nil {
			if plaintext != nil {
				t.Fatal("a result with an error")
			}
			if !errors.Is(err, ErrFormat) && !errors.Is(err, ErrUnknownKey) && !errors.Is(err, ErrTampered) &&
				(len(row) >= 1 && len(row) <= maxBinding && len(column) >= 1 && len(column) <= maxBinding) {
				t.Fatalf("undocumented error %v", err)
			}
			return
		}
		if !IsSealed(sealed, len(plaintext)) {
			t.Fatal("opened a value IsSealed refuses")
		}
		r := single[hex.EncodeToString(sealed[1:1+keyIDSize])]
		again, err := r.Seal(bytes.NewReader(sealed[1+keyIDSize:headerSize]), plaintext, row, column)
		if err != nil || !bytes.Equal(again, sealed) {
			t.Fatalf("resealed to %x, %v\nwant %x", again, err, sealed)
		}
	})
}

func benchRing(b *testing.B) (*Ring, []byte, []byte) {
	r := mustRing(b, newKey(b), newKey(b))
	secret := make([]byte, 32)
	rand.Read(secret)
	row := make([]byte, 16)
	rand.Read(row)
	return r, secret, row
}

func BenchmarkSeal32(b *testing.B) {
	r, secret, row := benchRing(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Seal(rand.Reader, secret, row, "accounts.ka"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen32(b *testing.B) {
	r, secret, row := benchRing(b)
	sealed, _ := r.Seal(rand.Reader, secret, row, "accounts.ka")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Open(sealed, row, "accounts.ka"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSignIn models the sealing work of one password sign-in
// (auth/start, auth/finish, session/create, account/keys), generously: 12
// opens (verifier of 256 bytes twice, token keys, kA, wrapKb) and 8 seals
// (authKey and bundleKey of four tokens).
func BenchmarkSignIn(b *testing.B) {
	r, secret, row := benchRing(b)
	verifier := make([]byte, 256)
	sealedVerifier, _ := r.Seal(rand.Reader, verifier, row, "accounts.srp_verifier")
	sealed, _ := r.Seal(rand.Reader, secret, row, "tokens.auth_key")
	b.ReportAllocs()
	for b.Loop() {
		for range 2 {
			if _, err := r.Open(sealedVerifier, row, "accounts.srp_verifier"); err != nil {
				b.Fatal(err)
			}
		}
		for range 10 {
			if _, err := r.Open(sealed, row, "tokens.auth_key"); err != nil {
				b.Fatal(err)
			}
		}
		for range 8 {
			if _, err := r.Seal(rand.Reader, secret, row, "tokens.auth_key"); err != nil {
				b.Fatal(err)
			}
		}
	}
}
