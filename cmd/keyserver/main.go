// Command keyserver runs the PICL key server and its operator tools.
//
//	keyserver serve     run the server
//	keyserver migrate   apply pending database migrations
//	keyserver version   print the version
//	keyserver keys      generate a certificate signing key
//	keyserver certs     verify a certificate or backed assertion
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
	"strings"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// errUsage marks command-line mistakes (exit status 2).
var errUsage = errors.New("usage")

type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"serve", "run the key server", runServe},
		{"migrate", "apply pending database migrations", runMigrate},
		{"version", "print the version", runVersion},
		{"keys", "generate a certificate signing key (keys generate --alg rs256|eddsa --out FILE)", runKeys},
		{"certs", "verify a certificate or backed assertion against published keys (certs verify)", runCerts},
		{"client", "talk to a key server as a client (create, login, keys, change-password, forgot, recover, destroy)", runClient},
		{"admin", "administer accounts through the admin API (devices, account, audit)", runAdmin},
	}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name == args[0] {
			err := c.run(args[1:], stdout, stderr)
			switch {
			case err == nil:
				return 0
			case errors.Is(err, flag.ErrHelp):
				return 0
			case errors.Is(err, errUsage):
				fmt.Fprintf(stderr, "keyserver: error: %v\n", err)
				return 2
			default:
				fmt.Fprintf(stderr, "keyserver: error: %v\n", err)
				return 1
			}
		}
	}
	fmt.Fprintf(stderr, "keyserver: error: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: keyserver <command> [flags]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'keyserver <command> -h' for the flags of a command.")
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
