package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/keyserver/keyserver/client"
	"github.com/keyserver/keyserver/protocol"
)

// adminOptions are the flags of "keyserver admin"; the audit filters only
// exist for the audit command.
type adminOptions struct {
	url       string
	tokenFile string
	json      bool
	audit     client.AuditQuery
	since     string
	// blocks list and clear
	blockUID, blockIP, blockRule string
}

func (o *adminOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&o.url, "url", "http://127.0.0.1:9001", "origin of the admin API (serve --admin-listen)")
	fs.StringVar(&o.tokenFile, "token-file", "", "file holding the admin token (serve --admin-token-file; required)")
	fs.BoolVar(&o.json, "json", false, "print JSON instead of tables")
}

// adminOut is where a command writes: results to stdout, hints to stderr.
type adminOut struct {
	stdout, stderr io.Writer
	json           bool
}

type adminRunFunc func(ctx context.Context, a *client.Admin, o *adminOptions, args []string, out adminOut) error

// adminCommand is a command of the admin table.
type adminCommand struct {
	name    string // words after "admin"
	args    []string
	summary string
	flags   func(fs *flag.FlagSet, o *adminOptions)
	run     adminRunFunc
}

// adminCommands is "keyserver admin [flags] <command> [flags] [arguments]":
// the common flags may come before or after the command words.
func adminCommands() *commandTable {
	t := &commandTable{
		name:     "admin",
		synopsis: "usage: keyserver admin [--url URL] [--token-file FILE] [--json] <command> [flags] [arguments]",
		width:    34,
		footer: "\nThe admin API is the listener of 'keyserver serve --admin-listen'; the token is the content of\n" +
			"its --admin-token-file. Environment: KEYSERVER_ADMIN_URL, KEYSERVER_ADMIN_TOKEN_FILE, KEYSERVER_ADMIN_JSON.\n" +
			"Run 'keyserver admin audit -h' for the audit filters.",
		missing: "admin needs a command",
		flags:   (&adminOptions{}).register,
	}
	for _, c := range []adminCommand{
		{"devices list", []string{"UID"}, "list the account's devices", nil, adminDevicesList},
		{"devices revoke", []string{"UID", "DEVICEID"}, "revoke a device: its session and pending key fetches end at once", nil, adminDevicesRevoke},
		{"account show", []string{"UID|EMAIL"}, "show an account (sessions, devices, verified, disabled)", nil, adminAccountShow},
		{"account disable", []string{"UID"}, "refuse sign-in and every token of the account (errno 127)", nil,
			adminAccountAction((*client.Admin).Disable, "disabled account %s: sign-in and its tokens are refused until 'account enable'")},
		{"account enable", []string{"UID"}, "clear the disabled mark", nil,
			adminAccountAction((*client.Admin).Enable, "enabled account %s")},
		{"account revoke-sessions", []string{"UID"}, "delete every token and device of the account", nil,
			adminAccountAction((*client.Admin).RevokeSessions, "revoked every session and device of account %s")},
		{"audit", nil, "list audit events, oldest first", adminAuditFlags, adminAudit},
		{"blocks list", nil, "list the abuse-protection counts that refuse requests now", adminBlocksFlags(false), adminBlocksList},
		{"blocks clear", nil, "clear abuse-protection counts of an account and/or an ip", adminBlocksFlags(true), adminBlocksClear},
	} {
		t.commands = append(t.commands, command{name: c.name, args: strings.Join(c.args, " "), summary: c.summary, run: c.exec})
	}
	return t
}

