package main

import (
	"errors"
	"github.com/gatewise/gatewise/bench/internal/benchkit"
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

// The outputs in testdata are h2load's on this project's bench machine
// (h2load from nghttp2 1.52.0); wrk's parser and its outputs are in
// bench/internal/benchkit.
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
	wrk := readTestdata(t, filepath.Join("..", "..", "internal", "benchkit", "testdata", "wrk-small.txt"))
	if _, err := parseH2load(wrk); !errors.Is(err, benchkit.ErrParse) {
		t.Errorf("wrk's output as h2load's: error %v, want ErrParse", err)
	}
}

func FuzzParseH2load(f *testing.F) {
	for _, name := range []string{"h2load.txt", "h2load-5xx.txt"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(data))
	}
	f.Fuzz(func(t *testing.T, out string) {
		_, _ = parseH2load(out)
	})
}
