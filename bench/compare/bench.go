package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gatewise/gatewise/bench/internal/benchkit"
)

// bench holds what every run shares.
type bench struct {
	o      *options
	self   string            // this program, run as the upstream
	tools  map[string]string // "wrk", "h2load": their paths
	cert   certFiles
	nofile int // the open-files limit the children inherit
	start  time.Time
	stderr io.Writer
}

// runResult is one contender in one scenario.
type runResult struct {
	Contender string `json:"contender"`
	Scenario  string `json:"scenario"`
	LogsOn    bool   `json:"access_log_on"`
	// Round is the round of an interleaved, repeated scenario (small
	// GETs with the access log off), from 1; 0 for a single run.
	Round    int      `json:"round,omitempty"`
	Err      string   `json:"error,omitempty"`
	Commands []string `json:"commands"` // the measured command, after its warm-up
	Lang     string   `json:"config_language,omitempty"`
	Config   string   `json:"config,omitempty"`
	Dir      string   `json:"dir"`

	Wrk  *benchkit.WrkResult `json:"wrk,omitempty"`
	H2   *h2Result           `json:"h2load,omitempty"`
	Idle *idleResult         `json:"idle,omitempty"`

	// CPU per request of the proxy's processes and of the upstream's, in
	// microseconds, over the measured load; the process count is the
	// proxy's (nginx: its master and workers).
	ProxyCPUus    float64 `json:"proxy_cpu_us_per_request,omitempty"`
	UpstreamCPUus float64 `json:"upstream_cpu_us_per_request,omitempty"`
	ProxyProcs    int     `json:"proxy_processes,omitempty"`

	MemBefore  *memReading `json:"memory_before,omitempty"`
	MemAfter   *memReading `json:"memory_after,omitempty"`
	KiBPerConn float64     `json:"kib_per_idle_connection,omitempty"`
}

// label is the row's name in the tables: the contender, and "(log on)"
// for the runs with the access log on.
func (r *runResult) label() string {
	if r.LogsOn {
		return r.Contender + " (log on)"
	}
	return r.Contender
}

func (b *bench) progress(format string, args ...any) {
	fmt.Fprintf(b.stderr, "[%s] %s\n", elapsed(time.Since(b.start)), fmt.Sprintf(format, args...))
}

// runOne runs one scenario against one contender with a fresh upstream and
// a fresh proxy, and stops both before it returns.
func (b *bench) runOne(ctx context.Context, c *contender, scen string, logs bool) (res *runResult) {
	res = &runResult{Contender: c.name, Scenario: scen, LogsOn: logs, Lang: c.lang}
	b.progress("%s: %s", res.label(), scenarioTitle(scen))
	var cleanups []func()
	defer func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
		if res.Err != "" {
			b.progress("%s: %s: failed: %s", res.label(), scen, res.Err)
		} else {
			b.progress("%s: %s: %s", res.label(), scen, res.summary())
		}
	}()
	defer func() {
		if r := recover(); r != nil {
			res.Err = fmt.Sprintf("internal error: %v", r)
		}
	}()
	fail := func(err error) *runResult {
		res.Err = benchkit.OneLine(err.Error())
		return res
	}
	name := c.key
	if logs {
		name += "-log"
	}
	res.Dir = filepath.Join(b.o.dir, name, scen)
	if err := os.MkdirAll(res.Dir, 0o755); err != nil {
		return fail(err)
	}
	start := func(name string, argv, env []string, addrs ...string) (*benchkit.Child, error) {
		ch, err := benchkit.StartChildEnv(name, argv, env, filepath.Join(res.Dir, name+".log"))
		if err != nil {
			return nil, err
		}
		var once sync.Once
		cleanups = append(cleanups, func() { once.Do(func() { ch.Stop() }) })
		for _, a := range addrs {
			if err := benchkit.WaitListening(ctx, ch, a, 15*time.Second); err != nil {
				return nil, err
			}
		}
		return ch, nil
	}

	upAddr, err := benchkit.FreeAddr()
	if err != nil {
		return fail(err)
	}
	upArgv := []string{b.self, "upstream", "-listen", upAddr}
	upAddrs := []string{upAddr}
	httpAddr, tlsAddr := upAddr, ""
	if c.bin == "" && (scen == scenH2 || scen == scenTLS) {
		if tlsAddr, err = benchkit.FreeAddr(); err != nil {
			return fail(err)
		}
		upArgv = append(upArgv, "-tls-listen", tlsAddr, "-cert", b.cert.Cert, "-key", b.cert.Key)
		upAddrs = append(upAddrs, tlsAddr)
	}
	up, err := start("upstream", upArgv, nil, upAddrs...)
	if err != nil {
		return fail(err)
	}
	measured := up // whose memory the idle scenario measures
	var proxy *benchkit.Child
	if c.bin != "" {
		p := params{dir: res.Dir, upstream: upAddr, cert: b.cert, maxConns: b.o.idleConns + 1024, nofile: b.nofile,
			threads: runtime.NumCPU(), root: os.Geteuid() == 0, accessLog: logs}
		if p.listen, err = benchkit.FreeAddr(); err != nil {
			return fail(err)
		}
		if p.tlsListen, err = benchkit.FreeAddr(); err != nil {
			return fail(err)
		}
		res.Config = c.config(p)
		file := filepath.Join(res.Dir, c.file)
		if err := os.WriteFile(file, []byte(res.Config), 0o644); err != nil {
			return fail(err)
		}
		if err := c.check(ctx, c.bin, file, p); err != nil {
			return fail(err)
		}
		var env []string
		if c.env != nil {
			env = c.env(p)
		}
		if proxy, err = start(c.key, c.argv(c.bin, file, p), env, p.listen, p.tlsListen); err != nil {
			return fail(err)
		}
		measured = proxy
		httpAddr, tlsAddr = p.listen, p.tlsListen
	}
	if err := sanityGet(ctx, "http://"+httpAddr+"/small"); err != nil {
		return fail(err)
	}

	switch scen {
	case scenIdle:
		err = b.idle(ctx, res, measured, httpAddr)
	case scenH2:
		err = b.h2(ctx, res, proxy, up, "https://"+tlsAddr+"/small")
	case scenTLS:
		err = b.wrk(ctx, res, proxy, up, "https://"+tlsAddr)
	default:
		err = b.wrk(ctx, res, proxy, up, "http://"+httpAddr)
	}
	if err != nil {
		return fail(err)
	}
	for _, ch := range []struct {
		name string
		*benchkit.Child
	}{{c.name, proxy}, {"the upstream", up}} {
		if ch.Child != nil && ch.Exited() {
			msg := fmt.Sprintf("%s exited during the run (%v)", ch.name, ch.WaitErr())
			if l := ch.LastLines(3); l != "" {
				msg += ": " + l
			}
			return fail(errors.New(msg))
		}
	}
	return res
}

