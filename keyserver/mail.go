package keyserver

import (
	"context"
	"fmt"
	"html"
	"log/slog"
)

// Message is an email to one recipient. Headers carries the X-* headers of
// spec 6.6 that test harnesses read.
type Message struct {
	To      string
	Subject string
	Text    string
	HTML    string
	Headers map[string]string
}

// Mailer delivers messages. Send returns once the mail server has accepted
// the message (or failed to).
type Mailer interface {
	Send(ctx context.Context, m *Message) error
}

// LogMailer is the development mailer: it writes whole messages, codes
// included, to the log instead of sending them. Only for --dev.
type LogMailer struct{ Log *slog.Logger }

// Send logs m.
func (l LogMailer) Send(ctx context.Context, m *Message) error {
	attrs := []any{"to", m.To, "subject", m.Subject, "text", m.Text}
	for k, v := range m.Headers {
		attrs = append(attrs, k, v)
	}
	l.Log.InfoContext(ctx, "development mailer: message not sent", attrs...)
	return nil
}

// verificationMail is the email-verification message of spec 6.6.
func (s *Server) verificationMail(uid []byte, email, code, service string) *Message {
	link := s.cfg.VerificationURL + "?uid=" + hexString(uid)
	if service != "" {
		link += "&service=" + service // validService: letters and digits only
	}
	link += "&code=" + code
	text := fmt.Sprintf("Verify the email address %s for your keyserver account by opening this link:\n\n%s\n\n"+
		"If you did not create an account, ignore this message: without verification the account cannot fetch keys.\n", email, link)
	return &Message{
		To:      email,
		Subject: "Verify your account",
		Text:    text,
		HTML: fmt.Sprintf("<p>Verify the email address %s for your keyserver account:</p><p><a href=\"%s\">Verify my email</a></p>"+
			"<p>If you did not create an account, ignore this message: without verification the account cannot fetch keys.</p>",
			html.EscapeString(email), html.EscapeString(link)),
		Headers: map[string]string{"X-Uid": hexString(uid), "X-Verify-Code": code, "X-Link": link},
	}
}
