package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyserver/keyserver/certs"
)

// `keys generate --alg rs256` writes a 2048-bit RSA key, eddsa an Ed25519
// key (spec 7.3).
func TestKeysGenerateSizes(t *testing.T) {
	for alg, check := range map[string]func(any) bool{
		"rs256": func(k any) bool { r, ok := k.(*rsa.PrivateKey); return ok && r.N.BitLen() == 2048 },
		"eddsa": func(k any) bool { _, ok := k.(ed25519.PrivateKey); return ok },
	} {
		file := filepath.Join(t.TempDir(), alg+".pem")
		var out, errOut bytes.Buffer
		if err := runKeys([]string{"generate", "--alg", alg, "--out", file}, &out, &errOut); err != nil {
			t.Fatalf("%s: %v %s", alg, err, errOut.String())
		}
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		block, _ := pem.Decode(data)
		key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil || !check(key) {
			t.Fatalf("%s: wrote %T (%v)", alg, key, err)
		}
	}
}

// serve refuses a signing or retired RSA key that is not exactly 2048 bits,
// naming the size and the rule (spec 7.3, C21).
func TestSigningKeySize(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, block *pem.Block) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	odd, err := rsa.GenerateKey(rand.Reader, 2056)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(odd)
	oddKey := write("odd.pem", &pem.Block{Type: "PRIVATE KEY", Bytes: der})
	pubDER, _ := x509.MarshalPKIXPublicKey(&odd.PublicKey)
	oddPub := write("odd.pub.pem", &pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	good, err := certs.GenerateKey(certs.RS256, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	goodPEM, _ := certs.MarshalPrivateKey(good)
	block, _ := pem.Decode(goodPEM)
	goodKey := write("good.pem", block)

	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	for name, f := range map[string]*signingFlags{
		"signing key": {signingKey: oddKey},
		"retired key": {signingKey: goodKey, retiredKeys: fileList{oddPub}},
	} {
		_, _, err := f.load(logger, false)
		if err == nil || !strings.Contains(err.Error(), "2056 bits") || !strings.Contains(err.Error(), "exactly 2048 bits") {
			t.Errorf("%s of 2056 bits: %v", name, err)
		}
	}
	signer, retired, err := (&signingFlags{signingKey: goodKey, retiredKeys: fileList{goodKey}}).load(logger, false)
	if err != nil || signer.Algorithm() != certs.RS256 || len(retired) != 1 {
		t.Fatalf("2048-bit keys: %v", err)
	}
}
