package mail

import (
	"context"
	"strings"
	"testing"

	"github.com/keyserver/keyserver/internal/smtptest"
)

func newSMTP(t *testing.T, srv *smtptest.Server, starttls string) *SMTP {
	t.Helper()
	m, err := NewSMTP(SMTPConfig{Host: srv.Host, Port: srv.Port, StartTLS: starttls, From: "keyserver <no-reply@example.org>"})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

var msg = &Message{
	To:      "andré@example.org",
	Subject: "Your code",
	Text:    "Your code is 12345678.\nIf it was not you, ignore this message.\n",
	HTML:    "<p>Your code is <b>12345678</b>.</p>",
	Headers: map[string]string{"X-Recovery-Code": "12345678", "X-Link": "https://keys.example.org/v1/verify_email?uid=" + strings.Repeat("ab", 16) + "&code=" + strings.Repeat("cd", 16)},
}

func TestSend(t *testing.T) {
	srv := smtptest.Start(t)
	if err := newSMTP(t, srv, StartTLSNone).Send(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	got := srv.Next(t)
	if len(got.To) != 1 || got.To[0] != msg.To || got.From != "no-reply@example.org" {
		t.Fatalf("envelope: from %q to %q", got.From, got.To)
	}
	if got.Get("Subject") != msg.Subject || got.Get("To") != "<"+msg.To+">" || got.Get("Date") == "" || got.Get("Message-Id") == "" {
		t.Fatalf("headers: %v", got.Header)
	}
	for k, v := range msg.Headers {
		if got.Get(k) != v {
			t.Fatalf("%s = %q, want %q", k, got.Get(k), v)
		}
	}
	if got.Text != msg.Text || got.HTML != msg.HTML {
		t.Fatalf("parts: text %q html %q", got.Text, got.HTML)
	}
}

func TestSendFailures(t *testing.T) {
	srv := smtptest.Start(t)
	ctx := context.Background()
	if err := newSMTP(t, srv, StartTLSMandatory).Send(ctx, msg); err == nil {
		t.Fatal("mandatory STARTTLS with a server that offers none: sent")
	}
	// Opportunistic falls back to plain text.
	if err := newSMTP(t, srv, StartTLSOpportunistic).Send(ctx, msg); err != nil {
		t.Fatal(err)
	}
	m := newSMTP(t, srv, StartTLSNone)
	srv.Refuse(true)
	err := m.Send(ctx, msg)
	if err == nil || strings.Contains(err.Error(), "12345678") {
		t.Fatalf("refused message: %v (must fail without quoting the message)", err)
	}
	srv.Refuse(false)
	srv.Stop()
	if err := m.Send(ctx, msg); err == nil {
		t.Fatal("server down: sent")
	}
	srv.Restart()
	if err := m.Send(ctx, msg); err != nil {
		t.Fatalf("server back: %v", err)
	}
	if n := srv.Count(); n != 2 {
		t.Fatalf("%d messages received, want 2", n)
	}
}

func TestNewSMTPChecks(t *testing.T) {
	for name, cfg := range map[string]SMTPConfig{
		"no host":    {From: "a@example.org"},
		"bad from":   {Host: "localhost", From: "not an address"},
		"bad policy": {Host: "localhost", From: "a@example.org", StartTLS: "sometimes"},
	} {
		if _, err := NewSMTP(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
