// Package store defines the records a PICL key server keeps (accounts, tokens,
// devices, Hawk nonces, recovery-assertion hashes and audit events), the Store
// interface every storage backend implements, and the sentinel errors callers
// test with errors.Is.
//
// The package imports no database driver: implementations live in
// store/sqlstore, and store/storetest holds the conformance suite each of them
// must pass. Byte strings ([]byte) are stored as BLOB/BYTEA; times are UTC
// with millisecond precision (the protocol's unit), so a time written is read
// back truncated to the millisecond.
//
// # Durability classes
//
// Every transaction is of one of two classes, chosen by its caller:
//
//   - Durable (the default: WithTx, Throttle and every statement run on a
//     Store outside a transaction): the commit is flushed to stable storage
//     before it is acknowledged. Account creation, verification, password change,
//     reset, recovery and destruction, device registration and revocation,
//     session destruction, admin actions, forgot-password tokens and used
//     recovery assertions are durable.
//   - Ephemeral (WithTx, Throttle or a statement outside a transaction,
//     under a context from Ephemeral): the commit is acknowledged before it
//     is flushed. It is used for
//     short-lived sign-in state only: creating and consuming srpTokens,
//     authTokens and keyFetchTokens, the sessionToken of session/create,
//     Hawk nonces, device last-access times, the audit events of sign-ins,
//     key fetches and certificates, and rate-limit counts.
//
// An ephemeral commit is visible to every reader at once, like a durable
// one; only its flush is deferred. Commits reach the log in commit order and
// a flush covers everything logged before it, so what survives a crash is
// always a prefix of the commit history, never part of a transaction.
//
// A power loss or operating-system crash (on PostgreSQL also a crash of the
// database server) may undo the ephemeral commits made since the last flush:
// on PostgreSQL at most about three times wal_writer_delay (600 ms by
// default); on SQLite those since the last durable commit or WAL checkpoint,
// or that the operating system has not yet written back by itself (on Linux
// within about 30 s). Undone, a token issued then is unknown (110: the client
// signs in again), a token consumed then can be used once more by its
// holder, and that moment's Hawk nonces, device last-access times, sign-in
// audit events and rate-limit counts are lost (a request replayed from it,
// inside the nonce window, could be accepted once more). A crash of the
// keyserver process alone undoes nothing.
//
// A crash never undoes an acknowledged durable commit, nor anything
// committed before it (an ephemeral sessionToken that a durable device
// registration then refers to is kept with it): an account change or a
// revocation that was acknowledged stands.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/keyserver/keyserver/protocol"
)

// Sentinel errors. Implementations wrap driver errors with %w so that callers
// only ever need errors.Is with these (or with context.Canceled); the cause
// stays in the chain, and messages never hold secrets.
var (
	// ErrNotFound: no row matched (unknown id, already consumed token, ...).
	ErrNotFound = errors.New("store: not found")
	// ErrConflict: a uniqueness rule was violated (an email fold already in
	// use, a session that already has a device, a nonce or assertion hash
	// already recorded).
	ErrConflict = errors.New("store: conflict")
	// ErrUnavailable: the database cannot serve right now (down or
	// unreachable, a broken connection, starting or shutting down, out of
	// connections, locked, the Store closed) or did not answer before the
	// context's deadline; retrying later may succeed. A context canceled by
	// the caller is not an outage: that error is context.Canceled instead.
	ErrUnavailable = errors.New("store: database unavailable")
)

// Stretching holds the client's password-stretching parameters (spec 2). The
// numbers are fixed by the protocol but stored as received so that
// /v1/auth/start can echo them.
type Stretching struct {
	Type          string
	PBKDF2Rounds1 int
	ScryptN       int
	ScryptR       int
	ScryptP       int
	PBKDF2Rounds2 int
	Salt          []byte // passwordSalt, 32 bytes
}

