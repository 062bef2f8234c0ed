package protocol

// Errno is an error number of spec 1.5. The table is append-only: a
// number, once shipped, keeps its meaning.
type Errno = int

// Errnos of spec 1.5.
const (
	ErrnoAccountExists      Errno = 101
	ErrnoUnknownAccount     Errno = 102
	ErrnoIncorrectPassword  Errno = 103
	ErrnoUnverifiedAccount  Errno = 104
	ErrnoInvalidCode        Errno = 105
	ErrnoInvalidJSON        Errno = 106
	ErrnoInvalidParameter   Errno = 107
	ErrnoMissingParameter   Errno = 108
	ErrnoInvalidSignature   Errno = 109
	ErrnoInvalidToken       Errno = 110
	ErrnoInvalidTimestamp   Errno = 111
	ErrnoMissingLength      Errno = 112
	ErrnoBodyTooLarge       Errno = 113
	ErrnoTooManyRequests    Errno = 114
	ErrnoInvalidNonce       Errno = 115
	ErrnoIncorrectEmailCase Errno = 120
	ErrnoUnknownDevice      Errno = 123
	ErrnoDeviceExists       Errno = 124
	ErrnoRequestBlocked     Errno = 125
	ErrnoInvalidAssertion   Errno = 126
	ErrnoAccountDisabled    Errno = 127
	// 128 and 129 are the recovery-key extension (docs/recovery-key.md, RK.3).
	ErrnoInvalidRecoveryKey Errno = 128
	ErrnoNoRecoveryKey      Errno = 129
	ErrnoServiceUnavailable Errno = 201
	ErrnoUnspecified        Errno = 999
)

// Messages are the messages the server sends with each errno. Errnos whose
// message names a parameter (107, 108) carry the prefix here and the
// parameter appended.
var Messages = map[Errno]string{
	ErrnoAccountExists:      "Account already exists",
	ErrnoUnknownAccount:     "Unknown account",
	ErrnoIncorrectPassword:  "Incorrect password",
	ErrnoUnverifiedAccount:  "Unverified account",
	ErrnoInvalidCode:        "Invalid verification code",
	ErrnoInvalidJSON:        "Invalid JSON in request body",
	ErrnoInvalidParameter:   "Invalid parameter in request body: ",
	ErrnoMissingParameter:   "Missing parameter in request body: ",
	ErrnoInvalidSignature:   "Invalid request signature",
	ErrnoInvalidToken:       "Invalid authentication token in request signature",
	ErrnoInvalidTimestamp:   "Invalid timestamp in request signature",
	ErrnoMissingLength:      "Missing content-length header",
	ErrnoBodyTooLarge:       "Request body too large",
	ErrnoTooManyRequests:    "Client has sent too many requests",
	ErrnoInvalidNonce:       "Invalid nonce in request signature",
	ErrnoIncorrectEmailCase: "Incorrect email case",
	ErrnoUnknownDevice:      "Unknown device",
	ErrnoDeviceExists:       "Session already registered a device",
	ErrnoRequestBlocked:     "The request was blocked for security reasons",
	ErrnoInvalidAssertion:   "Invalid email assertion",
	ErrnoAccountDisabled:    "Account disabled",
	ErrnoInvalidRecoveryKey: "Invalid recovery key",
	ErrnoNoRecoveryKey:      "No recovery key",
	ErrnoServiceUnavailable: "Service unavailable",
	ErrnoUnspecified:        "Unspecified error",
}
