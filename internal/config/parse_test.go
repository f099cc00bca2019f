package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseExample(t *testing.T) {
	t.Parallel()
	c, err := Parse("example.yaml", []byte(Example()))
	if err != nil {
		t.Fatalf("Parse(example.yaml): %v", err)
	}
	app := c.Pools["app"]
	if app == nil {
		t.Fatalf("Parse(example.yaml): no pool app in %v", c.Pools)
	}
	tests := []struct {
		desc      string
		got, want any
	}{
		{"File", c.File, "example.yaml"},
		{"listener address", c.Listeners[0].Address, "0.0.0.0:8080"},
		{"listener without TLS", c.Listeners[0].TLS, (*ListenerTLS)(nil)},
		{"number of listeners", len(c.Listeners), 1},
		{"admin address", c.Admin.Address, "127.0.0.1:9090"},
		{"admin allow_remote", c.Admin.AllowRemote, false},
		{"access_log", c.AccessLog, "stdout"},
		{"templates unset", c.ErrorPages.Templates, ""},
		{"show_details_to empty", len(c.ErrorPages.ShowDetailsTo), 0},
		{"x_forwarded", *c.Forwarding.XForwarded, true},
		{"forwarded", *c.Forwarding.Forwarded, false},
		{"via", *c.Forwarding.Via, true},
		{"pool names", c.poolNames(), []string{"app", "static"}},
		{"pool Name from key", app.Name, "app"},
		{"static pool Name from key", c.Pools["static"].Name, "static"},
		{"targets", app.Targets, []Target{{URL: "http://127.0.0.1:8081", Weight: 1}, {URL: "http://127.0.0.1:8082", Weight: 1}, {URL: "http://127.0.0.1:8084", Backup: true}}},
		{"dial", app.Timeouts.Dial.Duration, 5 * time.Second},
		{"tls_handshake", app.Timeouts.TLSHandshake.Duration, 5 * time.Second},
		{"response_header", app.Timeouts.ResponseHeader.Duration, 30 * time.Second},
		{"idle", app.Timeouts.Idle.Duration, 60 * time.Second},
		{"request", app.Timeouts.Request.Duration, time.Duration(0)},
		{"upstream tls", app.TLS, UpstreamTLS{}},
		{"max_idle_per_target", app.MaxIdlePerTarget, 64},
		{"policy", app.Policy, "p2c_ewma"},
		{"health path", app.Health.Path, "/healthz"},
		{"health rise", app.Health.Rise, 2},
		{"outlier consecutive_failures", *app.Outlier.ConsecutiveFailures, 3},
		{"retry attempts", app.Retry.Attempts, 3},
		{"retry replay_body_bytes", app.Retry.ReplayBodyBytes, ByteSize(64 << 10)},
		{"static target weight not written", c.Pools["static"].Targets[0].Weight, 0},
		{"routes", c.Routes, []Route{{Name: "static", Path: "/static/", Pool: "static"},
			{Name: "checkout", Path: "/checkout", Pool: "app", Priority: "high", MaxBodyBytes: 1 << 20,
				RateLimit: &RateLimit{Rate: "600/m", Burst: 20, Key: "client_ip"}}, {Pool: "app"}}},
		{"shutdown_timeout", c.ShutdownTimeout.Duration, 30 * time.Second},
		{"request_header_bytes", c.Limits.RequestHeaderBytes, ByteSize(64 << 10)},
		{"response_header_bytes", c.Limits.ResponseHeaderBytes, ByteSize(1 << 20)},
		{"read_header_timeout", c.Limits.ReadHeaderTimeout.Duration, 10 * time.Second},
		{"client_idle_timeout", c.Limits.ClientIdleTimeout.Duration, 75 * time.Second},
		{"client_park_after", c.Limits.ClientParkAfter.Duration, 5 * time.Second},
	}
	for _, tc := range tests {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("%s: got %#v, want %#v", tc.desc, tc.got, tc.want)
		}
	}
}

func TestExampleIsValid(t *testing.T) {
	t.Parallel()
	c, err := ParseValid("example.yaml", []byte(Example()))
	if err != nil {
		t.Fatalf("the example config does not pass validation:\n%v", err)
	}
	// Applying the defaults changes nothing the example writes: it shows
	// the defaults.
	if got, want := c.Pools["static"].Targets[0].Weight, DefaultWeight; got != want {
		t.Errorf("static target weight after defaults: got %d, want %d", got, want)
	}
	if got, want := c.Routes[2].Name, "* /"; got != want {
		t.Errorf("default route name: got %q, want %q", got, want)
	}
}

