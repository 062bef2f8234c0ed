// Command keyserver runs the PICL key server and its operator tools.
//
//	keyserver serve     run the server
//	keyserver migrate   apply pending database migrations
//	keyserver backup    copy or check an SQLite database
//	keyserver version   print the version
//	keyserver keys      generate a certificate signing key
//	keyserver certs     verify a certificate or backed assertion
//	keyserver client    talk to a key server as a client
//	keyserver admin     administer accounts through the admin API
//
// Every flag has a KEYSERVER_* environment variable (the flag name upper-cased
// with '-' as '_'); a flag on the command line beats the environment, which
// beats the default.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/keyserver/keyserver/keyserver"
)

// version and commit may be set at build time, with
// -ldflags "-X main.version=v1.2.3 -X main.commit=<revision>"; otherwise
// they come from the module's build info (see buildVersion).
var (
	version = "dev"
	commit  string
)

// errUsage marks command-line mistakes (exit status 2).
var errUsage = errors.New("usage")

// errUsageShown is a usage error whose explanation, the usage text, is
// already printed: run exits with status 2 and prints nothing more.
var errUsageShown = fmt.Errorf("%w: no command", errUsage)

// A command is an entry of a commandTable.
type command struct {
	name    string // the words that select it: "serve", "devices list"
	args    string // its arguments as the usage listing shows them: "UID DEVICEID"
	summary string
	// run gets the arguments after the command words; a table's common
	// flags (see commandTable.flags) come first.
	run func(args []string, stdout, stderr io.Writer) error
}

// A commandTable dispatches to one of its commands, by the words at the
// start of the arguments, and prints its usage text. keyserver itself,
// "keyserver admin" and "keyserver client" are tables; a command of a
// table may run another table (its run method).
type commandTable struct {
	name     string // "admin" in "unknown admin command"; "" for keyserver itself
	synopsis string // first line of the usage text
	width    int    // of the command column of the usage listing
	footer   string // usage text after the listing
	// missing is the usage error for no command at all; "" prints the usage
	// text alone (exit status 2).
	missing string
	// flags, when not nil, registers the flags common to all commands,
	// which may come before the command words too: they are parsed there
	// (to find the words) and handed on to the command in front of its own
	// arguments, for it to parse with its own flags.
	flags    func(fs *flag.FlagSet)
	commands []command
}

// run dispatches args: "[common flags] <command words> [arguments]". No
// command, "help", -h and an unknown command print the usage text to stderr.
func (t *commandTable) run(args []string, stdout, stderr io.Writer) error {
	rest := args
	if t.flags != nil {
		fs := flag.NewFlagSet(t.name, flag.ContinueOnError)
		fs.SetOutput(stderr)
		fs.Usage = func() { t.usage(stderr) }
		t.flags(fs)
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return err
			}
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		rest = fs.Args()
	}
	if len(rest) == 0 {
		t.usage(stderr)
		if t.missing == "" {
			return errUsageShown
		}
		return fmt.Errorf("%w: %s", errUsage, t.missing)
	}
	// -h and --help are flags where the table has flags: after "--" they
	// are arguments.
	if rest[0] == "help" || t.flags == nil && (rest[0] == "-h" || rest[0] == "--help") {
		t.usage(stderr)
		return flag.ErrHelp
	}
	c, n := t.find(rest)
	if c == nil {
		// The first word of a group of commands ("devices" of "devices
		// list" and "devices revoke"): its help, or the group's listing.
		if group := t.group(rest[0]); group != nil {
			group.usage(stderr)
			if len(rest) == 1 {
				return fmt.Errorf("%w: %s needs a command: %s", errUsage, group.name, group.names())
			}
			if rest[1] == "-h" || rest[1] == "--help" || rest[1] == "help" {
				return flag.ErrHelp
			}
			return fmt.Errorf("%w: unknown %s command %q (want %s)", errUsage, group.name, rest[1], group.names())
		}
		t.usage(stderr)
		name := "command"
		if t.name != "" {
			name = t.name + " command"
		}
		return fmt.Errorf("%w: unknown %s %q", errUsage, name, strings.Join(rest[:min(t.maxWords(), len(rest))], " "))
	}
	return c.run(slices.Concat(args[:len(args)-len(rest)], rest[n:]), stdout, stderr)
}

