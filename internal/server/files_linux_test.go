package server_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatewise/gatewise/internal/config"
)

// filesChild is set in the environment of the test binary run again for
// one of this file's tests alone (runAlone), and filesUpstream to the URL
// of the upstream the parent serves for it: a real upstream is another
// process, out of reach of the lowered open-files limit, and one in the
// child could not accept the connections it is meant to see.
const (
	filesChild    = "GATEWISE_TEST_FILES_CHILD"
	filesUpstream = "GATEWISE_TEST_FILES_UPSTREAM"
)

// runAloneWithUpstream serves, from this process, an upstream that
// answers every request with "ok" and closes the connection (so that
// each health check opens one), and runs t alone in a new process that
// finds its URL in filesUpstream.
func runAloneWithUpstream(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		_, _ = io.WriteString(w, "ok\n")
	}))
	t.Cleanup(up.Close)
	t.Setenv(filesUpstream, up.URL)
	runAlone(t, filesChild)
}

// TestFileDescriptorsExhausted lowers the gateway's open-files limit so
// that two files are left: a visitor's connection (the client's end and
// the gateway's, both in this process) takes them, and the connection to
// the upstream finds none (EMFILE). The answer is 502
// file_descriptors_exhausted, not proxy_internal_error; with the limit
// back, the next request is answered. With one file left, the visitor's
// connection cannot be accepted: that is logged at WARN and counted. The
// files of other tests would move the count, so the test runs itself
// again in a process of its own.
func TestFileDescriptorsExhausted(t *testing.T) {
	if os.Getenv(filesChild) == "" {
		runAloneWithUpstream(t)
		return
	}

	g := okGateway(t, nil)

	// get is safe on another goroutine: it reports, and does not fail.
	get := func() (int, string, error) {
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		res, err := c.Get(g.url + "/")
		if err != nil {
			return 0, "", err
		}
		_, _ = io.Copy(io.Discard, res.Body)
		_ = res.Body.Close()
		return res.StatusCode, res.Header.Get("Proxy-Status"), nil
	}

	settle(t)
	saved, low := lowerFileLimit(t, 2)
	status, proxyStatus, err := get()
	restoreFileLimit(t, saved)
	if err != nil {
		t.Fatalf("GET at the limit: %v", err)
	}
	if status != http.StatusBadGateway || !strings.Contains(proxyStatus, `details="file_descriptors_exhausted: process limit"`) {
		t.Errorf("at the limit (%d files): %d %q, want 502 with file_descriptors_exhausted: process limit", low.Cur, status, proxyStatus)
	}
	if status, proxyStatus, err := get(); err != nil || status != http.StatusOK {
		t.Errorf("with the limit back: %d %q %v, want 200", status, proxyStatus, err)
	}

	// One file left: the client's socket takes it, and the gateway
	// cannot accept the connection, which waits in the kernel's queue:
	// the failure is logged at WARN and counted, and once the limit is
	// back the request is answered.
	settle(t)
	saved, _ = lowerFileLimit(t, 1)
	type answer struct {
		status int
		err    error
	}
	answered := make(chan answer, 1)
	go func() {
		status, _, err := get()
		answered <- answer{status, err}
	}()
	waitFor(t, "the accept failure's WARN line", func() bool {
		return findLine(g.log.lines(t), map[string]any{"level": "WARN", "msg": "cannot accept client connections: the gateway is out of file descriptors; they wait until one is free",
			"cause": "file_descriptors_exhausted", "detail": "process limit"}) != nil
	})
	restoreFileLimit(t, saved)
	if a := <-answered; a.err != nil || a.status != http.StatusOK {
		t.Errorf("the connection that waited to be accepted: %d %v, want 200", a.status, a.err)
	}
	if m := g.metrics(t); !strings.Contains(m, `gatewise_accept_errors_total{cause="file_descriptors_exhausted"}`) {
		t.Errorf("accept failures not counted:\n%s", grepLines(m, "gatewise_accept_errors_total"))
	}
}

// TestHealthChecksWithoutFiles checks that active health checks that fail
// because the gateway has no file left (file_descriptors_exhausted) count
// as neither pass nor fail: the target stays healthy through three of
// them, where one failed check (fall: 1) would have marked it unhealthy,
// and the checks are counted with result inconclusive. Both kinds of
// check: a TCP connect, and a GET to an upstream (in the parent process)
// that closes every connection, so that each check opens one.
func TestHealthChecksWithoutFiles(t *testing.T) {
	if os.Getenv(filesChild) == "" {
		runAloneWithUpstream(t)
		return
	}
	for _, tcp := range []bool{true, false} {
		cfg := oneTargetConfig(os.Getenv(filesUpstream))
		cfg.AccessLog = "off"
		cfg.Pools["app"].Health = &config.HealthCheck{
			TCP:      tcp,
			Interval: config.Duration{Duration: 300 * time.Millisecond},
			Timeout:  config.Duration{Duration: 300 * time.Millisecond},
			Rise:     1,
			Fall:     1,
		}
		if !tcp {
			cfg.Pools["app"].Health.Path = "/"
		}
		g := startGateway(t, cfg)
		// Let a check pass first, with files to spare.
		waitFor(t, "a passing health check", func() bool {
			return strings.Contains(g.metrics(t), `gatewise_health_checks_total{pool="app",result="pass"`)
		})

		// Three checks with no file left (their DEBUG lines need none;
		// the metrics, read over HTTP, would), where one failure is a
		// fall.
		saved, _ := lowerFileLimit(t, 0)
		waitFor(t, "three inconclusive checks", func() bool {
			n := 0
			for _, l := range g.log.lines(t) {
				if l["msg"] == "health check inconclusive: the gateway's own failure" {
					n++
				}
			}
			return n >= 3
		})
		restoreFileLimit(t, saved)

		m := g.metrics(t)
		if !strings.Contains(m, `gatewise_health_checks_total{pool="app",result="inconclusive"`) {
			t.Errorf("tcp=%v: no inconclusive check counted:\n%s", tcp, grepLines(m, "gatewise_health_checks_total"))
		}
		if strings.Contains(m, `state="unhealthy"`) {
			t.Errorf("tcp=%v: the target was marked unhealthy for the gateway's own failure:\n%s", tcp, grepLines(m, "gatewise_upstream_state_changes_total"))
		}
	}
}

