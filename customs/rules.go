// Package customs is the abuse protection of the PICL key server (spec
// section 14, Product decision D18; FxA calls its service "customs"): it
// bounds password guessing, account enumeration, mail bombing and record
// creation.
//
// The rules are data: the table of spec 14.2 is DefaultRules, one Rule per
// limit (a rule of the spec with several limits, such as R8 "3 in 1 h per
// (account, ip); 10 in 1 h per account", has one entry per limit, R8a and
// R8b, in the spec's order). Each Rule says what it counts, per which key,
// its limit and sliding window, where it refuses (a Point) and how (429/114
// with retryAfter, or 400/125 for R2).
//
// The rules engine has two halves:
//
//   - Check, before any SRP arithmetic or write of the request: the rules
//     that refuse at a Point are evaluated for the request; rules that count
//     requests (R4, R5, R7, R8, R9, R10 per ip) count it when none refuses.
//     A refusal is logged with the rule name, reported to Config.OnRefusal
//     (metrics) and audited as `blocked` (at most once per rule and key per
//     window).
//   - Record, after the outcome is known: failures for R1 to R3 (a 103 at
//     auth/finish; a wrong unblock code for R1 only), mails for R6, failed
//     recoveries for R10, wrong email codes for R11; Succeeded clears R1 for
//     (account, ip) and makes the ip known (R2), Reset clears R1 and R2.
//
// Guard repeats the checks of the failure-counting rules inside the caller's
// transaction, under LockCounts, so that concurrent guesses cannot overrun a
// limit: of concurrent failures exactly the limit are counted and answered,
// the others are refused (their result never revealed).
//
// Counts of failures, mails and mail-sending requests live in the store
// (ephemeral transactions: a successful sign-in gets no flushed commit and
// no commit of its own), so they hold across server instances; the pure
// request-rate rules R4, R5 and R7 are counted in each instance's memory
// (the limit then applies per instance). A store that cannot answer makes
// Check fail with its error (store.ErrUnavailable: 503/201): no request
// passes unchecked.
package customs

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Refusal is how a rule refuses.
type Refusal int

const (
	// TooMany is 429/114 with retryAfter.
	TooMany Refusal = iota + 1
	// Blocked is 400/125 with verificationMethod "email" and no
	// retryAfter: an unblock code lifts it (spec 14.3).
	Blocked
)

// KeyKind is what a rule counts per (spec 14.1).
type KeyKind int

const (
	// ByIP: the client IP (IPv4, or the IPv6 /64).
	ByIP KeyKind = iota + 1
	// ByAccount: the fold of the account's email.
	ByAccount
	// ByAccountIP: the pair.
	ByAccountIP
	// ByAddress: the fold of the address a mail goes to.
	ByAddress
	// BySession: the sessionToken.
	BySession
)

func (k KeyKind) String() string {
	switch k {
	case ByIP:
		return "ip"
	case ByAccount:
		return "account"
	case ByAccountIP:
		return "(account, ip)"
	case ByAddress:
		return "address"
	case BySession:
		return "sessionToken"
	}
	return "?"
}

func (k KeyKind) hasFold() bool { return k == ByAccount || k == ByAccountIP || k == ByAddress }
func (k KeyKind) hasIP() bool   { return k == ByIP || k == ByAccountIP }

// Point is a place in request processing where rules refuse (spec 14.2
// "Where the checks happen"). Points ending in IP are at the throttling
// step (before Hawk and the body); the others once the request has
// identified its account, token or mail.
type Point string

// The check points.
const (
	AuthStartIP   Point = "auth/start:ip"
	AuthStart     Point = "auth/start"
	AuthFinishIP  Point = "auth/finish:ip"
	AuthFinish    Point = "auth/finish"
	CreateIP      Point = "account/create:ip"
	Mail          Point = "mail"
	CertSign      Point = "certificate/sign"
	ForgotSendIP  Point = "password/forgot/send_code:ip"
	ForgotSend    Point = "password/forgot/send_code"
	UnblockSendIP Point = "account/login/send_unblock_code:ip"
	VerifyResend  Point = "recovery_email/resend_code"
	ForgotResend  Point = "password/forgot/resend_code"
	RecoverIP     Point = "account/recover:ip"
	Recover       Point = "account/recover"
	VerifyCode    Point = "recovery_email/verify_code"
)

// Outcome is a result that Record counts.
type Outcome string

// The counted outcomes.
const (
	// LoginFailure: auth/finish answered 400/103, the only outcome that
	// tests a password.
	LoginFailure Outcome = "login failure"
	// UnblockFailure: a wrong unblock code at auth/start (R1 only).
	UnblockFailure Outcome = "unblock failure"
	// MailSent: a mail handed to the mail server (failed mails count for
	// nothing).
	MailSent Outcome = "mail"
	// RecoverFailure: account/recover answered 126 for an account.
	RecoverFailure Outcome = "recover failure"
	// VerifyFailure: recovery_email/verify_code answered 105.
	VerifyFailure Outcome = "verify failure"
)

