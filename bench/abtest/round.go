package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gatewise/gatewise/bench/internal/benchkit"
)

// runner holds what every round shares.
type runner struct {
	o      *options
	dir    string // the work directory
	wrk    string // wrk's path
	stderr io.Writer
	start  time.Time
}

// progress prints a line to stderr after the time since the start.
func (r *runner) progress(format string, args ...any) {
	s := int(time.Since(r.start).Round(time.Second).Seconds())
	fmt.Fprintf(r.stderr, "[%d:%02d] %s\n", s/60, s%60, fmt.Sprintf(format, args...))
}

// sideResult is one build in one round.
type sideResult struct {
	Build string `json:"build"`
	// Order is 1 for the gateway started first in the round, 2 for the
	// other.
	Order int                `json:"start_order"`
	Pgid  int                `json:"pgid"`
	Addr  string             `json:"address"`
	Wrk   benchkit.WrkResult `json:"wrk"`
	// CPUus is the gateway's CPU time (user and system, every thread)
	// over the measured window, in microseconds per request wrk counted.
	CPUus float64 `json:"cpu_us_per_request"`
}

// roundResult is one round: both builds, measured at the same time.
type roundResult struct {
	Round int         `json:"round"`
	First string      `json:"first"` // "A" or "B": the build started first
	A     *sideResult `json:"a"`
	B     *sideResult `json:"b"`
	// Ratio is B's requests/s (2xx and 3xx answers) over A's; CPURatio
	// is B's CPU per request over A's.
	Ratio    float64 `json:"ratio_b_over_a"`
	CPURatio float64 `json:"cpu_ratio_b_over_a"`
}

// line is the round's progress line.
func (res *roundResult) line(rounds int) string {
	side := func(s *sideResult) string {
		return fmt.Sprintf("%s %s req/s p99 %s %s µs/req", s.Build, thousands(s.Wrk.OKRPS), ms(s.Wrk.P99ms), oneDecimal(s.CPUus))
	}
	return fmt.Sprintf("round %d/%d (%s first): %s | %s | B/A %.3f", res.Round, rounds, res.First, side(res.A), side(res.B), res.Ratio)
}

// gateway is one build's gateway in a round.
type gateway struct {
	build build
	addr  string
	child *benchkit.Child
	res   *sideResult
}

// gatewiseConfig is gatewise with its defaults, the admin listener off,
// no per-client connection limit (every client of the benchmark is
// 127.0.0.1), and one pool to the upstream. accessLog is "off" or a file.
func gatewiseConfig(listen, upstream, accessLog string) string {
	return fmt.Sprintf(`# abtest: gatewise with its defaults, access log %[3]s.
listeners:
  - address: %[1]s
admin:
  address: "off"
access_log: %[3]q
shutdown_timeout: 3s
limits:
  # Every client of the benchmark comes from 127.0.0.1.
  max_conns_per_ip: 0
pools:
  app:
    targets:
      - url: http://%[2]s
`, listen, upstream, accessLog)
}

// startUpstream starts "compare upstream" on a free loopback port and
// checks that it answers 200 on -path. The child is returned whenever it
// was started, for the caller to stop.
func (r *runner) startUpstream(ctx context.Context, compare string) (*benchkit.Child, string, error) {
	addr, err := benchkit.FreeAddr()
	if err != nil {
		return nil, "", err
	}
	up, err := benchkit.StartChild("the upstream", []string{compare, "upstream", "-listen", addr}, filepath.Join(r.dir, "upstream.log"))
	if err != nil {
		return nil, "", err
	}
	if err := benchkit.WaitListening(ctx, up, addr, 15*time.Second); err != nil {
		return up, "", fmt.Errorf("%w (is %s bench/compare's binary?)", err, compare)
	}
	if code, err := getStatus(ctx, "http://"+addr+r.o.path); err != nil {
		return up, "", fmt.Errorf("the upstream: %w", err)
	} else if code != http.StatusOK {
		return up, "", fmt.Errorf("-path %s: the upstream answers %d to it; it serves /small and /1mb", r.o.path, code)
	}
	return up, addr, nil
}

