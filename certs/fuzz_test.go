package certs

import (
	"bytes"
	"testing"
	"time"
)

// FuzzParsePublicKey: the parser never panics, and whatever it accepts
// re-serialises to a key it accepts again unchanged.
func FuzzParsePublicKey(f *testing.F) {
	for _, v := range loadVectors(f) {
		f.Add([]byte(v.Request.PublicKey))
	}
	grp := dsGroups["DS128"]
	f.Add([]byte(dsJSON("02", grp[0], grp[1], grp[2])))
	f.Add([]byte(`{"algorithm":"RS","n":"0","e":"3"}`))
	f.Add([]byte(`{"algorithm":"DS"}`))
	f.Add([]byte(`{"algorithm":"RS","n":"1","n":"1"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := ParsePublicKey(data, true)
		if err != nil {
			return
		}
		out, err := k.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		k2, err := ParsePublicKey(out, true)
		if err != nil {
			t.Fatalf("re-serialised key %s refused: %v", out, err)
		}
		if out2, _ := k2.MarshalJSON(); !bytes.Equal(out, out2) {
			t.Fatalf("not canonical: %s then %s", out, out2)
		}
	})
}

// FuzzVerify: the verifier never panics on any certificate or backed
// assertion, and accepts nothing the vector key did not sign.
func FuzzVerify(f *testing.F) {
	vs := loadVectors(f)
	v := vs[0]
	ks, err := ParseJWKS(v.JWKS)
	if err != nil {
		f.Fatal(err)
	}
	ver := &Verifier{Keys: ks, LegacyClientKeys: true, Now: func() time.Time { return time.UnixMilli(v.NowMs) }}
	f.Add(v.Cert)
	f.Add(v.Cert + "~" + v.SigningInput + ".AAAA")
	f.Add(v.SigningInput + ".")
	f.Add("e30.e30.AA~e30.e30.AA")
	f.Fuzz(func(t *testing.T, token string) {
		c, err := ver.VerifyCertificate(token)
		if err == nil && token != v.Cert {
			t.Fatalf("accepted a certificate the key did not sign: %q (%+v)", token, c)
		}
		_, _ = ver.VerifyAssertion(token, "https://example.com")
	})
}
