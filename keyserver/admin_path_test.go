package keyserver_test

import (
	"strings"
	"testing"
)

// TestAdminPathParamMessage: a bad path value of the admin API is a 400/107
// whose message says it is a path parameter, not the request body.
func TestAdminPathParamMessage(t *testing.T) {
	f := newAPIFixture(t)
	uid := hexOf(f.account(t, "path@example.org"))
	auth := "Bearer " + adminToken
	for _, c := range []struct{ method, path, param string }{
		{"GET", "/admin/v1/accounts/xyz", "uid"},
		{"POST", "/admin/v1/accounts/" + uid + "/devices/xyz/revoke", "deviceId"},
	} {
		status, body := f.adminRaw(t, c.method, c.path, "", auth)
		wantError(t, c.method+" "+c.path, status, body, 400, 107, c.param)
		msg, _ := body["message"].(string)
		if msg != "Invalid path parameter: "+c.param || strings.Contains(msg, "body") {
			t.Errorf("%s %s: message %q, want %q", c.method, c.path, msg, "Invalid path parameter: "+c.param)
		}
	}
}
