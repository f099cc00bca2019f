package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatewise/gatewise/internal/config"
)

// writeConfig writes a config file in a temporary directory and returns
// its path.
func writeConfig(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestConfigCommand(t *testing.T) {
	t.Parallel()
	good := writeConfig(t, "good.yaml", `
listeners:
  - address: 127.0.0.1:8080
pools:
  app:
    targets:
      - url: http://127.0.0.1:8081
`)
	two := writeConfig(t, "two.yaml", `
listeners:
  - address: 127.0.0.1:8080
  - address: 127.0.0.1:8081
pools:
  app: {targets: [{url: http://127.0.0.1:9001}]}
  api: {targets: [{url: http://127.0.0.1:9002}]}
routes:
  - pool: app
  - {pool: api, path: /api/}
`)
	bad := writeConfig(t, "bad.yaml", `
listeners:
  - address: 127.0.0.1
pools:
  app:
    targets:
      - url: http://127.0.0.1:8081
        weight: 0
    timeouts:
      dial: soon
routes:
  - pool: ap
`)
	empty := writeConfig(t, "empty.yaml", "")
	missing := filepath.Join(t.TempDir(), "missing.yaml")
	example := writeConfig(t, "example.yaml", config.Example())

	tests := []struct {
		desc       string
		args       []string
		wantCode   int
		wantStdout string // the whole stdout
		wantStderr string // the whole stderr
	}{
		{"valid config", []string{"config", "validate", good}, ExitOK,
			good + ": ok (1 listener, 1 pool, 0 routes)\n", ""},
		{"plural counts", []string{"config", "validate", two}, ExitOK,
			two + ": ok (2 listeners, 2 pools, 2 routes)\n", ""},
		{"the example validates", []string{"config", "validate", example}, ExitOK,
			example + ": ok (1 listener, 2 pools, 3 routes)\n", ""},
		{"quiet", []string{"config", "validate", "-q", good}, ExitOK, "", ""},
		{"every problem, sorted by line", []string{"config", "validate", bad}, ExitFailure, "",
			bad + `:3: listeners[0].address: want host:port, such as 0.0.0.0:80, got "127.0.0.1" (missing port)` + "\n" +
				bad + ":8: pools.app.targets[0].weight: must be at least 1, got 0 (remove the target to send it nothing)\n" +
				bad + `:10: pools.app.timeouts.dial: want a duration like 5s, got "soon"` + "\n" +
				bad + `:12: routes[0].pool: unknown pool "ap"; did you mean "app"?` + "\n"},
		{"empty file", []string{"config", "validate", empty}, ExitFailure, "", empty + ": empty config\n"},
		{"missing file", []string{"config", "validate", missing}, ExitFailure, "",
			"gatewise config: cannot read config: open " + missing + ": no such file or directory\n"},
		{"several files: each is reported", []string{"config", "validate", good, empty, two}, ExitFailure,
			good + ": ok (1 listener, 1 pool, 0 routes)\n" + two + ": ok (2 listeners, 2 pools, 2 routes)\n",
			empty + ": empty config\n"},
		{"no subcommand", []string{"config"}, ExitUsage, "",
			"gatewise config: missing subcommand: want validate or defaults (run 'gatewise config -h' for help)\n"},
		{"unknown subcommand", []string{"config", "check", good}, ExitUsage, "",
			`gatewise config: unknown subcommand "check": want validate or defaults (run 'gatewise config -h' for help)` + "\n"},
		{"validate without a file", []string{"config", "validate"}, ExitUsage, "",
			"gatewise config: config validate: missing FILE (run 'gatewise config -h' for help)\n"},
		{"unknown flag", []string{"config", "validate", "--strict", good}, ExitUsage, "",
			"gatewise config: flag provided but not defined: -strict (run 'gatewise config -h' for help)\n"},
		{"defaults with an argument", []string{"config", "defaults", "x"}, ExitUsage, "",
			`gatewise config: config defaults: unexpected argument "x" (run 'gatewise config -h' for help)` + "\n"},
		{"defaults", []string{"config", "defaults"}, ExitOK, config.Example(), ""},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			var out, errb bytes.Buffer
			code := Run(context.Background(), tc.args, &out, &errb)
			if code != tc.wantCode {
				t.Errorf("Run(%q): exit code got %d, want %d (stderr: %s)", tc.args, code, tc.wantCode, errb.String())
			}
			if got := out.String(); got != tc.wantStdout {
				t.Errorf("Run(%q): stdout\ngot:\n%s\nwant:\n%s", tc.args, got, tc.wantStdout)
			}
			if got := errb.String(); got != tc.wantStderr {
				t.Errorf("Run(%q): stderr\ngot:\n%s\nwant:\n%s", tc.args, got, tc.wantStderr)
			}
		})
	}
}

func TestConfigHelp(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"config", "-h"}, {"config", "validate", "-h"}} {
		var out, errb bytes.Buffer
		if code := Run(context.Background(), args, &out, &errb); code != ExitOK {
			t.Errorf("Run(%q): exit code got %d, want %d", args, code, ExitOK)
		}
		if !strings.Contains(errb.String(), "Usage: gatewise config validate FILE") {
			t.Errorf("Run(%q): stderr got %q, want the usage", args, errb.String())
		}
	}
}

// TestConfigDefaultsValidates pipes `config defaults` into
// `config validate -`, as a user would.
func TestConfigDefaultsValidates(t *testing.T) {
	t.Parallel()
	var example, errb bytes.Buffer
	if err := configCommand(context.Background(), []string{"defaults"}, nil, &example, &errb); err != nil {
		t.Fatalf("config defaults: %v (%s)", err, errb.String())
	}
	var out bytes.Buffer
	if err := configCommand(context.Background(), []string{"validate", "-"}, &example, &out, &errb); err != nil {
		t.Fatalf("config validate -: %v\n%s", err, errb.String())
	}
	if got, want := out.String(), "<stdin>: ok (1 listener, 2 pools, 3 routes)\n"; got != want {
		t.Errorf("config validate -: got %q, want %q", got, want)
	}
	out.Reset()
	errb.Reset()
	err := configCommand(context.Background(), []string{"validate", "-"}, strings.NewReader("listeners: 1\n"), &out, &errb)
	if err != errSilentFailure {
		t.Errorf("config validate - (invalid): got %v, want errSilentFailure", err)
	}
	if !strings.HasPrefix(errb.String(), "<stdin>: pools: none") || !strings.Contains(errb.String(), "<stdin>:1: listeners: want a list") {
		t.Errorf("config validate - (invalid): stderr got %q", errb.String())
	}
}
