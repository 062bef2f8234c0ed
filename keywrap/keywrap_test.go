package keywrap

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
)

func checkHex(t *testing.T, name string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Errorf("%s = %x, want %x", name, got, want)
	}
}

func TestLabels(t *testing.T) {
	if got := KW("mainKDF"); got != "identity.mozilla.com/picl/v1/mainKDF" {
		t.Errorf("KW = %q", got)
	}
	if got := KWE("first-PBKDF", "a@b.c"); got != "identity.mozilla.com/picl/v1/first-PBKDF:a@b.c" {
		t.Errorf("KWE = %q", got)
	}
	if p := DefaultParams(); p != (Params{20000, 65536, 8, 1, 20000}) {
		t.Errorf("DefaultParams = %+v", p)
	}
}

func TestStretchVectors(t *testing.T) {
	v := loadVectors(t)
	nonEmpty(t, "stretch", len(v.Stretch))
	for _, tv := range v.Stretch {
		t.Run(tv.ID, func(t *testing.T) {
			t.Parallel()
			s, err := stretch(DefaultParams(), tv.Email, tv.Password, tv.PasswordSalt)
			if err != nil {
				t.Fatal(err)
			}
			checkHex(t, "K1", s.K1, tv.K1)
			checkHex(t, "K2", s.K2, tv.K2)
			checkHex(t, "stretchedPW", s.stretchedPW, tv.StretchedPW)
			checkHex(t, "srpPw", s.srpPw, tv.SrpPw)
			checkHex(t, "unwrapBKey", s.unwrapBKey, tv.UnwrapBKey)
			srpPw, unwrapBKey := Stretch(tv.Email, tv.Password, tv.PasswordSalt)
			checkHex(t, "Stretch srpPw", srpPw, tv.SrpPw)
			checkHex(t, "Stretch unwrapBKey", unwrapBKey, tv.UnwrapBKey)
		})
	}
}

func TestStretchWithParams(t *testing.T) {
	cheap := Params{PBKDF2Rounds1: 2, ScryptN: 16, ScryptR: 1, ScryptP: 1, PBKDF2Rounds2: 2}
	a1, b1, err := StretchWith(cheap, []byte("a@b.c"), []byte("pw"), []byte("salt"))
	if err != nil {
		t.Fatal(err)
	}
	a2, b2, _ := StretchWith(cheap, []byte("a@b.c"), []byte("pw"), []byte("salt"))
	if !bytes.Equal(a1, a2) || !bytes.Equal(b1, b2) || len(a1) != 32 || len(b1) != 32 {
		t.Fatal("StretchWith is not deterministic or has wrong lengths")
	}
	// Every input matters.
	for _, in := range [][3]string{{"a@b.d", "pw", "salt"}, {"a@b.c", "pX", "salt"}, {"a@b.c", "pw", "salX"}} {
		a, b, _ := StretchWith(cheap, []byte(in[0]), []byte(in[1]), []byte(in[2]))
		if bytes.Equal(a, a1) || bytes.Equal(b, b1) {
			t.Errorf("input %q does not change the output", in)
		}
	}
	for _, bad := range []Params{
		{0, 16, 1, 1, 2}, {2, 16, 1, 1, 0}, {2, 15, 1, 1, 2}, {2, 1, 1, 1, 2}, {2, 16, 0, 1, 2},
	} {
		if _, _, err := StretchWith(bad, nil, nil, nil); err == nil {
			t.Errorf("StretchWith(%+v) accepted invalid parameters", bad)
		}
	}
}

func TestUnwrapVectors(t *testing.T) {
	v := loadVectors(t)
	nonEmpty(t, "unwrap", len(v.Unwrap))
	for _, tv := range v.Unwrap {
		checkHex(t, tv.ID+" kB", UnwrapKB(tv.WrapKb, tv.UnwrapBKey), tv.KB)
		checkHex(t, tv.ID+" wrapKb", WrapKB(tv.KB, tv.UnwrapBKey), tv.WrapKb)
	}
}

func TestUnwrapKBLengthMismatchPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("no panic")
		}
	}()
	UnwrapKB(make([]byte, 32), make([]byte, 31))
}

func TestTokenVectors(t *testing.T) {
	v := loadVectors(t)
	nonEmpty(t, "tokens", len(v.Tokens))
	for _, tv := range v.Tokens {
		id, authKey, bundleKey := DeriveToken(tv.TokenType, tv.Seed)
		checkHex(t, tv.ID+" tokenId", id, tv.TokenID)
		checkHex(t, tv.ID+" authKey", authKey, tv.AuthKey)
		checkHex(t, tv.ID+" bundleKey", bundleKey, tv.BundleKey)
	}
}

func TestDeriveTokenSlicesIndependent(t *testing.T) {
	id, authKey, _ := DeriveToken("authToken", make([]byte, 32))
	want := bytes.Clone(authKey)
	_ = append(id, 0xff)
	if !bytes.Equal(authKey, want) {
		t.Fatal("appending to tokenID overwrote authKey")
	}
}

