package keywrap

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"unicode/utf8"
)

const recoveryVectorsPath = "testdata/recovery-key-vectors.json"

type recoveryVector struct {
	ID                string
	R, UID, KB, Nonce hexBytes
	KeyString         string
	RecoveryKeyID     hexBytes
	RecoveryEncKey    hexBytes
	RecoveryData      hexBytes
}

type recoveryParseCase struct {
	ID    string
	Input string
	R     hexBytes
	Error string // length, character or check; "" when R is given
}

type recoveryVectorFile struct {
	Alphabet string
	Vectors  []recoveryVector
	Parse    []recoveryParseCase
}

// loadRecoveryVectors reads the recovery key vectors; tb fails when the file
// is missing or has no vectors or no parse cases.
func loadRecoveryVectors(tb testing.TB) *recoveryVectorFile {
	tb.Helper()
	b, err := os.ReadFile(recoveryVectorsPath)
	if err != nil {
		tb.Fatalf("reading recovery key vectors: %v", err)
	}
	var v recoveryVectorFile
	if err := json.Unmarshal(b, &v); err != nil {
		tb.Fatalf("decoding recovery key vectors: %v", err)
	}
	nonEmpty(tb, "vectors", len(v.Vectors))
	nonEmpty(tb, "parse", len(v.Parse))
	return &v
}

// parseErrors are the sentinels of the parse cases' error kinds.
var parseErrors = map[string]error{
	"length":    ErrRecoveryKeyLength,
	"character": ErrRecoveryKeyCharacter,
	"check":     ErrRecoveryKeyCheck,
}

func TestRecoveryKeyVectors(t *testing.T) {
	v := loadRecoveryVectors(t)
	if v.Alphabet != crockford {
		t.Errorf("alphabet %q, want %q", v.Alphabet, crockford)
	}
	for _, vec := range v.Vectors {
		t.Run(vec.ID, func(t *testing.T) {
			if got := FormatRecoveryKey(vec.R); got != vec.KeyString {
				t.Errorf("FormatRecoveryKey\n got %q\nwant %q", got, vec.KeyString)
			}
			r, err := ParseRecoveryKey(vec.KeyString)
			if err != nil || !bytes.Equal(r, vec.R) {
				t.Errorf("ParseRecoveryKey: %x, %v", r, err)
			}
			if got := RecoveryKeyID(vec.R); !bytes.Equal(got, vec.RecoveryKeyID) {
				t.Errorf("RecoveryKeyID %x, want %x", got, vec.RecoveryKeyID)
			}
			if got, err := recoveryEncKey(vec.R); err != nil || !bytes.Equal(got, vec.RecoveryEncKey) {
				t.Errorf("recoveryEncKey %x, %v; want %x", got, err, vec.RecoveryEncKey)
			}
			// The nonce comes from the random reader, which must hold
			// exactly it.
			data, err := SealRecoveryData(iotest.OneByteReader(bytes.NewReader(vec.Nonce)), vec.R, vec.UID, vec.KB)
			if err != nil || !bytes.Equal(data, vec.RecoveryData) {
				t.Errorf("SealRecoveryData\n got %x, %v\nwant %x", data, err, vec.RecoveryData)
			}
			if len(data) != RecoveryDataSize || cap(data) != RecoveryDataSize {
				t.Errorf("recoveryData of len %d cap %d", len(data), cap(data))
			}
			kB, err := OpenRecoveryData(vec.R, vec.UID, vec.RecoveryData)
			if err != nil || !bytes.Equal(kB, vec.KB) {
				t.Errorf("OpenRecoveryData: %x, %v", kB, err)
			}
		})
	}
}

// normalized is s as ParseRecoveryKey reads it before decoding (step 1 of
// RK.1 "Reading").
func normalized(s string) string { return string(normalizeRecoveryKey(s)) }

// leaksKey reports whether msg holds 4 consecutive characters of the key
// string s: an error message may name one character, never a piece of the
// key.
func leaksKey(msg, s string) bool {
	n := []rune(normalized(s))
	for i := 0; i+4 <= len(n); i++ {
		if strings.Contains(strings.ToUpper(msg), string(n[i:i+4])) {
			return true
		}
	}
	return false
}

