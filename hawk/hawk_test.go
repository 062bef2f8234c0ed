package hawk

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

func (v *hawkVector) key(t testing.TB) []byte {
	k, err := hex.DecodeString(v.Key)
	if err != nil || len(k) != 32 {
		t.Fatalf("%s: bad key %q", v.ID, v.Key)
	}
	return k
}

func (v *hawkVector) hash() string {
	if v.Hash == nil {
		return ""
	}
	return *v.Hash
}

func TestVectors(t *testing.T) {
	for _, v := range loadVectors(t).Hawk {
		t.Run(v.ID, func(t *testing.T) {
			if v.Algorithm != "sha256" {
				t.Fatalf("algorithm %q", v.Algorithm)
			}
			key := v.key(t)
			if v.Hash != nil {
				if v.ContentType == nil || v.Payload == nil {
					t.Fatal("hash without content type or payload")
				}
				if got := PayloadHash(*v.ContentType, []byte(*v.Payload)); got != *v.Hash {
					t.Errorf("PayloadHash = %q, want %q", got, *v.Hash)
				}
				if !VerifyPayload(*v.Hash, *v.ContentType, []byte(*v.Payload)) {
					t.Error("VerifyPayload rejected the vector")
				}
				if VerifyPayload(*v.Hash, *v.ContentType, []byte(*v.Payload+" ")) {
					t.Error("VerifyPayload accepted a changed body")
				}
				if VerifyPayload(*v.Hash, "text/plain", []byte(*v.Payload)) {
					t.Error("VerifyPayload accepted a changed content type")
				}
			}
			h := &Header{TS: strconv.FormatInt(v.TS, 10), Nonce: v.Nonce, Hash: v.hash(), Ext: v.Ext}
			if got := Normalized(h, v.Method, v.Resource, v.Host, v.Port); got != v.Normalized {
				t.Errorf("Normalized = %q, want %q", got, v.Normalized)
			}
			if got := MAC(key, v.Normalized); got != v.MAC {
				t.Errorf("MAC = %q, want %q", got, v.MAC)
			}
			got := Sign(v.CredentialsID, key, v.Method, v.Resource, v.Host, v.Port, v.TS, v.Nonce, v.hash(), v.Ext)
			if got != v.Header {
				t.Errorf("Sign =\n%s\nwant\n%s", got, v.Header)
			}
			p, err := ParseHeader(v.Header)
			if err != nil {
				t.Fatalf("ParseHeader: %v", err)
			}
			want := Header{ID: v.CredentialsID, TS: h.TS, Nonce: v.Nonce, Hash: v.hash(), Ext: v.Ext, MAC: v.MAC}
			if *p != want {
				t.Errorf("ParseHeader = %+v, want %+v", *p, want)
			}
			if ts, err := p.Timestamp(); err != nil || ts != v.TS {
				t.Errorf("Timestamp = %d, %v, want %d", ts, err, v.TS)
			}
			if p.String() != v.Header {
				t.Errorf("String = %q", p.String())
			}
			if !p.VerifyMAC(key, v.Method, v.Resource, v.Host, v.Port) {
				t.Error("VerifyMAC rejected the vector")
			}
			// Method and host are case-normalised; the resource is not.
			if !p.VerifyMAC(key, strings.ToLower(v.Method), v.Resource, strings.ToUpper(v.Host), v.Port) {
				t.Error("VerifyMAC is sensitive to method/host case")
			}
			if p.VerifyMAC(key, v.Method, strings.ToUpper(v.Resource), v.Host, v.Port) {
				t.Error("VerifyMAC ignores resource case")
			}
		})
	}
}

