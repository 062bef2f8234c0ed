package keywrap

import (
	"crypto/hkdf"
	"crypto/pbkdf2"
	"crypto/sha256"
	"errors"
	"fmt"

	"golang.org/x/crypto/scrypt"
)

// StretchType is the "type" member of the wire passwordStretching object (spec 2).
const StretchType = "PBKDF2/scrypt/PBKDF2/v1"

// Params are the stretching parameters, named after the wire members of spec 2. The
// protocol fixes them to DefaultParams(); other values exist only so that tests of other
// packages can stretch cheaply.
type Params struct {
	PBKDF2Rounds1 int // PBKDF2_rounds_1
	ScryptN       int // scrypt_N (a power of two > 1)
	ScryptR       int // scrypt_r
	ScryptP       int // scrypt_p
	PBKDF2Rounds2 int // PBKDF2_rounds_2
}

// DefaultParams returns the protocol's fixed parameters: 20000, 65536, 8, 1, 20000.
// scrypt with them needs 64 MiB of memory.
func DefaultParams() Params {
	return Params{PBKDF2Rounds1: 20000, ScryptN: 65536, ScryptR: 8, ScryptP: 1, PBKDF2Rounds2: 20000}
}

// Stretch derives srpPw and unwrapBKey (32 bytes each) from email, password and
// passwordSalt with the protocol's parameters (spec 2). email and password are the exact
// UTF-8 bytes. It takes about 200 ms and 64 MiB.
func Stretch(email, password, passwordSalt []byte) (srpPw, unwrapBKey []byte) {
	srpPw, unwrapBKey, err := StretchWith(DefaultParams(), email, password, passwordSalt)
	if err != nil {
		panic("keywrap: Stretch: " + err.Error())
	}
	return srpPw, unwrapBKey
}

// StretchWith is Stretch with explicit parameters; it fails only on invalid parameters.
func StretchWith(p Params, email, password, passwordSalt []byte) (srpPw, unwrapBKey []byte, err error) {
	s, err := stretch(p, email, password, passwordSalt)
	if err != nil {
		return nil, nil, err
	}
	clear(s.K1)
	clear(s.K2)
	clear(s.stretchedPW)
	return s.srpPw, s.unwrapBKey, nil
}

// stretched holds every intermediate value of spec 2 (for the vector tests).
type stretched struct {
	K1, K2, stretchedPW, srpPw, unwrapBKey []byte
}

func stretch(p Params, email, password, passwordSalt []byte) (*stretched, error) {
	if p.PBKDF2Rounds1 < 1 || p.PBKDF2Rounds2 < 1 {
		return nil, errors.New("keywrap: PBKDF2 rounds must be positive")
	}
	// 1. K1 = PBKDF2(password, KWE("first-PBKDF", email), rounds1, 32)
	K1, err := pbkdf2.Key(sha256.New, string(password), []byte(KWE("first-PBKDF", string(email))), p.PBKDF2Rounds1, 32)
	if err != nil {
		return nil, fmt.Errorf("keywrap: first PBKDF2: %w", err)
	}
	// 2. K2 = scrypt(K1, KW("scrypt"), N, r, p, 32)
	K2, err := scrypt.Key(K1, []byte(KW("scrypt")), p.ScryptN, p.ScryptR, p.ScryptP, 32)
	if err != nil {
		return nil, fmt.Errorf("keywrap: scrypt: %w", err)
	}
	// 3. stretchedPW = PBKDF2(K2 || password, KWE("second-PBKDF", email), rounds2, 32):
	// the password is appended again.
	pw2 := make([]byte, 0, len(K2)+len(password))
	pw2 = append(append(pw2, K2...), password...)
	stretchedPW, err := pbkdf2.Key(sha256.New, string(pw2), []byte(KWE("second-PBKDF", string(email))), p.PBKDF2Rounds2, 32)
	clear(pw2)
	if err != nil {
		return nil, fmt.Errorf("keywrap: second PBKDF2: %w", err)
	}
	// 4. srpPw || unwrapBKey = HKDF(stretchedPW, salt = passwordSalt, KW("mainKDF"), 64);
	// the only HKDF of the protocol with a non-empty salt.
	okm, err := hkdf.Key(sha256.New, stretchedPW, passwordSalt, KW("mainKDF"), 64)
	if err != nil {
		return nil, fmt.Errorf("keywrap: HKDF: %w", err)
	}
	return &stretched{K1: K1, K2: K2, stretchedPW: stretchedPW, srpPw: okm[0:32:32], unwrapBKey: okm[32:64:64]}, nil
}
