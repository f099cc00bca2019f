package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatewise/gatewise/internal/doctor"
)

// doctorHost writes a small /proc tree: 2 cores, memory plenty, the given
// load average.
func doctorHost(t *testing.T, load string) string {
	t.Helper()
	root := t.TempDir()
	files := map[string]string{
		"proc/meminfo":                  "MemTotal: 8192000 kB\nMemAvailable: 6144000 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\n",
		"proc/vmstat":                   "oom_kill 0\n",
		"proc/loadavg":                  load + " 1/100 200\n",
		"proc/sys/fs/file-nr":           "100\t0\t10000\n",
		"sys/devices/system/cpu/online": "0-1\n",
		"var/log/dpkg.log":              "",
	}
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// doctorBase is the options the tests give doctorCommand: the fixture
// host, a disk with room.
func doctorBase(root string) doctor.Options {
	return doctor.Options{Root: root, Now: time.Date(2026, 11, 23, 23, 30, 0, 0, time.Local), Statfs: func(string) (doctor.DiskUsage, error) {
		return doctor.DiskUsage{ID: "fs", Total: 10 << 30, Avail: 5 << 30, Files: 100, FilesFree: 50}, nil
	}}
}

// deadAddr returns a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestDoctorUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		desc string
		args []string
		code int
		want string
	}{
		{"unknown flag", []string{"doctor", "--nope"}, ExitUsage, "gatewise doctor: flag provided but not defined: -nope (run 'gatewise doctor -h' for help)\n"},
		{"an argument", []string{"doctor", "/var/log/nginx/error.log"}, ExitUsage, "gatewise doctor: unexpected argument \"/var/log/nginx/error.log\": doctor takes only flags (--logs FILE for a log) (run 'gatewise doctor -h' for help)\n"},
		{"bad since", []string{"doctor", "--since", "yesterday"}, ExitUsage, "gatewise doctor: --since: \"yesterday\" is neither a duration"},
		{"bad timeout", []string{"doctor", "--timeout", "0s"}, ExitUsage, "gatewise doctor: --timeout: want a duration between 0 and 5m, got 0s"},
		{"empty mysql", []string{"doctor", "--mysql", ""}, ExitUsage, "gatewise doctor: --mysql: empty value"},
		{"bad status path", []string{"doctor", "--fpm-status", "status"}, ExitUsage, "gatewise doctor: --fpm-status: \"status\" must start with /"},
		{"missing log", []string{"doctor", "--logs", "/nonexistent/error.log"}, ExitFailure, "gatewise doctor: cannot read log /nonexistent/error.log: no such file or directory\n"},
		{"missing config", []string{"doctor", "--config", "/nonexistent/gatewise.yaml"}, ExitFailure, "gatewise doctor: cannot read config: open /nonexistent/gatewise.yaml: no such file or directory\n"},
		{"report in a missing directory", []string{"doctor", "--report", "/nonexistent/dir/support.md"}, ExitFailure, "gatewise doctor: cannot write the report: open /nonexistent/dir/support.md: no such file or directory\n"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Run(context.Background(), tc.args, &stdout, &stderr)
			if code != tc.code {
				t.Errorf("exit code: got %d, want %d", code, tc.code)
			}
			if !strings.HasPrefix(stderr.String(), tc.want) || strings.Count(stderr.String(), "\n") != 1 {
				t.Errorf("stderr:\n got %q\nwant one line starting %q", stderr.String(), tc.want)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout: got %q, want nothing", stdout.String())
			}
		})
	}
}

func TestDoctorExitCodes(t *testing.T) {
	for _, tc := range []struct {
		desc string
		load string
		args []string
		want error
	}{
		{"all ok", "0.10 0.20 0.30", nil, nil},
		{"a warning", "5.00 5.00 5.00", nil, exitCode(ExitFailure)},
		{"a failure", "0.10 0.20 0.30", []string{"--memcached", ""}, exitCode(ExitUsage)},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			args := []string{"--timeout", "2s"}
			if tc.args != nil {
				args = append(args, "--memcached", deadAddr(t))
			}
			var stdout, stderr bytes.Buffer
			err := doctorCommand(context.Background(), args, doctorBase(doctorHost(t, tc.load)), &stdout, &stderr)
			if !errors.Is(err, tc.want) && err != tc.want {
				t.Errorf("got %v, want %v\n%s", err, tc.want, stdout.String())
			}
			last := strings.TrimSpace(stdout.String())
			if i := strings.LastIndexByte(last, '\n'); i >= 0 {
				last = last[i+1:]
			}
			if !strings.HasPrefix(last, "doctor: ") {
				t.Errorf("the last line is not the summary: %q", last)
			}
			// In a pipe, each check's result is a plain line on stderr.
			if !strings.Contains(stderr.String(), "OK    memory: ") || strings.Contains(stderr.String(), "\r") {
				t.Errorf("stderr lacks plain progress lines: %q", stderr.String())
			}
		})
	}
}