// TestLoginChainHeader checks that the session/create header of CHAIN-1 is a hawk vector
// signed with the chain's authToken credentials.
func TestLoginChainHeader(t *testing.T) {
	vf := loadVectors(t)
	if len(vf.LoginChain) == 0 {
		t.Fatal(`no vectors found in group "login_chain"`)
	}
	for _, c := range vf.LoginChain {
		var v *hawkVector
		for i := range vf.Hawk {
			if vf.Hawk[i].Header == c.SessionCreateHawkHeader {
				v = &vf.Hawk[i]
			}
		}
		if v == nil {
			t.Fatalf("%s: session/create header is no hawk vector", c.ID)
		}
		key, _ := hex.DecodeString(c.AuthToken.AuthKey)
		h, err := ParseHeader(c.SessionCreateHawkHeader)
		if err != nil {
			t.Fatal(err)
		}
		if h.ID != c.AuthToken.TokenID || !h.VerifyMAC(key, v.Method, v.Resource, v.Host, v.Port) {
			t.Errorf("%s: header does not verify with the authToken credentials", c.ID)
		}
	}
}

func TestPayloadHashContentType(t *testing.T) {
	body := []byte("{}")
	want := PayloadHash("application/json", body)
	for _, ct := range []string{"application/json; charset=utf-8", " Application/JSON ", "application/json;", "APPLICATION/JSON ;x=y;z"} {
		if got := PayloadHash(ct, body); got != want {
			t.Errorf("PayloadHash(%q) differs from application/json", ct)
		}
	}
	if PayloadHash("", body) == want || PayloadHash("text/json", body) == want {
		t.Error("content type ignored")
	}
	// Empty content type and body still hash (an absent header hashes as "").
	if got := PayloadHash("", nil); len(got) != 44 {
		t.Errorf("PayloadHash(\"\", nil) = %q", got)
	}
}

func TestVerifyMACTamper(t *testing.T) {
	v := loadVectors(t).Hawk
	var tv *hawkVector
	for i := range v {
		if v[i].Hash != nil && v[i].Ext != "" {
			tv = &v[i] // a vector with every attribute
		}
	}
	if tv == nil {
		t.Fatal("no hawk vector with hash and ext")
	}
	key := tv.key(t)
	base, err := ParseHeader(tv.Header)
	if err != nil {
		t.Fatal(err)
	}
	if !base.VerifyMAC(key, tv.Method, tv.Resource, tv.Host, tv.Port) {
		t.Fatal("vector does not verify")
	}
	for i := range key {
		for bit := range 8 {
			k := bytes.Clone(key)
			k[i] ^= 1 << bit
			if base.VerifyMAC(k, tv.Method, tv.Resource, tv.Host, tv.Port) {
				t.Fatalf("key with bit %d of byte %d flipped verifies", bit, i)
			}
		}
	}
	type req struct {
		method, resource, host string
		port                   int
	}
	r0 := req{tv.Method, tv.Resource, tv.Host, tv.Port}
	for name, r := range map[string]req{
		"method":   {"PUT", r0.resource, r0.host, r0.port},
		"resource": {r0.method, r0.resource + "?", r0.host, r0.port},
		"host":     {r0.method, r0.resource, "127.0.0.2", r0.port},
		"port":     {r0.method, r0.resource, r0.host, r0.port + 1},
	} {
		if base.VerifyMAC(key, r.method, r.resource, r.host, r.port) {
			t.Errorf("changed %s verifies", name)
		}
	}
	for name, mod := range map[string]func(h *Header){
		"ts":        func(h *Header) { h.TS += "1" },
		"ts zero":   func(h *Header) { h.TS = "0" + h.TS },
		"nonce":     func(h *Header) { h.Nonce += "x" },
		"hash":      func(h *Header) { h.Hash = PayloadHash("application/json", []byte("{}")) },
		"no hash":   func(h *Header) { h.Hash = "" },
		"ext":       func(h *Header) { h.Ext += "x" },
		"no ext":    func(h *Header) { h.Ext = "" },
		"mac":       func(h *Header) { h.MAC = "A" + h.MAC[1:] },
		"mac unpad": func(h *Header) { h.MAC = strings.TrimRight(h.MAC, "=") },
	} {
		h := *base
		mod(&h)
		if h.VerifyMAC(key, r0.method, r0.resource, r0.host, r0.port) {
			t.Errorf("changed %s verifies", name)
		}
	}
	// The id is not covered by the mac (the key is the id's): same header, other id.
	h := *base
	h.ID = "other"
	if !h.VerifyMAC(key, r0.method, r0.resource, r0.host, r0.port) {
		t.Error("id unexpectedly covered by the mac")
	}
}

