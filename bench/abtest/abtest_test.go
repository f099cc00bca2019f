package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatewise/gatewise/bench/internal/benchkit"
	"github.com/gatewise/gatewise/internal/config"
)

func TestMedianMinMax(t *testing.T) {
	t.Parallel()
	nan := math.NaN()
	for _, tc := range []struct {
		desc             string
		in               []float64
		median, min, max float64
	}{
		{"odd count", []float64{1.03, 0.97, 1.01}, 1.01, 0.97, 1.03},
		{"even count: the mean of the middle two", []float64{1.04, 0.96, 1.00, 1.02}, 1.01, 0.96, 1.04},
		{"one value", []float64{0.99}, 0.99, 0.99, 0.99},
		{"not finite values left out", []float64{nan, 1.2, math.Inf(1), 0.8}, 1.0, 0.8, 1.2},
		{"none", nil, nan, nan, nan},
		{"only NaN", []float64{nan}, nan, nan, nan},
	} {
		in := append([]float64(nil), tc.in...)
		got := median(in)
		lo, hi := minMax(in)
		if !same(got, tc.median) || !same(lo, tc.min) || !same(hi, tc.max) {
			t.Errorf("%s: median, min, max of %v = %v, %v, %v; want %v, %v, %v", tc.desc, tc.in, got, lo, hi, tc.median, tc.min, tc.max)
		}
		for i := range in {
			if !same(in[i], tc.in[i]) {
				t.Errorf("%s: the input was changed to %v", tc.desc, in)
				break
			}
		}
	}
}

// same reports whether a and b are equal to 1e-9, or both NaN.
func same(a, b float64) bool {
	if a == b {
		return true
	}
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	return math.Abs(a-b) < 1e-9
}

func TestGeoMeanAndRatio(t *testing.T) {
	t.Parallel()
	// 1.02 and 1/1.02: a start-order bias of 2% either way cancels.
	if got := geoMean([]float64{1.02, 1 / 1.02}); !same(got, 1) {
		t.Errorf("geoMean(1.02, 1/1.02) = %v, want 1", got)
	}
	if got := geoMean([]float64{2, 8}); !same(got, 4) {
		t.Errorf("geoMean(2, 8) = %v, want 4", got)
	}
	if got := geoMean([]float64{0, math.NaN()}); !math.IsNaN(got) {
		t.Errorf("geoMean(0, NaN) = %v, want NaN", got)
	}
	for _, tc := range []struct {
		b, a, want float64
	}{{110, 100, 1.1}, {100, 0, math.NaN()}, {100, -1, math.NaN()}, {math.Inf(1), 100, math.NaN()}} {
		if got := ratio(tc.b, tc.a); !same(got, tc.want) {
			t.Errorf("ratio(%v, %v) = %v, want %v", tc.b, tc.a, got, tc.want)
		}
	}
}

func TestCPUPerRequest(t *testing.T) {
	t.Parallel()
	got, err := cpuPerRequest(time.Second, 20000)
	if err != nil || !same(got, 50) {
		t.Errorf("1s over 20,000 requests = %v µs, %v; want 50 µs", got, err)
	}
	if _, err := cpuPerRequest(time.Second, 0); !errors.Is(err, errNoRequests) {
		t.Errorf("no request: %v, want errNoRequests", err)
	}
	if _, err := cpuPerRequest(-time.Millisecond, 10); err == nil {
		t.Error("a CPU time that went back: no error")
	}
}

// testRound is a round with made-up figures.
func testRound(n int, aRPS, bRPS, aCPU, bCPU float64) *roundResult {
	first := "A"
	if n%2 == 0 {
		first = "B"
	}
	return &roundResult{Round: n, First: first,
		A:     &sideResult{Build: "A", Wrk: benchkit.WrkResult{Requests: int64(aRPS * 10), OKRPS: aRPS, P50ms: 1, P99ms: aRPS / 1000}, CPUus: aCPU},
		B:     &sideResult{Build: "B", Wrk: benchkit.WrkResult{Requests: int64(bRPS * 10), OKRPS: bRPS, P50ms: 2, P99ms: bRPS / 1000}, CPUus: bCPU},
		Ratio: ratio(bRPS, aRPS), CPURatio: ratio(bCPU, aCPU)}
}

