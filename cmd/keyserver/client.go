package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/keyserver/keyserver/client"
	"github.com/keyserver/keyserver/protocol"
)

// clientOptions are added to every client the CLI makes (tests use cheap
// stretching).
var clientOptions []client.Option

// promptPassword asks for a password on the terminal without echo; tests
// replace it.
var promptPassword = terminalPassword

type clientFlags struct {
	url             string
	email           string
	passwordFile    string
	newPasswordFile string
	assertionFile   string
	preVerified     bool
	unblockCode     string
	// recoveryKey and recoveryKeyFile give forgot and recover the recovery
	// key that keeps kB (docs/recovery-key.md RK.5).
	recoveryKey     string
	recoveryKeyFile string
}

type clientRunFunc func(ctx context.Context, c *client.Client, f *clientFlags, stdout io.Writer) error

// clientCommands is "keyserver client <command> [flags]".
func clientCommands() *commandTable {
	t := &commandTable{
		name:     "client",
		synopsis: "usage: keyserver client <command> --url URL --email EMAIL [--password-file FILE] [flags]",
		width:    19,
		footer: "\nPasswords are read from --password-file (first line) or asked on the terminal.\n" +
			"Run 'keyserver client <command> -h' for the flags of a command.",
		missing: "client needs a command",
	}
	for _, c := range []struct {
		name, summary string
		run           clientRunFunc
	}{
		{"create", "create an account and print its uid", clientCreate},
		{"login", "sign in and print uid, verification status and keys (the session is ended again)", clientLogin},
		{"keys", "sign in and print uid, kA and kB (the session is ended again)", clientKeys},
		{"change-password", "change the password, keeping kA and kB, and print the keys", clientChangePassword},
		{"destroy", "destroy the account", clientDestroy},
		{"forgot", "reset a forgotten password with the emailed code (kA kept; kB new, or kept with --recovery-key-file) and print the keys", clientForgot},
		{"recover", "reset the password with an email assertion (kA kept; kB new, or kept with --recovery-key-file) and print the keys", clientRecover},
		{"recovery-key create", "make a recovery key, which keeps kB through a forgotten password, and print it once", clientRecoveryKeyCreate},
		{"recovery-key status", "tell whether the account has a recovery key, and since when", clientRecoveryKeyStatus},
		{"recovery-key delete", "delete the account's recovery key", clientRecoveryKeyDelete},
	} {
		t.commands = append(t.commands, command{name: c.name, summary: c.summary,
			run: func(args []string, stdout, stderr io.Writer) error {
				return runClientCommand(c.name, c.run, args, stdout, stderr)
			}})
	}
	return t
}

// runClient is "keyserver client".
func runClient(args []string, stdout, stderr io.Writer) error {
	return clientCommands().run(args, stdout, stderr)
}

// runClientCommand parses the flags of the client command name and runs it.
func runClientCommand(name string, run clientRunFunc, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("client "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f clientFlags
	fs.StringVar(&f.url, "url", "http://127.0.0.1:9000", "origin of the key server")
	fs.StringVar(&f.email, "email", "", "email of the account (required)")
	switch name {
	case "create":
		fs.BoolVar(&f.preVerified, "pre-verified", false, "create a verified account (only servers in --dev mode accept it)")
	case "change-password", "forgot", "recover":
		fs.StringVar(&f.newPasswordFile, "new-password-file", "", "read the new password from the first line of this file (default: ask twice on the terminal)")
	}
	switch name {
	case "forgot", "recover": // no current password
	default:
		fs.StringVar(&f.passwordFile, "password-file", "", "read the password from the first line of this file (default: ask on the terminal)")
	}
	switch name {
	case "login", "keys", "recovery-key create", "recovery-key status", "recovery-key delete":
		fs.StringVar(&f.unblockCode, "unblock-code", "", "the code of an unblock mail, for a sign-in the server blocks (400/125; default: have one mailed and ask for it on the terminal)")
	}
	if name == "recover" {
		fs.StringVar(&f.assertionFile, "assertion-file", "", "file holding the email assertion: an OpenID Connect ID token or a BrowserID backed assertion (required)")
	}
	switch name {
	case "forgot", "recover":
		fs.StringVar(&f.recoveryKeyFile, "recovery-key-file", "", "read the account's recovery key from the first line of this file (- for standard input, before the code) and keep kB (default: no recovery key, kB is new)")
		fs.StringVar(&f.recoveryKey, "recovery-key", "", "the account's recovery key, to keep kB; other users can see it in the process list and it stays in the shell history: prefer --recovery-key-file")
	}
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	if f.email == "" {
		return fmt.Errorf("%w: --email is required", errUsage)
	}
	if name == "recover" && f.assertionFile == "" {
		return fmt.Errorf("%w: --assertion-file is required", errUsage)
	}
	if f.recoveryKey != "" && f.recoveryKeyFile != "" {
		return fmt.Errorf("%w: give --recovery-key or --recovery-key-file, not both", errUsage)
	}
	c, err := client.New(f.url, clientOptions...)
	if err != nil {
		return fmt.Errorf("%w: --url: %v", errUsage, err)
	}
	return run(context.Background(), c, &f, stdout)
}

func clientCreate(ctx context.Context, c *client.Client, f *clientFlags, stdout io.Writer) error {
	pw, err := readNewPassword(f.passwordFile, "Password: ", "Repeat password: ")
	if err != nil {
		return err
	}
	uid, err := c.CreateAccount(ctx, f.email, pw, client.CreateOptions{PreVerified: f.preVerified})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "uid: %x\n", uid)
	return nil
}

