package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/keyserver/keyserver/client"
	"github.com/keyserver/keyserver/keywrap"
	"github.com/keyserver/keyserver/protocol"
)

// promptCode asks for the emailed code, and promptRecoveryKey for the
// recovery key of --recovery-key-file -; tests replace them.
var (
	promptCode        = stdinLine
	promptRecoveryKey = stdinLine
)

var stdinReader = bufio.NewReader(os.Stdin)

// stdinLine shows prompt on stderr and reads a line from standard input
// (so that a script can pipe the code in).
func stdinLine(prompt string) (string, error) {
	fmt.Fprint(os.Stderr, prompt)
	line, err := stdinReader.ReadString('\n')
	if err != nil && (line == "" || !errors.Is(err, io.EOF)) {
		return "", fmt.Errorf("reading standard input: %w", err)
	}
	return strings.TrimSpace(line), nil
}

// clientForgot is the forgot-password flow of spec 9.1: send_code, the
// emailed code (asked until it is right or no try is left), a new password,
// reset with a fresh wrapKb, then the keys with the new password. With a
// recovery key (RK.5) the reset keeps kB instead.
func clientForgot(ctx context.Context, c *client.Client, f *clientFlags, stdout io.Writer) error {
	keyString, err := readRecoveryKey(f)
	if err != nil {
		return err
	}
	ft, err := c.ForgotSendCode(ctx, f.email)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "A %d-digit code was sent to %s; it is valid for %v and %d tries.\n", ft.CodeLength, ft.Email, ft.TTL, ft.Tries)
	var resetToken []byte
	for resetToken == nil {
		code, err := promptCode("Code from the email: ")
		if err != nil {
			return err
		}
		resetToken, err = c.ForgotVerifyCode(ctx, ft, code)
		var ce *client.Error
		if errors.As(err, &ce) && ce.Errno == protocol.ErrnoInvalidCode {
			tries, _ := ce.Body["tries"].(float64)
			if tries <= 0 {
				return errors.New("wrong code, and no try is left: start again")
			}
			fmt.Fprintf(stdout, "Wrong code; %d tries left.\n", int(tries))
		} else if err != nil {
			return err
		}
	}
	return resetAndShowKeys(ctx, c, resetToken, ft.Email, keyString, f.newPasswordFile, stdout)
}

// clientRecover is recovery by email assertion (spec 9.1): account/recover,
// a new password, reset with a fresh wrapKb (or, with a recovery key, the
// same kB), then the keys.
func clientRecover(ctx context.Context, c *client.Client, f *clientFlags, stdout io.Writer) error {
	keyString, err := readRecoveryKey(f)
	if err != nil {
		return err
	}
	b, err := os.ReadFile(f.assertionFile)
	if err != nil {
		return fmt.Errorf("reading the assertion file: %w", err)
	}
	resetToken, email, err := c.Recover(ctx, f.email, strings.TrimSpace(string(b)))
	if err != nil {
		return err
	}
	return resetAndShowKeys(ctx, c, resetToken, email, keyString, f.newPasswordFile, stdout)
}

// readRecoveryKey returns the recovery key of --recovery-key or the first
// line of --recovery-key-file (- is standard input), "" when neither is
// given. It is read, and checked as RK.1 reads it, before anything is sent:
// a mistyped key fails before a code is mailed.
func readRecoveryKey(f *clientFlags) (string, error) {
	key := f.recoveryKey
	switch f.recoveryKeyFile {
	case "":
		if key == "" {
			return "", nil
		}
	case "-":
		var err error
		if key, err = promptRecoveryKey("Recovery key: "); err != nil {
			return "", err
		}
	default:
		b, err := os.ReadFile(f.recoveryKeyFile)
		if err != nil {
			return "", fmt.Errorf("reading the recovery key file: %w", err)
		}
		key, _, _ = strings.Cut(string(b), "\n")
	}
	key = strings.TrimSpace(key)
	if _, err := keywrap.ParseRecoveryKey(key); err != nil {
		return "", fmt.Errorf("%w (nothing was sent)", err)
	}
	return key, nil
}

// resetAndShowKeys sets a new password with an accountResetToken, then
// prints the keys. Without a recovery key it sends a fresh wrapKb (class-B
// data is lost, kA stays); with one it first gets kB back from the
// account's recoveryData (RK.5) and keeps it, and nothing is reset when
// that fails.
func resetAndShowKeys(ctx context.Context, c *client.Client, resetToken []byte, email, keyString, newPasswordFile string, stdout io.Writer) error {
	var kB []byte
	if keyString != "" {
		var err error
		kB, err = c.RecoveryKB(ctx, resetToken, keyString)
		switch {
		case client.IsErrno(err, protocol.ErrnoInvalidRecoveryKey):
			return fmt.Errorf("this recovery key is not the one of %s; nothing was reset (start again without a recovery key to reset with a new kB, losing class-B data)", email)
		case client.IsErrno(err, protocol.ErrnoNoRecoveryKey):
			return fmt.Errorf("%s has no recovery key; nothing was reset (start again without a recovery key to reset with a new kB, losing class-B data)", email)
		case errors.Is(err, keywrap.ErrRecoveryData):
			return fmt.Errorf("the account's recovery data does not open with this recovery key; nothing was reset")
		case err != nil:
			return err
		}
		defer clear(kB)
		fmt.Fprintln(stdout, "The recovery key is right: the reset keeps kB.")
	}
	pw, err := readNewPassword(newPasswordFile, "New password: ", "Repeat new password: ")
	if err != nil {
		return err
	}
	if kB == nil {
		if err := c.ResetAccount(ctx, resetToken, email, pw, nil); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "Password reset: every device was signed out, and kB is new (class-B data is lost).")
	} else {
		if err := c.ResetAccountWithKB(ctx, resetToken, email, pw, kB); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "Password reset: every device was signed out; kA and kB are kept.\n"+
			"The recovery key is used up: make a new one with 'keyserver client recovery-key create'.")
	}
	return showKeys(ctx, c, email, pw, false, stdout)
}