func TestSummarize(t *testing.T) {
	t.Parallel()
	rounds := []*roundResult{
		testRound(1, 10000, 10500, 40, 38),
		testRound(2, 14000, 14000, 30, 30),
		testRound(3, 12000, 11400, 35, 36.75),
	}
	s := summarize(rounds)
	if !same(s.A.RPS, 12000) || !same(s.B.RPS, 11400) || !same(s.A.P99ms, 12) || !same(s.B.P50ms, 2) {
		t.Errorf("medians A %+v, B %+v; want A 12,000 req/s p99 12 ms, B 11,400 req/s p50 2 ms", s.A, s.B)
	}
	if !same(s.A.CPUus, 35) || !same(s.B.CPUus, 36.75) {
		t.Errorf("median CPU per request A %v, B %v; want 35 and 36.75", s.A.CPUus, s.B.CPUus)
	}
	want := []float64{1.05, 1, 0.95}
	for i := range want {
		if !same(s.Ratios[i], want[i]) {
			t.Fatalf("ratios %v, want %v", s.Ratios, want)
		}
	}
	if !same(s.MedianRatio, 1) || !same(s.MinRatio, 0.95) || !same(s.MaxRatio, 1.05) {
		t.Errorf("ratio median %v, min %v, max %v; want 1, 0.95, 1.05", s.MedianRatio, s.MinRatio, s.MaxRatio)
	}
	if !same(s.MedianCPURatio, 1) {
		t.Errorf("CPU ratio median %v (of %v), want 1", s.MedianCPURatio, s.CPURatios)
	}
	rep := &report{Summary: s, Rounds: rounds, Settings: settings{Rounds: 3, Duration: "10s", Connections: 25, Threads: 1, Path: "/small", AccessLog: "off"}}
	text := rep.text()
	for _, want := range []string{"B/A requests/s per round: 1.050 (A first), 1.000 (B first), 0.950 (A first)",
		"median 1.000, min 0.950, max 1.050", "12,000", "11,400", "36.8 µs", "noise"} {
		if !strings.Contains(text, want) {
			t.Errorf("the summary lacks %q:\n%s", want, text)
		}
	}
	if got := rounds[0].line(3); got != "round 1/3 (A first): A 10,000 req/s p99 10.0 ms 40.0 µs/req | B 10,500 req/s p99 10.5 ms 38.0 µs/req | B/A 1.050" {
		t.Errorf("progress line %q", got)
	}
}

func TestThousands(t *testing.T) {
	t.Parallel()
	for in, want := range map[float64]string{0: "0", 999.4: "999", 999.6: "1,000", 14081: "14,081", 1234567: "1,234,567", -4321: "-4,321", math.NaN(): "-"} {
		if got := thousands(in); got != want {
			t.Errorf("thousands(%v) = %q, want %q", in, got, want)
		}
	}
}

// TestFlagErrors: every bad flag value is a one-line *flagError naming the
// flag (exit status 1); a bad flag is reported by the flag set (exit
// status 2), and -h is not an error.
func TestFlagErrors(t *testing.T) {
	t.Parallel()
	ok := []string{"-a", "/bin/true", "-b", "/bin/true"}
	for _, tc := range []struct {
		args []string
		flag string
	}{
		{[]string{"-b", "/bin/true"}, "-a"},
		{[]string{"-a", "/bin/true"}, "-b"},
		{append(ok, "-rounds", "0"), "-rounds"},
		{append(ok, "-rounds", "51"), "-rounds"},
		{append(ok, "-duration", "1500ms"), "-duration"},
		{append(ok, "-duration", "0s"), "-duration"},
		{append(ok, "-duration", "11m"), "-duration"},
		{append(ok, "-warmup", "-1s"), "-warmup"},
		{append(ok, "-warmup", "500ms"), "-warmup"},
		{append(ok, "-threads", "0"), "-threads"},
		{append(ok, "-threads", "4", "-connections", "2"), "-connections"},
		{append(ok, "-connections", "10001"), "-connections"},
		{append(ok, "-path", "small"), "-path"},
		{append(ok, "-path", "/a b"), "-path"},
		{append(ok, "-access-log", "stdout"), "-access-log"},
		{append(ok, "-json", "/no/such/dir/r.json"), "-json"},
	} {
		var stderr bytes.Buffer
		_, err := parseFlags(tc.args, &stderr)
		var fe *flagError
		if !errors.As(err, &fe) || fe.Flag != tc.flag {
			t.Errorf("%q: err %v, want a bad %s", tc.args, err, tc.flag)
			continue
		}
		var out bytes.Buffer
		if code := benchkit.ExitCode("abtest", err, &out); code != 1 || strings.Count(out.String(), "\n") != 1 {
			t.Errorf("%q: exit %d with %q, want 1 and one line", tc.args, code, out.String())
		}
	}
	var stderr bytes.Buffer
	if _, err := parseFlags(append(ok, "-rounds", "many"), &stderr); !errors.Is(err, benchkit.ErrUsage) {
		t.Errorf("-rounds many: %v, want ErrUsage", err)
	}
	if _, err := parseFlags(append(ok, "extra"), &stderr); !errors.Is(err, benchkit.ErrUsage) {
		t.Errorf("an argument left over: %v, want ErrUsage", err)
	}
	if _, err := parseFlags([]string{"-h"}, &stderr); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v, want flag.ErrHelp", err)
	}
	o, err := parseFlags(ok, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if o.rounds != 5 || o.duration != 10*time.Second || o.warmup != 2*time.Second || o.conns != 25 || o.threads != 1 ||
		o.path != "/small" || o.accessLog != "off" || o.keep {
		t.Errorf("defaults %+v", o)
	}
}