func clientLogin(ctx context.Context, c *client.Client, f *clientFlags, stdout io.Writer) error {
	pw, err := readPassword(f.passwordFile, "Password: ")
	if err != nil {
		return err
	}
	return signInShowKeys(ctx, c, f, pw, true, stdout)
}

func clientKeys(ctx context.Context, c *client.Client, f *clientFlags, stdout io.Writer) error {
	pw, err := readPassword(f.passwordFile, "Password: ")
	if err != nil {
		return err
	}
	return signInShowKeys(ctx, c, f, pw, false, stdout)
}

func clientChangePassword(ctx context.Context, c *client.Client, f *clientFlags, stdout io.Writer) error {
	oldPw, err := readPassword(f.passwordFile, "Current password: ")
	if err != nil {
		return err
	}
	newPw, err := readNewPassword(f.newPasswordFile, "New password: ", "Repeat new password: ")
	if err != nil {
		return err
	}
	if err := c.ChangePassword(ctx, f.email, oldPw, newPw); err != nil {
		return err
	}
	return showKeys(ctx, c, f.email, newPw, false, stdout)
}

func clientDestroy(ctx context.Context, c *client.Client, f *clientFlags, stdout io.Writer) error {
	pw, err := readPassword(f.passwordFile, "Password: ")
	if err != nil {
		return err
	}
	if err := c.DestroyAccount(ctx, f.email, pw); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "destroyed: %s\n", f.email)
	return nil
}

