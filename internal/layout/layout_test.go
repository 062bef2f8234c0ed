package layout

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// module is the project's module path.
const module = "github.com/keyserver/keyserver"

// sqlDrivers are the SQL drivers and database/sql/driver, the interface
// they implement.
var sqlDrivers = []string{"github.com/lib/pq/...", "modernc.org/sqlite/...", "database/sql/driver"}

// A rule forbids imports to some project packages.
type rule struct {
	pkgs     []string // project packages, relative to the module
	optional []string // packages of the rule that need not exist (yet)
	forbid   []string // import paths; "p/..." is p and every package below it
	// projectAllow, when not nil, forbids every project package except
	// these (relative to the module); an empty slice forbids them all.
	projectAllow []string
	why          string
}

var rules = []rule{
	{
		pkgs:         []string{"srp", "keywrap", "hawk", "certs", "sealing", "protocol"},
		optional:     []string{"sealing"},
		forbid:       []string{"net/http", "database/sql", "os", "log", "log/slog"},
		projectAllow: []string{},
		why:          "it is pure: nothing from the project, no net/http, database/sql, os or logging; randomness and time come in as arguments",
	},
	{
		pkgs:   []string{"store"},
		forbid: sqlDrivers,
		why:    "store declares records, the Store interface and sentinels; drivers belong to store/sqlstore",
	},
	{
		pkgs: []string{"keyserver"},
		forbid: slices.Concat([]string{
			module + "/store/sqlstore/...",
			module + "/mail/...",
			"github.com/wneessen/go-mail/...",
			"github.com/emersion/go-smtp/...",
			"net/smtp",
		}, sqlDrivers),
		why: "keyserver is the HTTP edge: it sees the store and the mailer through interfaces, which store/sqlstore and mail implement; cmd picks the driver and the mailer",
	},
	{
		pkgs:         []string{"client"},
		projectAllow: []string{"protocol", "srp", "keywrap", "hawk"},
		why:          "the client shares only the wire vocabulary and the pure crypto packages with the server",
	},
	{
		pkgs:     []string{"accounts"},
		optional: []string{"accounts"},
		forbid: slices.Concat([]string{
			"net/http",
			module + "/store/sqlstore/...",
			module + "/mail/...",
		}, sqlDrivers),
		why: "accounts holds the account rules over the store interface and declares the mailer interface: no HTTP, no SQL driver, no store or mailer implementation",
	},
}

// pkg is what go list reports of a package.
type pkg struct {
	ImportPath string
	Standard   bool
	Imports    []string
	Error      *struct{ Err string }
}

// graph is the import graph of the module's packages and their dependencies.
type graph map[string]*pkg

// loadGraph runs go list -deps on every package of the module.
func loadGraph(t *testing.T) graph {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	gomod := strings.TrimSpace(string(out))
	if err != nil || gomod == "" || gomod == "/dev/null" {
		t.Fatalf("go env GOMOD: %q, %v", gomod, err)
	}
	cmd := exec.Command("go", "list", "-e", "-deps", "-json=ImportPath,Standard,Imports,Error", "./...")
	cmd.Dir = filepath.Dir(gomod)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err = cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps ./...: %v\n%s", err, stderr.Bytes())
	}
	g := graph{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decoding go list output: %v", err)
		}
		g[p.ImportPath] = &p
		if p.Error != nil && inProject(p.ImportPath) {
			t.Logf("go list: %s: %s (its imports may be incomplete)", p.ImportPath, p.Error.Err)
		}
	}
	if g[module+"/protocol"] == nil {
		t.Fatalf("go list did not report %s/protocol: not run in the module?", module)
	}
	return g
}

func inProject(path string) bool { return path == module || strings.HasPrefix(path, module+"/") }

// short names a package without the module prefix.
func short(path string) string {
	if s, ok := strings.CutPrefix(path, module+"/"); ok {
		return s
	}
	return path
}

func matches(pattern, path string) bool {
	if tree, ok := strings.CutSuffix(pattern, "/..."); ok {
		return path == tree || strings.HasPrefix(path, tree+"/")
	}
	return path == pattern
}

// forbids reports whether r forbids p to import imp.
func (r *rule) forbids(p, imp string) bool {
	for _, f := range r.forbid {
		if matches(f, imp) {
			return true
		}
	}
	return r.projectAllow != nil && inProject(imp) && imp != p &&
		!slices.Contains(r.projectAllow, short(imp))
}

// violation is one forbidden import, with the shortest chain of imports
// from the checked package to it.
type violation struct {
	imp   string
	chain []string
}

func (v violation) String() string {
	names := make([]string, len(v.chain))
	for i, p := range v.chain {
		names[i] = short(p)
	}
	if len(v.chain) == 2 {
		return "imports " + v.imp
	}
	return "imports " + v.imp + " through " + strings.Join(names, " -> ")
}