// round runs round n: a fresh pair of gateways (A first in odd rounds, B
// first in even ones), a sanity GET to each, the warm-up and the measured
// load of both at once. It stops both gateways before it returns.
func (r *runner) round(ctx context.Context, n int, a, b build, upAddr string) (res *roundResult, err error) {
	order := []build{a, b}
	if n%2 == 0 {
		order = []build{b, a}
	}
	res = &roundResult{Round: n, First: order[0].Name}
	rdir := filepath.Join(r.dir, "round-"+strconv.Itoa(n))
	if err := os.MkdirAll(rdir, 0o755); err != nil {
		return nil, fmt.Errorf("work directory: %w", err)
	}
	var gws []*gateway
	defer func() {
		var wg sync.WaitGroup
		for _, gw := range gws {
			wg.Go(func() { gw.child.Stop() })
		}
		wg.Wait()
	}()
	addrs, err := twoAddrs()
	if err != nil {
		return nil, err
	}
	for i, bd := range order {
		name := strings.ToLower(bd.Name)
		log := accessLogOff
		if r.o.accessLog == accessLogFile {
			log = filepath.Join(rdir, name+"-access.log")
		}
		file := filepath.Join(rdir, name+".yaml")
		if err := os.WriteFile(file, []byte(gatewiseConfig(addrs[i], upAddr, log)), 0o644); err != nil {
			return nil, fmt.Errorf("writing a config: %w", err)
		}
		if n == 1 {
			what := "build " + bd.Name + ": gatewise config validate"
			if err := benchkit.CheckCommand(ctx, "abtest", what, bd.Bin, "config", "validate", file); err != nil {
				return nil, err
			}
		}
		ch, err := benchkit.StartChild("build "+bd.Name, []string{bd.Bin, "serve", "--config", file, "--log-level", "warn"},
			filepath.Join(rdir, name+".log"))
		if err != nil {
			return nil, err
		}
		gw := &gateway{build: bd, addr: addrs[i], child: ch,
			res: &sideResult{Build: bd.Name, Order: i + 1, Pgid: ch.Pid(), Addr: addrs[i]}}
		gws = append(gws, gw)
		if bd.Name == "A" {
			res.A = gw.res
		} else {
			res.B = gw.res
		}
		if err := benchkit.WaitListening(ctx, ch, addrs[i], 15*time.Second); err != nil {
			return nil, err
		}
	}
	for _, gw := range gws {
		if err := gw.sanity(ctx, r.o.path); err != nil {
			return nil, err
		}
	}
	if r.o.warmup >= time.Second {
		if _, err := r.loadBoth(ctx, gws, r.o.warmup); err != nil {
			return nil, fmt.Errorf("warm-up: %w", err)
		}
	}
	cpu0 := make([]time.Duration, len(gws))
	for i, gw := range gws {
		if cpu0[i], _, err = benchkit.GroupCPU(gw.child.Pid()); err != nil {
			return nil, fmt.Errorf("build %s: %w", gw.build.Name, err)
		}
	}
	outs, err := r.loadBoth(ctx, gws, r.o.duration)
	if err != nil {
		return nil, err
	}
	for i, gw := range gws {
		cpu, _, err := benchkit.GroupCPU(gw.child.Pid())
		if err != nil {
			return nil, fmt.Errorf("build %s: %w", gw.build.Name, err)
		}
		name := strings.ToLower(gw.build.Name)
		_ = os.WriteFile(filepath.Join(rdir, name+"-wrk.txt"), []byte(outs[i]), 0o644)
		w, err := benchkit.ParseWrk(outs[i])
		if err != nil {
			return nil, fmt.Errorf("build %s's wrk: %w", gw.build.Name, err)
		}
		if w.Non2xx > 0 {
			return nil, fmt.Errorf("build %s answered %d of %d requests with a status other than 2xx or 3xx%s",
				gw.build.Name, w.Non2xx, w.Requests, gw.logTail())
		}
		gw.res.Wrk = w
		if gw.res.CPUus, err = cpuPerRequest(cpu-cpu0[i], w.Requests); err != nil {
			return nil, fmt.Errorf("build %s: %w", gw.build.Name, err)
		}
		if gw.child.Exited() {
			return nil, fmt.Errorf("build %s exited during the round (%v)%s", gw.build.Name, gw.child.WaitErr(), gw.logTail())
		}
	}
	res.Ratio = ratio(res.B.Wrk.OKRPS, res.A.Wrk.OKRPS)
	res.CPURatio = ratio(res.B.CPUus, res.A.CPUus)
	return res, nil
}

// twoAddrs returns two different free loopback addresses.
func twoAddrs() ([2]string, error) {
	var addrs [2]string
	for range 10 {
		a, err := benchkit.FreeAddr()
		if err != nil {
			return addrs, err
		}
		b, err := benchkit.FreeAddr()
		if err != nil {
			return addrs, err
		}
		if a != b {
			return [2]string{a, b}, nil
		}
	}
	return addrs, errors.New("finding two free ports: got the same one ten times")
}

// loadBoth runs one wrk per gateway, at the same time, for d, and returns
// their outputs in the order of gws. When one fails the other is stopped.
func (r *runner) loadBoth(ctx context.Context, gws []*gateway, d time.Duration) ([]string, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	outs := make([]string, len(gws))
	errs := make([]error, len(gws))
	var wg sync.WaitGroup
	for i, gw := range gws {
		argv := []string{r.wrk, "-t" + strconv.Itoa(r.o.threads), "-c" + strconv.Itoa(r.o.conns),
			"-d" + strconv.Itoa(int(d/time.Second)) + "s", "--latency", "http://" + gw.addr + r.o.path}
		wg.Go(func() {
			outs[i], errs[i] = benchkit.RunTool(ctx, d+30*time.Second, argv)
			if errs[i] != nil {
				cancel()
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil && !errors.Is(err, context.Canceled) {
		return nil, err
	}
	for i, err := range errs {
		// The first failure, not the other wrk stopped because of it.
		if err != nil && !errors.Is(err, context.Canceled) {
			return nil, fmt.Errorf("build %s's wrk: %w", gws[i].build.Name, err)
		}
	}
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("build %s's wrk: %w", gws[i].build.Name, err)
		}
	}
	return outs, nil
}

// sanity checks that the gateway answers 200 to a GET of path.
func (gw *gateway) sanity(ctx context.Context, path string) error {
	code, err := getStatus(ctx, "http://"+gw.addr+path)
	if err != nil {
		return fmt.Errorf("build %s (%s): %w%s", gw.build.Name, gw.build.Bin, err, gw.logTail())
	}
	if code != http.StatusOK {
		return fmt.Errorf("build %s (%s) answered %d to GET %s, want 200%s", gw.build.Name, gw.build.Bin, code, path, gw.logTail())
	}
	return nil
}

// logTail is "; its log: LAST LINES", or "" when the log is empty.
func (gw *gateway) logTail() string {
	if l := gw.child.LastLines(3); l != "" {
		return "; its log: " + l
	}
	return ""
}

// getStatus GETs url on a connection of its own, reads the body, and
// returns the status.
func getStatus(ctx context.Context, url string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, fmt.Errorf("GET %s: %w", url, err)
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return 0, fmt.Errorf("GET %s: %w", url, err)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return 0, fmt.Errorf("GET %s: %w", url, err)
	}
	return resp.StatusCode, nil
}
