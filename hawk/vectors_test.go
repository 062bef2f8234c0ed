package hawk

import (
	"encoding/json"
	"os"
	"testing"
)

const vectorsPath = "../../shared/spec/vectors.json"

type hawkVector struct {
	ID            string  `json:"id"`
	CredentialsID string  `json:"credentials_id"`
	Key           string  `json:"key"` // hex
	Algorithm     string  `json:"algorithm"`
	Method        string  `json:"method"`
	Resource      string  `json:"resource"`
	Host          string  `json:"host"`
	Port          int     `json:"port"`
	TS            int64   `json:"ts"`
	Nonce         string  `json:"nonce"`
	Ext           string  `json:"ext"`
	ContentType   *string `json:"content_type"`
	Payload       *string `json:"payload_utf8"`
	Hash          *string `json:"hash"`
	Normalized    string  `json:"normalized_utf8"`
	MAC           string  `json:"mac"`
	Header        string  `json:"header"`
}

type chainVector struct {
	ID        string `json:"id"`
	AuthToken struct {
		TokenID string `json:"tokenId"`
		AuthKey string `json:"authKey"`
	} `json:"authToken"`
	SessionCreateHawkHeader string `json:"session_create_hawk_header"`
}

type vectorFile struct {
	Hawk       []hawkVector  `json:"hawk"`
	LoginChain []chainVector `json:"login_chain"`
}

// loadVectors reads the shared vector file and fails tb if the hawk group is empty.
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
	if len(v.Hawk) == 0 {
		tb.Fatal(`no vectors found in group "hawk"`)
	}
	return &v
}