// Account is one user account.
type Account struct {
	UID             []byte // 16 bytes
	Email           string // exactly the UTF-8 bytes given at creation
	NormalizedEmail string // fold(Email), spec 1.3; unique
	SRPType         string
	SRPVerifier     []byte // 256 bytes
	SRPSalt         []byte // 32 bytes
	Stretching      Stretching
	KA              []byte // 32 bytes
	WrapKb          []byte // 32 bytes
	Verified        bool
	EmailCode       []byte // 16 bytes
	Disabled        bool
	CreatedAt       time.Time
	// Generation is the time the current password was set (picl-generation).
	Generation time.Time
}

// Credentials replace an account's password-derived state at a reset or
// password change (spec 6.4).
type Credentials struct {
	SRPType     string
	SRPVerifier []byte
	SRPSalt     []byte
	Stretching  Stretching
	WrapKb      []byte
	Generation  time.Time
}

// Token is a token of any type. Fields after CreatedAt apply to some types
// only and are zero otherwise.
type Token struct {
	ID        []byte // tokenId, 32 bytes
	Type      protocol.TokenType
	UID       []byte
	AuthKey   []byte // Hawk key, 32 bytes
	BundleKey []byte // 32 bytes; for a srpToken this is the SRP secret b
	CreatedAt time.Time
	// ExpiresAt is zero for tokens without a lifetime.
	ExpiresAt time.Time

	// srpToken: the server's public value B (256 bytes).
	SRPB []byte
	// keyFetchToken: the id of the sessionToken issued with it, if any.
	// Deleting that session deletes this token too.
	SessionID []byte
	// forgotPasswordToken: the seed (returned again by resend_code), the
	// 8-digit code and the tries left.
	Seed  []byte
	Code  string
	Tries int
}

// Expired reports whether the token has a lifetime that has ended at now.
func (t *Token) Expired(now time.Time) bool {
	return !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt)
}

// Device is an entry of the device registry (spec 6.5). It belongs to exactly
// one sessionToken and is deleted with it.
type Device struct {
	ID            []byte // 16 bytes
	UID           []byte
	SessionID     []byte // the sessionToken's tokenId; unique
	Name          string
	Type          string
	PushCallback  string // "" means none
	PushPublicKey string
	PushAuthKey   string
	CreatedAt     time.Time
	LastAccessAt  time.Time
}

// RecoveryKey is an account's recovery key as the server keeps it
// (docs/recovery-key.md, RK.8): what the client derived from the key, never
// the key itself. ID and Data are secret columns.
type RecoveryKey struct {
	UID       []byte
	ID        []byte // recoveryKeyId, 16 bytes
	Data      []byte // recoveryData, 60 bytes: nonce || AES-GCM(kB)
	CreatedAt time.Time
}

// Actors of audit events (spec 10.4).
const (
	ActorUser   = "user"
	ActorAdmin  = "admin"
	ActorSystem = "system"
)

// Outcomes of audit events.
const (
	OutcomeSuccess = "success"
	OutcomeFailure = "failure"
)

// Event is one audit-log entry (spec 10.4). It never holds secrets.
type Event struct {
	ID        []byte // 16 random bytes
	Time      time.Time
	Actor     string
	Action    string
	Outcome   string
	UID       []byte // nil when no account was identified
	DeviceID  []byte // nil when none
	SessionID []byte // first 8 bytes of the sessionToken id, or nil
	IP        string
	Details   string // a JSON object, "{}" when empty
}

// EventQuery selects audit events ordered by (Time, ID).
type EventQuery struct {
	UID   []byte    // only this account's events when non-nil
	Since time.Time // Time >= Since
	// After, when non-nil, skips events up to and including the one with
	// (Time == Since, ID == After): the paging cursor of spec 10.4.
	After []byte
	Limit int
	// Newest returns the newest events first instead (for users' own view).
	Newest bool
}