// okGateway starts a gateway in front of the parent's upstream
// (filesUpstream), access log off; configure, if not nil, changes its
// config first.
func okGateway(t *testing.T, configure func(*config.Config)) *gateway {
	t.Helper()
	cfg := oneTargetConfig(os.Getenv(filesUpstream))
	cfg.AccessLog = "off"
	if configure != nil {
		configure(cfg)
	}
	return startGateway(t, cfg)
}

// settle waits until the number of files the process holds has not
// changed for three readings 20 ms apart: a connection closed by its other
// end (the client's, after an answer) goes away a little later, and
// lowerFileLimit's count must hold when the limit is set.
func settle(t *testing.T) {
	t.Helper()
	prev, same := -1, 0
	waitFor(t, "the open files to settle", func() bool {
		fds, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Fatal(err)
		}
		if len(fds) == prev {
			same++
		} else {
			prev, same = len(fds), 0
		}
		return same >= 3
	})
}

// lowerFileLimit lowers the process's open-files limit so that n files
// are left, and returns the limit it replaced and the new one. The limit
// bounds the numbers of new files, which take the lowest free ones: it
// goes just above the n-th free number.
func lowerFileLimit(t *testing.T, n int) (saved, low syscall.Rlimit) {
	t.Helper()
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &saved); err != nil {
		t.Fatal(err)
	}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	inUse := map[uint64]bool{}
	for _, f := range fds[:len(fds)-1] { // the last is ReadDir's own, closed now
		fd, err := strconv.ParseUint(f.Name(), 10, 64)
		if err != nil {
			t.Fatalf("/proc/self/fd: %v", err)
		}
		inUse[fd] = true
	}
	var free []uint64
	for fd := uint64(0); len(free) <= n; fd++ {
		if !inUse[fd] {
			free = append(free, fd)
		}
	}
	low = syscall.Rlimit{Cur: free[n], Max: saved.Max}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatalf("lower the open-files limit to %d: %v", low.Cur, err)
	}
	return saved, low
}

func restoreFileLimit(t *testing.T, saved syscall.Rlimit) {
	t.Helper()
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &saved); err != nil {
		t.Fatalf("restore the open-files limit: %v", err)
	}
}

// TestFileLimitWarning checks the warning at start when the open-files
// limit is below what limits.max_conns and the pools' idle connections
// may need: with a limit of 500, the default max_conns (10,000) warns,
// and max_conns 100 (100 + 64 idle + 64 = 228 files) does not.
func TestFileLimitWarning(t *testing.T) {
	if os.Getenv(filesChild) == "" {
		runAloneWithUpstream(t)
		return
	}
	var saved syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &saved); err != nil {
		t.Fatal(err)
	}
	if saved.Cur < 500 {
		t.Skipf("the open-files limit is %d, below the test's 500: it cannot be raised here", saved.Cur)
	}
	low := syscall.Rlimit{Cur: 500, Max: saved.Max}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { restoreFileLimit(t, saved) })
	const msg = "the open-files limit is below what limits.max_conns and the pools' idle connections may need: past it visitors wait to be accepted and upstream connections fail (file_descriptors_exhausted); raise the limit (LimitNOFILE in the systemd unit, ulimit -n) or lower limits.max_conns"
	for _, tc := range []struct {
		maxConns int
		warn     bool
	}{{10000, true}, {100, false}} {
		g := okGateway(t, func(cfg *config.Config) { cfg.Limits.MaxConns = &tc.maxConns })
		line := findLine(g.log.lines(t), map[string]any{"level": "WARN", "msg": msg})
		switch {
		case tc.warn && line == nil:
			t.Errorf("max_conns %d under a limit of 500: no warning", tc.maxConns)
		case tc.warn && (line["open_files_limit"] != 500.0 || line["needed"] != float64(10000+64+64)):
			t.Errorf("max_conns %d: warning %v, want open_files_limit 500 and needed %d", tc.maxConns, line, 10000+64+64)
		case !tc.warn && line != nil:
			t.Errorf("max_conns %d (228 files) under a limit of 500: warned %v", tc.maxConns, line)
		}
	}
}
