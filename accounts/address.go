package accounts

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Mailable reports whether email is an address mail may be sent to (spec
// 14.5, Clarification C20): a single RFC 5322/6531 addr-spec in restricted
// form, a dot-atom local part (UTF-8 allowed, RFC 6531), "@", a dot-atom
// domain; no quoted local part, domain literal, obsolete form, comment,
// display name, angle bracket or whitespace. Mail only ever goes to the
// whole stored email, never to an address parsed out of it.
func Mailable(email string) bool {
	local, domain, ok := strings.Cut(email, "@")
	return ok && dotAtom(local) && dotAtom(domain)
}

// dotAtom: 1*atext *("." 1*atext), atext being RFC 5322's plus every
// non-ASCII character that is neither a control, a space nor invalid UTF-8
// (RFC 6531 UTF8-non-ascii).
func dotAtom(s string) bool {
	if s == "" || !utf8.ValidString(s) {
		return false
	}
	for part := range strings.SplitSeq(s, ".") {
		if part == "" {
			return false
		}
		for _, r := range part {
			if !atext(r) {
				return false
			}
		}
	}
	return true
}

func atext(r rune) bool {
	switch {
	case r >= 0x80:
		return !unicode.IsControl(r) && !unicode.IsSpace(r) && r != utf8.RuneError
	case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
		return true
	}
	return strings.ContainsRune("!#$%&'*+-/=?^_`{|}~", r)
}
