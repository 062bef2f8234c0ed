package protocol

// TokenType names a kind of token; the values are the token type names of
// spec 4.1, which are also the HKDF info suffixes of token derivation.
type TokenType string

// Token types of spec 4.1.
const (
	SRPToken            TokenType = "srpToken"
	AuthToken           TokenType = "authToken"
	SessionToken        TokenType = "sessionToken"
	KeyFetchToken       TokenType = "keyFetchToken"
	AccountResetToken   TokenType = "accountResetToken"
	ForgotPasswordToken TokenType = "forgotPasswordToken"
)

// TokenTypes lists every token type, in the order of spec 4.1.
var TokenTypes = []TokenType{SRPToken, AuthToken, SessionToken, KeyFetchToken, AccountResetToken, ForgotPasswordToken}

// Valid reports whether t is one of the protocol's token types.
func (t TokenType) Valid() bool {
	for _, v := range TokenTypes {
		if t == v {
			return true
		}
	}
	return false
}