func TestParseHeaderAccepts(t *testing.T) {
	want := Header{ID: "i", TS: "1", Nonce: "n", Hash: "h", Ext: "e x!#$%&'()*+,-./:;<=>?@[]^_`{|}~", MAC: "m"}
	for _, s := range []string{
		`Hawk id="i", ts="1", nonce="n", hash="h", ext="e x!#$%&'()*+,-./:;<=>?@[]^_` + "`" + `{|}~", mac="m"`,
		`hawk mac="m",ext="e x!#$%&'()*+,-./:;<=>?@[]^_` + "`" + `{|}~",hash="h",nonce="n",ts="1",id="i"`,
		"HAWK \t id=\"i\" ,ts=\"1\"\t,  nonce=\"n\", hash=\"h\", ext=\"e x!#$%&'()*+,-./:;<=>?@[]^_`{|}~\", mac=\"m\"  ",
	} {
		h, err := ParseHeader(s)
		if err != nil {
			t.Errorf("ParseHeader(%q): %v", s, err)
		} else if *h != want {
			t.Errorf("ParseHeader(%q) = %+v", s, *h)
		}
	}
	h, err := ParseHeader(`Hawk id="i", ts="0001388707200", nonce="n", mac="m"`)
	if err != nil || h.TS != "0001388707200" || h.Hash != "" || h.Ext != "" {
		t.Fatalf("leading zeros: %+v, %v", h, err)
	}
	if ts, _ := h.Timestamp(); ts != 1388707200 {
		t.Errorf("Timestamp = %d", ts)
	}
	// Exactly MaxHeaderBytes is accepted.
	prefix := `Hawk id="i", ts="1", nonce="n", mac="`
	s := prefix + strings.Repeat("m", MaxHeaderBytes-len(prefix)-1) + `"`
	if _, err := ParseHeader(s); err != nil || len(s) != MaxHeaderBytes {
		t.Errorf("%d-byte header: %v", len(s), err)
	}
}