// clientRecoveryKeyCreate signs in, fetches kB, stores a new recovery key
// for it (replacing the account's previous one) and prints the key string:
// the only time it is shown (docs/recovery-key.md RK.1).
func clientRecoveryKeyCreate(ctx context.Context, c *client.Client, f *clientFlags, stdout io.Writer) error {
	pw, err := readPassword(f.passwordFile, "Password: ")
	if err != nil {
		return err
	}
	var keyString string
	var old *protocol.RecoveryKeyStatus
	err = inSession(ctx, c, f, pw, func(s *client.Session) error {
		keys, err := c.Keys(ctx, s.KeyFetchToken, s.UnwrapBKey)
		if err != nil {
			return err
		}
		if old, err = c.RecoveryKeyStatus(ctx, s.SessionToken); err != nil {
			return err
		}
		keyString, err = c.CreateRecoveryKey(ctx, s.SessionToken, s.UID, keys.KB)
		return err
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "recovery key: %s\n", keyString)
	fmt.Fprintln(stdout, "This is the only time the recovery key is shown: store it safely, e.g. printed or written\n"+
		"down and kept where only you can reach it, not next to your password. With it, a reset\n"+
		"after a forgotten password keeps kB (keyserver client forgot --recovery-key-file FILE);\n"+
		"whoever has it and can read your email can get kB.")
	if old.Exists {
		fmt.Fprintf(stdout, "It replaces the recovery key made %s, which no longer works.\n", msTime(old.CreatedAt))
	}
	return nil
}

// clientRecoveryKeyStatus prints whether the account has a recovery key.
func clientRecoveryKeyStatus(ctx context.Context, c *client.Client, f *clientFlags, stdout io.Writer) error {
	pw, err := readPassword(f.passwordFile, "Password: ")
	if err != nil {
		return err
	}
	var st *protocol.RecoveryKeyStatus
	err = inSession(ctx, c, f, pw, func(s *client.Session) error {
		st, err = c.RecoveryKeyStatus(ctx, s.SessionToken)
		return err
	})
	if err != nil {
		return err
	}
	if st.Exists {
		fmt.Fprintf(stdout, "recovery key: yes, made %s\n", msTime(st.CreatedAt))
	} else {
		fmt.Fprintln(stdout, "recovery key: none")
	}
	return nil
}

// clientRecoveryKeyDelete deletes the account's recovery key.
func clientRecoveryKeyDelete(ctx context.Context, c *client.Client, f *clientFlags, stdout io.Writer) error {
	pw, err := readPassword(f.passwordFile, "Password: ")
	if err != nil {
		return err
	}
	var st *protocol.RecoveryKeyStatus
	err = inSession(ctx, c, f, pw, func(s *client.Session) error {
		if st, err = c.RecoveryKeyStatus(ctx, s.SessionToken); err != nil {
			return err
		}
		return c.DeleteRecoveryKey(ctx, s.SessionToken)
	})
	if err != nil {
		return err
	}
	if st.Exists {
		fmt.Fprintf(stdout, "deleted the recovery key made %s: a reset after a forgotten password will change kB\n", msTime(st.CreatedAt))
	} else {
		fmt.Fprintln(stdout, "recovery key: none (nothing to delete)")
	}
	return nil
}

// inSession signs in, runs fn with the session and ends the session again.
func inSession(ctx context.Context, c *client.Client, f *clientFlags, pw string, fn func(*client.Session) error) error {
	s, err := login(ctx, c, f, pw)
	if err != nil {
		return err
	}
	err = fn(s)
	if derr := c.SessionDestroy(ctx, s.SessionToken); err == nil && derr != nil {
		err = fmt.Errorf("ending the session: %w", derr)
	}
	return err
}

// showKeys signs in, prints uid, kA and kB (with loginOnly, also the
// verification status, and the keys only for a verified account), then ends
// the session: the CLI keeps no state that could use it later.
func showKeys(ctx context.Context, c *client.Client, email, pw string, loginOnly bool, stdout io.Writer) error {
	return signInShowKeys(ctx, c, &clientFlags{email: email}, pw, loginOnly, stdout)
}

// signInShowKeys is showKeys with the sign-in options of f (an unblock
// code).
func signInShowKeys(ctx context.Context, c *client.Client, f *clientFlags, pw string, loginOnly bool, stdout io.Writer) error {
	s, err := login(ctx, c, f, pw)
	if err != nil {
		return err
	}
	var keys *client.Keys
	if !loginOnly || s.Verified {
		keys, err = c.Keys(ctx, s.KeyFetchToken, s.UnwrapBKey)
	}
	if derr := c.SessionDestroy(ctx, s.SessionToken); err == nil && derr != nil {
		err = fmt.Errorf("ending the session: %w", derr)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "uid: %x\n", s.UID)
	if loginOnly {
		fmt.Fprintf(stdout, "verified: %t\n", s.Verified)
	}
	if keys != nil {
		fmt.Fprintf(stdout, "kA: %x\nkB: %x\n", keys.KA, keys.KB)
	}
	return nil
}

// login signs in. When the server blocks the sign-in from this address
// (400/125, spec 14.3) it has an unblock code mailed and asks for it
// (promptCode, as the forgot command does; or uses --unblock-code), then
// signs in again with it; a 429 says how long to wait.
func login(ctx context.Context, c *client.Client, f *clientFlags, pw string) (*client.Session, error) {
	opts := client.SignInOptions{UnblockCode: f.unblockCode}
	s, err := c.LoginWith(ctx, f.email, pw, opts)
	if !client.IsBlocked(err) || f.unblockCode != "" {
		return s, err
	}
	if err := c.SendUnblockCode(ctx, f.email); err != nil {
		return nil, fmt.Errorf("sign-in is blocked from this address and no unblock code could be sent: %w", err)
	}
	code, err := promptCode("Sign-in from this address is blocked after many wrong passwords.\n" +
		"An unblock code was sent to " + f.email + ". Code: ")
	if err != nil {
		return nil, err
	}
	opts.UnblockCode = strings.TrimSpace(code)
	return c.LoginWith(ctx, f.email, pw, opts)
}

// readPassword returns the first line of file, or asks on the terminal when
// file is "".
func readPassword(file, prompt string) (string, error) {
	var pw string
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("reading password file: %w", err)
		}
		line, _, _ := strings.Cut(string(b), "\n")
		pw = strings.TrimSuffix(line, "\r")
	} else {
		var err error
		if pw, err = promptPassword(prompt); err != nil {
			return "", err
		}
	}
	if pw == "" {
		return "", fmt.Errorf("%w: empty password", errUsage)
	}
	return pw, nil
}

// readNewPassword is readPassword for a new password: on the terminal it is
// asked twice.
func readNewPassword(file, prompt, repeat string) (string, error) {
	pw, err := readPassword(file, prompt)
	if err != nil || file != "" {
		return pw, err
	}
	again, err := readPassword("", repeat)
	if err != nil {
		return "", err
	}
	if again != pw {
		return "", errors.New("the passwords do not match")
	}
	return pw, nil
}

// terminalPassword shows prompt on the controlling terminal (or on stderr
// when stdin is a terminal) and reads a line without echo.
func terminalPassword(prompt string) (string, error) {
	fd, out := -1, io.Writer(os.Stderr)
	if tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0); err == nil {
		defer tty.Close()
		if term.IsTerminal(int(tty.Fd())) {
			fd, out = int(tty.Fd()), tty
		}
	}
	if fd < 0 && term.IsTerminal(int(os.Stdin.Fd())) {
		fd = int(os.Stdin.Fd())
	}
	if fd < 0 {
		return "", fmt.Errorf("%w: no terminal to ask for the password; use --password-file", errUsage)
	}
	fmt.Fprint(out, prompt)
	b, err := term.ReadPassword(fd)
	fmt.Fprintln(out)
	if err != nil {
		return "", fmt.Errorf("reading password: %w", err)
	}
	return string(b), nil
}