// scenarioTitle is a scenario's heading.
func scenarioTitle(s string) string {
	switch s {
	case scenSmall:
		return "small keep-alive GETs"
	case scenBig:
		return "1 MiB responses"
	case scenClose:
		return "a new connection per request"
	case scenIdle:
		return "idle keep-alive connections"
	case scenH2:
		return "HTTP/2 over TLS"
	case scenTLS:
		return "HTTP/1.1 over TLS"
	}
	return s
}

// cpuMeter reads the CPU time of a proxy and of the upstream around a
// measured load.
type cpuMeter struct {
	proxy, up          *benchkit.Child
	proxy0, up0, procs int64
}

func (m *cpuMeter) begin() error {
	if m.proxy != nil {
		d, n, err := benchkit.GroupCPU(m.proxy.Pid())
		if err != nil {
			return err
		}
		m.proxy0, m.procs = int64(d), int64(n)
	}
	d, _, err := benchkit.GroupCPU(m.up.Pid())
	m.up0 = int64(d)
	return err
}

// end sets the CPU per request of res from requests served since begin.
func (m *cpuMeter) end(res *runResult, requests int64) error {
	if requests <= 0 {
		return errors.New("no request was answered")
	}
	if m.proxy != nil {
		d, n, err := benchkit.GroupCPU(m.proxy.Pid())
		if err != nil {
			return err
		}
		res.ProxyCPUus = float64(int64(d)-m.proxy0) / 1e3 / float64(requests)
		res.ProxyProcs = max(n, int(m.procs))
	}
	d, _, err := benchkit.GroupCPU(m.up.Pid())
	if err != nil {
		return err
	}
	res.UpstreamCPUus = float64(int64(d)-m.up0) / 1e3 / float64(requests)
	return nil
}

// wrk runs the wrk scenarios: a warm-up, then the measured run.
func (b *bench) wrk(ctx context.Context, res *runResult, proxy, up *benchkit.Child, base string) error {
	o := b.o
	conns, dur, warm, path := o.conns, o.duration, o.warmup, "/small"
	var extra []string
	switch res.Scenario {
	case scenBig:
		conns, dur, warm, path = o.bigConns, o.bigDuration, o.warmup/2, "/1mb"
	case scenClose:
		dur, warm = o.closeDur, o.warmup/2
		extra = []string{"-H", "Connection: close"}
	case scenTLS:
		dur, warm = o.closeDur, o.warmup/2
	}
	argv := func(d time.Duration) []string {
		a := []string{b.tools["wrk"], "-t" + strconv.Itoa(o.threads), "-c" + strconv.Itoa(conns),
			"-d" + strconv.Itoa(int(d/time.Second)) + "s", "--latency"}
		return append(append(a, extra...), base+path)
	}
	if warm >= time.Second {
		if _, err := benchkit.RunTool(ctx, warm+30*time.Second, argv(warm)); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}
	m := &cpuMeter{proxy: proxy, up: up}
	if err := m.begin(); err != nil {
		return err
	}
	a := argv(dur)
	res.Commands = []string{commandLine(a)}
	out, err := benchkit.RunTool(ctx, dur+30*time.Second, a)
	_ = os.WriteFile(filepath.Join(res.Dir, "wrk.txt"), []byte(out), 0o644)
	if err != nil {
		return err
	}
	w, err := benchkit.ParseWrk(out)
	if err != nil {
		return err
	}
	res.Wrk = &w
	return m.end(res, w.Requests)
}

