package main_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gatewise/gatewise/internal/testkit"
)

// gatewiseBin is the binary TestMain builds.
var gatewiseBin string

// TestMain builds gatewise once for every test, with the race detector
// when the tests themselves run with it, so a race in the real process
// shows up too.
func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "gatewise-main-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "temp dir:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	gatewiseBin = filepath.Join(dir, "gatewise")
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	args := []string{"build", "-o", gatewiseBin}
	if raceEnabled() {
		args = append(args, "-race")
	}
	cmd := exec.Command(goBin, append(args, ".")...) // the test runs in cmd/gatewise
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: building gatewise (%s %s): %v\n%s", goBin, strings.Join(args, " "), err, out)
		return 1
	}
	return m.Run()
}

// gatewiseEnv is the environment of the gatewise processes: the race
// detector's 1s pause at exit is turned off, as it only slows the tests.
func gatewiseEnv() []string {
	env := os.Environ()
	if os.Getenv("GORACE") == "" {
		env = append(env, "GORACE=atexit_sleep_ms=0")
	}
	return env
}

// raceEnabled reports whether this test binary was built with -race.
func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// syncBuffer collects a process's output while it runs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// crashText matches what a crash, a data race or an unrecovered panic
// writes to stderr.
var crashText = regexp.MustCompile(`goroutine \d|panic|DATA RACE`)

// runGatewise runs the binary to completion (10s at most) and returns its
// exit code and output.
func runGatewise(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, gatewiseBin, args...)
	cmd.Env = gatewiseEnv()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("gatewise %s: still running after 10s (killed); stderr:\n%s", strings.Join(args, " "), errb.String())
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("gatewise %s: %v", strings.Join(args, " "), err)
	}
	return cmd.ProcessState.ExitCode(), out.String(), errb.String()
}

// nonEmptyLines splits s into its non-empty lines.
func nonEmptyLines(s string) []string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

// writeFile writes a file in dir and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// replaceFile rewrites path atomically, so a reload never reads half a file.
func replaceFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestBadInput runs command lines that must fail cleanly: non-zero exit,
// exactly one line on stderr starting with "gatewise", and no crash.
func TestBadInput(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// Two problems: a bad duration on line 10 and an unknown key on line 11.
	badFile := writeFile(t, dir, "bad.yaml", `listeners:
  - address: 127.0.0.1:8080
admin:
  address: "off"
pools:
  app:
    targets:
      - url: http://127.0.0.1:9
    timeouts:
      dial: abc
shutdown_timout: 10s
`)
	cases := []struct {
		desc     string
		args     []string
		wantCode int
		wantIn   []string // in the stderr line
	}{
		{"unknown subcommand", []string{"frobnicate"}, 2, []string{`"frobnicate"`}},
		{"unknown flag", []string{"serve", "--no-such-flag"}, 2, []string{"no-such-flag"}},
		{"bad flag value", []string{"serve", "--dial-timeout", "abc", "--upstream", "http://127.0.0.1:1"}, 2, []string{"dial-timeout", "abc"}},
		{"upstream with an unsupported scheme", []string{"serve", "--upstream", "ftp://x"}, 2, []string{"ftp://x", "http://"}},
		{"upstream that is not a URL", []string{"serve", "--upstream", "notaurl"}, 2, []string{"notaurl"}},
		{"no upstream", []string{"serve"}, 2, []string{"--upstream"}},
		{"config file that does not exist", []string{"serve", "--config", "/nonexistent.yaml"}, 1, []string{"/nonexistent.yaml"}},
		{"config file with errors", []string{"serve", "--config", badFile}, 1, []string{badFile + ":10: pools.app.timeouts.dial: ", "and 1 more"}},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			code, _, stderr := runGatewise(t, tc.args...)
			if got, want := code, tc.wantCode; got != want {
				t.Errorf("exit code: got %d, want %d", got, want)
			}
			lines := nonEmptyLines(stderr)
			if got, want := len(lines), 1; got != want {
				t.Fatalf("stderr: got %d lines, want %d:\n%s", got, want, stderr)
			}
			line := lines[0]
			if !strings.HasPrefix(line, "gatewise") {
				t.Errorf("stderr: got %q, want a line starting with \"gatewise\"", line)
			}
			if crashText.MatchString(stderr) {
				t.Errorf("stderr looks like a crash: %q", stderr)
			}
			for _, w := range tc.wantIn {
				if !strings.Contains(line, w) {
					t.Errorf("stderr: got %q, want it to contain %q", line, w)
				}
			}
		})
	}
}

