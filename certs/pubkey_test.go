package certs

import (
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"
)

func rsJSON(n, e string) string {
	return fmt.Sprintf(`{"algorithm":"RS","n":%q,"e":%q}`, n, e)
}

func dsJSON(y, p, q, g string) string {
	return fmt.Sprintf(`{"algorithm":"DS","y":%q,"p":%q,"q":%q,"g":%q}`, y, p, q, g)
}

// oddWithBits is the smallest odd number of exactly bits bits.
func oddWithBits(bits int) *big.Int {
	n := new(big.Int).Lsh(big.NewInt(1), uint(bits-1))
	return n.SetBit(n, 0, 1)
}

func TestParsePublicKeyRS(t *testing.T) {
	n2048 := rsaClientKey(t, 2048, 65537).pub.N.String()
	n511 := oddWithBits(511).String()
	max := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 4096), big.NewInt(1))
	for _, tc := range []struct {
		name   string
		json   string
		legacy bool
		ok     bool
	}{
		{"2048 bits", rsJSON(n2048, "65537"), false, true},
		{"e = 3", rsJSON(n2048, "3"), false, true},
		{"4096 bits", rsJSON(max.String(), "65537"), false, true},
		{"4097 bits", rsJSON(oddWithBits(4097).String(), "65537"), true, false},
		{"2047 bits (C21)", rsJSON(oddWithBits(2047).String(), "65537"), false, true},
		{"2047 bits legacy", rsJSON(oddWithBits(2047).String(), "65537"), true, true},
		{"2046 bits", rsJSON(oddWithBits(2046).String(), "65537"), false, false},
		{"2046 bits legacy", rsJSON(oddWithBits(2046).String(), "65537"), true, true},
		{"511 bits", rsJSON(n511, "65537"), false, false},
		{"511 bits legacy", rsJSON(n511, "65537"), true, true},
		{"510 bits legacy", rsJSON(oddWithBits(510).String(), "65537"), true, false},
		{"even n", rsJSON(new(big.Int).Lsh(big.NewInt(1), 2047).String(), "65537"), false, false},
		{"even e", rsJSON(n2048, "65536"), false, false},
		{"e = 1", rsJSON(n2048, "1"), false, false},
		{"e = n", rsJSON(n2048, n2048), false, false},
		{"e = 0", rsJSON(n2048, "0"), false, false},
		{"leading zero", rsJSON("0"+n2048, "65537"), false, false},
		{"sign", rsJSON("+"+n2048, "65537"), false, false},
		{"negative e", rsJSON(n2048, "-65537"), false, false},
		{"space", rsJSON(n2048, " 65537"), false, false},
		{"exponent notation", rsJSON(n2048, "1e5"), false, false},
		{"hex", rsJSON(n2048, "0x10001"), false, false},
		{"empty e", rsJSON(n2048, ""), false, false},
		{"number", `{"algorithm":"RS","n":"` + n2048 + `","e":65537}`, false, false},
		{"null", `{"algorithm":"RS","n":"` + n2048 + `","e":null}`, false, false},
		{"missing e", `{"algorithm":"RS","n":"` + n2048 + `"}`, false, false},
		{"version member", `{"algorithm":"RS","n":"` + n2048 + `","e":"65537","version":"2012.08.15"}`, false, false},
		{"repeated member", `{"algorithm":"RS","n":"` + n2048 + `","e":"65537","e":"65537"}`, false, false},
		{"other algorithm", `{"algorithm":"RSA","n":"` + n2048 + `","e":"65537"}`, false, false},
		{"EC", `{"algorithm":"EC","x":"1","y":"2"}`, false, false},
		{"no algorithm", `{"n":"` + n2048 + `","e":"65537"}`, false, false},
		{"trailing data", rsJSON(n2048, "65537") + "{}", false, false},
		{"array", `[]`, false, false},
		{"string", `"RS"`, false, false},
		{"empty", ``, false, false},
		{"nested", `{"algorithm":{"a":"RS"}}`, false, false},
	} {
		k, err := ParsePublicKey([]byte(tc.json), tc.legacy)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err %v, want ok %v", tc.name, err, tc.ok)
			continue
		}
		if err != nil && !errors.Is(err, ErrInvalidKey) {
			t.Errorf("%s: %v does not wrap ErrInvalidKey", tc.name, err)
		}
		if err == nil {
			b, _ := k.MarshalJSON()
			if string(b) != tc.json {
				t.Errorf("%s: re-serialised as %s", tc.name, b)
			}
		}
	}
}

