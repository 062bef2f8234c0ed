// Package deploy holds the systemd unit, its environment file and the
// container recipe of keyserver; this test checks them: the unit parses
// (systemd-analyze verify when it is installed, a parse of its sections and
// keys always) with the hardening it promises, every KEYSERVER_* variable
// is a flag of serve, and the binary builds static with CGO_ENABLED=0.
package deploy

import (
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// staticBinary builds ./cmd/keyserver once with CGO_ENABLED=0 and version
// and commit set by -ldflags, as deploy/Containerfile does.
var staticBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "keyserver-deploy-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "keyserver")
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false",
		"-ldflags", "-s -w -X main.version=v9.8.7-deploytest -X main.commit=0123abcd", "-o", bin, "../cmd/keyserver")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", &buildError{err, out}
	}
	return bin, nil
})

type buildError struct {
	err error
	out []byte
}

func (e *buildError) Error() string {
	return "CGO_ENABLED=0 go build: " + e.err.Error() + "\n" + string(e.out)
}

func binary(t *testing.T) string {
	t.Helper()
	bin, err := staticBinary()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bin, err := staticBinary(); err == nil {
		os.RemoveAll(filepath.Dir(bin))
	}
	os.Exit(code)
}

// The binary builds with CGO_ENABLED=0, is static, and reports the
// -ldflags version.
func TestStaticBuild(t *testing.T) {
	bin := binary(t)
	if runtime.GOOS == "linux" {
		f, err := elf.Open(bin)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Error("the binary has an ELF interpreter: it is dynamically linked")
			}
		}
		if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
			t.Errorf("the binary needs %v", libs)
		}
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil || !strings.HasPrefix(string(out), "keyserver v9.8.7-deploytest (commit 0123abcd, go") {
		t.Errorf("version: %q %v", out, err)
	}
	out, err = exec.Command(bin, "version", "--json").Output()
	var v map[string]string
	if err != nil || json.Unmarshal(out, &v) != nil || v["version"] != "v9.8.7-deploytest" || v["commit"] != "0123abcd" {
		t.Errorf("version --json: %q %v", out, err)
	}
}

// unit is a parsed systemd unit file: section → key → values in order.
type unit map[string]map[string][]string