// TestExampleShowsEverySetting checks that every key of the config
// appears in the example, so that it stays complete as fields are added.
func TestExampleShowsEverySetting(t *testing.T) {
	t.Parallel()
	var keys func(t reflect.Type, seen map[reflect.Type]bool) []string
	keys = func(t reflect.Type, seen map[reflect.Type]bool) []string {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || seen[t] || t == reflect.TypeFor[Duration]() {
			return nil
		}
		seen[t] = true
		_, names := yamlFields(t)
		out := names
		for i := range t.NumField() {
			out = append(out, keys(t.Field(i).Type, seen)...)
		}
		return out
	}
	for _, k := range keys(reflect.TypeFor[Config](), map[reflect.Type]bool{}) {
		if !strings.Contains(Example(), k+":") {
			t.Errorf("example.yaml does not show the key %q", k)
		}
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc, yaml string
		wantErr    string // the whole error; "" for none
		check      func(t *testing.T, c *Config)
	}{
		{desc: "empty", yaml: "", wantErr: "t.yaml: empty config"},
		{desc: "blank lines", yaml: "\n  \n\n", wantErr: "t.yaml: empty config"},
		{desc: "document marker only", yaml: "---\n", wantErr: "t.yaml: empty config"},
		{desc: "null document", yaml: "~\n", wantErr: "t.yaml: empty config"},
		{desc: "scalar document", yaml: "hello\n", wantErr: `t.yaml:1: want a mapping of settings at the top level, got "hello"`},
		{desc: "two documents", yaml: "a: 1\n---\nb: 2\n",
			wantErr: "t.yaml:2: more than one YAML document: a config is one document (remove the extra ---)"},
		{desc: "a trailing document marker is allowed", yaml: "access_log: off\n---\n"},
		{desc: "document end marker is allowed", yaml: "access_log: off\n...\n"},
		{desc: "syntax error in a second document", yaml: "access_log: off\n---\n[\n", wantErr: "t.yaml:3: invalid YAML:"},
		{desc: "unknown anchor", yaml: "access_log: *nope\n", wantErr: "t.yaml: invalid YAML: unknown anchor 'nope' referenced"},
		{desc: "x- keys ignored at the top level", yaml: "x-anything: {a: 1}\naccess_log: off\n"},
		{desc: "x- keys refused below the top level", yaml: "admin:\n  x-note: 1\n",
			wantErr: "t.yaml:2: admin.x-note: unknown key (known keys here: address, allow_remote, pprof)"},
		{desc: "all errors reported, sorted by line", yaml: "shutdown_timeout: x\nadmin:\n  allow_remote: maybe\nlistners: []\n",
			wantErr: "t.yaml:1: shutdown_timeout: want a duration like 5s, got \"x\"\n" +
				"t.yaml:3: admin.allow_remote: want true or false, got \"maybe\"\n" +
				"t.yaml:4: listners: unknown key; did you mean \"listeners\"?"},
		{desc: "a key that is not a scalar", yaml: "? [a]\n: 1\n", wantErr: "t.yaml:1: want a key name, got a list"},
		{desc: "a null key", yaml: "~: 1\n", wantErr: "t.yaml:1: want a key name, got \"~\""},
		{desc: "duplicate pool", yaml: "pools:\n  a: {}\n  a: {}\n", wantErr: "t.yaml:3: pools.a: written twice (first on line 2): remove one"},
		{desc: "quoted key << is a key, not a merge", yaml: "\"<<\": {access_log: off}\n", wantErr: `t.yaml:1: <<: unknown key`},
		{desc: "merge key value not a mapping", yaml: "admin:\n  <<: [[a]]\n", wantErr: "t.yaml:2: admin: << wants a mapping or a list of mappings, got a list in the list"},
		{desc: "bool spellings", yaml: "admin:\n  allow_remote: True\nforwarding:\n  via: FALSE\n", check: func(t *testing.T, c *Config) {
			if !c.Admin.AllowRemote || *c.Forwarding.Via {
				t.Errorf("allow_remote, via: got %v, %v; want true, false", c.Admin.AllowRemote, *c.Forwarding.Via)
			}
		}},
		{desc: "integer forms", yaml: "pools:\n  a:\n    max_idle_per_target: 0x10\n    targets:\n      - weight: 1_000\n", check: func(t *testing.T, c *Config) {
			if got := c.Pools["a"].MaxIdlePerTarget; got != 16 {
				t.Errorf("max_idle_per_target 0x10: got %d, want 16", got)
			}
			if got := c.Pools["a"].Targets[0].Weight; got != 1000 {
				t.Errorf("weight 1_000: got %d, want 1000", got)
			}
		}},
		{desc: "null values leave the zero value", yaml: "admin:\nlisteners:\npools:\n  a:\nforwarding:\n  via: ~\n", check: func(t *testing.T, c *Config) {
			if c.Listeners != nil || c.Forwarding.Via != nil || c.Admin.Address != "" {
				t.Errorf("got listeners %v, via %v, admin %q; want zero values", c.Listeners, c.Forwarding.Via, c.Admin.Address)
			}
			if p := c.Pools["a"]; p == nil || p.Name != "a" {
				t.Errorf("pool a written with nothing under it: got %#v, want an empty pool named a", p)
			}
		}},
		{desc: "merge keys, explicit keys win", yaml: "x-t: &t {dial: 1s, idle: 9s}\npools:\n  a:\n    timeouts:\n      idle: 2s\n      <<: *t\n", check: func(t *testing.T, c *Config) {
			to := c.Pools["a"].Timeouts
			if to.Dial.Duration != time.Second || to.Idle.Duration != 2*time.Second {
				t.Errorf("dial, idle: got %v, %v; want 1s, 2s", to.Dial, to.Idle)
			}
		}},
		{desc: "merge of a list of mappings, the first wins", yaml: "routes:\n  - <<: [{path: /a/, pool: x}, {path: /b/, host: h}]\n", check: func(t *testing.T, c *Config) {
			if got, want := c.Routes[0], (Route{Path: "/a/", Pool: "x", Host: "h"}); got != want {
				t.Errorf("route: got %+v, want %+v", got, want)
			}
		}},
		{desc: "an alias used twice reports its error once", yaml: "x-a: &a {weight: heavy}\npools:\n  p:\n    targets: [*a, *a]\n",
			wantErr: "t.yaml:1: pools.p.targets[0].weight: want a whole number, got \"heavy\"\n" +
				"t.yaml:1: pools.p.targets[1].weight: want a whole number, got \"heavy\""},
		{desc: "long values are cut in messages", yaml: "admin:\n  allow_remote: " + strings.Repeat("y", 100) + "\n",
			wantErr: `t.yaml:2: admin.allow_remote: want true or false, got "` + strings.Repeat("y", 77) + `..."`},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			c, err := Parse("t.yaml", []byte(tc.yaml))
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Parse: got error\n%v\nwant none", err)
			case tc.wantErr != "" && err == nil:
				t.Fatalf("Parse: got no error, want %q", tc.wantErr)
			case tc.wantErr != "" && !strings.HasPrefix(err.Error(), tc.wantErr):
				t.Fatalf("Parse: got error\n%v\nwant\n%s", err, tc.wantErr)
			}
			if err != nil {
				if c != nil {
					t.Errorf("Parse: got a config with the error, want nil")
				}
				var errs *Errors
				if !errors.As(err, &errs) {
					t.Errorf("Parse: got %T, want an *Errors", err)
				}
				return
			}
			if tc.check != nil {
				tc.check(t, c)
			}
		})
	}
}