// find returns the command with the most words that start args, and how
// many they are.
func (t *commandTable) find(args []string) (found *command, n int) {
	for i := range t.commands {
		words := strings.Fields(t.commands[i].name)
		if len(words) > n && len(args) >= len(words) && slices.Equal(args[:len(words)], words) {
			found, n = &t.commands[i], len(words)
		}
	}
	return found, n
}

// group returns the commands of t whose names start with the word first
// and go on (as "devices list" after "devices"), as a table of their own
// named after t and first; nil when there are none.
func (t *commandTable) group(first string) *commandTable {
	var g []command
	for _, c := range t.commands {
		if words := strings.Fields(c.name); len(words) > 1 && words[0] == first {
			g = append(g, c)
		}
	}
	if g == nil {
		return nil
	}
	name := strings.TrimSpace(t.name + " " + first)
	return &commandTable{
		name:     name,
		synopsis: "usage: keyserver " + name + " <command> [flags] [arguments]",
		width:    t.width,
		footer:   "\nRun 'keyserver " + name + " <command> -h' for the flags of a command.",
		commands: g,
	}
}

// names lists the last words of the commands, for a message: "list or
// revoke".
func (t *commandTable) names() string {
	var names []string
	for _, c := range t.commands {
		words := strings.Fields(c.name)
		names = append(names, words[len(words)-1])
	}
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// maxWords is the number of words of the longest command name.
func (t *commandTable) maxWords() int {
	n := 1
	for _, c := range t.commands {
		n = max(n, len(strings.Fields(c.name)))
	}
	return n
}

func (t *commandTable) usage(w io.Writer) {
	fmt.Fprintln(w, t.synopsis+"\n\ncommands:")
	for _, c := range t.commands {
		fmt.Fprintf(w, "  %-*s %s\n", t.width, strings.TrimSpace(c.name+" "+c.args), c.summary)
	}
	fmt.Fprintln(w, t.footer)
}

func commands() *commandTable {
	return &commandTable{
		synopsis: "usage: keyserver <command> [flags]",
		width:    10,
		footer:   "\nRun 'keyserver <command> -h' for the flags of a command.",
		commands: []command{
			{"serve", "", "run the key server", runServe},
			{"migrate", "", "apply pending database migrations", runMigrate},
			{"backup", "", "copy a running server's SQLite database consistently, or check a copy (backup --out FILE, backup --verify FILE)", runBackup},
			{"version", "", "print the version", runVersion},
			{"keys", "", "generate a certificate signing key (keys generate --alg rs256|eddsa --out FILE)", runKeys},
			{"kek", "", "generate, rotate and inspect key-encryption keys for secrets at rest (kek generate|rotate|seal-existing|status)", runKEK},
			{"certs", "", "verify a certificate or backed assertion against published keys (certs verify)", runCerts},
			{"client", "", "talk to a key server as a client (create, login, keys, change-password, forgot, recover, recovery-key, destroy)", runClient},
			{"admin", "", "administer accounts through the admin API (devices, account, audit)", runAdmin},
			{"bench", "", "load-test a server with complete sign-ins and report rate, latency and CPU per sign-in", runBench},
		},
	}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run runs the command of args and returns the exit status: 0, 1 for a
// failure, 2 for a usage error.
func run(args []string, stdout, stderr io.Writer) int {
	err := commands().run(args, stdout, stderr)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsageShown):
		return 2
	case errors.Is(err, errUsage):
		// errUsage only marks the exit status: its "usage: " prefix is no
		// part of the message.
		fmt.Fprintf(stderr, "keyserver: error: %s\n", strings.TrimPrefix(err.Error(), errUsage.Error()+": "))
		return 2
	default:
		fmt.Fprintf(stderr, "keyserver: error: %v\n", err)
		return 1
	}
}

