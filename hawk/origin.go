package hawk

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// ParseOrigin returns the host and port that the Hawk normalized string of
// spec 5 carries for a server whose public URL is origin: the lower-case
// host name (an IPv6 address without brackets) and the explicit port, or
// 80 for http and 443 for https. Server and client both derive them this
// way, the server from its configured public URL and the client from its
// base URL.
//
// origin must be an http or https URL with a host name and without user
// information, query or fragment; its path may only be empty or "/". The
// port, when given, must be in 1..65535; an empty port (http://x:) is the
// scheme's default, as in url.URL.Port.
//
// The error text starts with the quoted URL, so that a caller can say what
// the URL is: fmt.Errorf("public URL %w", err) reads
// `public URL "ftp://x" must be an origin such as https://api.example.com`.
func ParseOrigin(origin string) (host string, port int, err error) {
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", 0, fmt.Errorf("%q must be an origin such as https://api.example.com", origin)
	}
	port = 443
	if u.Scheme == "http" {
		port = 80
	}
	if p := u.Port(); p != "" {
		port, err = strconv.Atoi(p)
		if err != nil || port <= 0 || port > 65535 {
			return "", 0, fmt.Errorf("%q has a bad port", origin)
		}
	}
	return strings.ToLower(u.Hostname()), port, nil
}
