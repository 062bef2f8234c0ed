package main

import (
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/smtp"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/keyserver/keyserver/accounts"
	"github.com/keyserver/keyserver/mail"
	"github.com/keyserver/keyserver/recovery"
)

// recoveryFlags are the serve flags of mail delivery and account recovery.
type recoveryFlags struct {
	smtpHost         string
	smtpPort         int
	smtpUser         string
	smtpPasswordFile string
	smtpStartTLS     string
	mailFrom         string
	issuersFile      string
	caFile           string
}

func (f *recoveryFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.smtpHost, "smtp-host", "", "SMTP server for outgoing mail (default: none; with --dev the development mailer writes messages, codes included, to the log, otherwise no mail is sent)")
	fs.IntVar(&f.smtpPort, "smtp-port", 587, "SMTP server port")
	fs.StringVar(&f.smtpUser, "smtp-user", "", "SMTP user name (default: send without authentication)")
	fs.StringVar(&f.smtpPasswordFile, "smtp-password-file", "", "file holding the SMTP password")
	fs.StringVar(&f.smtpStartTLS, "smtp-starttls", mail.StartTLSMandatory, "STARTTLS policy: mandatory, opportunistic or none")
	fs.StringVar(&f.mailFrom, "mail-from", "keyserver <no-reply@localhost>", "sender of outgoing mail")
	fs.StringVar(&f.issuersFile, "recovery-issuers", "", "recovery issuers file: trusted OpenID Connect issuers and BrowserID IdPs for /v1/account/recover (default: none, every assertion is refused)")
	fs.StringVar(&f.caFile, "recovery-ca-file", "", "PEM file of the CA certificates trusted for fetching recovery issuers' keys, instead of the system's (an internal CA)")
}

// mailer returns the SMTP mailer. Without an SMTP host it returns, with
// --dev, the development mailer, which logs messages, codes included, and
// otherwise nil: no mail is sent or logged (spec C14: only the development
// mailer of the test switch may log codes); it announces either in the log.
func (f *recoveryFlags) mailer(logger *slog.Logger, dev bool) (accounts.Mailer, error) {
	if f.smtpHost == "" {
		if dev {
			logger.Info("no --smtp-host: the development mailer writes messages, codes included, to the log instead of sending them")
			return mail.Log{Logger: logger}, nil
		}
		logger.Warn("no --smtp-host: no mail can be sent (forgot-password codes and verification resends answer 503); set --smtp-host, or --dev to log messages instead")
		return nil, nil
	}
	var password string
	if f.smtpPasswordFile != "" {
		b, err := os.ReadFile(f.smtpPasswordFile)
		if err != nil {
			return nil, fmt.Errorf("reading --smtp-password-file: %w", err)
		}
		password = strings.TrimSpace(string(b))
	}
	m, err := mail.NewSMTP(mail.SMTPConfig{
		Host: f.smtpHost, Port: f.smtpPort, Username: f.smtpUser, Password: password,
		StartTLS: f.smtpStartTLS, From: f.mailFrom,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	logger.Info("sending mail through SMTP", "host", f.smtpHost, "port", f.smtpPort, "starttls", f.smtpStartTLS)
	if f.smtpStartTLS == mail.StartTLSMandatory {
		addr := net.JoinHostPort(f.smtpHost, strconv.Itoa(f.smtpPort))
		switch ok, err := offersStartTLS(addr, smtpCheckTimeout); {
		case err != nil:
			logger.Warn("--smtp-starttls mandatory: could not ask the SMTP server whether it offers STARTTLS; mail fails (503) while it cannot be reached", "addr", addr, "err", err)
		case !ok:
			logger.Warn("--smtp-starttls mandatory: the SMTP server does not offer STARTTLS, so every mail will fail (503); give the server a TLS certificate, or use --smtp-starttls opportunistic or none for a trusted relay", "addr", addr)
		default:
			logger.Info("the SMTP server offers STARTTLS", "addr", addr)
		}
	}
	return m, nil
}

// smtpCheckTimeout bounds the STARTTLS check at startup.
const smtpCheckTimeout = 5 * time.Second

// offersStartTLS connects to the SMTP server at addr, says EHLO and
// reports whether it offers STARTTLS.
func offersStartTLS(addr string, timeout time.Duration) (bool, error) {
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		return false, err
	}
	host, _, _ := net.SplitHostPort(addr)
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		return false, err
	}
	defer c.Close()
	if err := c.Hello("localhost"); err != nil {
		return false, err
	}
	ok, _ := c.Extension("STARTTLS")
	_ = c.Quit()
	return ok, nil
}

// recovery returns the assertion verifier of --recovery-issuers, or nil
// when none is set. A bad file stops the server (spec 8.2).
func (f *recoveryFlags) recovery(publicURL string) (accounts.AssertionVerifier, error) {
	if f.issuersFile == "" {
		if f.caFile != "" {
			return nil, fmt.Errorf("%w: --recovery-ca-file needs --recovery-issuers", errUsage)
		}
		return nil, nil
	}
	cfg, err := recovery.LoadConfig(f.issuersFile)
	if err != nil {
		return nil, err
	}
	opts := recovery.Options{Audience: publicURL}
	if f.caFile != "" {
		pem, err := os.ReadFile(f.caFile)
		if err != nil {
			return nil, fmt.Errorf("reading --recovery-ca-file: %w", err)
		}
		opts.RootCAs = x509.NewCertPool()
		if !opts.RootCAs.AppendCertsFromPEM(pem) {
			return nil, errors.New("--recovery-ca-file holds no PEM certificate")
		}
	}
	v, err := recovery.New(cfg, opts)
	if err != nil {
		return nil, err
	}
	return v, nil
}
