package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// errParse is wrapped by every failure to read wrk's output.
var errParse = errors.New("unexpected output")

// wrkResult is what wrk --latency reported.
type wrkResult struct {
	Requests   int64   `json:"requests"`
	Seconds    float64 `json:"seconds"`
	RPS        float64 `json:"requests_per_second"`
	P50ms      float64 `json:"p50_ms"`
	P90ms      float64 `json:"p90_ms"`
	P99ms      float64 `json:"p99_ms"`
	MaxMs      float64 `json:"max_ms"`
	Non2xx     int64   `json:"non_2xx_3xx"`
	SocketErrs int64   `json:"socket_errors"`
}

var (
	wrkTotalRE  = regexp.MustCompile(`(?m)^\s*(\d+) requests in ([\d.]+\w+),`)
	wrkRPSRE    = regexp.MustCompile(`(?m)^Requests/sec:\s+([\d.]+)`)
	wrkPctRE    = regexp.MustCompile(`(?m)^\s+(50|90|99)%\s+([\d.]+\w+)`)
	wrkLatRE    = regexp.MustCompile(`(?m)^\s+Latency\s+(\S+)\s+(\S+)\s+(\S+)`)
	wrkNon2xxRE = regexp.MustCompile(`(?m)^\s*Non-2xx or 3xx responses:\s+(\d+)`)
	wrkSockRE   = regexp.MustCompile(`(?m)^\s*Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

// parseWrk reads the output of wrk --latency.
func parseWrk(out string) (wrkResult, error) {
	var r wrkResult
	m := wrkTotalRE.FindStringSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("wrk: no %q line: %w", "N requests in T", errParse)
	}
	r.Requests, _ = strconv.ParseInt(m[1], 10, 64)
	d, err := parseWrkDuration(m[2])
	if err != nil {
		return r, err
	}
	r.Seconds = d.Seconds()
	if m = wrkRPSRE.FindStringSubmatch(out); m == nil {
		return r, fmt.Errorf("wrk: no Requests/sec line: %w", errParse)
	}
	r.RPS, _ = strconv.ParseFloat(m[1], 64)
	pcts := wrkPctRE.FindAllStringSubmatch(out, -1)
	if len(pcts) < 3 {
		return r, fmt.Errorf("wrk: %d latency percentiles, want 50, 90 and 99 (run it with --latency): %w", len(pcts), errParse)
	}
	for _, p := range pcts {
		d, err := parseWrkDuration(p[2])
		if err != nil {
			return r, err
		}
		ms := float64(d) / 1e6
		switch p[1] {
		case "50":
			r.P50ms = ms
		case "90":
			r.P90ms = ms
		case "99":
			r.P99ms = ms
		}
	}
	if m = wrkLatRE.FindStringSubmatch(out); m != nil {
		if d, err := parseWrkDuration(m[3]); err == nil {
			r.MaxMs = float64(d) / 1e6
		}
	}
	if m = wrkNon2xxRE.FindStringSubmatch(out); m != nil {
		r.Non2xx, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if m = wrkSockRE.FindStringSubmatch(out); m != nil {
		for _, s := range m[1:] {
			n, _ := strconv.ParseInt(s, 10, 64)
			r.SocketErrs += n
		}
	}
	return r, nil
}

// parseWrkDuration reads wrk's durations: 812.00us, 1.23ms, 2.00s, 1.00m.
func parseWrkDuration(s string) (time.Duration, error) {
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i <= 0 {
		return 0, fmt.Errorf("duration %q: %w", s, errParse)
	}
	v, err := strconv.ParseFloat(s[:i], 64)
	if err != nil {
		return 0, fmt.Errorf("duration %q: %w", s, errParse)
	}
	unit := map[string]time.Duration{"ns": time.Nanosecond, "us": time.Microsecond, "ms": time.Millisecond,
		"s": time.Second, "m": time.Minute, "h": time.Hour}[s[i:]]
	if unit == 0 {
		return 0, fmt.Errorf("duration %q: unknown unit: %w", s, errParse)
	}
	return time.Duration(v * float64(unit)), nil
}

// runWrk runs wrk and returns its output; a run that exceeds its time by
// 30s is killed.
func runWrk(ctx context.Context, argv []string, d time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, d+30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, lastLine(string(out)))
	}
	return string(out), nil
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// clockTick is the unit of utime and stime in /proc/PID/stat (USER_HZ).
const clockTick = 10 * time.Millisecond

// groupCPU returns the CPU time (user and system, every thread) used so
// far by the live processes of process group pgid: a child started by
// benchkit leads its own group, and its workers (nginx's, php-fpm's) stay
// in it. Workers that exit take their time with them; none does here
// (pm = static, pm.max_requests = 0, nginx not reloaded).
func groupCPU(pgid int) (time.Duration, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, fmt.Errorf("listing processes: %w", err)
	}
	var sum time.Duration
	found := false
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // exited meanwhile
		}
		pgrp, cpu, ok := parseStat(string(data))
		if ok && pgrp == pgid {
			sum += cpu
			found = true
		}
	}
	if !found {
		return 0, fmt.Errorf("process group %d has no process left", pgid)
	}
	return sum, nil
}

// parseStat reads the process group and the CPU time (utime + stime) from
// the text of /proc/PID/stat; the command name may hold spaces and
// parentheses, so the fields are counted from the last ')'.
func parseStat(text string) (pgrp int, cpu time.Duration, ok bool) {
	end := strings.LastIndexByte(text, ')')
	if end < 0 {
		return 0, 0, false
	}
	// After ")": state(3) ppid(4) pgrp(5) ... utime(14) stime(15).
	f := strings.Fields(text[end+1:])
	if len(f) < 13 || f[0] == "Z" {
		return 0, 0, false
	}
	pg, err1 := strconv.Atoi(f[2])
	ut, err2 := strconv.ParseInt(f[11], 10, 64)
	st, err3 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return 0, 0, false
	}
	return pg, time.Duration(ut+st) * clockTick, true
}
