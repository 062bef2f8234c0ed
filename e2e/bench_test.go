package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// benchReport is the part of `keyserver bench --json` the test checks.
type benchReport struct {
	URL              string           `json:"url"`
	Accounts         int              `json:"accounts"`
	Concurrency      int              `json:"concurrency"`
	Stopped          string           `json:"stopped"`
	ElapsedSeconds   float64          `json:"elapsedSeconds"`
	Signins          int64            `json:"signins"`
	Failed           int64            `json:"failed"`
	SigninsPerSecond float64          `json:"signinsPerSecond"`
	Steps            []benchLatency   `json:"steps"`
	Signin           benchLatency     `json:"signin"`
	Errors           []map[string]any `json:"errors"`
	TooManyRequests  int64            `json:"tooManyRequests"`
	Bench            *struct {
		CPUSeconds     float64 `json:"cpuSeconds"`
		CPUMsPerSignin float64 `json:"cpuMsPerSignin"`
	} `json:"bench"`
	Server *struct {
		PID            int     `json:"pid"`
		CPUSeconds     float64 `json:"cpuSeconds"`
		CPUMsPerSignin float64 `json:"cpuMsPerSignin"`
		RSSStartKiB    int64   `json:"rssStartKiB"`
		RSSEndKiB      int64   `json:"rssEndKiB"`
		RSSMaxKiB      int64   `json:"rssMaxKiB"`
	} `json:"server"`
}

type benchLatency struct {
	Name   string  `json:"name"`
	Count  int64   `json:"count"`
	MeanMs float64 `json:"meanMs"`
	P50Ms  float64 `json:"p50Ms"`
	P90Ms  float64 `json:"p90Ms"`
	P99Ms  float64 `json:"p99Ms"`
	MaxMs  float64 `json:"maxMs"`
}

// TestBench runs `keyserver bench` against the real server in --dev mode:
// a short run with its own accounts must have no errors and sane figures.
func TestBench(t *testing.T) {
	backends(t, func(t *testing.T, db string, extra ...string) {
		s := startServer(t, append([]string{"--db", db, "--dev"}, extra...)...)
		pid := s.cmd.Process.Pid
		out, errOut, code := runKeyserver(t, "bench", "--url", s.URL, "--accounts", "2", "--concurrency", "2",
			"--signins", "10", "--server-pid", fmt.Sprint(pid), "--json")
		if code != 0 {
			t.Fatalf("bench: exit %d\n%s\n%s", code, out, errOut)
		}
		var r benchReport
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("bench --json: %v\n%s", err, out)
		}
		if r.URL != s.URL || r.Accounts != 2 || r.Concurrency != 2 || r.Stopped != "signins" {
			t.Errorf("run: %+v", r)
		}
		if r.Signins != 10 || r.Failed != 0 || len(r.Errors) != 0 || r.TooManyRequests != 0 {
			t.Fatalf("sign-ins: %d ok, %d failed, errors %v", r.Signins, r.Failed, r.Errors)
		}
		if r.ElapsedSeconds <= 0 || r.SigninsPerSecond <= 0 || r.SigninsPerSecond > 10/r.ElapsedSeconds*1.01 {
			t.Errorf("rate: %v sign-ins/s in %v s", r.SigninsPerSecond, r.ElapsedSeconds)
		}
		var names []string
		var stepMeans float64
		for _, l := range r.Steps {
			names = append(names, l.Name)
			stepMeans += l.MeanMs
		}
		if strings.Join(names, " ") != "auth/start auth/finish session/create account/keys" {
			t.Errorf("steps %q", names)
		}
		for _, l := range append(r.Steps, r.Signin) {
			if l.Count != 10 || l.P50Ms <= 0 || l.P50Ms > l.P90Ms || l.P90Ms > l.P99Ms || l.P99Ms > l.MaxMs ||
				l.MeanMs <= 0 || l.MeanMs > l.MaxMs || l.MaxMs > 60e3 {
				t.Errorf("latency %+v", l)
			}
		}
		// A sign-in is its steps plus the client's work between them.
		if r.Signin.MeanMs < stepMeans*0.98 {
			t.Errorf("mean sign-in %v ms is shorter than its steps (%v ms)", r.Signin.MeanMs, stepMeans)
		}
		if r.Bench == nil || r.Bench.CPUSeconds < 0 || r.Bench.CPUMsPerSignin < 0 {
			t.Errorf("bench CPU: %+v", r.Bench)
		}
		if r.Server == nil || r.Server.PID != pid || r.Server.CPUSeconds < 0 || r.Server.CPUMsPerSignin < 0 ||
			r.Server.RSSStartKiB <= 0 || r.Server.RSSEndKiB <= 0 || r.Server.RSSMaxKiB < r.Server.RSSEndKiB {
			t.Errorf("server figures: %+v", r.Server)
		}
		if !strings.Contains(errOut, "destroyed the 2 created accounts") {
			t.Errorf("stderr: %s", errOut)
		}
	})
}

// TestBenchTable checks the readable report, with certificate/sign.
func TestBenchTable(t *testing.T) {
	s := startServer(t, "--db", sqliteDB(t), "--dev")
	out, errOut, code := runKeyserver(t, "bench", "--url", s.URL, "--concurrency", "2", "--signins", "6", "--cert",
		"--server-pid", fmt.Sprint(s.cmd.Process.Pid))
	if code != 0 {
		t.Fatalf("bench: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{"sign-ins:      6 in ", "sign-ins/s, 0 failed", "auth/start", "auth/finish", "session/create",
		"account/keys", "certificate/sign", "sign-in ", "p50", "p99", "errors:        none", "CPU per sign-in", "server RSS:"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	// Not a --dev server: the bench cannot create accounts and says why.
	prod := startServer(t, "--db", sqliteDB(t))
	_, errOut, code = runKeyserver(t, "bench", "--url", prod.URL, "--signins", "1")
	if code != 1 || !strings.Contains(errOut, "not in --dev mode") {
		t.Errorf("bench against a server without --dev: exit %d, %s", code, errOut)
	}
}
