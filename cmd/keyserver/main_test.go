package main

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
)

// TestCommandTable runs the dispatcher on a table with one- and two-word
// commands and common flags.
func TestCommandTable(t *testing.T) {
	var got []string
	record := func(name string) func([]string, io.Writer, io.Writer) error {
		return func(args []string, _, _ io.Writer) error {
			got = append([]string{name}, args...)
			return nil
		}
	}
	table := &commandTable{
		name:     "tool",
		synopsis: "usage: keyserver tool [--v] <command>",
		width:    12,
		footer:   "\nfooter",
		missing:  "tool needs a command",
		flags:    func(fs *flag.FlagSet) { fs.Bool("v", false, "verbose") },
		commands: []command{
			{"one", "", "the first", record("one")},
			{"pair", "", "the pair itself", record("pair")},
			{"pair list", "ID", "list", record("pair list")},
		},
	}
	const listing = "usage: keyserver tool [--v] <command>\n\ncommands:\n" +
		"  one          the first\n  pair         the pair itself\n  pair list ID list\n\nfooter\n"
	tests := []struct {
		args   []string
		want   []string // the command and its arguments; nil: none ran
		err    error    // errors.Is
		msg    string   // in the error
		stderr string   // printed
	}{
		{args: []string{"one", "x"}, want: []string{"one", "x"}},
		{args: []string{"pair", "list", "7", "-x"}, want: []string{"pair list", "7", "-x"}},
		{args: []string{"pair", "lists"}, want: []string{"pair", "lists"}},
		{args: []string{"-v", "one"}, want: []string{"one", "-v"}},
		{args: []string{"--v=false", "pair", "list", "1"}, want: []string{"pair list", "--v=false", "1"}},
		{args: []string{"-v", "--", "one"}, want: []string{"one", "-v", "--"}},
		{args: nil, err: errUsage, msg: "usage: tool needs a command", stderr: listing},
		{args: []string{"-v"}, err: errUsage, msg: "tool needs a command", stderr: listing},
		{args: []string{"help"}, err: flag.ErrHelp, stderr: listing},
		{args: []string{"-h"}, err: flag.ErrHelp, stderr: listing},
		{args: []string{"--", "-h"}, err: errUsage, msg: `unknown tool command "-h"`, stderr: listing},
		{args: []string{"three"}, err: errUsage, msg: `usage: unknown tool command "three"`, stderr: listing},
		{args: []string{"three", "four", "five"}, err: errUsage, msg: `unknown tool command "three four"`, stderr: listing},
		{args: []string{"-x", "one"}, err: errUsage, msg: "flag provided but not defined: -x",
			stderr: "flag provided but not defined: -x\n" + listing},
	}
	for _, tt := range tests {
		got = nil
		var stdout, stderr bytes.Buffer
		err := table.run(tt.args, &stdout, &stderr)
		if strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("%q: ran %q, want %q", tt.args, got, tt.want)
		}
		if tt.err == nil && err != nil || tt.err != nil && !errors.Is(err, tt.err) ||
			tt.msg != "" && (err == nil || !strings.Contains(err.Error(), tt.msg)) {
			t.Errorf("%q: error %v, want %v containing %q", tt.args, err, tt.err, tt.msg)
		}
		if stderr.String() != tt.stderr || stdout.Len() != 0 {
			t.Errorf("%q: stderr\n%s\nwant\n%s\nstdout %q", tt.args, stderr.String(), tt.stderr, stdout.String())
		}
	}
}

// TestRunExitCodes: usage errors exit 2, help 0; keyserver alone prints
// only its usage.
func TestRunExitCodes(t *testing.T) {
	var usage bytes.Buffer
	commands().usage(&usage)
	for _, tt := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{nil, 2, usage.String()},
		{[]string{"help"}, 0, usage.String()},
		{[]string{"-h"}, 0, usage.String()},
		{[]string{"--help", "serve"}, 0, usage.String()},
		{[]string{"bogus"}, 2, usage.String() + "keyserver: error: unknown command \"bogus\"\n"},
		{[]string{"version", "x"}, 2, "keyserver: error: unexpected argument \"x\"\n"},
		{[]string{"admin", "devices", "burn"}, 2, "keyserver: error: unknown admin devices command \"burn\" (want list or revoke)\n"},
		{[]string{"client", "help"}, 0, "Run 'keyserver client <command> -h' for the flags of a command.\n"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(tt.args, &stdout, &stderr)
		if code != tt.code || !strings.HasSuffix(stderr.String(), tt.stderr) {
			t.Errorf("%q: exit %d, stderr\n%s\nwant %d and a stderr ending in\n%s", tt.args, code, stderr.String(), tt.code, tt.stderr)
		}
	}
	for _, c := range commands().commands {
		if !strings.Contains(usage.String(), "\n  "+c.name+" ") {
			t.Errorf("usage lacks %s:\n%s", c.name, usage.String())
		}
	}
}
