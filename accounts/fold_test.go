package accounts

import "testing"

func TestFold(t *testing.T) {
	// C15: simple lower-case mapping per code point, no special casing.
	folds := map[string]string{"İNFO@Example.ORG": "info@example.org", "\u212a@x": "k@x",
		"ΣΑΣ@x": "σασ@x", "ς@x": "ς@x", "ß@x": "ß@x", "ÀB@C": "àb@c"}
	for in, want := range folds {
		if got := Fold(in); got != want {
			t.Errorf("fold(%q) = %q, want %q", in, got, want)
		}
	}
}
