package hawk

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// MaxHeaderBytes is the largest Authorization header value ParseHeader accepts.
const MaxHeaderBytes = 4096

// MaxTimestamp is the largest ts ParseHeader accepts, so that ts*1000 (milliseconds)
// cannot overflow an int64.
const MaxTimestamp = math.MaxInt64 / 1000

// ErrBadHeader is wrapped by every ParseHeader error (spec 5: 401/109).
var ErrBadHeader = errors.New("hawk: bad Authorization header")

// Header holds the attributes of a Hawk Authorization header as sent: the MAC covers
// these exact strings, so none is normalised. An absent hash or ext is "".
type Header struct {
	ID, TS, Nonce, Hash, Ext, MAC string
}

// Timestamp returns TS as whole seconds; it fails (wrapping ErrBadHeader) unless TS is a
// decimal number in [0, MaxTimestamp], which ParseHeader guarantees.
func (h *Header) Timestamp() (int64, error) {
	return parseTS(h.TS)
}

func parseTS(s string) (int64, error) {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%w: ts is not a decimal number", ErrBadHeader)
		}
	}
	ts, err := strconv.ParseInt(s, 10, 64)
	if err != nil || ts > MaxTimestamp {
		return 0, fmt.Errorf("%w: ts out of range", ErrBadHeader)
	}
	return ts, nil
}

// attribute bits, for duplicate and presence checks
const (
	attrID = 1 << iota
	attrTS
	attrNonce
	attrHash
	attrExt
	attrMAC
	required = attrID | attrTS | attrNonce | attrMAC
)

func badf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrBadHeader}, args...)...)
}

// isWord reports whether c matches the \w of hawk's header regular expressions.
func isWord(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}

// isValueByte reports whether c may appear in an attribute value: printable ASCII
// (space included, as in hawk) other than '"' and '\'.
func isValueByte(c byte) bool {
	return c >= 0x20 && c <= 0x7e && c != '"' && c != '\\'
}

func skipSpace(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	return i
}

// ParseHeader parses an Authorization header value of the form
//
//	Hawk id="...", ts="...", nonce="...", [hash="...",] [ext="...",] mac="..."
//
// (attributes in any order, spaces and tabs allowed around the commas). The scheme name
// is case-insensitive, attribute names are not. It runs in one linear pass; every error
// wraps ErrBadHeader. Unlike hawk 1.1.2 a trailing comma is refused, since spec 5 says
// the attributes are separated by commas.
func ParseHeader(value string) (*Header, error) {
	if value == "" {
		return nil, badf("missing")
	}
	if len(value) > MaxHeaderBytes {
		return nil, badf("longer than %d bytes", MaxHeaderBytes)
	}
	i := 0
	for i < len(value) && isWord(value[i]) {
		i++
	}
	if !strings.EqualFold(value[:i], "hawk") {
		return nil, badf("scheme is not Hawk")
	}
	j := skipSpace(value, i)
	if j == i || j == len(value) {
		return nil, badf("no attributes")
	}
	i = j
	var h Header
	var seen int
	for {
		start := i
		for i < len(value) && isWord(value[i]) {
			i++
		}
		name := value[start:i]
		if name == "" || i+1 >= len(value) || value[i] != '=' || value[i+1] != '"' {
			return nil, badf(`expected name="value" at offset %d`, start)
		}
		i += 2
		start = i
		for i < len(value) && value[i] != '"' {
			if !isValueByte(value[i]) {
				return nil, badf("attribute %.16q: invalid character in value", name)
			}
			i++
		}
		if i == len(value) {
			return nil, badf("attribute %.16q: unterminated value", name)
		}
		val := value[start:i]
		i++ // closing quote
		if val == "" {
			return nil, badf("attribute %.16q: empty value", name)
		}
		var bit int
		var dst *string
		switch name {
		case "id":
			bit, dst = attrID, &h.ID
		case "ts":
			bit, dst = attrTS, &h.TS
		case "nonce":
			bit, dst = attrNonce, &h.Nonce
		case "hash":
			bit, dst = attrHash, &h.Hash
		case "ext":
			bit, dst = attrExt, &h.Ext
		case "mac":
			bit, dst = attrMAC, &h.MAC
		case "app", "dlg":
			return nil, badf("attribute %q (Oz) is not supported", name)
		default:
			return nil, badf("unknown attribute %.16q", name)
		}
		if seen&bit != 0 {
			return nil, badf("duplicate attribute %q", name)
		}
		seen |= bit
		*dst = val

		i = skipSpace(value, i)
		if i == len(value) {
			break
		}
		if value[i] != ',' {
			return nil, badf("expected ',' at offset %d", i)
		}
		if i = skipSpace(value, i+1); i == len(value) {
			return nil, badf("trailing ','")
		}
	}
	if seen&required != required {
		var missing []string
		for _, a := range []struct {
			bit  int
			name string
		}{{attrID, "id"}, {attrTS, "ts"}, {attrNonce, "nonce"}, {attrMAC, "mac"}} {
			if seen&a.bit == 0 {
				missing = append(missing, a.name)
			}
		}
		return nil, badf("missing attribute(s) %s", strings.Join(missing, ", "))
	}
	if _, err := parseTS(h.TS); err != nil {
		return nil, err
	}
	return &h, nil
}