func TestParseRecoveryKeyCases(t *testing.T) {
	v := loadRecoveryVectors(t)
	kinds := map[string]int{}
	for _, c := range v.Parse {
		t.Run(c.ID, func(t *testing.T) {
			r, err := ParseRecoveryKey(c.Input)
			if c.Error == "" {
				if err != nil || !bytes.Equal(r, c.R) {
					t.Fatalf("ParseRecoveryKey(%q) = %x, %v; want %x", c.Input, r, err, c.R)
				}
				return
			}
			kinds[c.Error]++
			want, ok := parseErrors[c.Error]
			if !ok {
				t.Fatalf("unknown error kind %q", c.Error)
			}
			if r != nil || !errors.Is(err, want) {
				t.Fatalf("ParseRecoveryKey(%q) = %x, %v; want %v", c.Input, r, err, want)
			}
			for kind, other := range parseErrors {
				if kind != c.Error && errors.Is(err, other) {
					t.Errorf("error %v is also %s", err, kind)
				}
			}
			if leaksKey(err.Error(), c.Input) {
				t.Errorf("error %q shows a piece of the key", err)
			}
			switch c.Error {
			case "length":
				n := utf8.RuneCountInString(normalized(c.Input))
				if !strings.Contains(err.Error(), "53 characters") || !strings.Contains(err.Error(), "not "+itoa(n)) {
					t.Errorf("length error %q does not say 53 and %d", err, n)
				}
			case "character":
				bad := firstBad(normalized(c.Input))
				if !strings.ContainsRune(err.Error(), bad) {
					t.Errorf("character error %q does not name %q", err, bad)
				}
			}
		})
	}
	for kind := range parseErrors {
		if kinds[kind] == 0 {
			t.Errorf("no parse case of kind %s", kind)
		}
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// firstBad is the first character of a normalized string that is not in the
// alphabet.
func firstBad(s string) rune {
	for _, c := range s {
		if !strings.ContainsRune(crockford, c) {
			return c
		}
	}
	return utf8.RuneError
}

func TestRecoveryKeyFormat(t *testing.T) {
	rng := sha256.Sum256([]byte("format"))
	for i := range 200 {
		rng = sha256.Sum256(rng[:])
		r := rng[:]
		if i == 0 {
			r = bytes.Repeat([]byte{0xff}, 32)
		}
		s := FormatRecoveryKey(r)
		groups := strings.Split(s, " ")
		if len(s) != 65 || len(groups) != 13 {
			t.Fatalf("%x: %q has %d bytes and %d groups", r, s, len(s), len(groups))
		}
		for j, g := range groups {
			if want := 4 + j/12; len(g) != want {
				t.Fatalf("%q: group %d has %d characters", s, j, len(g))
			}
			for _, c := range g {
				if !strings.ContainsRune(crockford, c) {
					t.Fatalf("%q: character %q", s, c)
				}
			}
		}
		back, err := ParseRecoveryKey(s)
		if err != nil || !bytes.Equal(back, r) {
			t.Fatalf("round trip of %x: %x, %v", r, back, err)
		}
	}
}

func TestNewRecoveryKey(t *testing.T) {
	src := bytes.Repeat([]byte{7}, 40)
	rd := bytes.NewReader(src)
	r, err := NewRecoveryKey(rd)
	if err != nil || len(r) != RecoveryKeySize || rd.Len() != 8 || !bytes.Equal(r, src[:32]) {
		t.Fatalf("NewRecoveryKey: %x, %v, %d left", r, err, rd.Len())
	}
	if _, err := NewRecoveryKey(bytes.NewReader(make([]byte, 31))); err == nil {
		t.Error("NewRecoveryKey with 31 random bytes succeeded")
	}
	if _, err := NewRecoveryKey(iotest.ErrReader(errors.New("no entropy"))); err == nil {
		t.Error("NewRecoveryKey with a failing reader succeeded")
	}
}

func TestRecoveryKeyPanics(t *testing.T) {
	for _, n := range []int{0, 31, 33} {
		for name, f := range map[string]func([]byte){
			"FormatRecoveryKey": func(b []byte) { FormatRecoveryKey(b) },
			"RecoveryKeyID":     func(b []byte) { RecoveryKeyID(b) },
		} {
			func() {
				defer func() {
					if recover() == nil {
						t.Errorf("%s of %d bytes did not panic", name, n)
					}
				}()
				f(make([]byte, n))
			}()
		}
	}
}

func TestSealRecoveryDataInputs(t *testing.T) {
	r, uid, kB := make([]byte, 32), make([]byte, 16), make([]byte, 32)
	nonce := func() io.Reader { return bytes.NewReader(make([]byte, 12)) }
	for name, args := range map[string][3][]byte{
		"short R":   {r[:31], uid, kB},
		"long R":    {append(r, 0), uid, kB},
		"short uid": {r, uid[:15], kB},
		"long uid":  {r, append(uid, 0), kB},
		"short kB":  {r, uid, kB[:31]},
		"long kB":   {r, uid, append(kB, 0)},
		"nil kB":    {r, uid, nil},
	} {
		if d, err := SealRecoveryData(nonce(), args[0], args[1], args[2]); err == nil {
			t.Errorf("%s: sealed %x", name, d)
		}
	}
	if _, err := SealRecoveryData(bytes.NewReader(make([]byte, 11)), r, uid, kB); err == nil {
		t.Error("sealed with an 11-byte nonce")
	}
	// Two seals of one kB with fresh nonces differ and both open.
	a, err1 := SealRecoveryData(bytes.NewReader([]byte("nonce-one---")), r, uid, kB)
	b, err2 := SealRecoveryData(bytes.NewReader([]byte("nonce-two---")), r, uid, kB)
	if err1 != nil || err2 != nil || bytes.Equal(a, b) {
		t.Fatalf("two seals: %v %v, equal %v", err1, err2, bytes.Equal(a, b))
	}
	for _, d := range [][]byte{a, b} {
		if got, err := OpenRecoveryData(r, uid, d); err != nil || !bytes.Equal(got, kB) {
			t.Errorf("open: %x %v", got, err)
		}
	}
}

// TestOpenRecoveryDataTamper: every changed bit of recoveryData (nonce,
// ciphertext, tag), of the uid and of R, and every wrong length, fails
// with ErrRecoveryData.
func TestOpenRecoveryDataTamper(t *testing.T) {
	v := loadRecoveryVectors(t)
	for _, vec := range v.Vectors {
		want := func(what string, r, uid, data []byte) {
			t.Helper()
			if kB, err := OpenRecoveryData(r, uid, data); kB != nil || !errors.Is(err, ErrRecoveryData) {
				t.Errorf("%s %s: %x, %v; want ErrRecoveryData", vec.ID, what, kB, err)
			}
		}
		flip := func(b []byte, bit int) []byte {
			c := bytes.Clone(b)
			c[bit/8] ^= 1 << (bit % 8)
			return c
		}
		for bit := range 8 * len(vec.RecoveryData) {
			want("data bit "+itoa(bit), vec.R, vec.UID, flip(vec.RecoveryData, bit))
		}
		for bit := range 8 * len(vec.UID) {
			want("uid bit "+itoa(bit), vec.R, flip(vec.UID, bit), vec.RecoveryData)
		}
		for _, bit := range []int{0, 7, 100, 255} {
			want("R bit "+itoa(bit), flip(vec.R, bit), vec.UID, vec.RecoveryData)
		}
		want("truncated", vec.R, vec.UID, vec.RecoveryData[:59])
		want("extended", vec.R, vec.UID, append(bytes.Clone(vec.RecoveryData), 0))
		want("empty", vec.R, vec.UID, nil)
		want("short R", vec.R[:31], vec.UID, vec.RecoveryData)
		want("short uid", vec.R, vec.UID[:15], vec.RecoveryData)
		want("long uid", vec.R, append(bytes.Clone(vec.UID), 0), vec.RecoveryData)
	}
	// A recoveryData of another vector (another R and uid) does not open.
	a, b := v.Vectors[0], v.Vectors[len(v.Vectors)-1]
	if _, err := OpenRecoveryData(a.R, a.UID, b.RecoveryData); !errors.Is(err, ErrRecoveryData) {
		t.Errorf("another vector's data: %v", err)
	}
	if strings.Contains(ErrRecoveryData.Error(), "%") {
		t.Error("odd ErrRecoveryData message")
	}
}

// TestRecoveryKeySubstitutions changes each character of key strings to
// every other character of the alphabet. What RK.1 promises, and what is
// true: a changed check character, or a 52nd character with a padding bit
// set, is always refused; any other change yields another R, whose check
// character is the typed one with probability 1/32, so about 31 in 32
// substitutions are refused with ErrRecoveryKeyCheck, and the rest read as
// another, valid recovery key (whose own string is the changed one): the
// server then refuses its recoveryKeyId (128). A substitution never reads
// as the same R, never fails as length or character, and a character
// outside the alphabet is refused as such; O, I and L read as 0, 1 and 1.
func TestRecoveryKeySubstitutions(t *testing.T) {
	v := loadRecoveryVectors(t)
	total, detected := 0, 0
	for _, vec := range v.Vectors {
		flat := strings.ReplaceAll(vec.KeyString, " ", "")
		for i := range len(flat) {
			for _, c := range crockford {
				if byte(c) == flat[i] {
					continue
				}
				s := flat[:i] + string(c) + flat[i+1:]
				total++
				r, err := ParseRecoveryKey(s)
				padding := i == 51 && strings.IndexRune(crockford, c)&0xf != 0
				switch {
				case err == nil:
					if i == 52 || padding {
						t.Fatalf("%s: %q (character %d) was accepted", vec.ID, s, i+1)
					}
					if bytes.Equal(r, vec.R) {
						t.Fatalf("%s: %q reads as the original R", vec.ID, s)
					}
					if got := strings.ReplaceAll(FormatRecoveryKey(r), " ", ""); got != s {
						t.Fatalf("%s: %q reads as a key whose string is %q", vec.ID, s, got)
					}
				case errors.Is(err, ErrRecoveryKeyCheck):
					detected++
				default:
					t.Fatalf("%s: %q: %v, want ErrRecoveryKeyCheck or success", vec.ID, s, err)
				}
			}
			for _, c := range "U*.\u00e9" {
				s := flat[:i] + string(c) + flat[i+1:]
				if _, err := ParseRecoveryKey(s); !errors.Is(err, ErrRecoveryKeyCharacter) {
					t.Fatalf("%s: %q: %v, want ErrRecoveryKeyCharacter", vec.ID, s, err)
				}
			}
		}
		alias := strings.NewReplacer("0", "O", "1", "l").Replace(vec.KeyString)
		if r, err := ParseRecoveryKey(alias); err != nil || !bytes.Equal(r, vec.R) {
			t.Errorf("%s: %q: %x, %v", vec.ID, alias, r, err)
		}
	}
	if total == 0 {
		t.Fatal("no substitutions tried")
	}
	if frac := float64(detected) / float64(total); frac < 0.90 {
		t.Errorf("%d of %d single substitutions detected (%.3f), want at least 0.90", detected, total, frac)
	} else {
		t.Logf("%d of %d single substitutions detected (%.3f; 31/32 = 0.969 expected)", detected, total, frac)
	}
}

func FuzzParseRecoveryKey(f *testing.F) {
	v := loadRecoveryVectors(f)
	for _, vec := range v.Vectors {
		f.Add(vec.KeyString)
	}
	for _, c := range v.Parse {
		f.Add(c.Input)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRecoveryKey(s)
		if err != nil {
			if r != nil {
				t.Fatalf("%q: R %x with error %v", s, r, err)
			}
			n := 0
			for _, e := range parseErrors {
				if errors.Is(err, e) {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("%q: error %v is not exactly one of the sentinels", s, err)
			}
			if errors.Is(err, ErrRecoveryKeyLength) != (utf8.RuneCountInString(normalized(s)) != 53) {
				t.Fatalf("%q: %v", s, err)
			}
			return
		}
		if len(r) != RecoveryKeySize {
			t.Fatalf("%q: R of %d bytes", s, len(r))
		}
		// A string that reads as R is R's string, typed another way.
		if got := strings.ReplaceAll(FormatRecoveryKey(r), " ", ""); got != normalized(s) {
			t.Fatalf("%q reads as %x, whose string is %q", s, r, got)
		}
	})
}

// TestRecoveryVectorsIndependent recomputes the vector file with the
// independent Python implementation, docs/recovery_key_vectors.py. It skips
// without python3 or its cryptography package, except under CI=true.
func TestRecoveryVectorsIndependent(t *testing.T) {
	script := filepath.Join("..", "docs", "recovery_key_vectors.py")
	ci := os.Getenv("CI") == "true"
	skip := func(format string, args ...any) {
		t.Helper()
		if ci {
			t.Fatalf("CI=true: "+format, args...)
		}
		t.Skipf(format, args...)
	}
	python, err := exec.LookPath("python3")
	if err != nil {
		skip("python3 not found: %v", err)
	}
	if out, err := exec.Command(python, "-c", "import cryptography.hazmat.primitives.ciphers.aead").CombinedOutput(); err != nil {
		skip("python3 has no cryptography package: %v\n%s", err, out)
	}
	out, err := exec.Command(python, script, "--check", recoveryVectorsPath).CombinedOutput()
	if err != nil {
		t.Fatalf("%s --check %s: %v\n%s", script, recoveryVectorsPath, err, out)
	}
	t.Logf("%s", out)
}