// TestConfigValidate checks `gatewise config validate`: every problem of a
// bad file, one per line as FILE:LINE: field: problem, exit 1; exit 0 for a
// good file.
func TestConfigValidate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := writeFile(t, dir, "bad.yaml", `listeners:
  - address: 127.0.0.1:8080
pools:
  app:
    targets:
      - url: http://127.0.0.1:9
        weight: 0
    timeouts:
      dial: abc
routes:
  - pool: nope
shutdown_timout: 10s
`)
	good := writeFile(t, dir, "good.yaml", `listeners:
  - address: 127.0.0.1:8080
admin:
  address: "off"
access_log: "off"
pools:
  app:
    targets:
      - url: http://127.0.0.1:9
`)

	t.Run("bad file", func(t *testing.T) {
		t.Parallel()
		code, stdout, stderr := runGatewise(t, "config", "validate", bad)
		if got, want := code, 1; got != want {
			t.Errorf("exit code: got %d, want %d", got, want)
		}
		if crashText.MatchString(stderr) {
			t.Errorf("stderr looks like a crash:\n%s", stderr)
		}
		want := []string{
			bad + ":7: pools.app.targets[0].weight: ",
			bad + ":9: pools.app.timeouts.dial: ",
			bad + ":11: routes[0].pool: ",
			bad + ":12: shutdown_timout: ",
		}
		// The problems may go to stdout or stderr; besides them, only a
		// summary line starting with "gatewise" is allowed.
		errLine := regexp.MustCompile(`^` + regexp.QuoteMeta(bad) + `:\d+: [A-Za-z0-9_.\[\]]+: \S.*$`)
		var got []string
		for _, l := range nonEmptyLines(stdout + "\n" + stderr) {
			switch {
			case errLine.MatchString(l):
				got = append(got, l)
			case strings.HasPrefix(l, "gatewise"):
			default:
				t.Errorf("unexpected output line %q (want FILE:LINE: field: problem)", l)
			}
		}
		if len(got) != len(want) {
			t.Fatalf("problems: got %d lines, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
		}
		for i := range want {
			if !strings.HasPrefix(got[i], want[i]) {
				t.Errorf("problem %d: got %q, want it to start with %q", i, got[i], want[i])
			}
		}
	})
	t.Run("good file", func(t *testing.T) {
		t.Parallel()
		code, stdout, stderr := runGatewise(t, "config", "validate", good)
		if got, want := code, 0; got != want {
			t.Errorf("exit code: got %d, want %d (stdout %q, stderr %q)", got, want, stdout, stderr)
		}
		if crashText.MatchString(stderr) {
			t.Errorf("stderr looks like a crash:\n%s", stderr)
		}
	})
}

// TestUsageHelpVersion checks the commands that only print.
func TestUsageHelpVersion(t *testing.T) {
	t.Parallel()
	cases := []struct {
		desc       string
		args       []string
		wantCode   int
		wantStdout []string
		wantStderr []string
	}{
		{"no command: usage on stderr", nil, 2, nil, []string{"Usage: gatewise", "serve", "config", "demo"}},
		{"help", []string{"help"}, 0, []string{"Usage: gatewise", "serve", "config", "demo", "version"}, nil},
		{"--help", []string{"--help"}, 0, []string{"Usage: gatewise"}, nil},
		{"version", []string{"version"}, 0, []string{"gatewise "}, nil},
		{"--version", []string{"--version"}, 0, []string{"gatewise "}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := runGatewise(t, tc.args...)
			if got, want := code, tc.wantCode; got != want {
				t.Errorf("exit code: got %d, want %d", got, want)
			}
			for _, w := range tc.wantStdout {
				if !strings.Contains(stdout, w) {
					t.Errorf("stdout: got %q, want it to contain %q", stdout, w)
				}
			}
			for _, w := range tc.wantStderr {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr: got %q, want it to contain %q", stderr, w)
				}
			}
			if crashText.MatchString(stdout + stderr) {
				t.Errorf("output looks like a crash:\n%s%s", stdout, stderr)
			}
		})
	}
	t.Run("version is one line", func(t *testing.T) {
		t.Parallel()
		_, stdout, _ := runGatewise(t, "version")
		if lines := nonEmptyLines(stdout); len(lines) != 1 || !regexp.MustCompile(`^gatewise \S+$`).MatchString(lines[0]) {
			t.Errorf("version: got %q, want one line \"gatewise VERSION\"", stdout)
		}
	})
}