// TestBinaryErrors: a missing, unreadable or non-executable binary is a
// bad -a or -b, found before anything starts.
func TestBinaryErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, []byte("not a program"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		desc, bin string
	}{
		{"missing", filepath.Join(dir, "missing")},
		{"a directory", dir},
		{"not executable", plain},
		{"not on PATH", "no-such-gatewise-binary"},
	} {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), []string{"-a", "/bin/true", "-b", tc.bin}, &stdout, &stderr)
		var fe *flagError
		if !errors.As(err, &fe) || fe.Flag != "-b" || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v, want a one-line bad -b", tc.desc, err)
		}
	}
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"-a", "/bin/true", "-b", "/bin/true", "-wrk", filepath.Join(dir, "wrk")}, &stdout, &stderr)
	if fe := (*flagError)(nil); !errors.As(err, &fe) || fe.Flag != "-wrk" {
		t.Errorf("a missing wrk: %v, want a bad -wrk", err)
	}
}

func TestGatewiseConfigValid(t *testing.T) {
	t.Parallel()
	for _, log := range []string{"off", filepath.Join(t.TempDir(), "a-access.log")} {
		text := gatewiseConfig("127.0.0.1:18081", "127.0.0.1:18080", log)
		cfg, err := config.ParseValid("a.yaml", []byte(text))
		if err != nil {
			t.Fatalf("%v\n%s", err, text)
		}
		if n := cfg.Limits.MaxConnsPerIP; n == nil || *n != 0 {
			t.Errorf("max_conns_per_ip %v, want 0 (every client is 127.0.0.1)", n)
		}
		if cfg.AccessLog != log || cfg.Admin.Address != "off" || len(cfg.Listeners) != 1 || len(cfg.Pools) != 1 {
			t.Errorf("access_log %q (want %q), admin %q (want off), %d listeners and %d pools (want 1 and 1)\n%s",
				cfg.AccessLog, log, cfg.Admin.Address, len(cfg.Listeners), len(cfg.Pools), text)
		}
	}
}