// parseFlags parses args into fs, then fills every flag not given on the
// command line from its KEYSERVER_* environment variable. It returns the
// names of the flags that were set either way.
func parseFlags(fs *flag.FlagSet, args []string) (map[string]bool, error) {
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: keyserver %s [flags]\n", fs.Name())
		fs.PrintDefaults()
	}
	set, err := parseFlagsEnv(fs, args, envName)
	if err == nil && fs.NArg() > 0 {
		return nil, fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	return set, err
}

// parseFlagsEnv is parseFlags for commands with arguments after the flags
// (left in fs.Args()) and their own environment names env(flag name).
func parseFlagsEnv(fs *flag.FlagSet, args []string, env func(string) string) (map[string]bool, error) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil {
			return
		}
		if v, ok := os.LookupEnv(env(f.Name)); ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%w: %s: %v", errUsage, env(f.Name), e)
			}
			set[f.Name] = true
		}
	})
	return set, err
}

func envName(flagName string) string {
	return "KEYSERVER_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func runVersion(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print the JSON of GET /__version__ (version, commit, source)")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	v := buildVersion()
	if *asJSON {
		out, err := json.Marshal(v)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s\n", out)
		return nil
	}
	fmt.Fprintf(stdout, "keyserver %s\n", versionString(v))
	return nil
}

// versionString is the version line of `keyserver version` and the log:
// "v1.2.3 (commit 0123abcd…, go1.26.0)".
func versionString(v keyserver.VersionInfo) string {
	details := runtime.Version()
	if v.Commit != "" {
		details = "commit " + v.Commit + ", " + details
	}
	return v.Version + " (" + details + ")"
}

// defaultSource is the source of a binary without build info.
const defaultSource = "https://github.com/keyserver/keyserver"

// buildVersion is the build of the running binary: the -ldflags values
// when set, else the module's build info (a `go install …@vX` build knows
// its version, a pseudo-version also its revision, a build in a VCS
// checkout its vcs.revision), else "dev".
func buildVersion() keyserver.VersionInfo {
	info, _ := debug.ReadBuildInfo()
	return versionFrom(info, version, commit)
}

func versionFrom(info *debug.BuildInfo, ldVersion, ldCommit string) keyserver.VersionInfo {
	v := keyserver.VersionInfo{Version: ldVersion, Commit: ldCommit, Source: defaultSource}
	if info == nil {
		return v
	}
	if info.Main.Path != "" {
		v.Source = "https://" + info.Main.Path
	}
	if v.Version == "dev" || v.Version == "" {
		v.Version = "dev"
		if mv := info.Main.Version; mv != "" && mv != "(devel)" {
			v.Version = mv
		}
	}
	if v.Commit == "" {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				v.Commit = s.Value
			}
		}
	}
	if v.Commit == "" {
		v.Commit = pseudoVersionRevision(v.Version)
	}
	return v
}

// pseudoVersionRevision is the revision a pseudo-version ends with
// (v0.0.0-20260102150405-0123456789ab, v1.2.4-0.20260102150405-0123456789ab),
// "" for any other version.
func pseudoVersionRevision(v string) string {
	v, _, _ = strings.Cut(v, "+") // +incompatible, +dirty
	i := strings.LastIndexByte(v, '-')
	if i < 0 || len(v)-i-1 != 12 {
		return ""
	}
	rev := v[i+1:]
	stamp := v[:i]
	if j := strings.LastIndexAny(stamp, "-."); j < 0 || len(stamp)-j-1 != 14 {
		return ""
	}
	for _, c := range rev {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return ""
		}
	}
	return rev
}
