// Command keyserver runs the PICL key server and its operator tools.
//
//	keyserver serve     run the server
//	keyserver migrate   apply pending database migrations
//	keyserver version   print the version
//	keyserver keys      generate a certificate signing key
//	keyserver certs     verify a certificate or backed assertion
//	keyserver kek       generate a key-encryption key for secrets at rest
//	keyserver bench     load-test a server with complete sign-ins
//	keyserver client    talk to a key server as a client
//	keyserver admin     administer accounts through the admin API
//
// Every flag has a KEYSERVER_* environment variable (the flag name upper-cased
// with '-' as '_'); a flag on the command line beats the environment, which
// beats the default.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"slices"
	"strings"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

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
			{"version", "", "print the version", runVersion},
			{"bench", "", "load-test a server with complete sign-ins and report rate, latency and CPU per sign-in", runBench},
			{"kek", "", "generate a key-encryption key for secrets at rest (kek generate --out FILE)", runKEK},
			{"keys", "", "generate a certificate signing key (keys generate --alg rs256|eddsa --out FILE)", runKeys},
			{"certs", "", "verify a certificate or backed assertion against published keys (certs verify)", runCerts},
			{"client", "", "talk to a key server as a client (create, login, keys, change-password, forgot, recover, destroy)", runClient},
			{"admin", "", "administer accounts through the admin API (devices, account, audit)", runAdmin},
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
		fmt.Fprintf(stderr, "keyserver: error: %v\n", err)
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
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "keyserver %s\n", versionString())
	return nil
}

func versionString() string {
	v := version
	if info, ok := debug.ReadBuildInfo(); ok {
		if v == "dev" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			v = info.Main.Version
		}
		v += " " + info.GoVersion
	}
	return v
}
