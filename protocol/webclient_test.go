package protocol

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// webClientAPI is the web client's request module, which carries its own
// copy of the errnos it acts on.
const webClientAPI = "../keyserver/web/static/api.js"

// webClientErrnos is what each name of api.js's ERRNO table must be. A name
// added to or removed from api.js must be added to or removed from here.
var webClientErrnos = map[string]Errno{
	"ACCOUNT_EXISTS":      ErrnoAccountExists,
	"UNKNOWN_ACCOUNT":     ErrnoUnknownAccount,
	"INCORRECT_PASSWORD":  ErrnoIncorrectPassword,
	"UNVERIFIED":          ErrnoUnverifiedAccount,
	"INVALID_CODE":        ErrnoInvalidCode,
	"INVALID_PARAM":       ErrnoInvalidParameter,
	"INVALID_TOKEN":       ErrnoInvalidToken,
	"INVALID_TIMESTAMP":   ErrnoInvalidTimestamp,
	"TOO_MANY_REQUESTS":   ErrnoTooManyRequests,
	"EMAIL_CASE":          ErrnoIncorrectEmailCase,
	"UNKNOWN_DEVICE":      ErrnoUnknownDevice,
	"DEVICE_EXISTS":       ErrnoDeviceExists,
	"DISABLED":            ErrnoAccountDisabled,
	"MISSING_PARAM":       ErrnoMissingParameter,
	"SERVICE_UNAVAILABLE": ErrnoServiceUnavailable,
	"REQUEST_BLOCKED":     ErrnoRequestBlocked,
	// docs/recovery-key.md
	"INVALID_RECOVERY_KEY": ErrnoInvalidRecoveryKey,
	"NO_RECOVERY_KEY":      ErrnoNoRecoveryKey,
}

var (
	errnoTableRE  = regexp.MustCompile(`(?s)export const ERRNO = Object\.freeze\(\{(.*?)\}\);`)
	errnoEntryRE  = regexp.MustCompile(`^([A-Za-z_$][A-Za-z0-9_$]*)\s*:\s*([0-9]+)$`)
	lineCommentRE = regexp.MustCompile(`//[^\n]*`)
)

// parseErrnoTable reads the members of `export const ERRNO =
// Object.freeze({...});` in js. Every member must be NAME: NUMBER; anything
// else (a computed value, a spread, a duplicate) is an error, so that the
// test cannot pass by not seeing a member.
func parseErrnoTable(js string) (map[string]int, error) {
	m := errnoTableRE.FindAllStringSubmatch(js, -1)
	if len(m) != 1 {
		return nil, fmt.Errorf("found %d `export const ERRNO = Object.freeze({...});` tables, want 1", len(m))
	}
	body := lineCommentRE.ReplaceAllString(m[0][1], "")
	table := map[string]int{}
	for _, member := range strings.Split(body, ",") {
		member = strings.TrimSpace(member)
		if member == "" { // trailing comma
			continue
		}
		e := errnoEntryRE.FindStringSubmatch(member)
		if e == nil {
			return nil, fmt.Errorf("member %q is not NAME: NUMBER", member)
		}
		if _, dup := table[e[1]]; dup {
			return nil, fmt.Errorf("member %s appears twice", e[1])
		}
		n, err := strconv.Atoi(e[2])
		if err != nil {
			return nil, fmt.Errorf("member %s: %v", e[1], err)
		}
		table[e[1]] = n
	}
	if len(table) == 0 {
		return nil, fmt.Errorf("the ERRNO table is empty")
	}
	return table, nil
}

// TestWebClientErrnos: the web client's ERRNO table names only errnos of
// the protocol, each under the name expected for it.
func TestWebClientErrnos(t *testing.T) {
	b, err := os.ReadFile(webClientAPI)
	if err != nil {
		t.Fatalf("reading the web client: %v", err)
	}
	js, err := parseErrnoTable(string(b))
	if err != nil {
		t.Fatalf("%s: %v", webClientAPI, err)
	}
	checkWebClientErrnos(t, js)
}

func checkWebClientErrnos(t testing.TB, js map[string]int) {
	t.Helper()
	for name, n := range js {
		if _, ok := Messages[n]; !ok {
			t.Errorf("%s: ERRNO.%s = %d is not an errno of the protocol (protocol.Messages)", webClientAPI, name, n)
		}
		want, ok := webClientErrnos[name]
		switch {
		case !ok:
			t.Errorf("%s: ERRNO.%s = %d has no expectation in webClientErrnos; add it", webClientAPI, name, n)
		case n != want:
			t.Errorf("%s: ERRNO.%s = %d, but the protocol's errno for it is %d (%s)", webClientAPI, name, n, want, Messages[want])
		}
	}
	for name, want := range webClientErrnos {
		if _, ok := js[name]; !ok {
			t.Errorf("%s: ERRNO has no member %s (errno %d); remove it from webClientErrnos if the web client no longer uses it", webClientAPI, name, want)
		}
	}
}

// TestWebClientErrnosCatchesDisagreement runs the check on tables that
// disagree with the protocol, and the parser on malformed tables.
func TestWebClientErrnosCatchesDisagreement(t *testing.T) {
	good := map[string]int{}
	for name, n := range webClientErrnos {
		good[name] = n
	}
	for name, mutate := range map[string]func(map[string]int){
		"wrong number":    func(m map[string]int) { m["EMAIL_CASE"] = 121 },
		"swapped":         func(m map[string]int) { m["INVALID_CODE"], m["INVALID_TOKEN"] = m["INVALID_TOKEN"], m["INVALID_CODE"] },
		"unknown errno":   func(m map[string]int) { m["NEW_THING"] = 199 },
		"unexpected name": func(m map[string]int) { m["INVALID_NONCE"] = ErrnoInvalidNonce },
		"missing name":    func(m map[string]int) { delete(m, "DISABLED") },
	} {
		m := map[string]int{}
		for k, v := range good {
			m[k] = v
		}
		mutate(m)
		rec := &recorder{TB: t}
		checkWebClientErrnos(rec, m)
		if !rec.failed {
			t.Errorf("%s: not detected", name)
		}
	}
	rec := &recorder{TB: t}
	checkWebClientErrnos(rec, good)
	if rec.failed {
		t.Errorf("the expectations themselves fail: %v", rec.msgs)
	}

	for _, js := range []string{
		"",
		"export const ERRNO = Object.freeze({});",
		"export const ERRNO = Object.freeze({ A: 101, B: 101 + 1 });",
		"export const ERRNO = Object.freeze({ A: 101, ...MORE });",
		"export const ERRNO = Object.freeze({ A: 101, A: 102 });",
		"export const ERRNO = Object.freeze({ A: 101 });\nexport const ERRNO = Object.freeze({ B: 102 });",
	} {
		if m, err := parseErrnoTable(js); err == nil {
			t.Errorf("parsed %q as %v", js, m)
		}
	}
	m, err := parseErrnoTable("x\nexport const ERRNO = Object.freeze({\n  A: 101, // note, with a comma\n  B_2:102,\n});\n")
	if err != nil || len(m) != 2 || m["A"] != 101 || m["B_2"] != 102 {
		t.Errorf("got %v, %v", m, err)
	}
}

// recorder is a testing.TB that records failures instead of failing.
type recorder struct {
	testing.TB
	failed bool
	msgs   []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.failed = true
	r.msgs = append(r.msgs, fmt.Sprintf(format, args...))
}