// Rule is one limit of the table of spec 14.2.
type Rule struct {
	// Name is the spec's rule, with a letter per limit when it has
	// several (R6a, R6b).
	Name string
	// Counter names the counts; limits over the same events share one
	// (R6a and R6b count the same mails).
	Counter string
	// Counts says what is counted, for people (the README, the admin).
	Counts string
	Key    KeyKind
	Limit  int
	Window time.Duration
	// Points are where the rule refuses.
	Points  []Point
	Refusal Refusal
	// Outcomes are what Record counts for the rule; a rule without
	// counts the requests it lets through at its Points (a refused
	// request is not counted).
	Outcomes []Outcome
	// Memory counts in the instance's memory rather than in the store
	// (R4, R5, R7: only request rates).
	Memory bool
	// KnownExempt: never refuses a request from an ip known for the
	// account (spec 14.2: R2, R6, R8, R10 per account).
	KnownExempt bool
	// Unblockable: lifted for a srpToken issued after an accepted unblock
	// code, or by a valid code at auth/start (R2).
	Unblockable bool
}

// counting reports whether the rule counts the requests at its points.
func (r *Rule) counting() bool { return len(r.Outcomes) == 0 }

// DefaultRules returns the rule table of spec 14.2 with the spec's
// defaults.
func DefaultRules() []Rule {
	auth := []Point{AuthStart, AuthFinish}
	return []Rule{
		{Name: "R1", Counter: "R1", Counts: "failed auth/finish (103) per (account, ip); a wrong unblock code", Key: ByAccountIP,
			Limit: 5, Window: 15 * time.Minute, Points: auth, Refusal: TooMany, Outcomes: []Outcome{LoginFailure, UnblockFailure}},
		{Name: "R2", Counter: "R2", Counts: "failed auth/finish per account, all ips", Key: ByAccount,
			Limit: 20, Window: 24 * time.Hour, Points: auth, Refusal: Blocked, Outcomes: []Outcome{LoginFailure},
			KnownExempt: true, Unblockable: true},
		{Name: "R3", Counter: "R3", Counts: "failed auth/finish per ip, all accounts (spraying)", Key: ByIP,
			Limit: 50, Window: time.Hour, Points: []Point{AuthStartIP, AuthFinishIP}, Refusal: TooMany, Outcomes: []Outcome{LoginFailure}},
		{Name: "R4", Counter: "R4", Counts: "auth/start per ip (any answer)", Key: ByIP,
			Limit: 300, Window: time.Minute, Points: []Point{AuthStartIP}, Refusal: TooMany, Memory: true},
		{Name: "R5", Counter: "R5", Counts: "account/create per ip", Key: ByIP,
			Limit: 30, Window: time.Hour, Points: []Point{CreateIP}, Refusal: TooMany, Memory: true},
		{Name: "R6a", Counter: "R6", Counts: "mails per address, except the password-changed notice", Key: ByAddress,
			Limit: 5, Window: time.Hour, Points: []Point{Mail}, Refusal: TooMany, Outcomes: []Outcome{MailSent}, KnownExempt: true},
		{Name: "R6b", Counter: "R6", Counts: "mails per address, except the password-changed notice", Key: ByAddress,
			Limit: 20, Window: 24 * time.Hour, Points: []Point{Mail}, Refusal: TooMany, Outcomes: []Outcome{MailSent}, KnownExempt: true},
		{Name: "R7", Counter: "R7", Counts: "certificate/sign per sessionToken", Key: BySession,
			Limit: 60, Window: time.Minute, Points: []Point{CertSign}, Refusal: TooMany, Memory: true},
		{Name: "R8a", Counter: "R8a", Counts: "forgot/send_code per (account, ip)", Key: ByAccountIP,
			Limit: 3, Window: time.Hour, Points: []Point{ForgotSend}, Refusal: TooMany, KnownExempt: true},
		{Name: "R8b", Counter: "R8b", Counts: "forgot/send_code per account", Key: ByAccount,
			Limit: 10, Window: time.Hour, Points: []Point{ForgotSend}, Refusal: TooMany, KnownExempt: true},
		{Name: "R9a", Counter: "R9a", Counts: "forgot/send_code per ip", Key: ByIP,
			Limit: 20, Window: time.Hour, Points: []Point{ForgotSendIP}, Refusal: TooMany},
		{Name: "R9b", Counter: "R9b", Counts: "account/login/send_unblock_code per ip", Key: ByIP,
			Limit: 20, Window: time.Hour, Points: []Point{UnblockSendIP}, Refusal: TooMany},
		{Name: "R9c", Counter: "R9c", Counts: "recovery_email/resend_code per account", Key: ByAccount,
			Limit: 3, Window: time.Hour, Points: []Point{VerifyResend}, Refusal: TooMany},
		{Name: "R9d", Counter: "R9d", Counts: "password/forgot/resend_code per account", Key: ByAccount,
			Limit: 3, Window: time.Hour, Points: []Point{ForgotResend}, Refusal: TooMany},
		{Name: "R10a", Counter: "R10a", Counts: "account/recover per ip", Key: ByIP,
			Limit: 10, Window: time.Hour, Points: []Point{RecoverIP}, Refusal: TooMany},
		{Name: "R10b", Counter: "R10b", Counts: "failed account/recover (126) per account", Key: ByAccount,
			Limit: 5, Window: time.Hour, Points: []Point{Recover}, Refusal: TooMany, Outcomes: []Outcome{RecoverFailure}, KnownExempt: true},
		{Name: "R11", Counter: "R11", Counts: "wrong recovery_email/verify_code (105) per account", Key: ByAccount,
			Limit: 10, Window: time.Hour, Points: []Point{VerifyCode}, Refusal: TooMany, Outcomes: []Outcome{VerifyFailure}},
	}
}