// Queries are the data operations. They run either directly on a Store or
// inside a transaction started by Store.WithTx.
type Queries interface {
	// CreateAccount inserts a. ErrConflict when a.NormalizedEmail or a.UID
	// is taken.
	CreateAccount(ctx context.Context, a *Account) error
	AccountByUID(ctx context.Context, uid []byte) (*Account, error)
	AccountByEmail(ctx context.Context, normalizedEmail string) (*Account, error)
	// SetVerified marks the account verified (idempotent).
	SetVerified(ctx context.Context, uid []byte) error
	SetDisabled(ctx context.Context, uid []byte, disabled bool) error
	// SetCredentials replaces the password-derived state of the account.
	SetCredentials(ctx context.Context, uid []byte, c *Credentials) error
	// DeleteAccount deletes the account with its tokens and devices (audit
	// events are kept).
	DeleteAccount(ctx context.Context, uid []byte) error

	CreateToken(ctx context.Context, t *Token) error
	// Token returns the token of type typ with this id; ErrNotFound when
	// there is none of that type (expiry is the caller's to check).
	Token(ctx context.Context, typ protocol.TokenType, id []byte) (*Token, error)
	// TokenWithAccount returns the token of type typ with this id and its
	// account, read together in one statement; ErrNotFound when there is
	// no such token (expiry is the caller's to check).
	TokenWithAccount(ctx context.Context, typ protocol.TokenType, id []byte) (*Token, *Account, error)
	// ConsumeToken atomically deletes and returns the token. Of concurrent
	// consumers of one token exactly one gets it; the others get ErrNotFound.
	ConsumeToken(ctx context.Context, typ protocol.TokenType, id []byte) (*Token, error)
	// DeleteToken deletes one token (and, for a session, its device and
	// keyFetchTokens). ErrNotFound when absent.
	DeleteToken(ctx context.Context, typ protocol.TokenType, id []byte) error
	// DeleteAccountTokens deletes the account's tokens of the given types,
	// or of every type when none is given.
	DeleteAccountTokens(ctx context.Context, uid []byte, types ...protocol.TokenType) error
	// CountTokens counts the account's tokens of one type.
	CountTokens(ctx context.Context, uid []byte, typ protocol.TokenType) (int, error)
	// DecrementTries atomically takes one try from a forgotPasswordToken and
	// returns the tries left; ErrNotFound when it no longer exists or has
	// none left.
	DecrementTries(ctx context.Context, id []byte) (int, error)

	// CreateDevice inserts d. ErrConflict when its session already has a
	// device (or the id is taken).
	CreateDevice(ctx context.Context, d *Device) error
	// Device returns the account's device with this id.
	Device(ctx context.Context, uid, id []byte) (*Device, error)
	DeviceBySession(ctx context.Context, sessionID []byte) (*Device, error)
	// UpdateDevice replaces name, type and push fields of d.ID.
	UpdateDevice(ctx context.Context, d *Device) error
	// TouchDevice sets the last access time if it is older than at-minAge,
	// and reports whether it wrote.
	TouchDevice(ctx context.Context, id []byte, at time.Time, minAge time.Duration) (bool, error)
	// Devices lists the account's devices ordered by CreatedAt, then ID.
	Devices(ctx context.Context, uid []byte) ([]Device, error)
	// DeleteDevices deletes every device of the account.
	DeleteDevices(ctx context.Context, uid []byte) error

	// UseNonce records a Hawk (tokenId, ts, nonce) until expires;
	// ErrConflict when it is already recorded.
	UseNonce(ctx context.Context, tokenID []byte, ts int64, nonce string, expires time.Time) error
	// UseAssertion records the hash of a recovery assertion until expires;
	// ErrConflict when it is already recorded.
	UseAssertion(ctx context.Context, hash []byte, expires time.Time) error

	// PutRecoveryKey stores k as its account's recovery key, replacing the
	// one it had, and reports whether there was one. ErrNotFound when the
	// account does not exist.
	PutRecoveryKey(ctx context.Context, k *RecoveryKey) (replaced bool, err error)
	// RecoveryKey returns the account's recovery key; ErrNotFound when it
	// has none.
	RecoveryKey(ctx context.Context, uid []byte) (*RecoveryKey, error)
	// DeleteRecoveryKey deletes the account's recovery key; ErrNotFound
	// when it had none. DeleteAccount deletes it too.
	DeleteRecoveryKey(ctx context.Context, uid []byte) error

	AppendEvent(ctx context.Context, e *Event) error
	Events(ctx context.Context, q EventQuery) ([]Event, error)

	CustomsQueries
}

