package accounts

import (
	"context"
	"time"

	"github.com/keyserver/keyserver/store"
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

// throttle counts one request of subject against l: ErrTooManyRequests
// with the wait when it is over the limit (the request is then not
// counted). Counts are ephemeral.
func (s *Service) throttle(ctx context.Context, l limit, subject string) error {
	retry, err := s.st.Throttle(store.Ephemeral(ctx), l.name+":"+subject, s.now(), l.window, l.count)
	if err != nil {
		return err
	}
	if retry > 0 {
		e := *ErrTooManyRequests
		e.RetryAfter = retry
		return &e
	}
	return nil
}
