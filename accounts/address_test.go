package accounts

import "testing"

// C20: only a plain addr-spec receives mail.
func TestMailable(t *testing.T) {
	for email, want := range map[string]bool{
		"alice@example.org":                      true,
		"andré@exämple.org":                      true,
		"a.b+c!#$%&'*/=?^_`{|}~-@example.com":    true,
		"用户@例子.广告":                               true,
		`"x" <victim@example.com>`:               false,
		"<victim@example.com>":                   false,
		"victim@example.com (comment)":           false,
		`"quoted"@example.com`:                   false,
		"a@[192.0.2.1]":                          false,
		"a..b@example.com":                       false,
		".a@example.com":                         false,
		"a.@example.com":                         false,
		"a@example..com":                         false,
		"a@example.com.":                         false,
		"a b@example.com":                        false,
		"a@b@example.com":                        false,
		"victim@example.com,other@example.com":   false,
		"a\u00a0b@example.com":                   false, // no-break space
		"a\u0085b@example.com":                   false, // a C1 control
		"@example.com":                           false,
		"a@":                                     false,
		"victim@example.com\r\nBcc: x@example.o": false,
	} {
		if got := Mailable(email); got != want {
			t.Errorf("Mailable(%q) = %v, want %v", email, got, want)
		}
	}
}