// adminEnvName is the environment variable of an admin flag:
// KEYSERVER_ADMIN_TOKEN_FILE is also serve's --admin-token-file.
func adminEnvName(flagName string) string {
	return "KEYSERVER_ADMIN_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// runAdmin is "keyserver admin".
func runAdmin(args []string, stdout, stderr io.Writer) error {
	return adminCommands().run(args, stdout, stderr)
}

// exec runs the command with an admin client. args has the common flags
// given before the command words (the table hands them on in front) and
// the command's own: parsing them together lets the environment fill in
// only what neither place set.
func (c adminCommand) exec(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("admin "+c.name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: keyserver admin %s [flags] %s\n", c.name, strings.Join(c.args, " "))
		fs.PrintDefaults()
	}
	var o adminOptions
	o.register(fs)
	if c.flags != nil {
		c.flags(fs, &o)
	}
	if _, err := parseFlagsEnv(fs, args, adminEnvName); err != nil {
		return err
	}
	if fs.NArg() != len(c.args) {
		fs.Usage()
		if len(c.args) == 0 {
			return fmt.Errorf("%w: admin %s takes no arguments after the flags", errUsage, c.name)
		}
		return fmt.Errorf("%w: admin %s takes %s after the flags", errUsage, c.name, strings.Join(c.args, " "))
	}
	if o.tokenFile == "" {
		return fmt.Errorf("%w: --token-file is required", errUsage)
	}
	raw, err := os.ReadFile(o.tokenFile)
	if err != nil {
		return fmt.Errorf("reading the admin token file: %w", err)
	}
	token := string(bytes.TrimSpace(raw))
	if token == "" {
		return fmt.Errorf("%w: the admin token file is empty", errUsage)
	}
	a, err := client.NewAdmin(o.url, token)
	if err != nil {
		return fmt.Errorf("%w: --url: %v", errUsage, err)
	}
	return notListening(c.run(context.Background(), a, &o, fs.Args(), adminOut{stdout, stderr, o.json}), o.url)
}

// notListening adds to a refused connection to the admin API how to start
// one.
func notListening(err error, url string) error {
	if errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("%w\nnothing listens at %s: start the admin API with 'keyserver serve --admin-listen 127.0.0.1:9001 --admin-token-file FILE', or give its address with --url (KEYSERVER_ADMIN_URL)", err, url)
	}
	return err
}

