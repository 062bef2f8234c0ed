package protocol

import (
	"encoding/json"
	"os"
	"testing"
)

// vectorsPath is the spec's vector file, beside the project.
const vectorsPath = "../../shared/spec/vectors.json"

// TestTokenTypesMatchVectors: every token vector names a token type of the
// table, and every type of the table has a vector.
func TestTokenTypesMatchVectors(t *testing.T) {
	b, err := os.ReadFile(vectorsPath)
	if err != nil {
		t.Fatalf("reading vectors: %v", err)
	}
	var v struct {
		Tokens []struct {
			ID        string `json:"id"`
			TokenType string `json:"tokenType"`
		} `json:"tokens"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decoding vectors: %v", err)
	}
	if len(v.Tokens) == 0 {
		t.Fatal("no token vectors found")
	}
	types := map[TokenType]bool{}
	for _, typ := range TokenTypes {
		types[typ] = true
	}
	for _, tv := range v.Tokens {
		if !TokenType(tv.TokenType).Valid() {
			t.Errorf("%s: token type %q has no constant", tv.ID, tv.TokenType)
		}
		delete(types, TokenType(tv.TokenType))
	}
	if len(types) != 0 {
		t.Errorf("token types without a vector: %v", types)
	}
}