func TestLine(t *testing.T) {
	t.Parallel()
	c, err := Parse("t.yaml", []byte(`listeners:
  - address: ":80"
pools:
  app:
    targets:
      - url: http://a
      - url: http://b
        weight: 2
routes:
  - pool: app
`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		desc, field string
		want        int
	}{
		{"top-level key", "listeners", 1},
		{"list item", "listeners[0]", 2},
		{"field in a list item", "listeners[0].address", 2},
		{"pool key", "pools.app", 4},
		{"second target url", "pools.app.targets[1].url", 7},
		{"second target weight", "pools.app.targets[1].weight", 8},
		{"unwritten field: its parent's line", "pools.app.targets[0].weight", 6},
		{"unwritten struct: its parent's line", "pools.app.timeouts.dial", 4},
		{"route pool", "routes[0].pool", 10},
		{"unwritten route path", "routes[0].path", 10},
		{"unwritten top-level key", "shutdown_timeout", 0},
		{"empty field", "", 0},
	}
	for _, tc := range tests {
		if got := c.Line(tc.field); got != tc.want {
			t.Errorf("%s: Line(%q) = %d, want %d", tc.desc, tc.field, got, tc.want)
		}
	}
	var flags *Config
	if got := flags.Line("listeners"); got != 0 {
		t.Errorf("nil config: Line = %d, want 0", got)
	}
	if got := (&Config{}).Line("listeners"); got != 0 {
		t.Errorf("config from flags: Line = %d, want 0", got)
	}
}

func TestLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := filepath.Join(dir, "gatewise.yaml")
	if err := os.WriteFile(good, []byte(Example()), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.yaml")
	tests := []struct {
		desc, path string
		wantErr    string
		wantIs     error
	}{
		{"a readable file", good, "", nil},
		{"a missing file", missing, "cannot read config: open " + missing + ": no such file or directory", fs.ErrNotExist},
		{"a directory", dir, "cannot read config: read " + dir + ": is a directory", nil},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			for _, load := range []struct {
				name string
				fn   func(string) (*Config, error)
			}{{"Load", Load}, {"LoadValid", LoadValid}} {
				c, err := load.fn(tc.path)
				if tc.wantErr == "" {
					if err != nil || c == nil || c.File != tc.path {
						t.Errorf("%s(%q) = %v, %v; want a config with File %q", load.name, tc.path, c, err, tc.path)
					}
					continue
				}
				if err == nil || err.Error() != tc.wantErr {
					t.Errorf("%s(%q): got error %v, want %q", load.name, tc.path, err, tc.wantErr)
				}
				var pe *fs.PathError
				if !errors.As(err, &pe) || pe.Path != tc.path {
					t.Errorf("%s(%q): got %v, want it to wrap a *fs.PathError for the path", load.name, tc.path, err)
				}
				if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
					t.Errorf("%s(%q): errors.Is(err, %v) = false, want true", load.name, tc.path, tc.wantIs)
				}
			}
		})
	}
}