func TestParseHeaderRejects(t *testing.T) {
	const ok = `id="i", ts="1", nonce="n", mac="m"`
	long := `Hawk id="i", ts="1", nonce="n", mac="` + strings.Repeat("m", MaxHeaderBytes) + `"`
	for name, s := range map[string]string{
		"empty":            "",
		"scheme only":      "Hawk",
		"scheme space":     "Hawk ",
		"no space":         `Hawkid="i", ts="1", nonce="n", mac="m"`,
		"wrong scheme":     `Basic ` + ok,
		"bearer":           "Bearer abc",
		"leading space":    " Hawk " + ok,
		"missing id":       `Hawk ts="1", nonce="n", mac="m"`,
		"missing ts":       `Hawk id="i", nonce="n", mac="m"`,
		"missing nonce":    `Hawk id="i", ts="1", mac="m"`,
		"missing mac":      `Hawk id="i", ts="1", nonce="n"`,
		"duplicate id":     `Hawk ` + ok + `, id="i"`,
		"duplicate hash":   `Hawk hash="h", ` + ok + `, hash="h"`,
		"duplicate ext":    `Hawk ext="a", ` + ok + `, ext="b"`,
		"unknown":          `Hawk ` + ok + `, foo="x"`,
		"upper name":       `Hawk ID="i", ts="1", nonce="n", mac="m"`,
		"app":              `Hawk ` + ok + `, app="a"`,
		"dlg":              `Hawk ` + ok + `, dlg="d"`,
		"empty value":      `Hawk id="", ts="1", nonce="n", mac="m"`,
		"empty ext":        `Hawk ` + ok + `, ext=""`,
		"quote in value":   `Hawk id="i"", ts="1", nonce="n", mac="m"`,
		"backslash":        `Hawk id="i\", ts="1", nonce="n", mac="m"`,
		"escaped quote":    `Hawk id="i\"x", ts="1", nonce="n", mac="m"`,
		"newline":          "Hawk id=\"i\nx\", ts=\"1\", nonce=\"n\", mac=\"m\"",
		"tab in value":     "Hawk id=\"i\tx\", ts=\"1\", nonce=\"n\", mac=\"m\"",
		"NUL":              "Hawk id=\"i\x00\", ts=\"1\", nonce=\"n\", mac=\"m\"",
		"DEL":              "Hawk id=\"i\x7f\", ts=\"1\", nonce=\"n\", mac=\"m\"",
		"non-ASCII":        "Hawk id=\"andré\", ts=\"1\", nonce=\"n\", mac=\"m\"",
		"unterminated":     `Hawk id="i", ts="1", nonce="n", mac="m`,
		"unquoted":         `Hawk id=i, ts="1", nonce="n", mac="m"`,
		"single quotes":    `Hawk id='i', ts="1", nonce="n", mac="m"`,
		"space before =":   `Hawk id ="i", ts="1", nonce="n", mac="m"`,
		"space after =":    `Hawk id= "i", ts="1", nonce="n", mac="m"`,
		"no comma":         `Hawk id="i" ts="1", nonce="n", mac="m"`,
		"double comma":     `Hawk id="i",, ts="1", nonce="n", mac="m"`,
		"trailing comma":   `Hawk ` + ok + `,`,
		"trailing garbage": `Hawk ` + ok + ` x`,
		"leading comma":    `Hawk , ` + ok,
		"ts negative":      `Hawk id="i", ts="-1", nonce="n", mac="m"`,
		"ts plus":          `Hawk id="i", ts="+1", nonce="n", mac="m"`,
		"ts fraction":      `Hawk id="i", ts="1.5", nonce="n", mac="m"`,
		"ts hex":           `Hawk id="i", ts="0x10", nonce="n", mac="m"`,
		"ts space":         `Hawk id="i", ts=" 1", nonce="n", mac="m"`,
		"ts overflow":      `Hawk id="i", ts="9223372036854775808", nonce="n", mac="m"`,
		"ts ms overflow":   `Hawk id="i", ts="9223372036854776", nonce="n", mac="m"`,
		"oversize":         long,
		"garbage":          "\xff\xfe\x00garbage",
		"only quotes":      `Hawk """"`,
		"bare equals":      `Hawk =""`,
	} {
		h, err := ParseHeader(s)
		if err == nil {
			t.Errorf("%s: ParseHeader(%.80q) = %+v, want error", name, s, *h)
		} else if !errors.Is(err, ErrBadHeader) || h != nil {
			t.Errorf("%s: error %v does not wrap ErrBadHeader", name, err)
		}
	}
}

// TestParseHeaderLinear guards against superlinear parsing of adversarial input: 200
// parses of a maximal header must stay far below what a quadratic parser needs.
func TestParseHeaderLinear(t *testing.T) {
	for _, s := range []string{
		"Hawk " + strings.Repeat(`id="i", `, MaxHeaderBytes/8),
		"Hawk " + strings.Repeat(`ext="e", `, MaxHeaderBytes/9),
		"Hawk " + strings.Repeat(" ", MaxHeaderBytes-6) + "x",
		"Hawk id=\"" + strings.Repeat("a", MaxHeaderBytes-10),
		strings.Repeat("h", MaxHeaderBytes),
	} {
		s = s[:min(len(s), MaxHeaderBytes)]
		start := time.Now()
		for range 200 {
			ParseHeader(s)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("200 parses of %.20q... take %v", s, d)
		}
	}
}