func TestDoctorJSONAndReport(t *testing.T) {
	root := doctorHost(t, "0.10 0.20 0.30")
	report := filepath.Join(t.TempDir(), "support.md")
	dsn := "mysql://wp:Sup3rSecret@" + deadAddr(t) + "/wp"
	var stdout, stderr bytes.Buffer
	err := doctorCommand(context.Background(), []string{"--json", "--timeout", "2s", "--mysql", dsn, "--report", report, "--tried", "restarted php-fpm"}, doctorBase(root), &stdout, &stderr)
	if !errors.Is(err, exitCode(ExitUsage)) {
		t.Fatalf("a dead MySQL: got %v, want exit code 2", err)
	}
	if stderr.Len() != 0 {
		t.Errorf("--json in a pipe shows no progress, got %q", stderr.String())
	}
	var doc struct {
		Findings []struct {
			Check, Status, Cause, Target string
			Evidence                     []string
			Fix                          string
		} `json:"findings"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &doc); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, stdout.String())
	}
	first := doc.Findings[0]
	if first.Check != "mysql" || first.Status != "fail" || first.Cause != "dependency" || first.Fix == "" {
		t.Errorf("first finding: got %+v, want the dead MySQL", first)
	}
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{stdout.String(), string(b)} {
		if strings.Contains(s, "Sup3rSecret") {
			t.Errorf("the DSN's password leaked:\n%s", s)
		}
	}
	for _, want := range []string{"# Support report", "## What was found", "mysql://wp:[REDACTED]@", "- restarted php-fpm", "## System facts"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("the report lacks %q", want)
		}
	}
}

func TestDoctorInvalidConfigIsAFinding(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "gatewise.yaml")
	if err := os.WriteFile(cfg, []byte("listeners:\n  - address: 127.0.0.1:8080\npools:\n  app:\n    targets:\n      - url: http://"+deadAddr(t)+"\n    weight_typo: 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	err := doctorCommand(context.Background(), []string{"--config", cfg, "--timeout", "2s"}, doctorBase(doctorHost(t, "0.1 0.1 0.1")), &stdout, &stderr)
	if !errors.Is(err, exitCode(ExitUsage)) {
		t.Fatalf("got %v, want exit code 2", err)
	}
	out := stdout.String()
	for _, want := range []string{"config " + cfg + ": the config does not validate", "weight_typo", "[proxy_configuration_error]"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestDoctorDependenciesFromConfig checks that the config's dependencies
// are checked as the flags' are.
func TestDoctorDependenciesFromConfig(t *testing.T) {
	dead := deadAddr(t)
	cfg := filepath.Join(t.TempDir(), "gatewise.yaml")
	up := deadAddr(t)
	if err := os.WriteFile(cfg, []byte("listeners:\n  - address: 127.0.0.1:8080\npools:\n  app:\n    targets:\n      - url: http://"+up+"\ndependencies:\n  memcached: ["+dead+"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	err := doctorCommand(context.Background(), []string{"--config", cfg, "--timeout", "2s", "--json"}, doctorBase(doctorHost(t, "0.1 0.1 0.1")), &stdout, &stderr)
	if !errors.Is(err, exitCode(ExitUsage)) {
		t.Fatalf("got %v, want exit code 2 (a failure found)", err)
	}
	var doc struct {
		Findings []struct{ Check, Status, Target string } `json:"findings"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &doc); err != nil {
		t.Fatalf("stdout is not JSON: %v", err)
	}
	for _, f := range doc.Findings {
		if f.Check == "memcached" && f.Status == "fail" && strings.Contains(f.Target, dead) {
			return
		}
	}
	t.Errorf("no failed memcached finding for %s from the config: %s", dead, stdout.String())
}