// TestSanityNon200: a gateway that answers anything but 200 is named, with
// the last lines of its log.
func TestSanityNon200(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "no", http.StatusBadGateway)
	}))
	defer srv.Close()
	ch, err := benchkit.StartChild("build B", []string{"/bin/sh", "-c", "echo 'upstream refused'; exec sleep 30"}, filepath.Join(t.TempDir(), "b.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Stop()
	for deadline := time.Now().Add(5 * time.Second); ch.LastLines(1) == "" && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	gw := &gateway{build: build{Name: "B", Bin: "/tmp/b/gatewise"}, addr: strings.TrimPrefix(srv.URL, "http://"), child: ch}
	err = gw.sanity(context.Background(), "/small")
	if err == nil {
		t.Fatal("a 502 passed the sanity GET")
	}
	for _, want := range []string{"build B", "502", "upstream refused"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

// goBuild builds the package at pkg (relative to this directory) into dir.
func goBuild(t *testing.T, dir, name, pkg string) string {
	t.Helper()
	out := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-o", out, pkg)
	if text, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, text)
	}
	return out
}

// TestRealRun runs abtest with one gatewise build as A and B, 2 rounds of
// 2 s, and checks that both served requests, the ratio is sane, a build
// that does not start is named, and nothing is left running.
func TestRealRun(t *testing.T) {
	if _, err := exec.LookPath("wrk"); err != nil {
		t.Skip("wrk is not installed (apt-get install wrk): the end-to-end run needs it")
	}
	dir := t.TempDir()
	t.Setenv("TMPDIR", dir) // the -keep work directory goes away with the test
	gw := goBuild(t, dir, "gatewise", "../../cmd/gatewise")
	cmp := goBuild(t, dir, "compare", "../compare")

	t.Run("same build", func(t *testing.T) {
		js := filepath.Join(dir, "results.json")
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), []string{"-a", gw, "-b", gw, "-compare", cmp, "-rounds", "2", "-duration", "2s",
			"-warmup", "1s", "-connections", "4", "-access-log", "file", "-keep", "-json", js}, &stdout, &stderr)
		if err != nil {
			t.Fatalf("%v\n%s", err, stderr.String())
		}
		data, err := os.ReadFile(js)
		if err != nil {
			t.Fatal(err)
		}
		var rep report
		if err := json.Unmarshal(data, &rep); err != nil {
			t.Fatal(err)
		}
		if len(rep.Rounds) != 2 || rep.Rounds[0].First != "A" || rep.Rounds[1].First != "B" {
			t.Fatalf("rounds %+v, want 2, A first then B first", rep.Rounds)
		}
		for _, r := range rep.Rounds {
			for _, s := range []*sideResult{r.A, r.B} {
				if s.Wrk.Requests < 100 || s.CPUus <= 0 || s.Wrk.P99ms <= 0 {
					t.Errorf("round %d, build %s: %d requests, %v µs/req, p99 %v ms; want 100 or more, CPU and a p99",
						r.Round, s.Build, s.Wrk.Requests, s.CPUus, s.Wrk.P99ms)
				}
			}
			if r.A.Addr == r.B.Addr {
				t.Errorf("round %d: both on %s", r.Round, r.A.Addr)
			}
		}
		// Not a timing assertion: a sanity bound on the same build twice.
		if m := rep.Summary.MedianRatio; !finite(m) || m < 0.5 || m > 2 {
			t.Errorf("median ratio %v, want a finite number near 1 (0.5 to 2)", m)
		}
		if !strings.Contains(stdout.String(), "B/A requests/s: median") || !strings.Contains(stderr.String(), "round 2/2 (B first): A ") {
			t.Errorf("stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
		}
		// Each gateway wrote its own access log in the kept work directory.
		logs, _ := filepath.Glob(filepath.Join(dir, "gatewise-abtest-*", "round-1", "?-access.log"))
		if len(logs) != 2 {
			t.Errorf("access logs of round 1: %v, want a-access.log and b-access.log", logs)
		}
		for _, l := range logs {
			if fi, err := os.Stat(l); err != nil || fi.Size() == 0 {
				t.Errorf("%s: empty (%v)", l, err)
			}
		}
		// Nothing is left running: no process in any group abtest started.
		groups := []int{rep.Upstream.Pgid}
		for _, r := range rep.Rounds {
			groups = append(groups, r.A.Pgid, r.B.Pgid)
		}
		for _, g := range groups {
			if pids, err := benchkit.GroupPIDs(g); !errors.Is(err, benchkit.ErrNoProcess) {
				t.Errorf("process group %d still has %v (%v)", g, pids, err)
			}
		}
	})

	t.Run("build that does not start", func(t *testing.T) {
		broken := filepath.Join(dir, "broken")
		if err := os.WriteFile(broken, []byte("#!/bin/sh\n[ \"$1\" = config ] && exit 0\necho 'broken build: cannot start' >&2\nexit 3\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), []string{"-a", gw, "-b", broken, "-compare", cmp, "-rounds", "1", "-duration", "1s",
			"-warmup", "0s", "-connections", "2"}, &stdout, &stderr)
		if err == nil {
			t.Fatal("a build that cannot start: no error")
		}
		if msg := err.Error(); !strings.Contains(msg, "build B") || !strings.Contains(msg, "broken build: cannot start") || strings.Contains(msg, "\n") {
			t.Errorf("error %q: want one line naming build B with its output", msg)
		}
	})
}