func TestBundleVectors(t *testing.T) {
	v := loadVectors(t)
	nonEmpty(t, "bundles", len(v.Bundles))
	contexts := map[string]bool{
		ContextAuthFinish: true, ContextSessionCreate: true, ContextPasswordChange: true,
		ContextAccountKeys: true, ContextAccountReset: true,
	}
	for _, tv := range v.Bundles {
		if !contexts[tv.Context] {
			t.Errorf("%s: context %q has no constant", tv.ID, tv.Context)
		}
		delete(contexts, tv.Context)
		checkHex(t, tv.ID+" bundle", Bundle(tv.Key, tv.Context, tv.Plaintext), tv.Bundle)
		pt, err := Unbundle(tv.Key, tv.Context, tv.Bundle)
		if err != nil {
			t.Errorf("%s: Unbundle: %v", tv.ID, err)
		}
		checkHex(t, tv.ID+" unbundle", pt, tv.Plaintext)
	}
	if len(contexts) != 0 {
		t.Errorf("contexts without a vector: %v", contexts)
	}
}

// TestBundleTamper flips every bit of every vector bundle (ciphertext and MAC) and also
// tries a wrong key, a wrong context, truncation and extension.
func TestBundleTamper(t *testing.T) {
	v := loadVectors(t)
	nonEmpty(t, "bundles", len(v.Bundles))
	for _, tv := range v.Bundles {
		b := bytes.Clone(tv.Bundle)
		for i := range b {
			for bit := range 8 {
				b[i] ^= 1 << bit
				if _, err := Unbundle(tv.Key, tv.Context, b); !errors.Is(err, ErrBadBundle) {
					t.Fatalf("%s: flipping bit %d of byte %d: err = %v", tv.ID, bit, i, err)
				}
				b[i] ^= 1 << bit
			}
		}
		key := bytes.Clone(tv.Key)
		key[0] ^= 1
		other := ContextAccountKeys
		if tv.Context == other {
			other = ContextAccountReset
		}
		for name, f := range map[string]func() ([]byte, error){
			"wrong key":     func() ([]byte, error) { return Unbundle(key, tv.Context, tv.Bundle) },
			"wrong context": func() ([]byte, error) { return Unbundle(tv.Key, other, tv.Bundle) },
			"truncated":     func() ([]byte, error) { return Unbundle(tv.Key, tv.Context, tv.Bundle[:len(tv.Bundle)-1]) },
			"drop first":    func() ([]byte, error) { return Unbundle(tv.Key, tv.Context, tv.Bundle[1:]) },
			"extended":      func() ([]byte, error) { return Unbundle(tv.Key, tv.Context, append(bytes.Clone(tv.Bundle), 0)) },
		} {
			if pt, err := f(); !errors.Is(err, ErrBadBundle) || pt != nil {
				t.Errorf("%s: %s: pt = %x, err = %v", tv.ID, name, pt, err)
			}
		}
	}
}

func TestUnbundleLengths(t *testing.T) {
	key := []byte("k")
	for _, n := range []int{0, 1, 31} {
		if _, err := Unbundle(key, ContextAccountKeys, make([]byte, n)); !errors.Is(err, ErrBadBundle) {
			t.Errorf("%d-byte bundle: err = %v", n, err)
		}
	}
	if _, err := Unbundle(key, ContextAccountKeys, make([]byte, MACSize+MaxBundlePlaintext+1)); !errors.Is(err, ErrBadBundle) {
		t.Errorf("oversize bundle: err = %v", err)
	}
	// Empty and maximal plaintexts round-trip.
	for _, n := range []int{0, 1, MaxBundlePlaintext} {
		pt := bytes.Repeat([]byte{0x5a}, n)
		b := Bundle(key, ContextAccountKeys, pt)
		if len(b) != n+MACSize {
			t.Fatalf("len(Bundle) = %d, want %d", len(b), n+MACSize)
		}
		got, err := Unbundle(key, ContextAccountKeys, b)
		if err != nil || !bytes.Equal(got, pt) {
			t.Errorf("%d-byte plaintext: round trip failed: %v", n, err)
		}
	}
}

func TestBundleOversizePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("no panic")
		}
	}()
	Bundle([]byte("k"), ContextAccountKeys, make([]byte, MaxBundlePlaintext+1))
}