// process is a gatewise started in the background.
type process struct {
	cmd    *exec.Cmd
	stdout *syncBuffer
	stderr *syncBuffer
	done   chan struct{} // closed when it has exited
}

// startGatewise starts gatewise with args; it is killed at the end of the
// test if still running.
func startGatewise(t *testing.T, args ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(gatewiseBin, args...), stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	p.cmd.Env = gatewiseEnv()
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start gatewise: %v", err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *process) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v: %v", sig, err)
	}
}

// wait waits for the process to exit, at most d, and returns its exit
// code; past d it kills the process and fails the test.
func (p *process) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(d):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Fatalf("gatewise still running after %s (killed); stderr:\n%s", d, p.stderr.String())
		return -1
	}
}

// checkNoCrash fails the test if stderr shows a crash or a data race.
func (p *process) checkNoCrash(t *testing.T) {
	t.Helper()
	if s := p.stderr.String(); crashText.MatchString(s) {
		t.Errorf("stderr shows a crash or a race:\n%s", s)
	}
}

// freeAddr returns a loopback address with a port nothing listens on now,
// below the kernel's ephemeral range (testkit.FreePort): a port picked
// from that range could become the source port of one of the connections
// the tests around make before gatewise binds it.
func freeAddr(t *testing.T) string {
	t.Helper()
	return testkit.FreePort(t)
}

