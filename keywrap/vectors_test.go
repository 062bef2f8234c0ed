package keywrap

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"
)

const vectorsPath = "../../shared/spec/vectors.json"

type hexBytes []byte

func (h *hexBytes) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := hex.DecodeString(s)
	*h = v
	return err
}

type stretchVector struct {
	ID                                     string
	Email, Password, PasswordSalt          hexBytes
	K1, K2, StretchedPW, SrpPw, UnwrapBKey hexBytes
}

type unwrapVector struct {
	ID                     string
	WrapKb, UnwrapBKey, KB hexBytes
}

type tokenVector struct {
	ID                                string
	TokenType                         string
	Seed, TokenID, AuthKey, BundleKey hexBytes
}

type bundleVector struct {
	ID                     string
	Context                string
	Key, Plaintext, Bundle hexBytes
}

type chainToken struct {
	Seed, TokenID, AuthKey, BundleKey hexBytes
}

type chainVector struct {
	ID                                               string
	Email, Password, PasswordSalt, SrpPw, UnwrapBKey hexBytes
	K                                                hexBytes
	AuthToken, KeyFetchToken, SessionToken           chainToken
	AuthFinishBundle                                 hexBytes `json:"auth_finish_bundle"`
	SessionCreateBundle                              hexBytes `json:"session_create_bundle"`
	AccountKeysBundle                                hexBytes `json:"account_keys_bundle"`
	KA, WrapKb, KB                                   hexBytes
}

type vectorFile struct {
	Stretch    []stretchVector
	Unwrap     []unwrapVector
	Tokens     []tokenVector
	Bundles    []bundleVector
	LoginChain []chainVector `json:"login_chain"`
}

// loadVectors reads the shared vector file; tb fails if it cannot, and callers fail on
// an empty group via nonEmpty.
func loadVectors(tb testing.TB) *vectorFile {
	tb.Helper()
	b, err := os.ReadFile(vectorsPath)
	if err != nil {
		tb.Fatalf("reading vectors: %v", err)
	}
	var v vectorFile
	if err := json.Unmarshal(b, &v); err != nil {
		tb.Fatalf("decoding vectors: %v", err)
	}
	return &v
}

func nonEmpty(tb testing.TB, group string, n int) {
	tb.Helper()
	if n == 0 {
		tb.Fatalf("no vectors found in group %q", group)
	}
}