// parseUnit parses the systemd unit syntax: [Section] headers, Key=Value
// lines, comments (# ;), continuation lines ending in '\'.
func parseUnit(t *testing.T, data []byte) unit {
	t.Helper()
	u := unit{}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	n := 0
	var pending string
	keyRE := regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]*$`)
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if pending != "" {
			line = pending + " " + line
			pending = ""
		}
		if strings.HasSuffix(line, `\`) {
			pending = strings.TrimSuffix(line, `\`)
			continue
		}
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[':
			if !strings.HasSuffix(line, "]") {
				t.Fatalf("line %d: bad section header %q", n, line)
			}
			section = line[1 : len(line)-1]
			if u[section] != nil {
				t.Fatalf("line %d: section [%s] twice", n, section)
			}
			u[section] = map[string][]string{}
		default:
			key, value, ok := strings.Cut(line, "=")
			key = strings.TrimSpace(key)
			if !ok || !keyRE.MatchString(key) {
				t.Fatalf("line %d: not Key=Value: %q", n, line)
			}
			if section == "" {
				t.Fatalf("line %d: %s outside a section", n, key)
			}
			u[section][key] = append(u[section][key], strings.TrimSpace(value))
		}
	}
	if pending != "" {
		t.Fatal("the file ends in a continuation")
	}
	return u
}

// The unit parses (with systemd-analyze verify when it is installed) and
// has the hardening the README promises.
func TestSystemdUnit(t *testing.T) {
	data, err := os.ReadFile("keyserver.service")
	if err != nil {
		t.Fatal(err)
	}
	u := parseUnit(t, data)
	for _, s := range []string{"Unit", "Service", "Install"} {
		if u[s] == nil {
			t.Errorf("no [%s] section", s)
		}
	}
	svc := u["Service"]
	for key, want := range map[string]string{
		"DynamicUser":             "yes",
		"StateDirectory":          "keyserver",
		"ProtectSystem":           "strict",
		"NoNewPrivileges":         "yes",
		"CapabilityBoundingSet":   "",
		"AmbientCapabilities":     "",
		"PrivateTmp":              "yes",
		"ProtectHome":             "yes",
		"EnvironmentFile":         "/etc/keyserver/keyserver.env",
		"ExecStart":               "/usr/local/bin/keyserver serve",
		"ExecReload":              "/bin/kill -HUP $MAINPID",
		"UMask":                   "0077",
		"RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
	} {
		got, ok := svc[key]
		if !ok || len(got) != 1 || got[0] != want {
			t.Errorf("[Service] %s = %q, want %q", key, got, want)
		}
	}
	if u["Install"]["WantedBy"] == nil {
		t.Error("no WantedBy: systemctl enable would do nothing")
	}
	for _, cred := range svc["LoadCredential"] {
		name, _, _ := strings.Cut(cred, ":")
		if !strings.Contains(envFile(t), "/run/credentials/keyserver.service/"+name) {
			t.Errorf("credential %s is not used by keyserver.env", name)
		}
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze not installed: the unit was only parsed")
		return
	}
	// systemd-analyze verify checks that ExecStart exists: point it at the
	// freshly built binary, in a copy of the unit.
	dir := t.TempDir()
	copyFile := filepath.Join(dir, "keyserver.service")
	unitText := strings.ReplaceAll(string(data), "/usr/local/bin/keyserver", binary(t))
	if err := os.WriteFile(copyFile, []byte(unitText), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(analyze, "verify", copyFile)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	err = cmd.Run()
	var problems []string
	for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		if strings.Contains(line, "keyserver.service") {
			problems = append(problems, line) // verify reports unknown keys and bad values but exits 0
		} else if line != "" {
			t.Logf("systemd-analyze: %s", line)
		}
	}
	if err != nil || len(problems) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, strings.Join(problems, "\n"))
	}
}

func envFile(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("keyserver.env")
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// Every KEYSERVER_* variable of keyserver.env and the Containerfile,
// commented out or not, is a flag of serve.
func TestEnvironmentNamesFlags(t *testing.T) {
	help, _ := exec.Command(binary(t), "serve", "-h").CombinedOutput()
	container, err := os.ReadFile("Containerfile")
	if err != nil {
		t.Fatal(err)
	}
	names := regexp.MustCompile(`KEYSERVER_([A-Z0-9_]+)=`).FindAllStringSubmatch(envFile(t)+string(container), -1)
	if len(names) < 5 {
		t.Fatalf("only %d KEYSERVER_* variables", len(names))
	}
	for _, m := range names {
		flag := "-" + strings.ToLower(strings.ReplaceAll(m[1], "_", "-"))
		if !regexp.MustCompile(`(?m)^\s+` + regexp.QuoteMeta(flag) + `\b`).Match(help) {
			t.Errorf("KEYSERVER_%s: serve has no %s flag", m[1], flag)
		}
	}
}

// The Containerfile is multi-stage, builds with CGO_ENABLED=0, runs as a
// non-root user and keeps the database on a volume.
func TestContainerfile(t *testing.T) {
	data, err := os.ReadFile("Containerfile")
	if err != nil {
		t.Fatal(err)
	}
	var froms, users, volumes []string
	text := strings.ReplaceAll(string(data), "\\\n", " ")
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		instr, rest, _ := strings.Cut(line, " ")
		switch strings.ToUpper(instr) {
		case "FROM":
			froms = append(froms, rest)
		case "USER":
			users = append(users, rest)
		case "VOLUME":
			volumes = append(volumes, rest)
		case "RUN", "COPY", "WORKDIR", "ARG", "ENV", "EXPOSE", "ENTRYPOINT", "CMD", "LABEL":
		default:
			t.Errorf("unknown instruction %q", instr)
		}
	}
	if len(froms) < 2 || !strings.Contains(froms[0], " AS build") {
		t.Errorf("not multi-stage: FROM %q", froms)
	}
	if !strings.Contains(text, "CGO_ENABLED=0 go build") {
		t.Error("the build does not set CGO_ENABLED=0")
	}
	if len(users) == 0 {
		t.Error("no USER: the image would run as root")
	}
	for _, u := range users {
		if name, _, _ := strings.Cut(u, ":"); name == "root" || name == "0" {
			t.Errorf("USER %s", u)
		}
	}
	if len(volumes) != 1 || !strings.Contains(volumes[0], "/data") || !strings.Contains(text, "KEYSERVER_DB=sqlite:/data/") {
		t.Errorf("the database is not on the volume: VOLUME %q", volumes)
	}
	if !strings.Contains(text, "--read-only") {
		t.Error("the run example does not use a read-only root file system")
	}
}
