package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyserver/keyserver/client"
)

func TestVersion(t *testing.T) {
	out, _, code := runKeyserver(t, "version")
	if code != 0 || !strings.HasPrefix(out, "keyserver ") {
		t.Fatalf("version: exit %d, %q", code, out)
	}
	_, errOut, code := runKeyserver(t, "serve", "--no-such-flag")
	if code != 2 || !strings.Contains(errOut, "keyserver: error:") {
		t.Fatalf("bad flag: exit %d, %q", code, errOut)
	}
}

func TestServeAnswers(t *testing.T) {
	backends(t, func(t *testing.T, db string, extra ...string) {
		s := startServer(t, append([]string{"--db", db}, extra...)...)
		status, body, h := getJSON(t, s.URL+"/__heartbeat__")
		if status != 200 || len(body) != 0 {
			t.Fatalf("heartbeat: %d %v", status, body)
		}
		if ts, err := strconv.ParseInt(h.Get("Timestamp"), 10, 64); err != nil || abs(ts-time.Now().Unix()) > 5 {
			t.Fatalf("Timestamp header %q", h.Get("Timestamp"))
		}
		if status, _, _ := getJSON(t, s.URL+"/__lbheartbeat__"); status != 200 {
			t.Fatalf("lbheartbeat: %d", status)
		}
		status, body, _ = getJSON(t, s.URL+"/v1/raw_password/password/change")
		if status != 404 || body["errno"] != 999.0 || body["error"] != "Not Found" {
			t.Fatalf("unknown path: %d %v", status, body)
		}
		resp, err := http.Get(s.URL + "/")
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(page), "keyserver") {
			t.Fatalf("GET /: %d %q", resp.StatusCode, page)
		}
	})
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}

// A request still arriving when SIGTERM comes is finished before exit.
func TestGracefulShutdown(t *testing.T) {
	s := startServer(t, "--db", sqliteDB(t))
	u, _ := url.Parse(s.URL)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{}`
	fmt.Fprintf(conn, "POST /v1/get_random_bytes HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{", u.Host, len(body))
	time.Sleep(200 * time.Millisecond) // the server is now reading the body
	stopped := make(chan error, 1)
	go func() { stopped <- s.stop() }()
	time.Sleep(300 * time.Millisecond)
	if _, err := io.WriteString(conn, body[1:]); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("in-flight request lost at shutdown: %v", err)
	}
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(data), `"data"`) {
		t.Fatalf("in-flight request: %d %s", resp.StatusCode, data)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	if !strings.Contains(s.logs.String(), "stopped") {
		t.Fatalf("no clean stop in the log:\n%s", s.logs)
	}
}

// PostgreSQL is explicit about migrations: serve refuses an unmigrated
// schema, `keyserver migrate` applies them, then serve starts.
func TestPostgresMigrateExplicit(t *testing.T) {
	db := postgresDB(t)
	_, errOut, code := runKeyserver(t, "serve", "--listen", "127.0.0.1:0", "--db", db, "--signing-key", signingKey, "--kek-file", kekFile)
	if code == 0 || !strings.Contains(errOut, "migrate") {
		t.Fatalf("serve on an unmigrated schema: exit %d, %q", code, errOut)
	}
	out, errOut, code := runKeyserver(t, "migrate", "--db", db)
	if code != 0 || !strings.Contains(out, "applied migration 0001") {
		t.Fatalf("migrate: exit %d, %q %q", code, out, errOut)
	}
	out, _, code = runKeyserver(t, "migrate", "--db", db)
	if code != 0 || !strings.Contains(out, "up to date") {
		t.Fatalf("second migrate: exit %d, %q", code, out)
	}
	s := startServer(t, "--db", db)
	if status, _, _ := getJSON(t, s.URL+"/__heartbeat__"); status != 200 {
		t.Fatalf("heartbeat: %d", status)
	}
}

// The database going away turns the heartbeat into 503/201, requests that
// need it answer 503 (never a panic or 500), and everything recovers when it
// returns, without a restart.
func TestPostgresOutage(t *testing.T) {
	dsn, err := url.Parse(postgresDB(t))
	if err != nil {
		t.Fatal(err)
	}
	p := newProxy(t, dsn.Host)
	dsn.Host = p.addr
	s := startServer(t, "--db", dsn.String(), "--migrate")
	if status, _, _ := getJSON(t, s.URL+"/__heartbeat__"); status != 200 {
		t.Fatalf("heartbeat before the outage: %d", status)
	}
	c := newClient(t, s)
	ctx := ctxT(t)
	if _, err := c.CreateAccount(ctx, "outage@example.org", "pw", client.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	sess, err := c.Login(ctx, "outage@example.org", "pw")
	if err != nil {
		t.Fatal(err)
	}

	p.cut()
	// A Hawk endpoint, a transaction and a consuming endpoint: 503/201 too.
	if _, _, err := c.RecoveryEmailStatus(ctx, sess.SessionToken); !client.IsErrno(err, 201) {
		t.Fatalf("recovery_email/status during the outage: %v", err)
	}
	if _, err := c.CreateAccount(ctx, "outage2@example.org", "pw", client.CreateOptions{}); !client.IsErrno(err, 201) {
		t.Fatalf("account/create during the outage: %v", err)
	}
	if _, err := c.Keys(ctx, sess.KeyFetchToken, nil); !client.IsErrno(err, 201) {
		t.Fatalf("account/keys during the outage: %v", err)
	}
	status, body, h := getJSON(t, s.URL+"/__heartbeat__")
	if status != 503 || body["errno"] != 201.0 || h.Get("Retry-After") == "" {
		t.Fatalf("heartbeat during the outage: %d %v", status, body)
	}
	resp, err := http.Post(s.URL+"/v1/auth/start", "application/json", strings.NewReader(`{"email":"6140622e6364"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Fatalf("auth/start during the outage: %d", resp.StatusCode)
	}

	p.restore()
	deadline := time.Now().Add(20 * time.Second)
	for {
		status, _, _ = getJSON(t, s.URL+"/__heartbeat__")
		if status == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("heartbeat after the database returned: %d", status)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if strings.Contains(s.logs.String(), "panic") {
		t.Fatalf("panic in the log:\n%s", s.logs)
	}
}
