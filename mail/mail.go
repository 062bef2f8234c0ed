// Package mail implements the mailer interface of package accounts: SMTP
// delivery of keyserver's messages (email verification links,
// forgot-password codes, notifications; spec 6.6, 6.7), with
// github.com/wneessen/go-mail as the SMTP client, and the development
// mailer that logs them instead.
//
// A message is a plain-text part with an HTML alternative. Send returns once
// the SMTP server has accepted the message, or with the error that stopped
// it; callers decide what a failure means (spec C5). Errors never contain
// the message body, so they are safe to log.
package mail

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/keyserver/keyserver/accounts"
)

// Message is the message type of the mailer interface that package
// accounts declares and the mailers here implement.
type Message = accounts.Message

// STARTTLS policies.
const (
	// StartTLSMandatory refuses a server that does not offer STARTTLS.
	StartTLSMandatory = "mandatory"
	// StartTLSOpportunistic uses STARTTLS when the server offers it.
	StartTLSOpportunistic = "opportunistic"
	// StartTLSNone never encrypts (a relay on localhost).
	StartTLSNone = "none"
)

// SMTPConfig configures an SMTP mailer.
type SMTPConfig struct {
	Host string
	Port int // default 587
	// Username and Password authenticate with the best mechanism the server
	// offers; an empty Username sends without authentication.
	Username, Password string
	// StartTLS is one of the StartTLS* policies (default mandatory).
	StartTLS string
	// From is the sender, an address with an optional name
	// ("keyserver <no-reply@example.org>").
	From string
	// Timeout bounds connecting and each SMTP exchange (default 10 s).
	Timeout time.Duration
}

// SMTP sends messages through one SMTP server, a new connection per
// message. It is safe for concurrent use.
type SMTP struct {
	client *gomail.Client
	from   string
}

// NewSMTP checks cfg and returns the mailer; it does not connect yet.
func NewSMTP(cfg SMTPConfig) (*SMTP, error) {
	if cfg.Host == "" {
		return nil, errors.New("mail: no SMTP host")
	}
	if cfg.Port == 0 {
		cfg.Port = gomail.DefaultPortTLS
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if err := gomail.NewMsg().From(cfg.From); err != nil {
		return nil, fmt.Errorf("mail: sender address %q: %w", cfg.From, err)
	}
	policy, ok := map[string]gomail.TLSPolicy{
		"":                    gomail.TLSMandatory,
		StartTLSMandatory:     gomail.TLSMandatory,
		StartTLSOpportunistic: gomail.TLSOpportunistic,
		StartTLSNone:          gomail.NoTLS,
	}[cfg.StartTLS]
	if !ok {
		return nil, fmt.Errorf("mail: STARTTLS policy %q: want %s, %s or %s", cfg.StartTLS, StartTLSMandatory, StartTLSOpportunistic, StartTLSNone)
	}
	opts := []gomail.Option{gomail.WithPort(cfg.Port), gomail.WithTLSPolicy(policy), gomail.WithTimeout(cfg.Timeout)}
	if cfg.Username != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(cfg.Username), gomail.WithPassword(cfg.Password))
	}
	c, err := gomail.NewClient(cfg.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("mail: %w", err)
	}
	return &SMTP{client: c, from: cfg.From}, nil
}

// Send delivers m.
func (s *SMTP) Send(ctx context.Context, m *Message) error {
	msg := gomail.NewMsg()
	if err := msg.From(s.from); err != nil {
		return fmt.Errorf("mail: sender: %w", err)
	}
	if err := msg.To(m.To); err != nil {
		return fmt.Errorf("mail: recipient: %w", err)
	}
	msg.Subject(m.Subject)
	msg.SetDate()
	msg.SetMessageID()
	for k, v := range m.Headers {
		msg.SetGenHeader(gomail.Header(k), v)
	}
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	if m.HTML != "" {
		msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	}
	if err := s.client.DialAndSendWithContext(ctx, msg); err != nil {
		return fmt.Errorf("mail: sending to the SMTP server: %w", err)
	}
	return nil
}

// Log is the development mailer: it writes whole messages, codes included,
// to the log instead of sending them. Only for --dev (spec C14).
type Log struct{ Logger *slog.Logger }

// Send logs m.
func (l Log) Send(ctx context.Context, m *Message) error {
	attrs := []any{"to", m.To, "subject", m.Subject, "text", m.Text}
	for k, v := range m.Headers {
		attrs = append(attrs, k, v)
	}
	l.Logger.InfoContext(ctx, "development mailer: message not sent", attrs...)
	return nil
}