// check returns the imports that r forbids to p, each once, breadth first: a
// forbidden standard package when p or a project package p depends on
// imports it (golang.org/x/sys/cpu may read a file with os: that is not
// the project's I/O), a forbidden non-standard package wherever it is among
// p's dependencies. The packages behind a forbidden one are not searched:
// the forbidden import is the one to remove.
func (g graph) check(r *rule, p string) []violation {
	parent := map[string]string{p: ""}
	chainTo := func(q string) []string {
		var c []string
		for ; q != ""; q = parent[q] {
			c = append(c, q)
		}
		slices.Reverse(c)
		return c
	}
	var found []violation
	reported := map[string]bool{}
	queue := []string{p}
	for len(queue) > 0 {
		q := queue[0]
		queue = queue[1:]
		for _, imp := range g[q].Imports {
			dep := g[imp]
			std := dep != nil && dep.Standard
			if r.forbids(p, imp) && (!std || inProject(q)) {
				if !reported[imp] {
					reported[imp] = true
					found = append(found, violation{imp, append(chainTo(q), imp)})
				}
				continue
			}
			if _, seen := parent[imp]; seen || dep == nil || std {
				continue
			}
			parent[imp] = q
			queue = append(queue, imp)
		}
	}
	return found
}

// TestLayout enforces the dependency rules of design.md on every package
// they name.
func TestLayout(t *testing.T) {
	g := loadGraph(t)
	for i := range rules {
		r := &rules[i]
		for _, name := range r.pkgs {
			path := module + "/" + name
			t.Run(name, func(t *testing.T) {
				if g[path] == nil {
					if slices.Contains(r.optional, name) {
						t.Skipf("no package %s (yet)", name)
					}
					t.Fatalf("package %s not found: its rule (%s) checks nothing; update internal/layout", name, r.why)
				}
				var lines []string
				for _, v := range g.check(r, path) {
					lines = append(lines, v.String())
				}
				if lines != nil {
					t.Errorf("package %s has forbidden imports (%s):\n\t%s", name, r.why, strings.Join(lines, "\n\t"))
				}
			})
		}
	}
}

// TestCheckCatchesForbiddenImports runs the check on a made-up graph.
func TestCheckCatchesForbiddenImports(t *testing.T) {
	p := func(name string, std bool, imports ...string) *pkg {
		return &pkg{ImportPath: name, Standard: std, Imports: imports}
	}
	m := func(s string) string { return module + "/" + s }
	g := graph{}
	for _, q := range []*pkg{
		p(m("protocol"), false, "encoding/json", "os"),
		p(m("srp"), false, "crypto/rand", "example.com/helper"),
		p("example.com/helper", false, "example.com/deeper"),
		p("example.com/deeper", false, "net/http", m("keywrap")),
		p(m("keywrap"), false, "crypto/rand"),
		p(m("hawk"), false, "crypto/rand", m("protocol")),
		p(m("client"), false, m("protocol"), m("srp"), m("store"), "net/http"),
		p(m("store"), false, m("protocol")),
		p(m("keyserver"), false, "database/sql", m("mail"), m("store")),
		p(m("mail"), false, "github.com/wneessen/go-mail"),
		p(m("keyserver2"), false, m("mailer")),
		p(m("mailer"), false, "github.com/wneessen/go-mail"),
		p("github.com/wneessen/go-mail", false, "net/smtp"), // not the project's import
		p("crypto/rand", true, "os"),
		p("database/sql", true, "database/sql/driver"),
		p("encoding/json", true), p("os", true), p("net/http", true), p("net/smtp", true), p("database/sql/driver", true),
	} {
		g[q.ImportPath] = q
	}
	pure, keyserver, client := &rules[0], &rules[2], &rules[3]
	for _, tt := range []struct {
		r    *rule
		pkg  string
		want []string
	}{
		{pure, "protocol", []string{"imports os"}},
		{pure, "srp", []string{"imports " + m("keywrap") + " through srp -> example.com/helper -> example.com/deeper -> keywrap"}},
		{pure, "hawk", []string{"imports " + m("protocol")}}, // not searched behind protocol
		{client, "client", []string{"imports " + m("store")}},
		{keyserver, "keyserver", []string{"imports " + m("mail")}},
		{keyserver, "keyserver2", []string{
			"imports github.com/wneessen/go-mail through keyserver2 -> mailer -> github.com/wneessen/go-mail",
		}},
	} {
		var got []string
		for _, v := range g.check(tt.r, m(tt.pkg)) {
			got = append(got, v.String())
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s:\n got %q\nwant %q", tt.pkg, got, tt.want)
		}
	}
}