// String formats h as an Authorization header value in hawk 1.1.2's client format:
// id, ts, nonce, then hash and ext only when non-empty, then mac. Values are not
// escaped; they must be valid header values (printable ASCII without '"' or '\').
func (h *Header) String() string {
	var b strings.Builder
	b.Grow(48 + len(h.ID) + len(h.TS) + len(h.Nonce) + len(h.Hash) + len(h.Ext) + len(h.MAC))
	b.WriteString(`Hawk id="`)
	b.WriteString(h.ID)
	b.WriteString(`", ts="`)
	b.WriteString(h.TS)
	b.WriteString(`", nonce="`)
	b.WriteString(h.Nonce)
	if h.Hash != "" {
		b.WriteString(`", hash="`)
		b.WriteString(h.Hash)
	}
	if h.Ext != "" {
		b.WriteString(`", ext="`)
		b.WriteString(h.Ext)
	}
	b.WriteString(`", mac="`)
	b.WriteString(h.MAC)
	b.WriteString(`"`)
	return b.String()
}

// Normalized returns the string the mac covers (spec 5):
//
//	"hawk.1.header\n" ts "\n" nonce "\n" METHOD "\n" resource "\n" host "\n" port "\n" hash "\n" ext "\n"
//
// with ts, nonce, hash and ext from h as sent, method upper-cased and host lower-cased.
// resource is the request target exactly as received (path plus "?query"); host and
// port are those of the configured public URL.
func Normalized(h *Header, method, resource, host string, port int) string {
	var b strings.Builder
	b.Grow(64 + len(h.TS) + len(h.Nonce) + len(method) + len(resource) + len(host) + len(h.Hash) + len(h.Ext))
	for _, s := range []string{
		"hawk.1.header", h.TS, h.Nonce, strings.ToUpper(method), resource,
		strings.ToLower(host), strconv.Itoa(port), h.Hash, h.Ext,
	} {
		b.WriteString(s)
		b.WriteByte('\n')
	}
	return b.String()
}

// MAC returns base64(HMAC-SHA256(key, normalized)).
func MAC(key []byte, normalized string) string {
	m := hmac.New(sha256.New, key)
	io.WriteString(m, normalized)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// VerifyMAC reports whether h.MAC is the mac of the request, comparing in constant time.
func (h *Header) VerifyMAC(key []byte, method, resource, host string, port int) bool {
	want := MAC(key, Normalized(h, method, resource, host, port))
	return subtle.ConstantTimeCompare([]byte(h.MAC), []byte(want)) == 1
}

// ContentType returns a Content-Type header value as hawk hashes it: up to the first
// ';', trimmed and lower-cased ("" for an absent header).
func ContentType(contentType string) string {
	if i := strings.IndexByte(contentType, ';'); i >= 0 {
		contentType = contentType[:i]
	}
	return strings.ToLower(strings.TrimSpace(contentType))
}

// PayloadHash returns base64(SHA-256("hawk.1.payload\n" + ContentType(contentType) +
// "\n" + body + "\n")).
func PayloadHash(contentType string, body []byte) string {
	d := sha256.New()
	io.WriteString(d, "hawk.1.payload\n")
	io.WriteString(d, ContentType(contentType))
	io.WriteString(d, "\n")
	d.Write(body)
	io.WriteString(d, "\n")
	return base64.StdEncoding.EncodeToString(d.Sum(nil))
}

// VerifyPayload reports whether hash (the header's hash attribute) is the payload hash
// of body sent with contentType, comparing in constant time.
func VerifyPayload(hash string, contentType string, body []byte) bool {
	return subtle.ConstantTimeCompare([]byte(hash), []byte(PayloadHash(contentType, body))) == 1
}

// Sign returns the Authorization header value a hawk 1.1.2 client sends for the request
// with credentials id and key: hash and ext are included only when non-empty (pass
// PayloadHash(...) for a request with a body). id, nonce, payloadHash and ext must be
// valid header values: non-empty where required, printable ASCII without '"' or '\'.
func Sign(id string, key []byte, method, resource, host string, port int, ts int64, nonce string, payloadHash string, ext string) string {
	h := Header{ID: id, TS: strconv.FormatInt(ts, 10), Nonce: nonce, Hash: payloadHash, Ext: ext}
	h.MAC = MAC(key, Normalized(&h, method, resource, host, port))
	return h.String()
}

// NewNonce returns a random nonce of 16 URL-safe base64 characters (96 bits) read from
// rand (normally crypto/rand.Reader). hawk 1.1.2 uses 6 characters; the server accepts
// any valid value.
func NewNonce(rand io.Reader) (string, error) {
	var b [12]byte
	if _, err := io.ReadFull(rand, b[:]); err != nil {
		return "", fmt.Errorf("hawk: reading nonce: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// TimestampMAC returns tsm = base64(HMAC-SHA256(key, "hawk.1.ts\n" + ts + "\n")), the
// server's signed time in the optional WWW-Authenticate header of a stale-timestamp
// response (spec 5 step 5).
func TimestampMAC(key []byte, ts int64) string {
	return MAC(key, "hawk.1.ts\n"+strconv.FormatInt(ts, 10)+"\n")
}

// StaleTimestampHeader returns the WWW-Authenticate value hawk 1.1.2 sends with a stale
// timestamp error: `Hawk ts="<now>", tsm="<TimestampMAC>", error="Stale timestamp"`.
func StaleTimestampHeader(key []byte, now int64) string {
	return `Hawk ts="` + strconv.FormatInt(now, 10) + `", tsm="` + TimestampMAC(key, now) + `", error="Stale timestamp"`
}
