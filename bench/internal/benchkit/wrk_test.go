package benchkit

import (
	"context"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func readTestdata(t testing.TB, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func near(got, want float64) bool { return math.Abs(got-want) <= 1e-6*math.Max(1, math.Abs(want)) }

// The outputs in testdata are wrk 4.1.0's on this project's bench machine.
func TestParseWrk(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc, file string
		want       WrkResult
	}{
		{"small GETs straight to the upstream", "wrk-small.txt", WrkResult{Requests: 144209, Seconds: 2.1, RPS: 68572.99,
			OKRPS: 144209 / 2.1, BytesPerSec: 7.52 * (1 << 20), P50ms: 0.526, P99ms: 7.22, MaxMs: 16.51}},
		{"1 MiB responses: sizes in GB", "wrk-1mb.txt", WrkResult{Requests: 3308, Seconds: 1.01, RPS: 3279.39,
			OKRPS: 3308 / 1.01, BytesPerSec: 3.2 * (1 << 30), P50ms: 2.01, P99ms: 5.28, MaxMs: 8.67}},
		{"Connection: close through nginx", "wrk-close.txt", WrkResult{Requests: 8642, Seconds: 1.03, RPS: 8404.96,
			OKRPS: 8642 / 1.03, BytesPerSec: 1.25 * (1 << 20), P50ms: 4.51, P99ms: 39.27, MaxMs: 51.62}},
		{"every answer a 404", "wrk-404.txt", WrkResult{Requests: 35815, Seconds: 1.1, Non2xx: 35815, OKRPS: 0}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			got, err := ParseWrk(readTestdata(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			w := tc.want
			for _, c := range []struct {
				name      string
				got, want float64
			}{
				{"requests", float64(got.Requests), float64(w.Requests)}, {"seconds", got.Seconds, w.Seconds},
				{"2xx/s", got.OKRPS, w.OKRPS}, {"non-2xx", float64(got.Non2xx), float64(w.Non2xx)},
				{"socket errors", float64(got.SocketErrs), float64(w.SocketErrs)},
			} {
				if !near(c.got, c.want) {
					t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
				}
			}
			if w.RPS == 0 {
				return // only the counts are checked
			}
			for _, c := range []struct {
				name      string
				got, want float64
			}{
				{"req/s", got.RPS, w.RPS}, {"bytes/s", got.BytesPerSec, w.BytesPerSec}, {"p50", got.P50ms, w.P50ms},
				{"p99", got.P99ms, w.P99ms}, {"max", got.MaxMs, w.MaxMs},
			} {
				if !near(c.got, c.want) {
					t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
				}
			}
		})
	}
}

// The output bench/fastcgi.sh saw for hello.php through PHP-FPM, with a
// few non-2xx answers.
func TestParseWrkFastCGI(t *testing.T) {
	t.Parallel()
	out := `Running 3s test @ http://127.0.0.1:18080/hello.php
  2 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.52ms    2.10ms  32.10ms   91.00%
    Req/Sec     2.29k   310.00     2.90k    70.00%
  Latency Distribution
     50%    1.52ms
     75%    2.00ms
     90%    3.95ms
     99%   13.32ms
  13671 requests in 3.00s, 2.97MB read
  Non-2xx or 3xx responses: 3
Requests/sec:   4557.00
Transfer/sec:      0.99MB
`
	w, err := ParseWrk(out)
	if err != nil {
		t.Fatal(err)
	}
	if w.Requests != 13671 || w.RPS != 4557 || w.P50ms != 1.52 || w.P75ms != 2 || w.P90ms != 3.95 || w.P99ms != 13.32 ||
		w.MaxMs != 32.1 || w.Non2xx != 3 {
		t.Errorf("ParseWrk: got %+v", w)
	}
}

func TestParseWrkRejects(t *testing.T) {
	t.Parallel()
	full := readTestdata(t, "wrk-small.txt")
	for _, tc := range []struct{ desc, out string }{
		{"wrk could not connect", readTestdata(t, "wrk-refused.txt")},
		{"nothing", ""},
		{"without --latency", "  10 requests in 1.00s, 1.00KB read\nRequests/sec: 10.00\nTransfer/sec: 1.00KB\n"},
		{"an unknown unit", "  10 requests in 1.00y, 1.00KB read\nRequests/sec: 10.00\n"},
		{"an unknown size unit", "  10 requests in 1.00s, 1.00KB read\nRequests/sec: 10.00\nTransfer/sec: 1.00XB\n"},
		{"cut before Requests/sec", full[:len(full)-60]},
	} {
		if _, err := ParseWrk(tc.out); !errors.Is(err, ErrParse) {
			t.Errorf("%s: error %v, want ErrParse", tc.desc, err)
		}
	}
}

func TestParseToolDuration(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]float64{"812.00us": 0.812, "1.23ms": 1.23, "2.00s": 2000, "1.50m": 90000, "81us": 0.081} {
		d, err := ParseToolDuration(in)
		if err != nil || !near(float64(d)/1e6, want) {
			t.Errorf("ParseToolDuration(%q) = %v, %v; want %v ms", in, d, err, want)
		}
	}
	for _, in := range []string{"", "ms", "1.2.3ms", "5parsecs"} {
		if _, err := ParseToolDuration(in); !errors.Is(err, ErrParse) {
			t.Errorf("ParseToolDuration(%q): error %v, want ErrParse", in, err)
		}
	}
}

// RunTool runs real programs: sh exits 0, fails with its last line in the
// error, or outlives its timeout.
func TestRunTool(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	out, err := RunTool(ctx, 10*time.Second, []string{"sh", "-c", "echo one; echo two"})
	if err != nil || out != "one\ntwo\n" {
		t.Errorf("RunTool ok: %q, %v", out, err)
	}
	_, err = RunTool(ctx, 10*time.Second, []string{"sh", "-c", "echo first; echo 'the last words'; exit 3"})
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 || !strings.HasSuffix(err.Error(), ": the last words") {
		t.Errorf("RunTool exit 3: %v", err)
	}
	_, err = RunTool(ctx, 200*time.Millisecond, []string{"sleep", "5"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("RunTool past its timeout: %v, want DeadlineExceeded", err)
	}
	if _, err := RunTool(ctx, time.Second, nil); err == nil {
		t.Error("RunTool with no command: no error")
	}
}

func TestLastLine(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"a\nb\n\n": "b", "  only  ": "only", "": "", "x\n  y  \n": "y"} {
		if got := LastLine(in); got != want {
			t.Errorf("LastLine(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzParseWrk(f *testing.F) {
	for _, name := range []string{"wrk-small.txt", "wrk-1mb.txt", "wrk-404.txt", "wrk-refused.txt"} {
		f.Add(readTestdata(f, name))
	}
	f.Fuzz(func(t *testing.T, out string) {
		_, _ = ParseWrk(out)
	})
}