// SetLimit changes the limit and window of the rule name in rules.
func SetLimit(rules []Rule, name string, limit int, window time.Duration) error {
	if limit < 1 {
		return fmt.Errorf("customs: rule %s: limit %d: must be at least 1", name, limit)
	}
	if window <= 0 {
		return fmt.Errorf("customs: rule %s: window %v: must be positive", name, window)
	}
	for i := range rules {
		if rules[i].Name == name {
			rules[i].Limit, rules[i].Window = limit, window
			return nil
		}
	}
	return fmt.Errorf("customs: unknown rule %q", name)
}

// ParseLimits reads limits that replace those of rules (changed in place):
// one rule a line, "NAME LIMIT WINDOW" (e.g. "R1 5 15m", a Go duration) or
// "NAME=LIMIT/WINDOW" ("R1=5/15m"); blank lines and lines starting with #
// are ignored.
func ParseLimits(r io.Reader, rules []Rule) error {
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if err := parseLimit(line, rules); err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
	}
	return sc.Err()
}

// ParseLimitList applies comma-separated "NAME=LIMIT/WINDOW" items.
func ParseLimitList(s string, rules []Rule) error {
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			if err := parseLimit(item, rules); err != nil {
				return err
			}
		}
	}
	return nil
}

func parseLimit(line string, rules []Rule) error {
	var name, limit, window string
	if n, rest, ok := strings.Cut(line, "="); ok {
		l, w, ok := strings.Cut(rest, "/")
		if !ok {
			return fmt.Errorf("customs: %q: want NAME=LIMIT/WINDOW", line)
		}
		name, limit, window = n, l, w
	} else {
		f := strings.Fields(line)
		if len(f) != 3 {
			return fmt.Errorf("customs: %q: want NAME LIMIT WINDOW", line)
		}
		name, limit, window = f[0], f[1], f[2]
	}
	l, err := strconv.Atoi(strings.TrimSpace(limit))
	if err != nil {
		return fmt.Errorf("customs: rule %s: limit %q is not an integer", name, limit)
	}
	w, err := time.ParseDuration(strings.TrimSpace(window))
	if err != nil {
		return fmt.Errorf("customs: rule %s: window %q is not a duration", name, window)
	}
	return SetLimit(rules, strings.TrimSpace(name), l, w)
}

// Matches reports whether the rule is selected by name: the exact name, or
// the spec's rule of several limits ("R8" selects R8a and R8b); "" selects
// every rule.
func (r *Rule) Matches(name string) bool {
	if name == "" || r.Name == name {
		return true
	}
	rest, ok := strings.CutPrefix(r.Name, name)
	return ok && len(rest) == 1 && rest[0] >= 'a' && rest[0] <= 'z'
}

// Table renders rules as the Markdown table of the README.
func Table(rules []Rule) string {
	var b strings.Builder
	b.WriteString("| rule | counts | key | limit | window | refusal | counted in |\n| --- | --- | --- | --- | --- | --- | --- |\n")
	for _, r := range rules {
		refusal := "429/114"
		if r.Refusal == Blocked {
			refusal = "400/125"
		}
		where := "store"
		if r.Memory {
			where = "instance memory"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %d | %s | %s | %s |\n", r.Name, r.Counts, r.Key, r.Limit, formatWindow(r.Window), refusal, where)
	}
	return b.String()
}

func formatWindow(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
