package keyserver

import (
	"context"
	"errors"
	"fmt"
	"html"
	"log/slog"

	"github.com/keyserver/keyserver/mail"
)

// Message and Mailer are those of package mail, which has the SMTP mailer.
type (
	Message = mail.Message
	Mailer  = mail.Mailer
)

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

// NoMailer is the mailer outside the test switch when no SMTP server is
// configured: it sends nothing and logs nothing of the message (only the
// development mailer may log codes, spec C14), and every Send fails, so the
// endpoints that must deliver mail answer 503 (C5).
type NoMailer struct{}

// errNoMailServer is the failure of every NoMailer send.
var errNoMailServer = errors.New("no mail server configured")

// Send fails.
func (NoMailer) Send(context.Context, *Message) error { return errNoMailServer }

// notify sends a notification, best effort (C5): a failure is logged and
// the request it reports on stands.
func (s *Server) notify(ctx context.Context, m *Message) {
	if err := s.cfg.Mailer.Send(context.WithoutCancel(ctx), m); err != nil {
		s.log.WarnContext(ctx, "notification mail not sent", "subject", m.Subject, "err", err)
	}
}

// verificationMail is the email-verification message of spec 6.6.
func (s *Server) verificationMail(uid []byte, email, code, service string) *Message {
	link := s.cfg.VerificationURL + "?uid=" + hexString(uid)
	if service != "" {
		link += "&service=" + service // validService: letters and digits only
	}
	link += "&code=" + code
	return mailContent{
		to:      email,
		subject: "Verify your account",
		intro:   "Verify the email address %s for your keyserver account by opening this link:",
		link:    link,
		notYou:  "If you did not create an account, ignore this message: without verification the account cannot fetch keys.",
		headers: map[string]string{"X-Uid": hexString(uid), "X-Verify-Code": code, "X-Link": link},
	}.message()
}

// forgotPasswordMail carries the forgot-password code (spec 6.7).
func forgotPasswordMail(email, code string) *Message {
	return mailContent{
		to:      email,
		subject: "Your keyserver password reset code",
		intro:   "Someone asked to reset the password of the keyserver account %s. Enter this code to set a new password (it expires in 15 minutes):",
		code:    code,
		notYou:  "If this was not you, ignore this message: nobody can reset your password without this code.",
		headers: map[string]string{"X-Recovery-Code": code},
	}.message()
}

// passwordChangedMail is the notification after /v1/account/reset.
func passwordChangedMail(email string) *Message {
	return mailContent{
		to:      email,
		subject: "Your keyserver password was changed",
		intro:   "The password of the keyserver account %s was changed, and every device was signed out.",
		notYou:  "If this was not you, reset your password at once with \"forgot password\" and check your devices.",
	}.message()
}

// mailContent is what every message says: what happened to the account
// (intro, with %s for its email), a link to open or a code to enter, and
// what to do if it was not the user.
type mailContent struct {
	to, subject, intro string
	link, code         string
	notYou             string
	headers            map[string]string
}

// message renders c as plain text with an HTML alternative.
func (c mailContent) message() *Message {
	esc := html.EscapeString
	text := fmt.Sprintf(c.intro, c.to) + "\n\n"
	htm := "<p>" + fmt.Sprintf(esc(c.intro), esc(c.to)) + "</p>"
	if c.link != "" {
		text += c.link + "\n\n"
		htm += `<p><a href="` + esc(c.link) + `">` + esc(c.link) + "</a></p>"
	}
	if c.code != "" {
		text += "    " + c.code + "\n\n"
		htm += `<p style="font-size:x-large;font-family:monospace">` + esc(c.code) + "</p>"
	}
	return &Message{
		To:      c.to,
		Subject: c.subject,
		Text:    text + c.notYou + "\n",
		HTML:    "<!doctype html><html><body>" + htm + "<p>" + esc(c.notYou) + "</p></body></html>",
		Headers: c.headers,
	}
}