// printJSON writes v as indented JSON.
func printJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// table writes rows as aligned columns.
func table(w io.Writer, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// msTime formats a protocol time (ms) for humans, in UTC.
func msTime(ms int64) string { return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z") }

func orDash(s *string) string {
	if s == nil {
		return "-"
	}
	return *s
}

func adminDevicesList(ctx context.Context, a *client.Admin, _ *adminOptions, args []string, out adminOut) error {
	ds, err := a.Devices(ctx, args[0])
	if err != nil {
		return err
	}
	if out.json {
		return printJSON(out.stdout, map[string][]protocol.Device{"devices": ds})
	}
	rows := [][]string{{"ID", "NAME", "TYPE", "CREATED", "LAST ACCESS", "PUSH"}}
	for _, d := range ds {
		push := "no"
		if d.PushCallback != nil {
			push = "yes"
		}
		rows = append(rows, []string{d.ID, strconv.Quote(d.Name), d.Type, msTime(d.CreatedAt), msTime(d.LastAccessTime), push})
	}
	return table(out.stdout, rows)
}

func adminDevicesRevoke(ctx context.Context, a *client.Admin, _ *adminOptions, args []string, out adminOut) error {
	if err := a.RevokeDevice(ctx, args[0], args[1]); err != nil {
		return err
	}
	if out.json {
		return printJSON(out.stdout, struct{}{})
	}
	fmt.Fprintf(out.stdout, "revoked device %s of account %s: its session has ended\n", args[1], args[0])
	return nil
}

// adminAccountShow looks an account up by uid, or by email when the
// argument has an "@".
func adminAccountShow(ctx context.Context, a *client.Admin, _ *adminOptions, args []string, out adminOut) error {
	var acct *protocol.AdminAccount
	if strings.Contains(args[0], "@") {
		accts, err := a.AccountsByEmail(ctx, args[0])
		if err != nil {
			return err
		}
		if len(accts) == 0 {
			return fmt.Errorf("no account with email %q", args[0])
		}
		acct = &accts[0]
	} else {
		var err error
		if acct, err = a.Account(ctx, args[0]); err != nil {
			return err
		}
	}
	if out.json {
		return printJSON(out.stdout, acct)
	}
	return table(out.stdout, [][]string{
		{"uid", acct.UID},
		{"email", strconv.Quote(acct.EmailString())},
		{"verified", strconv.FormatBool(acct.Verified)},
		{"disabled", strconv.FormatBool(acct.Disabled)},
		{"created", msTime(acct.CreatedAt)},
		{"password set", msTime(acct.Generation)},
		{"sessions", strconv.Itoa(acct.SessionCount)},
		{"devices", strconv.Itoa(acct.DeviceCount)},
		{"recovery key", strconv.FormatBool(acct.HasRecoveryKey)},
	})
}

// adminAccountAction makes account disable, enable and revoke-sessions:
// call do, then report done (a format with the uid).
func adminAccountAction(do func(*client.Admin, context.Context, string) error, done string) adminRunFunc {
	return func(ctx context.Context, a *client.Admin, _ *adminOptions, args []string, out adminOut) error {
		if err := do(a, ctx, args[0]); err != nil {
			return err
		}
		if out.json {
			return printJSON(out.stdout, struct{}{})
		}
		fmt.Fprintf(out.stdout, done+"\n", args[0])
		return nil
	}
}

func adminAuditFlags(fs *flag.FlagSet, o *adminOptions) {
	fs.StringVar(&o.audit.UID, "uid", "", "only the events of this account (hex uid)")
	fs.StringVar(&o.since, "since", "", "only events at or after this time: RFC 3339 (2025-01-02T15:04:05Z), a duration ago (24h) or Unix ms")
	fs.StringVar(&o.audit.After, "after", "", "continue after the event with this id at --since (paging; see the hint of a truncated listing)")
	fs.IntVar(&o.audit.Limit, "limit", 0, "at most this many events, 1 to 1000 (default 1000)")
}

func adminAudit(ctx context.Context, a *client.Admin, o *adminOptions, _ []string, out adminOut) error {
	q := o.audit
	if o.since != "" {
		var err error
		if q.Since, err = parseSince(o.since, time.Now()); err != nil {
			return fmt.Errorf("%w: --since: %v", errUsage, err)
		}
	}
	page, err := a.Audit(ctx, q)
	if err != nil {
		return err
	}
	if out.json {
		return printJSON(out.stdout, page)
	}
	rows := [][]string{{"TIME", "ACTOR", "ACTION", "OUTCOME", "UID", "DEVICE", "SESSION", "IP", "DETAILS"}}
	for _, e := range page.Events {
		rows = append(rows, []string{msTime(e.Time), e.Actor, e.Action, e.Outcome,
			orDash(e.UID), orDash(e.DeviceID), orDash(e.SessionID), e.IP, string(e.Details)})
	}
	if err := table(out.stdout, rows); err != nil {
		return err
	}
	if next := page.Next(q); next != nil {
		hint := fmt.Sprintf("keyserver admin audit --since %d --after %s", next.Since, next.After)
		if q.UID != "" {
			hint += " --uid " + q.UID
		}
		if q.Limit != 0 {
			hint += " --limit " + strconv.Itoa(q.Limit)
		}
		fmt.Fprintf(out.stderr, "more events: %s\n", hint)
	}
	return nil
}

// adminBlocksFlags are the filters of blocks list and clear.
func adminBlocksFlags(clear bool) func(fs *flag.FlagSet, o *adminOptions) {
	return func(fs *flag.FlagSet, o *adminOptions) {
		fs.StringVar(&o.blockUID, "uid", "", "the account (hex uid)")
		fs.StringVar(&o.blockIP, "ip", "", "the client ip (an IPv6 address stands for its /64)")
		if clear {
			fs.StringVar(&o.blockRule, "rule", "", "only this rule (R1 ... R11; R8 means R8a and R8b; default every rule)")
		}
	}
}

func adminBlocksList(ctx context.Context, a *client.Admin, o *adminOptions, _ []string, out adminOut) error {
	bs, err := a.Blocks(ctx, o.blockUID, o.blockIP)
	if err != nil {
		return err
	}
	if out.json {
		if bs == nil {
			bs = []client.Block{}
		}
		return printJSON(out.stdout, map[string][]client.Block{"blocks": bs})
	}
	rows := [][]string{{"RULE", "UID", "IP", "EMAIL", "COUNT", "UNTIL"}}
	for _, b := range bs {
		email := "-"
		if raw, err := hex.DecodeString(b.Key.Fold); err == nil && len(raw) > 0 {
			email = string(raw)
		}
		rows = append(rows, []string{b.Rule, dash(b.Key.UID), dash(b.Key.IP), email, strconv.Itoa(b.Count), msTime(b.UntilTime)})
	}
	return table(out.stdout, rows)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func adminBlocksClear(ctx context.Context, a *client.Admin, o *adminOptions, _ []string, out adminOut) error {
	if o.blockUID == "" && o.blockIP == "" {
		return fmt.Errorf("%w: blocks clear needs --uid or --ip", errUsage)
	}
	if err := a.ClearBlocks(ctx, o.blockRule, o.blockUID, o.blockIP); err != nil {
		return err
	}
	if out.json {
		return printJSON(out.stdout, struct{}{})
	}
	rule := o.blockRule
	if rule == "" {
		rule = "every rule"
	}
	var of []string
	if o.blockUID != "" {
		of = append(of, "account "+o.blockUID)
	}
	if o.blockIP != "" {
		of = append(of, "ip "+o.blockIP)
	}
	fmt.Fprintf(out.stdout, "cleared %s for %s\n", rule, strings.Join(of, " and "))
	return nil
}

// parseSince reads Unix ms, an RFC 3339 time or a duration before now.
func parseSince(s string, now time.Time) (int64, error) {
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil && ms >= 0 {
		return ms, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d).UnixMilli(), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UnixMilli(), nil
	}
	return 0, fmt.Errorf("%q is neither Unix ms, an RFC 3339 time nor a duration", s)
}