// h2 runs h2load: a warm-up, then the measured run.
func (b *bench) h2(ctx context.Context, res *runResult, proxy, up *benchkit.Child, url string) error {
	o := b.o
	argv := func(d time.Duration) []string {
		return []string{b.tools["h2load"], "-t", strconv.Itoa(o.threads), "-c", strconv.Itoa(o.h2Clients),
			"-m", strconv.Itoa(o.h2Streams), "-D", strconv.Itoa(int(d / time.Second)), url}
	}
	if warm := o.warmup / 2; warm >= time.Second {
		if _, err := benchkit.RunTool(ctx, warm+30*time.Second, argv(warm)); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}
	m := &cpuMeter{proxy: proxy, up: up}
	if err := m.begin(); err != nil {
		return err
	}
	a := argv(o.h2Duration)
	res.Commands = []string{commandLine(a)}
	out, err := benchkit.RunTool(ctx, o.h2Duration+30*time.Second, a)
	_ = os.WriteFile(filepath.Join(res.Dir, "h2load.txt"), []byte(out), 0o644)
	if err != nil {
		return err
	}
	h, err := parseH2load(out)
	if err != nil {
		return err
	}
	res.H2 = &h
	if h.Protocol != "h2" {
		return fmt.Errorf("h2load negotiated %q, want h2", h.Protocol)
	}
	return m.end(res, h.Done)
}

// idle opens the idle connections and measures the memory of the
// measured processes (the proxy's, or the upstream's for direct) before
// and after.
func (b *bench) idle(ctx context.Context, res *runResult, measured *benchkit.Child, addr string) error {
	n := b.o.idleConns
	res.Commands = []string{fmt.Sprintf("compare: %d TCP connections to %s, one GET /small on each, then idle (%d opened at a time)", n, addr, 64)}
	time.Sleep(200 * time.Millisecond)
	before, err := groupMemory(measured.Pid())
	if err != nil {
		return err
	}
	ic, ir := openIdle(ctx, addr, "/small", n, 64)
	defer ic.close()
	// Let the proxy settle (Go's GC, nginx's freed buffers).
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Second):
	}
	after, err := groupMemory(measured.Pid())
	if err != nil {
		return err
	}
	ir.StillOp = ic.stillOpen()
	res.Idle, res.MemBefore, res.MemAfter = &ir, &before, &after
	if ir.StillOp == 0 {
		return fmt.Errorf("no connection was open at the measurement (%d opened, %d failed: %s)", ir.Opened, ir.Failed, ir.FirstEr)
	}
	res.KiBPerConn = float64(after.Bytes-before.Bytes) / 1024 / float64(ir.StillOp)
	return nil
}

// commandLine quotes argv for the page, with the program's base name.
func commandLine(argv []string) string {
	out := []string{filepath.Base(argv[0])}
	for _, a := range argv[1:] {
		if strings.ContainsAny(a, " \"'") {
			a = strconv.Quote(a)
		}
		out = append(out, a)
	}
	return strings.Join(out, " ")
}

// summary is the run's figures on one line, for the progress.
func (r *runResult) summary() string {
	cpu := ""
	if r.ProxyCPUus > 0 {
		cpu = fmt.Sprintf(", proxy CPU %.1f µs/req", r.ProxyCPUus)
	}
	switch {
	case r.Wrk != nil:
		return fmt.Sprintf("%.0f req/s, p50 %.2f ms, p99 %.2f ms%s", r.Wrk.OKRPS, r.Wrk.P50ms, r.Wrk.P99ms, cpu)
	case r.H2 != nil:
		return fmt.Sprintf("%.0f 2xx/s, mean %.2f ms, max %.2f ms%s", r.H2.OKRPS, r.H2.MeanMs, r.H2.MaxMs, cpu)
	case r.Idle != nil:
		return fmt.Sprintf("%d of %d open, %.1f KiB per connection", r.Idle.StillOp, r.Idle.Wanted, r.KiBPerConn)
	}
	return "done"
}