// CountKey is what an abuse-protection count is kept per (spec 14.1, package
// customs): the fold of an account's email or of a mail address, a client
// ip key (an IPv4 address or an IPv6 /64), an opaque subject, or several of
// them; "" where the rule has none.
type CountKey struct {
	Fold string
	IP   string
}

// Count is one counted event of an abuse-protection counter.
type Count struct {
	Counter string // the rule's counter, e.g. "R1"
	Key     CountKey
	At      time.Time
	// ExpiresAt is when no rule needs the count any more; the purge
	// deletes it then.
	ExpiresAt time.Time
}

// CountProbe asks for the N-th most recent count of (Counter, Key) with At
// after Since: the count that decides a rule "N in a window" (spec 14.2).
type CountProbe struct {
	Counter string
	Key     CountKey
	Since   time.Time // only counts with At > Since
	N       int       // >= 1
}

// CountFilter selects counts: of the Counters (every counter when empty),
// with that Fold and that IP when they are not "", and At > Since.
type CountFilter struct {
	Counters []string
	Fold, IP string
	Since    time.Time
}

// TokenOrigin is what abuse protection remembers of the request that
// created a token (spec 14): the client ip key of the send_code that made a
// forgotPasswordToken (6.7), of the verify_code or recover that made an
// accountResetToken (made known at reset, 14.2), and for a srpToken whether
// it was issued after an accepted unblock code (14.3). It is deleted with
// its token.
type TokenOrigin struct {
	TokenID   []byte
	IP        string
	Unblocked bool
	// ExpiresAt is the token's (read back by TokenOrigins).
	ExpiresAt time.Time
}

// UnblockCode is an emailed code that lifts R2 for one sign-in (spec 14.3).
type UnblockCode struct {
	ID        []byte // 16 random bytes
	UID       []byte
	Code      string // 8 digits
	CreatedAt time.Time
	ExpiresAt time.Time
}

// CustomsQueries are the data operations of abuse protection (spec 14,
// package customs) and of the lifetimes of spec 14.5. Counts, marks, known
// ips and unblock codes are sign-in state: their transactions are
// ephemeral.
type CustomsQueries interface {
	// NthCounts returns, for each probe, the At of its N-th most recent
	// count, or the zero time when fewer counts match.
	NthCounts(ctx context.Context, probes []CountProbe) ([]time.Time, error)
	// AddCounts records counts.
	AddCounts(ctx context.Context, counts ...Count) error
	// Counts returns the counts f selects, ordered by Counter, Fold, IP,
	// then At (newest first).
	Counts(ctx context.Context, f CountFilter) ([]Count, error)
	// DeleteCounts deletes the counts f selects (Since ignored) and
	// returns how many.
	DeleteCounts(ctx context.Context, f CountFilter) (int64, error)
	// LockCounts, in a transaction, makes the transactions that lock one
	// of the same keys run one after another, from any server instance,
	// until each ends, so that a count checked and then written in one
	// transaction is exact. Outside a transaction it does nothing.
	LockCounts(ctx context.Context, keys ...CountKey) error
	// MarkBlocked records that rule refused key until until, unless an
	// earlier mark of that rule and key lasts beyond now; it reports
	// whether it wrote (the refusal is then the first of its window and
	// is audited, spec 10.4).
	MarkBlocked(ctx context.Context, rule string, key CountKey, now, until time.Time) (bool, error)
	// DeleteBlocks deletes the marks of the rules f.Counters names (every
	// rule when empty) for f.Fold and f.IP (when not "").
	DeleteBlocks(ctx context.Context, f CountFilter) error

	// KnownIP reports whether ip is known for account uid (spec 14.3)
	// at now.
	KnownIP(ctx context.Context, uid []byte, ip string, now time.Time) (bool, error)
	// AddKnownIP makes ip known for account uid until expires, or
	// extends it to expires when it would end before renewBefore (so that
	// frequent sign-ins write rarely). ErrNotFound when the account does
	// not exist.
	AddKnownIP(ctx context.Context, uid []byte, ip string, expires, renewBefore time.Time) error

	// SetTokenOrigin records o for token o.TokenID (o.ExpiresAt is
	// ignored); ErrNotFound when the token does not exist.
	SetTokenOrigin(ctx context.Context, o *TokenOrigin) error
	// TokenOrigin returns the origin of token id; ErrNotFound when none
	// was recorded (or the token is gone).
	TokenOrigin(ctx context.Context, id []byte) (*TokenOrigin, error)
	// TokenOrigins lists every token of type typ of account uid, with
	// its origin (IP "" when none was recorded) and its ExpiresAt,
	// oldest first.
	TokenOrigins(ctx context.Context, uid []byte, typ protocol.TokenType) ([]TokenOrigin, error)
	// SetTokensExpiry gives the account's tokens of type typ that have
	// no lifetime the expiry expires.
	SetTokensExpiry(ctx context.Context, uid []byte, typ protocol.TokenType, expires time.Time) error

	CreateUnblockCode(ctx context.Context, c *UnblockCode) error
	// UnblockCodes returns the account's codes that expire after now,
	// oldest first.
	UnblockCodes(ctx context.Context, uid []byte, now time.Time) ([]UnblockCode, error)
	// DeleteUnblockCode deletes one code; ErrNotFound when absent (of
	// concurrent consumers exactly one succeeds).
	DeleteUnblockCode(ctx context.Context, id []byte) error

	// UnverifiedAccounts returns the uids of at most limit accounts that
	// are unverified, not disabled and created before createdBefore.
	UnverifiedAccounts(ctx context.Context, createdBefore time.Time, limit int) ([][]byte, error)
	// DeleteUnverifiedAccount deletes account uid as DeleteAccount does,
	// but only while it is unverified, not disabled and created before
	// createdBefore; ErrNotFound otherwise.
	DeleteUnverifiedAccount(ctx context.Context, uid []byte, createdBefore time.Time) error
}

