package accounts

import (
	"context"
	"errors"
	"fmt"
	"html"
)

// Message is an email to one recipient. Headers are extra header fields
// (the X-* fields of spec 6.6 that test harnesses read).
type Message struct {
	To      string
	Subject string
	Text    string
	HTML    string
	Headers map[string]string
}

// Mailer delivers messages; package mail implements it (SMTP, the
// development logger). Send returns once the message is handed over.
type Mailer interface {
	Send(ctx context.Context, m *Message) error
}

// noMailer is the mailer when none is configured: it sends and logs
// nothing (only the development mailer may log codes, spec C14), and every
// Send fails, so the operations that must deliver mail refuse (C5).
type noMailer struct{}

var errNoMailServer = errors.New("no mail server configured")

func (noMailer) Send(context.Context, *Message) error { return errNoMailServer }

// send delivers a message the operation needs: ErrMailNotSent otherwise.
func (s *Service) send(ctx context.Context, what string, m *Message) error {
	if err := s.cfg.Mailer.Send(ctx, m); err != nil {
		return refuse(ErrMailNotSent, fmt.Errorf("%s mail not sent: %w", what, err))
	}
	return nil
}

// notify sends a notification, best effort (C5): a failure is logged and
// the operation it reports on stands. Notifications count for no rule (R6
// spares the password-changed notice), but C20 holds.
func (s *Service) notify(ctx context.Context, m *Message) {
	if !Mailable(m.To) {
		s.log.WarnContext(ctx, "notification not sent: the email is not a plain address (C20)", "subject", m.Subject)
		return
	}
	if err := s.cfg.Mailer.Send(context.WithoutCancel(ctx), m); err != nil {
		s.log.WarnContext(ctx, "notification mail not sent", "subject", m.Subject, "err", err)
	}
}

// verificationMail is the email-verification message of spec 6.6.
func (s *Service) verificationMail(uid []byte, email, code, service string) *Message {
	link := s.cfg.VerificationURL + "?uid=" + hexString(uid)
	if service != "" {
		link += "&service=" + service // ValidService: letters and digits only
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

// unblockCodeMail carries an unblock code (spec 14.3).
func unblockCodeMail(email, code string) *Message {
	return mailContent{
		to:      email,
		subject: "Your keyserver sign-in unblock code",
		intro:   "Sign-in to the keyserver account %s was blocked after many wrong passwords. Enter this code when you sign in to unblock it (it expires in an hour):",
		code:    code,
		notYou:  "If this was not you, someone is guessing your password: ignore this message, and consider changing your password.",
		headers: map[string]string{"X-Unblock-Code": code},
	}.message()
}

// passwordChangedMail is the notification after a reset.
func passwordChangedMail(email string) *Message {
	return mailContent{
		to:      email,
		subject: "Your keyserver password was changed",
		intro:   "The password of the keyserver account %s was changed, and every device was signed out.",
		notYou:  "If this was not you, reset your password at once with \"forgot password\" and check your devices.",
	}.message()
}

// recoveryKeyMail is the notification that a recovery key was made
// (created) or deleted (docs/recovery-key.md, RK.4).
func recoveryKeyMail(email string, created bool) *Message {
	c := mailContent{
		to:      email,
		subject: "A recovery key was made for your keyserver account",
		intro:   "A recovery key was made for the keyserver account %s. With it and your email you can reset a forgotten password without losing your encrypted data. Keep it somewhere safe.",
		notYou:  "If this was not you, someone has access to your account: change your password at once and check your devices.",
	}
	if !created {
		c.subject = "The recovery key of your keyserver account was deleted"
		c.intro = "The recovery key of the keyserver account %s was deleted. If you forget your password, a reset will now lose your encrypted data, until you make a new recovery key."
	}
	return c.message()
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