// TestLoginChain follows CHAIN-1 through stretching, the three response bundles, the
// tokens they carry and kB (the SRP steps belong to package srp).
func TestLoginChain(t *testing.T) {
	v := loadVectors(t)
	nonEmpty(t, "login_chain", len(v.LoginChain))
	for _, c := range v.LoginChain {
		t.Run(c.ID, func(t *testing.T) {
			srpPw, unwrapBKey := Stretch(c.Email, c.Password, c.PasswordSalt)
			checkHex(t, "srpPw", srpPw, c.SrpPw)
			checkHex(t, "unwrapBKey", unwrapBKey, c.UnwrapBKey)

			checkHex(t, "auth/finish bundle", Bundle(c.K, ContextAuthFinish, c.AuthToken.Seed), c.AuthFinishBundle)
			seed, err := Unbundle(c.K, ContextAuthFinish, c.AuthFinishBundle)
			if err != nil {
				t.Fatal(err)
			}
			checkHex(t, "authToken seed", seed, c.AuthToken.Seed)
			checkToken(t, "authToken", "authToken", seed, c.AuthToken, true)
			_, _, authBundleKey := DeriveToken("authToken", seed)

			seeds, err := Unbundle(authBundleKey, ContextSessionCreate, c.SessionCreateBundle)
			if err != nil {
				t.Fatal(err)
			}
			if len(seeds) != 64 {
				t.Fatalf("session/create plaintext is %d bytes", len(seeds))
			}
			checkHex(t, "session/create bundle", Bundle(authBundleKey, ContextSessionCreate, seeds), c.SessionCreateBundle)
			checkToken(t, "keyFetchToken", "keyFetchToken", seeds[:32], c.KeyFetchToken, true)
			checkToken(t, "sessionToken", "sessionToken", seeds[32:], c.SessionToken, false)
			_, _, kfBundleKey := DeriveToken("keyFetchToken", seeds[:32])

			keys, err := Unbundle(kfBundleKey, ContextAccountKeys, c.AccountKeysBundle)
			if err != nil {
				t.Fatal(err)
			}
			if len(keys) != 64 {
				t.Fatalf("account/keys plaintext is %d bytes", len(keys))
			}
			checkHex(t, "account/keys bundle", Bundle(kfBundleKey, ContextAccountKeys, keys), c.AccountKeysBundle)
			checkHex(t, "kA", keys[:32], c.KA)
			checkHex(t, "wrapKb", keys[32:], c.WrapKb)
			checkHex(t, "kB", UnwrapKB(keys[32:], unwrapBKey), c.KB)
		})
	}
}

func checkToken(t *testing.T, name, tokenType string, seed []byte, want chainToken, withBundleKey bool) {
	t.Helper()
	checkHex(t, name+" seed", seed, want.Seed)
	id, authKey, bundleKey := DeriveToken(tokenType, seed)
	checkHex(t, name+" tokenId", id, want.TokenID)
	checkHex(t, name+" authKey", authKey, want.AuthKey)
	if withBundleKey {
		checkHex(t, name+" bundleKey", bundleKey, want.BundleKey)
	}
}

// FuzzUnbundle checks that Unbundle never panics, rejects short input, and that whatever
// it accepts is exactly what Bundle produces for the returned plaintext.
func FuzzUnbundle(f *testing.F) {
	v := loadVectors(f)
	nonEmpty(f, "bundles", len(v.Bundles))
	for _, tv := range v.Bundles {
		f.Add([]byte(tv.Key), tv.Context, []byte(tv.Bundle))
		f.Add([]byte(tv.Key), tv.Context, []byte(tv.Bundle[:len(tv.Bundle)-1]))
	}
	f.Add([]byte{}, "", []byte{})
	f.Fuzz(func(t *testing.T, key []byte, context string, bundle []byte) {
		pt, err := Unbundle(key, context, bundle)
		if err != nil {
			if !errors.Is(err, ErrBadBundle) || pt != nil {
				t.Fatalf("pt = %x, err = %v", pt, err)
			}
			return
		}
		if len(bundle) < MACSize || len(pt) != len(bundle)-MACSize {
			t.Fatalf("accepted %d-byte bundle with %d-byte plaintext", len(bundle), len(pt))
		}
		if again := Bundle(key, context, pt); !bytes.Equal(again, bundle) {
			t.Fatalf("Bundle(Unbundle(b)) = %s, want %s", hex.EncodeToString(again), hex.EncodeToString(bundle))
		}
	})
}

func BenchmarkDeriveToken(b *testing.B) {
	seed := make([]byte, 32)
	for b.Loop() {
		DeriveToken("sessionToken", seed)
	}
}

func BenchmarkBundle(b *testing.B) {
	key, pt := make([]byte, 32), make([]byte, 64)
	b.SetBytes(int64(len(pt)))
	for b.Loop() {
		Bundle(key, ContextAccountKeys, pt)
	}
}

func BenchmarkUnbundle(b *testing.B) {
	key := make([]byte, 32)
	bundle := Bundle(key, ContextAccountKeys, make([]byte, 64))
	b.SetBytes(64)
	for b.Loop() {
		if _, err := Unbundle(key, ContextAccountKeys, bundle); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStretch measures the protocol's full cost (scrypt N = 65536, 64 MiB).
func BenchmarkStretch(b *testing.B) {
	email, pw, salt := []byte("andré@example.org"), []byte("pässwörd"), make([]byte, 32)
	for b.Loop() {
		Stretch(email, pw, salt)
	}
}