func TestParsePublicKeyDS(t *testing.T) {
	grp := dsGroups["DS128"]
	p, q, g := grp[0], grp[1], grp[2]
	y := dsaClientKey(t, "DS128").pub.Y.Text(16)
	hexBits := func(bits int) string { return oddWithBits(bits).Text(16) }
	pBig := bigHex(p)
	pMinus1 := new(big.Int).Sub(pBig, big.NewInt(1)).Text(16)
	for _, tc := range []struct {
		name string
		json string
		ok   bool
	}{
		{"DS128 group", dsJSON(y, p, q, g), true},
		{"DS256 group", dsJSON(y, dsGroups["DS256"][0], dsGroups["DS256"][1], dsGroups["DS256"][2]), true},
		{"upper case and leading zeros", dsJSON("000"+strings.ToUpper(y), p, q, g), true},
		{"odd length", dsJSON("1"+strings.Repeat("0", 40), p, q, g), true},
		{"p 1024 bits", dsJSON("2", hexBits(1024), q, "2"), true},
		{"p 3072 bits", dsJSON(y, hexBits(3072), q, g), true},
		{"p 1023 bits", dsJSON("2", hexBits(1023), q, "2"), false},
		{"p 3073 bits", dsJSON(y, hexBits(3073), q, g), false},
		{"q 160 bits", dsJSON(y, p, hexBits(160), g), true},
		{"q 256 bits", dsJSON(y, p, hexBits(256), g), true},
		{"q 159 bits", dsJSON(y, p, hexBits(159), g), false},
		{"q 257 bits", dsJSON(y, p, hexBits(257), g), false},
		{"g = 1", dsJSON(y, p, q, "1"), false},
		{"g = 2", dsJSON(y, p, q, "2"), true},
		{"g = p", dsJSON(y, p, q, p), false},
		{"g = p-1", dsJSON(y, p, q, pMinus1), true},
		{"y = 0", dsJSON("0", p, q, g), false},
		{"y = 1", dsJSON("1", p, q, g), false},
		{"y = p", dsJSON(p, p, q, g), false},
		{"y = p-1", dsJSON(pMinus1, p, q, g), true},
		{"0x prefix", dsJSON("0x"+y, p, q, g), false},
		{"sign", dsJSON("+"+y, p, q, g), false},
		{"not hex", dsJSON(y+"g", p, q, g), false},
		{"empty", dsJSON("", p, q, g), false},
		{"missing g", fmt.Sprintf(`{"algorithm":"DS","y":%q,"p":%q,"q":%q}`, y, p, q), false},
		{"RS members", fmt.Sprintf(`{"algorithm":"DS","n":%q,"e":"3"}`, p), false},
		{"extra member", fmt.Sprintf(`{"algorithm":"DS","y":%q,"p":%q,"q":%q,"g":%q,"x":"1"}`, y, p, q, g), false},
	} {
		k, err := ParsePublicKey([]byte(tc.json), true)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err %v, want ok %v", tc.name, err, tc.ok)
			continue
		}
		if err == nil {
			b, _ := k.MarshalJSON()
			want := dsJSON(k.Y.Text(16), k.P.Text(16), k.Q.Text(16), k.G.Text(16))
			if string(b) != want {
				t.Errorf("%s: re-serialised as %s", tc.name, b)
			}
		}
	}
}

// A 64 KB public key is refused by its length, before any decoding.
func TestHugePublicKeyCheap(t *testing.T) {
	huge := []byte(rsJSON(strings.Repeat("7", 64<<10), "65537"))
	if _, err := ParsePublicKey(huge, true); !errors.Is(err, ErrInvalidKey) {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() { _, _ = ParsePublicKey(huge, true) })
	if allocs > 4 {
		t.Fatalf("%v allocations to refuse a 64 KB key: it was decoded", allocs)
	}
	// Just under the limit still goes through the validation (and fails on size).
	big := []byte(rsJSON(strings.Repeat("7", MaxPublicKeySize-64), "65537"))
	if _, err := ParsePublicKey(big, true); !errors.Is(err, ErrInvalidKey) {
		t.Fatal(err)
	}
}