func TestTimestampMAC(t *testing.T) {
	key := []byte("key")
	want := MAC(key, "hawk.1.ts\n1388707200\n")
	if got := TimestampMAC(key, 1388707200); got != want {
		t.Errorf("TimestampMAC = %q, want %q", got, want)
	}
	wantHeader := `Hawk ts="1388707200", tsm="` + want + `", error="Stale timestamp"`
	if got := StaleTimestampHeader(key, 1388707200); got != wantHeader {
		t.Errorf("StaleTimestampHeader = %q", got)
	}
}

func TestNewNonce(t *testing.T) {
	n, err := NewNonce(bytes.NewReader(make([]byte, 12)))
	if err != nil || n != "AAAAAAAAAAAAAAAA" {
		t.Errorf("NewNonce = %q, %v", n, err)
	}
	if _, err := NewNonce(iotest.ErrReader(errors.New("boom"))); err == nil {
		t.Error("NewNonce ignored a read error")
	}
	if _, err := NewNonce(bytes.NewReader(make([]byte, 5))); err == nil {
		t.Error("NewNonce accepted a short read")
	}
	h, err := ParseHeader(Sign("id", []byte("k"), "GET", "/", "h", 1, 1, n, "", ""))
	if err != nil || h.Nonce != n {
		t.Errorf("signed nonce does not parse: %v", err)
	}
}

// FuzzHawkHeader checks that ParseHeader never panics, that its errors wrap
// ErrBadHeader, and that a parsed header re-serialised by String parses to the same
// Header (when the canonical form still fits in MaxHeaderBytes).
func FuzzHawkHeader(f *testing.F) {
	for _, v := range loadVectors(f).Hawk {
		f.Add(v.Header)
	}
	f.Add(`hawk mac="m",ext="e x",hash="h",nonce="n",ts="01",id="i"`)
	f.Add(`Hawk id="i", ts="1", nonce="n", mac="m", app="a"`)
	f.Add(`Hawk id="i", ts="1", nonce="n", mac="m",`)
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		h, err := ParseHeader(s)
		if err != nil {
			if !errors.Is(err, ErrBadHeader) || h != nil {
				t.Fatalf("h = %v, err = %v", h, err)
			}
			return
		}
		if h.ID == "" || h.TS == "" || h.Nonce == "" || h.MAC == "" {
			t.Fatalf("required attribute empty: %+v", *h)
		}
		if _, err := h.Timestamp(); err != nil {
			t.Fatalf("parsed ts %q: %v", h.TS, err)
		}
		_ = Normalized(h, "GET", "/", "h", 1)
		s2 := h.String()
		h2, err := ParseHeader(s2)
		if len(s2) > MaxHeaderBytes {
			if err == nil {
				t.Fatalf("oversize canonical form %d bytes accepted", len(s2))
			}
			return
		}
		if err != nil {
			t.Fatalf("canonical form %q: %v", s2, err)
		}
		if *h2 != *h {
			t.Fatalf("round trip: %+v != %+v", *h2, *h)
		}
	})
}

func BenchmarkParseHeader(b *testing.B) {
	v := loadVectors(b).Hawk[0]
	for b.Loop() {
		if _, err := ParseHeader(v.Header); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyMAC(b *testing.B) {
	v := loadVectors(b).Hawk[0]
	key := v.key(b)
	h, _ := ParseHeader(v.Header)
	for b.Loop() {
		if !h.VerifyMAC(key, v.Method, v.Resource, v.Host, v.Port) {
			b.Fatal("mismatch")
		}
	}
}

func BenchmarkSign(b *testing.B) {
	v := loadVectors(b).Hawk[0]
	key := v.key(b)
	for b.Loop() {
		Sign(v.CredentialsID, key, v.Method, v.Resource, v.Host, v.Port, v.TS, v.Nonce, "", "")
	}
}
