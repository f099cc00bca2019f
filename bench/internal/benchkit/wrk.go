package benchkit

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// ErrParse is wrapped by every failure to read a load tool's output.
var ErrParse = errors.New("unexpected output")

// WrkResult is what one run of wrk --latency reported.
type WrkResult struct {
	Requests    int64   `json:"requests"`
	Seconds     float64 `json:"seconds"`
	RPS         float64 `json:"requests_per_second"` // every answer, as wrk counts
	OKRPS       float64 `json:"ok_per_second"`       // 2xx and 3xx answers
	BytesPerSec float64 `json:"bytes_per_second"`    // wrk's Transfer/sec, headers included
	P50ms       float64 `json:"p50_ms"`
	P75ms       float64 `json:"p75_ms"`
	P90ms       float64 `json:"p90_ms"`
	P99ms       float64 `json:"p99_ms"`
	MaxMs       float64 `json:"max_ms"`
	Non2xx      int64   `json:"non_2xx_3xx"`
	SocketErrs  int64   `json:"socket_errors"` // connect + read + write + timeout
}

var (
	wrkTotalRE  = regexp.MustCompile(`(?m)^\s*(\d+) requests in ([\d.]+\w+), ([\d.]+)(\w+) read`)
	wrkRPSRE    = regexp.MustCompile(`(?m)^Requests/sec:\s+([\d.]+)`)
	wrkXferRE   = regexp.MustCompile(`(?m)^Transfer/sec:\s+([\d.]+)(\w+)`)
	wrkPctRE    = regexp.MustCompile(`(?m)^\s+(50|75|90|99)%\s+([\d.]+\w+)`)
	wrkLatRE    = regexp.MustCompile(`(?m)^\s+Latency\s+(\S+)\s+(\S+)\s+(\S+)`)
	wrkNon2xxRE = regexp.MustCompile(`(?m)^\s*Non-2xx or 3xx responses:\s+(\d+)`)
	wrkSockRE   = regexp.MustCompile(`(?m)^\s*Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

// ParseWrk reads the output of wrk --latency: the totals line, Requests/sec
// and the four latency percentiles (50, 75, 90, 99) are required, the rest
// (Transfer/sec, the maximum latency, non-2xx answers, socket errors) is
// read when present and left zero otherwise. Every failure wraps ErrParse.
func ParseWrk(out string) (WrkResult, error) {
	var r WrkResult
	m := wrkTotalRE.FindStringSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("wrk: no %q line: %w", "N requests in T, B read", ErrParse)
	}
	r.Requests, _ = strconv.ParseInt(m[1], 10, 64)
	d, err := ParseToolDuration(m[2])
	if err != nil {
		return r, err
	}
	r.Seconds = d.Seconds()
	m = wrkRPSRE.FindStringSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("wrk: no Requests/sec line: %w", ErrParse)
	}
	r.RPS, _ = strconv.ParseFloat(m[1], 64)
	if m = wrkXferRE.FindStringSubmatch(out); m != nil {
		if r.BytesPerSec, err = parseWrkBytes(m[1], m[2]); err != nil {
			return r, err
		}
	}
	pcts := wrkPctRE.FindAllStringSubmatch(out, -1)
	if len(pcts) < 4 {
		return r, fmt.Errorf("wrk: %d latency percentiles, want 4 (run it with --latency): %w", len(pcts), ErrParse)
	}
	for _, p := range pcts {
		d, err := ParseToolDuration(p[2])
		if err != nil {
			return r, err
		}
		ms := float64(d) / 1e6
		switch p[1] {
		case "50":
			r.P50ms = ms
		case "75":
			r.P75ms = ms
		case "90":
			r.P90ms = ms
		case "99":
			r.P99ms = ms
		}
	}
	if m = wrkLatRE.FindStringSubmatch(out); m != nil {
		if d, err := ParseToolDuration(m[3]); err == nil {
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
	if r.Seconds > 0 {
		r.OKRPS = float64(r.Requests-r.Non2xx) / r.Seconds
	}
	return r, nil
}

// ParseToolDuration reads the durations wrk and h2load print: 812.00us,
// 1.23ms, 2.00s, 1.00m, 1.00h (units ns, us, ms, s, m, h). Every failure
// wraps ErrParse.
func ParseToolDuration(s string) (time.Duration, error) {
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i <= 0 {
		return 0, fmt.Errorf("duration %q: %w", s, ErrParse)
	}
	v, err := strconv.ParseFloat(s[:i], 64)
	if err != nil {
		return 0, fmt.Errorf("duration %q: %w", s, ErrParse)
	}
	unit := map[string]time.Duration{"ns": time.Nanosecond, "us": time.Microsecond, "ms": time.Millisecond,
		"s": time.Second, "m": time.Minute, "h": time.Hour}[s[i:]]
	if unit == 0 {
		return 0, fmt.Errorf("duration %q: unknown unit: %w", s, ErrParse)
	}
	return time.Duration(v * float64(unit)), nil
}

// parseWrkBytes reads wrk's sizes, in powers of 1024: 5.00MB, 12.3KB.
func parseWrkBytes(num, unit string) (float64, error) {
	v, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("size %s%s: %w", num, unit, ErrParse)
	}
	mult := map[string]float64{"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40}[unit]
	if mult == 0 {
		return 0, fmt.Errorf("size %s%s: unknown unit: %w", num, unit, ErrParse)
	}
	return v * mult, nil
}

// RunTool runs a load tool (argv[0] with its arguments), killed when ctx
// ends or after timeout, and returns its combined output. A run that fails
// returns an error naming the tool and the last line it printed.
func RunTool(ctx context.Context, timeout time.Duration, argv []string) (string, error) {
	if len(argv) == 0 {
		return "", errors.New("no command to run")
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.WaitDelay = 2 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		switch {
		case errors.Is(ctx.Err(), context.DeadlineExceeded):
			return string(out), fmt.Errorf("%s did not finish within %v: %w", argv[0], timeout, ctx.Err())
		case ctx.Err() != nil:
			return string(out), fmt.Errorf("%s stopped: %w", argv[0], ctx.Err())
		}
		return string(out), fmt.Errorf("%s: %w: %s", argv[0], err, LastLine(string(out)))
	}
	return string(out), nil
}

// LastLine is the last non-empty line of s, trimmed ("" for blank s).
func LastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