// Store is a storage backend.
type Store interface {
	Queries
	// WithTx runs fn in one transaction: committed when fn returns nil,
	// rolled back otherwise (also when fn panics). Writes inside it never
	// fail with a lock timeout because of a concurrent writer, of either
	// class. The transaction is durable unless ctx comes from Ephemeral.
	WithTx(ctx context.Context, fn func(q Queries) error) error
	// Throttle counts one request under name at now, unless limit requests
	// were already counted under name in the window (now-window, now]: then
	// it counts nothing and returns how long until the oldest of them leaves
	// the window (> 0). It runs in its own transaction, of ctx's class, and
	// concurrent counts of one name, from any server instance, run one
	// after another.
	Throttle(ctx context.Context, name string, now time.Time, window time.Duration, limit int) (retryAfter time.Duration, err error)
	// Purge deletes expired nonces, assertion hashes, throttle counts,
	// abuse-protection counts, block marks, known ips and unblock codes,
	// and tokens whose lifetime ended before now, and audit events older
	// than eventsBefore. It returns the number of rows deleted.
	Purge(ctx context.Context, now, eventsBefore time.Time) (int64, error)
	// Ping checks that the database answers.
	Ping(ctx context.Context) error
	// Close releases the store. Afterwards every operation fails with
	// ErrUnavailable; closing again does nothing.
	Close() error
}

// ephemeralKey marks a context whose transactions are ephemeral.
type ephemeralKey struct{}

// Ephemeral returns a copy of ctx under which the transactions a Store
// starts (WithTx, Throttle) and the statements it runs outside a
// transaction are ephemeral: acknowledged before they are flushed (see the
// package doc). Pass the result to the store call only, so that the class
// does not spread to the caller's later writes; inside WithTx's fn the
// transaction's class is fixed, whatever the statements' contexts.
func Ephemeral(ctx context.Context) context.Context {
	return context.WithValue(ctx, ephemeralKey{}, true)
}

// IsEphemeral reports whether ctx comes from Ephemeral.
func IsEphemeral(ctx context.Context) bool {
	v, _ := ctx.Value(ephemeralKey{}).(bool)
	return v
}
