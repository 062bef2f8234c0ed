package keyserver

import (
	"context"
	"time"
)

// limit is a throttling rule: at most count requests per window and
// subject (an account or a client IP). Counts live in the store, so they
// hold across server instances.
type limit struct {
	name   string
	count  int
	window time.Duration
}

// The limits of spec C19, and one on forgot/resend_code (spec 1.5: the
// server may throttle any endpoint), which sends mail too.
var (
	forgotSendPerAccount   = limit{"password.forgot.send_code:account", 3, time.Hour}
	forgotSendPerIP        = limit{"password.forgot.send_code:ip", 20, time.Hour}
	forgotResendPerAccount = limit{"password.forgot.resend_code:account", 3, time.Hour}
	verifyResendPerAccount = limit{"recovery_email.resend_code:account", 3, time.Hour}
)

// throttle counts one request of subject against l: 429/114 with
// Retry-After when it is over the limit (the request is then not counted).
func (s *Server) throttle(ctx context.Context, l limit, subject string) error {
	retry, err := s.store.Throttle(ctx, l.name+":"+subject, s.now(), l.window, l.count)
	if err != nil {
		return err
	}
	if retry > 0 {
		return errTooManyRequests(ceilSeconds(retry))
	}
	return nil
}

// ceilSeconds is d in whole seconds, rounded up.
func ceilSeconds(d time.Duration) int {
	return int((d + time.Second - 1) / time.Second)
}

// clientIP is the client address the middleware determined (spec 10.4).
func clientIP(ctx context.Context) string {
	if info := requestInfoFrom(ctx); info != nil {
		return info.clientIP
	}
	return ""
}