func TestErrorFormat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc string
		e    FieldError
		want string
	}{
		{"file, line and field", FieldError{"a.yaml", 3, "routes[0].pool", "unknown pool"}, "a.yaml:3: routes[0].pool: unknown pool"},
		{"no line", FieldError{"a.yaml", 0, "listeners", "none"}, "a.yaml: listeners: none"},
		{"no file, no line", FieldError{"", 0, "listeners", "none"}, "listeners: none"},
		{"no file, a line", FieldError{"", 2, "admin", "x"}, "line 2: admin: x"},
		{"no field", FieldError{"a.yaml", 0, "", "empty config"}, "a.yaml: empty config"},
	}
	for _, tc := range tests {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.desc, got, tc.want)
		}
	}
	errs := &Errors{List: []FieldError{tests[0].e, tests[1].e}}
	if got, want := errs.Error(), tests[0].want+"\n"+tests[1].want; got != want {
		t.Errorf("Errors.Error(): got %q, want %q", got, want)
	}
	var fe FieldError
	if !errors.As(error(errs), &fe) || fe != tests[0].e {
		t.Errorf("errors.As(*Errors, *FieldError): got %v, want %v", fe, tests[0].e)
	}
}

func TestSuggest(t *testing.T) {
	t.Parallel()
	keys := []string{"listeners", "admin", "access_log", "pools", "routes", "shutdown_timeout"}
	tests := []struct {
		desc, in, want string
	}{
		{"missing letter", "listener", "listeners"},
		{"transposition", "rotues", "routes"},
		{"letter case", "Admin", "admin"},
		{"synonym", "upstreams", "pools"},
		{"synonym absent here", "servers", ""},
		{"too far", "xyz", ""},
		{"short name, one edit", "pool", "pools"},
		{"very long name", strings.Repeat("a", 100), ""},
	}
	for _, tc := range tests {
		if got := suggest(tc.in, keys); got != tc.want {
			t.Errorf("%s: suggest(%q) = %q, want %q", tc.desc, tc.in, got, tc.want)
		}
	}
}

func TestEditDistance(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"abc", "", 3}, {"", "abc", 3}, {"abc", "abc", 0},
		{"abc", "abd", 1}, {"ab", "ba", 1}, {"taregts", "targets", 1}, {"kitten", "sitting", 3},
	}
	for _, tc := range tests {
		if got := editDistance(tc.a, tc.b, 100); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
		for bound := range tc.want {
			if got := editDistance(tc.a, tc.b, bound); got <= bound {
				t.Errorf("editDistance(%q, %q, bound %d) = %d, want more than the bound", tc.a, tc.b, bound, got)
			}
		}
		if got := editDistance(tc.a, tc.b, tc.want); got != tc.want {
			t.Errorf("editDistance(%q, %q, bound %d) = %d, want %d", tc.a, tc.b, tc.want, got, tc.want)
		}
	}
}
