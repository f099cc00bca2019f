package main

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"
)

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func near(got, want float64) bool { return math.Abs(got-want) <= 1e-6*math.Max(1, math.Abs(want)) }

// The outputs in testdata are wrk's and h2load's on this project's bench
// machine (wrk 4.1.0, h2load from nghttp2 1.52.0).
func TestParseWrk(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc, file string
		want       wrkResult
	}{
		{"small GETs straight to the upstream", "wrk-small.txt", wrkResult{Requests: 144209, Seconds: 2.1, RPS: 68572.99,
			OKRPS: 144209 / 2.1, BytesPerSec: 7.52 * (1 << 20), P50ms: 0.526, P99ms: 7.22, MaxMs: 16.51}},
		{"1 MiB responses: sizes in GB", "wrk-1mb.txt", wrkResult{Requests: 3308, Seconds: 1.01, RPS: 3279.39,
			OKRPS: 3308 / 1.01, BytesPerSec: 3.2 * (1 << 30), P50ms: 2.01, P99ms: 5.28, MaxMs: 8.67}},
		{"Connection: close through nginx", "wrk-close.txt", wrkResult{Requests: 8642, Seconds: 1.03, RPS: 8404.96,
			OKRPS: 8642 / 1.03, BytesPerSec: 1.25 * (1 << 20), P50ms: 4.51, P99ms: 39.27, MaxMs: 51.62}},
		{"every answer a 404", "wrk-404.txt", wrkResult{Requests: 35815, Seconds: 1.1, Non2xx: 35815, OKRPS: 0}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			got, err := parseWrk(readTestdata(t, tc.file))
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

func TestParseWrkRejects(t *testing.T) {
	t.Parallel()
	full := readTestdata(t, "wrk-small.txt")
	for _, tc := range []struct{ desc, out string }{
		{"wrk could not connect", readTestdata(t, "wrk-refused.txt")},
		{"nothing", ""},
		{"without --latency", "  10 requests in 1.00s, 1.00KB read\nRequests/sec: 10.00\nTransfer/sec: 1.00KB\n"},
		{"an unknown unit", "  10 requests in 1.00y, 1.00KB read\nRequests/sec: 10.00\n"},
		{"cut before Requests/sec", full[:len(full)-60]},
	} {
		if _, err := parseWrk(tc.out); !errors.Is(err, errParse) {
			t.Errorf("%s: error %v, want errParse", tc.desc, err)
		}
	}
}

func TestParseH2load(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc, file string
		want       h2Result
	}{
		{"every answer 200, through nginx", "h2load.txt", h2Result{Seconds: 1.01, RPS: 21095, Requests: 21095, Done: 21095,
			Succeeded: 21095, OK: 21095, OKRPS: 21095 / 1.01, MeanMs: 22.45, SDMs: 10.95, MaxMs: 87.40, Protocol: "h2"}},
		{"most refused with 503 by gatewise", "h2load-5xx.txt", h2Result{Seconds: 1.01, RPS: 8222, Requests: 8222, Done: 8222,
			Succeeded: 2125, Failed: 6097, OK: 2127, Non2xx: 6187, OKRPS: 2127 / 1.01, MeanMs: 56.83, SDMs: 25.98, MaxMs: 204.81, Protocol: "h2"}},
	} {
		got, err := parseH2load(readTestdata(t, tc.file))
		if err != nil {
			t.Fatalf("%s: %v", tc.desc, err)
		}
		if got.Protocol != tc.want.Protocol || got.Requests != tc.want.Requests || got.Done != tc.want.Done ||
			got.Succeeded != tc.want.Succeeded || got.Failed != tc.want.Failed || got.OK != tc.want.OK || got.Non2xx != tc.want.Non2xx {
			t.Errorf("%s: counts %+v, want %+v", tc.desc, got, tc.want)
		}
		for _, c := range []struct {
			name      string
			got, want float64
		}{{"seconds", got.Seconds, tc.want.Seconds}, {"req/s", got.RPS, tc.want.RPS}, {"2xx/s", got.OKRPS, tc.want.OKRPS},
			{"mean", got.MeanMs, tc.want.MeanMs}, {"sd", got.SDMs, tc.want.SDMs}, {"max", got.MaxMs, tc.want.MaxMs}} {
			if !near(c.got, c.want) {
				t.Errorf("%s: %s = %v, want %v", tc.desc, c.name, c.got, c.want)
			}
		}
	}
	if _, err := parseH2load(readTestdata(t, "wrk-small.txt")); !errors.Is(err, errParse) {
		t.Errorf("wrk's output as h2load's: error %v, want errParse", err)
	}
}

func TestParseWrkDuration(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]float64{"812.00us": 0.812, "1.23ms": 1.23, "2.00s": 2000, "1.50m": 90000, "81us": 0.081} {
		d, err := parseWrkDuration(in)
		if err != nil || !near(float64(d)/1e6, want) {
			t.Errorf("parseWrkDuration(%q) = %v, %v; want %v ms", in, d, err, want)
		}
	}
	for _, in := range []string{"", "ms", "1.2.3ms", "5parsecs"} {
		if _, err := parseWrkDuration(in); !errors.Is(err, errParse) {
			t.Errorf("parseWrkDuration(%q): error %v, want errParse", in, err)
		}
	}
}

func FuzzParseWrk(f *testing.F) {
	for _, name := range []string{"wrk-small.txt", "wrk-1mb.txt", "wrk-404.txt", "h2load.txt"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(data))
	}
	f.Fuzz(func(t *testing.T, out string) {
		_, _ = parseWrk(out)
		_, _ = parseH2load(out)
	})
}
