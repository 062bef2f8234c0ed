package keyserver

import (
	"net/http"

	"github.com/gorilla/mux"

	"github.com/keyserver/keyserver/certs"
	"github.com/keyserver/keyserver/protocol"
)

// routes declares the whole public API in one place (spec 6.2): hawkAuth
// endpoints keep their token, hawkConsume endpoints consume it; heavy ones
// run under the CPU limit (shed.go).
func (s *Server) routes() http.Handler {
	r := mux.NewRouter().SkipClean(true) // paths match exactly, no redirects
	r.NotFoundHandler = http.HandlerFunc(s.notFound)
	r.MethodNotAllowedHandler = http.HandlerFunc(s.notFound)

	get, post := http.MethodGet, http.MethodPost
	heavy := s.heavy.shed
	r.Handle("/v1/account/create", heavy(s.open(s.accountCreate))).Methods(post)
	r.Handle("/v1/auth/start", heavy(s.open(s.authStart))).Methods(post)
	r.Handle("/v1/auth/finish", heavy(s.open(s.authFinish))).Methods(post)
	r.Handle("/v1/account/login/send_unblock_code", s.open(s.sendUnblockCode)).Methods(post) // customs.go
	r.Handle("/v1/session/create", s.hawkConsume(protocol.AuthToken, s.sessionCreate)).Methods(post)
	r.Handle("/v1/session/destroy", s.hawkAuth(protocol.SessionToken, s.sessionDestroy)).Methods(post)
	r.Handle("/v1/account/devices", s.hawkAuth(protocol.SessionToken, s.accountDevices)).Methods(get)
	r.Handle("/v1/account/device", s.hawkAuth(protocol.SessionToken, s.accountDevice)).Methods(post)
	r.Handle("/v1/account/device/destroy", s.hawkAuth(protocol.SessionToken, s.accountDeviceDestroy)).Methods(post)
	r.Handle("/v1/account/events", s.hawkAuth(protocol.SessionToken, s.accountEvents)).Methods(get)
	r.Handle("/v1/account/keys", s.hawkConsume(protocol.KeyFetchToken, s.accountKeys)).Methods(get)
	r.Handle("/v1/account/reset", s.hawkAuth(protocol.AccountResetToken, s.accountReset)).Methods(post)
	r.Handle("/v1/account/destroy", s.hawkConsume(protocol.AuthToken, s.accountDestroy)).Methods(post)
	r.Handle("/v1/account/recover", s.open(s.accountRecover)).Methods(post)
	r.Handle("/v1/password/change/start", s.hawkConsume(protocol.AuthToken, s.passwordChangeStart)).Methods(post)
	r.Handle("/v1/password/forgot/send_code", s.open(s.forgotSendCode)).Methods(post)
	r.Handle("/v1/password/forgot/resend_code", s.hawkAuth(protocol.ForgotPasswordToken, s.forgotResendCode)).Methods(post)
	r.Handle("/v1/password/forgot/verify_code", s.hawkAuth(protocol.ForgotPasswordToken, s.forgotVerifyCode)).Methods(post)
	r.Handle("/v1/recovery_email/status", s.hawkAuth(protocol.SessionToken, s.recoveryEmailStatus)).Methods(get)
	r.Handle("/v1/recovery_email/resend_code", s.hawkAuth(protocol.SessionToken, s.recoveryEmailResendCode)).Methods(post)
	r.Handle("/v1/recovery_email/verify_code", s.open(s.recoveryEmailVerifyCode)).Methods(post)
	r.Handle("/v1/verify_email", s.open(s.verifyEmailLink)).Methods(get)
	r.Handle("/v1/get_random_bytes", s.open(s.getRandomBytes)).Methods(post)
	r.Handle("/v1/recoveryKey", s.hawkAuth(protocol.SessionToken, s.recoveryKeyCreate)).Methods(post) // recoverykey.go
	r.Handle("/v1/recoveryKey", s.hawkAuth(protocol.SessionToken, s.recoveryKeyStatus)).Methods(get)
	r.Handle("/v1/recoveryKey/destroy", s.hawkAuth(protocol.SessionToken, s.recoveryKeyDestroy)).Methods(post)
	r.Handle("/v1/recoveryKey/data", s.hawkAuth(protocol.AccountResetToken, s.recoveryKeyData)).Methods(post)
	r.Handle("/v1/certificate/sign", heavy(s.hawkAuth(protocol.SessionToken, s.certificateSign))).Methods(post)
	r.Handle("/.well-known/browserid", s.open(s.wellKnownBrowserID)).Methods(get)
	r.Handle("/.well-known/jwks.json", s.open(s.wellKnownJWKS)).Methods(get)
	r.Handle(certs.AuthenticationPath, browserIDPage("Sign in")).Methods(get)
	r.Handle(certs.ProvisioningPath, browserIDPage("Provisioning")).Methods(get)

	r.Handle("/__heartbeat__", s.open(s.heartbeat)).Methods(get)
	r.Handle("/__lbheartbeat__", s.open(s.lbheartbeat)).Methods(get)
	r.Handle("/__version__", s.open(s.versionInfo)).Methods(get) // the build (metrics.go)

	s.webRoutes(r) // GET /, /signup, /verify, /account, /forgot, /favicon.ico, /static/* (web.go)
	return r
}
