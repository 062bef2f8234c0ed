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
	"github.com/keyserver/keyserver/protocol"
)

// promptCode asks for the emailed code; tests replace it.
var promptCode = stdinLine

var stdinReader = bufio.NewReader(os.Stdin)

// stdinLine shows prompt on stderr and reads a line from standard input
// (so that a script can pipe the code in).
func stdinLine(prompt string) (string, error) {
	fmt.Fprint(os.Stderr, prompt)
	line, err := stdinReader.ReadString('\n')
	if err != nil && (line == "" || !errors.Is(err, io.EOF)) {
		return "", fmt.Errorf("reading the code: %w", err)
	}
	return strings.TrimSpace(line), nil
}

// clientForgot is the forgot-password flow of spec 9.1: send_code, the
// emailed code (asked until it is right or no try is left), a new password,
// reset with a fresh wrapKb, then the keys with the new password.
func clientForgot(ctx context.Context, c *client.Client, f *clientFlags, stdout io.Writer) error {
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
	return resetAndShowKeys(ctx, c, resetToken, ft.Email, f.newPasswordFile, stdout)
}

// clientRecover is recovery by email assertion (spec 9.1): account/recover,
// a new password, reset with a fresh wrapKb, then the keys.
func clientRecover(ctx context.Context, c *client.Client, f *clientFlags, stdout io.Writer) error {
	b, err := os.ReadFile(f.assertionFile)
	if err != nil {
		return fmt.Errorf("reading the assertion file: %w", err)
	}
	resetToken, email, err := c.Recover(ctx, f.email, strings.TrimSpace(string(b)))
	if err != nil {
		return err
	}
	return resetAndShowKeys(ctx, c, resetToken, email, f.newPasswordFile, stdout)
}

// resetAndShowKeys sets a new password with an accountResetToken and a fresh
// wrapKb (class-B data is lost, kA stays), then prints the keys.
func resetAndShowKeys(ctx context.Context, c *client.Client, resetToken []byte, email, newPasswordFile string, stdout io.Writer) error {
	pw, err := readNewPassword(newPasswordFile, "New password: ", "Repeat new password: ")
	if err != nil {
		return err
	}
	if err := c.ResetAccount(ctx, resetToken, email, pw, nil); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "Password reset: every device was signed out, and kB is new (class-B data is lost).")
	return showKeys(ctx, c, email, pw, false, stdout)
}