// waitListening polls until addr accepts connections (10s at most).
func waitListening(t *testing.T, p *process, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.Close()
			return
		}
		if p.exited() {
			t.Fatalf("gatewise exited with %d before listening on %s; stderr:\n%s", p.cmd.ProcessState.ExitCode(), addr, p.stderr.String())
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %s after 10s: %v; stderr:\n%s", addr, err, p.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitRefused polls until connecting to addr is refused (5s at most).
func waitRefused(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if errors.Is(err, syscall.ECONNREFUSED) {
			return
		}
		if err == nil {
			_ = c.Close()
		}
		if time.Now().After(deadline) {
			t.Fatalf("connections to %s still not refused after 5s (last: %v)", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// serveConfig is a config file for `gatewise serve --config`.
func serveConfig(listen, admin, shutdown, target string) string {
	return fmt.Sprintf(`listeners:
  - address: %s
admin:
  address: %q
access_log: "off"
shutdown_timeout: %s
pools:
  app:
    targets:
      - url: %s
`, listen, admin, shutdown, target)
}

// result is the outcome of a request made in the background.
type result struct {
	status int
	body   string
	err    error
}

// getAsync sends a GET in the background and delivers its outcome.
func getAsync(url string) <-chan result {
	out := make(chan result, 1)
	go func() {
		client := &http.Client{Timeout: 20 * time.Second}
		res, err := client.Get(url)
		if err != nil {
			out <- result{err: err}
			return
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		out <- result{status: res.StatusCode, body: string(b), err: err}
	}()
	return out
}

// blockingUpstream starts an upstream whose handler reports each request
// on arrived and then waits for release (or for the request to go away),
// and answers body.
func blockingUpstream(t *testing.T, body string) (url string, arrived <-chan struct{}, release func()) {
	t.Helper()
	arr := make(chan struct{}, 4)
	rel := make(chan struct{})
	var once sync.Once
	releaseFn := func() { once.Do(func() { close(rel) }) }
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case arr <- struct{}{}:
		default:
		}
		select {
		case <-rel:
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(s.Close)
	t.Cleanup(releaseFn) // runs before s.Close: handlers return, Close does not wait
	return s.URL, arr, releaseFn
}

func waitArrived(t *testing.T, arrived <-chan struct{}) {
	t.Helper()
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the request never reached the upstream")
	}
}

// TestGracefulShutdown checks SIGTERM: no new connections, the request in
// flight finishes whole, exit 0.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	body := strings.Repeat("in flight and finished\n", 4096)
	upURL, arrived, release := blockingUpstream(t, body)
	listen := freeAddr(t)
	file := writeFile(t, t.TempDir(), "gatewise.yaml", serveConfig(listen, "off", "10s", upURL))
	p := startGatewise(t, "serve", "--config", file)
	waitListening(t, p, listen)

	inFlight := getAsync("http://" + listen + "/slow")
	waitArrived(t, arrived)
	p.signal(t, syscall.SIGTERM)
	waitRefused(t, listen)
	if p.exited() {
		t.Fatalf("gatewise exited with %d before the request in flight finished; stderr:\n%s", p.cmd.ProcessState.ExitCode(), p.stderr.String())
	}
	release()

	select {
	case r := <-inFlight:
		if r.err != nil {
			t.Fatalf("request in flight: %v", r.err)
		}
		if got, want := r.status, http.StatusOK; got != want {
			t.Errorf("request in flight: status %d, want %d", got, want)
		}
		if r.body != body {
			t.Errorf("request in flight: got %d bytes of body, want %d identical bytes", len(r.body), len(body))
		}
	case <-time.After(15 * time.Second):
		t.Fatal("request in flight never finished")
	}
	if got, want := p.wait(t, 10*time.Second), 0; got != want {
		t.Errorf("exit code: got %d, want %d; stderr:\n%s", got, want, p.stderr.String())
	}
	p.checkNoCrash(t)
}

// TestShutdownDeadline checks SIGTERM with a request that never finishes:
// gatewise gives up after shutdown_timeout (1s), closes the connection and
// exits 0.
func TestShutdownDeadline(t *testing.T) {
	t.Parallel()
	upURL, arrived, _ := blockingUpstream(t, "never sent")
	listen := freeAddr(t)
	file := writeFile(t, t.TempDir(), "gatewise.yaml", serveConfig(listen, "off", "1s", upURL))
	p := startGatewise(t, "serve", "--config", file)
	waitListening(t, p, listen)

	inFlight := getAsync("http://" + listen + "/stuck")
	waitArrived(t, arrived)
	start := time.Now()
	p.signal(t, syscall.SIGTERM)
	if got, want := p.wait(t, 10*time.Second), 0; got != want {
		t.Errorf("exit code: got %d, want %d; stderr:\n%s", got, want, p.stderr.String())
	}
	t.Logf("exited %s after SIGTERM (shutdown_timeout 1s)", time.Since(start).Round(time.Millisecond))

	select {
	case r := <-inFlight:
		if r.err == nil {
			t.Errorf("request in flight: got status %d and body %q, want the connection cut off", r.status, r.body)
		} else {
			t.Logf("request in flight failed as it should: %v", r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("request in flight still pending 10s after gatewise exited")
	}
	p.checkNoCrash(t)
}

// TestReloadOnSIGHUP checks that SIGHUP applies a new config file, and that
// an invalid one is refused with a warning naming the file and line while
// the running config keeps serving.
func TestReloadOnSIGHUP(t *testing.T) {
	t.Parallel()
	upstream := func(name string) string {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, name)
		}))
		t.Cleanup(s.Close)
		return s.URL
	}
	upA, upB := upstream("A"), upstream("B")
	listen, admin := freeAddr(t), freeAddr(t)
	file := writeFile(t, t.TempDir(), "gatewise.yaml", serveConfig(listen, admin, "5s", upA))
	p := startGatewise(t, "serve", "--config", file)
	waitListening(t, p, listen)

	client := &http.Client{Timeout: 5 * time.Second}
	get := func() string {
		t.Helper()
		res, err := client.Get("http://" + listen + "/")
		if err != nil {
			t.Fatalf("GET: %v", err)
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatalf("GET: %v", err)
		}
		return string(b)
	}
	if got, want := get(), "A"; got != want {
		t.Fatalf("before reload: answered by %q, want %q", got, want)
	}

	replaceFile(t, file, serveConfig(listen, admin, "5s", upB))
	p.signal(t, syscall.SIGHUP)
	deadline := time.Now().Add(5 * time.Second)
	for get() != "B" {
		if time.Now().After(deadline) {
			t.Fatalf("still answered by A 5s after SIGHUP; stderr:\n%s", p.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Line 10 holds the error.
	invalid := strings.Replace(serveConfig(listen, admin, "5s", upB), "url: "+upB, "url: ftp://127.0.0.1:1", 1)
	if !strings.Contains(invalid, "ftp://") {
		t.Fatal("test bug: the invalid config was not made")
	}
	replaceFile(t, file, invalid)
	p.signal(t, syscall.SIGHUP)
	var warning string
	deadline = time.Now().Add(5 * time.Second)
	for warning == "" {
		sc := bufio.NewScanner(strings.NewReader(p.stderr.String()))
		for sc.Scan() {
			if strings.Contains(sc.Text(), "keeping the running config") {
				warning = sc.Text()
				break
			}
		}
		if warning == "" && time.Now().After(deadline) {
			t.Fatalf("no \"keeping the running config\" warning 5s after SIGHUP; stderr:\n%s", p.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if want := fmt.Sprintf("%s:10: pools.app.targets[0].url", file); !strings.Contains(warning, want) {
		t.Errorf("warning: got %s, want it to name %q", warning, want)
	}
	for i := range 3 {
		if got, want := get(), "B"; got != want {
			t.Errorf("after the invalid reload, request %d: answered by %q, want %q", i, got, want)
		}
	}

	res, err := client.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	for _, want := range []string{`gatewise_config_reloads_total{result="ok"} 1`, `gatewise_config_reloads_total{result="invalid"} 1`} {
		if !strings.Contains(string(b), want+"\n") {
			t.Errorf("metrics lack %s; reload lines:\n%s", want, grepLines(string(b), "gatewise_config_reloads_total"))
		}
	}

	p.signal(t, syscall.SIGTERM)
	if got, want := p.wait(t, 10*time.Second), 0; got != want {
		t.Errorf("exit code: got %d, want %d", got, want)
	}
	p.checkNoCrash(t)
}

func grepLines(s, sub string) string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestDemo runs `gatewise demo` and checks a healthy answer, three of its
// failures, and a clean stop on SIGINT.
func TestDemo(t *testing.T) {
	t.Parallel()
	listen, admin := freeAddr(t), freeAddr(t)
	p := startGatewise(t, "demo", "--listen", listen, "--admin-listen", admin, "--quiet")
	waitListening(t, p, listen)
	base := "http://" + listen
	client := &http.Client{Timeout: 10 * time.Second}
	get := func(path string) *http.Response {
		t.Helper()
		res, err := client.Get(base + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res
	}

	ok := false
	var codes []int
	for range 10 { // app-3 fails in rotation; two of three targets are healthy
		res := get("/")
		codes = append(codes, res.StatusCode)
		if res.StatusCode == http.StatusOK {
			ok = true
			break
		}
	}
	if !ok {
		t.Errorf("GET /: no 200 in %d tries: %v", len(codes), codes)
	}

	cases := []struct {
		path       string
		wantStatus int
		wantProxy  string // in Proxy-Status
	}{
		{"/demo/refused", http.StatusBadGateway, "error=connection_refused"},
		{"/demo/timeout", http.StatusGatewayTimeout, "error=http_response_timeout"},
		{"/demo/upstream-502", http.StatusBadGateway, "received-status=502"},
	}
	for _, tc := range cases {
		res := get(tc.path)
		if got, want := res.StatusCode, tc.wantStatus; got != want {
			t.Errorf("GET %s: status %d, want %d", tc.path, got, want)
		}
		if got := res.Header.Get("Proxy-Status"); !strings.Contains(got, tc.wantProxy) {
			t.Errorf("GET %s: Proxy-Status %q, want it to contain %q", tc.path, got, tc.wantProxy)
		}
	}

	p.signal(t, os.Interrupt)
	if got, want := p.wait(t, 10*time.Second), 0; got != want {
		t.Errorf("exit code: got %d, want %d; stderr:\n%s", got, want, p.stderr.String())
	}
	p.checkNoCrash(t)
}
