// Command chaos runs the same failures against gatewise, nginx and HAProxy,
// side by side, and reports what the clients and the upstreams saw.
//
// For each proxy in turn it starts three fresh upstreams on loopback ports
// (one killed at a third of the run, one resetting every third connection
// it accepts, one that never answers), writes the proxy's best-practice
// config, starts the proxy as a child process, runs a fixed mix of GETs
// and POSTs from keep-alive clients for a bounded time, and stops
// everything. Every request carries a unique X-Chaos-ID header, so the
// upstreams count POSTs that reached them more than once.
//
// The results go to stdout as a Markdown table, to a Markdown page (-out,
// docs/chaos.md from bench/chaos.sh) and to results.json in the work
// directory. bench/chaos.sh installs nginx and HAProxy, builds gatewise
// and this program, and runs it:
//
//	bash bench/chaos.sh                 # 20s per proxy
//	bash bench/chaos.sh --duration 5s   # a quick run
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/gatewise/gatewise/bench/internal/benchkit"
)

func main() {
	os.Exit(benchkit.Main("chaos", run))
}

// options are the command-line flags.
type options struct {
	duration      time.Duration
	workers       int
	postPercent   int
	clientTimeout time.Duration
	gatewise      string
	nginx         string
	haproxy       string
	proxies       string
	dir           string
	out           string
	jsonPath      string
	repo          string
	gatewiseNote  string
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.DurationVar(&o.duration, "duration", 20*time.Second, "load duration per proxy (1s to 2m)")
	fs.IntVar(&o.workers, "workers", 16, "concurrent keep-alive clients")
	fs.IntVar(&o.postPercent, "post-percent", 20, "share of POST requests, 0 to 100")
	fs.DurationVar(&o.clientTimeout, "client-timeout", 10*time.Second, "bound of one client request, body included")
	fs.StringVar(&o.gatewise, "gatewise", "", "gatewise binary (required)")
	fs.StringVar(&o.nginx, "nginx", "", "nginx binary (default: from PATH or /usr/sbin)")
	fs.StringVar(&o.haproxy, "haproxy", "", "haproxy binary (default: from PATH or /usr/sbin)")
	fs.StringVar(&o.proxies, "proxies", "gatewise,nginx,haproxy", "proxies to run, comma-separated, in order")
	fs.StringVar(&o.dir, "dir", "", "work directory for configs, logs and results.json (default: a new temp dir)")
	fs.StringVar(&o.out, "out", "", "Markdown report to write, such as docs/chaos.md; empty for none")
	fs.StringVar(&o.jsonPath, "json", "", "JSON results file (default: DIR/results.json)")
	fs.StringVar(&o.repo, "repo", ".", "gatewise repository, for git describe")
	fs.StringVar(&o.gatewiseNote, "gatewise-note", "", "where the gatewise binary comes from, for the report (default: built from -repo)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: chaos -gatewise BIN [flags]\n\nRuns the same chaos against gatewise, nginx and HAProxy.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := benchkit.ParseFlags(fs, args, stderr); err != nil {
		return nil, err
	}
	switch {
	case o.duration < time.Second || o.duration > 2*time.Minute:
		return nil, benchkit.Usagef("-duration %v: want 1s to 2m (the whole run stays well under 10 minutes)", o.duration)
	case o.workers < 1 || o.workers > 1024:
		return nil, benchkit.Usagef("-workers %d: want 1 to 1024", o.workers)
	case o.postPercent < 0 || o.postPercent > 100:
		return nil, benchkit.Usagef("-post-percent %d: want 0 to 100", o.postPercent)
	case o.clientTimeout < time.Second || o.clientTimeout > time.Minute:
		return nil, benchkit.Usagef("-client-timeout %v: want 1s to 1m", o.clientTimeout)
	case o.gatewise == "":
		return nil, benchkit.Usagef("-gatewise BIN is required (bench/chaos.sh builds it)")
	}
	return o, nil
}

// run is the whole program; it stops every child and listener it started
// before it returns, whatever happens.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	proxies, err := selectProxies(o)
	if err != nil {
		return err
	}
	if o.dir == "" {
		o.dir, err = os.MkdirTemp("", "gatewise-chaos-")
		if err != nil {
			return fmt.Errorf("work directory: %w", err)
		}
	} else if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return fmt.Errorf("work directory: %w", err)
	}
	if o.jsonPath == "" {
		o.jsonPath = filepath.Join(o.dir, "results.json")
	}
	fmt.Fprintf(stderr, "chaos: work directory %s\n", o.dir)

	rep := &report{
		Started:  time.Now().UTC(),
		Machine:  benchkit.MachineInfo(),
		Duration: o.duration.String(),
		Workers:  o.workers,
		POSTs:    o.postPercent,
		Dir:      o.dir,
	}
	rep.Versions = versions(ctx, o, proxies)
	var failed []string
	for _, p := range proxies {
		fmt.Fprintf(stderr, "chaos: %s: starting it, then %v of load from %d clients\n", p.name, o.duration, o.workers)
		res := runProxy(ctx, o, p)
		rep.Runs = append(rep.Runs, res)
		if res.Err != "" {
			fmt.Fprintf(stderr, "chaos: %s: %s\n", p.name, res.Err)
			failed = append(failed, p.name+": "+res.Err)
		} else {
			fmt.Fprintf(stderr, "chaos: %s: %d requests, %d GET errors, %d POST errors, %d duplicate POSTs\n",
				p.name, res.Load.Requests, res.Load.GETErrors, res.Load.POSTErrors, res.Upstream.DuplicatePOSTs)
		}
		if ctx.Err() != nil {
			return errors.New("interrupted; every child and upstream was stopped")
		}
	}
	rep.Finished = time.Now().UTC()

	if err := writeJSON(o.jsonPath, rep); err != nil {
		return err
	}
	fmt.Fprintln(stdout, rep.tables())
	fmt.Fprintf(stdout, "JSON results: %s\n", o.jsonPath)
	if len(failed) > 0 {
		msg := fmt.Sprintf("%d of %d proxies failed (%s)", len(failed), len(proxies), strings.Join(failed, "; "))
		if o.out != "" {
			msg += "; " + o.out + " not written"
		}
		return errors.New(msg)
	}
	if o.out != "" {
		if err := os.WriteFile(o.out, []byte(rep.markdown()), 0o644); err != nil {
			return fmt.Errorf("writing the report: %w", err)
		}
		fmt.Fprintf(stdout, "Report: %s\n", o.out)
	}
	return nil
}

// selectProxies resolves the -proxies list to binaries that exist.
func selectProxies(o *options) ([]*proxy, error) {
	var ps []*proxy
	seen := map[string]bool{}
	for _, name := range strings.Split(o.proxies, ",") {
		name = strings.ToLower(strings.TrimSpace(name))
		if name == "" || seen[name] {
			continue
		}
		seen[name] = true
		switch name {
		case "gatewise":
			bin, err := benchkit.FindBinary(o.gatewise, "gatewise")
			if err != nil {
				return nil, err
			}
			ps = append(ps, gatewiseProxy(bin))
		case "nginx":
			bin, err := benchkit.FindBinary(o.nginx, "nginx")
			if err != nil {
				return nil, fmt.Errorf("%w: install it with apt-get install nginx (bench/chaos.sh does, as root)", err)
			}
			ps = append(ps, nginxProxy(bin))
		case "haproxy":
			bin, err := benchkit.FindBinary(o.haproxy, "haproxy")
			if err != nil {
				return nil, fmt.Errorf("%w: install it with apt-get install haproxy (bench/chaos.sh does, as root)", err)
			}
			ps = append(ps, haproxyProxy(bin))
		default:
			return nil, benchkit.Usagef("-proxies: unknown proxy %q (want gatewise, nginx, haproxy)", name)
		}
	}
	if len(ps) == 0 {
		return nil, benchkit.Usagef("-proxies: no proxy to run")
	}
	return ps, nil
}

// cleanups runs functions in reverse order of registration.
type cleanups []func()

func (c *cleanups) add(f func()) { *c = append(*c, f) }

func (c *cleanups) run() {
	for i := len(*c) - 1; i >= 0; i-- {
		(*c)[i]()
	}
	*c = nil
}

// runResult is one proxy's run.
type runResult struct {
	Proxy      string        `json:"proxy"`
	Err        string        `json:"error,omitempty"`
	Listen     string        `json:"listen,omitempty"`
	ConfigFile string        `json:"config_file,omitempty"`
	Config     string        `json:"config,omitempty"`
	Log        string        `json:"log,omitempty"`
	Load       *loadStats    `json:"load,omitempty"`
	Upstream   ledgerSummary `json:"upstreams"`
	// DuplicatePOSTSample lists some POST ids that reached the upstreams
	// more than once, to look up in the proxy's log.
	DuplicatePOSTSample []string      `json:"duplicate_post_sample,omitempty"`
	Targets             []targetStats `json:"targets,omitempty"`
	// Killed is true when the proxy ignored SIGTERM for 5s.
	Killed bool `json:"needed_sigkill,omitempty"`
}

// runProxy runs the scenario against one proxy with fresh upstreams and
// stops everything it started before returning.
func runProxy(ctx context.Context, o *options, p *proxy) (res *runResult) {
	res = &runResult{Proxy: p.name}
	var cl cleanups
	defer cl.run()
	defer func() {
		if r := recover(); r != nil {
			res.Err = fmt.Sprintf("internal error: %v", r)
		}
	}()
	fail := func(err error) *runResult {
		res.Err = benchkit.OneLine(err.Error())
		return res
	}

	dir := filepath.Join(o.dir, strings.ToLower(p.name))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fail(err)
	}
	led := newLedger()
	faults := []fault{faultKilled, faultReset, faultHang}
	var targets []*target
	var addrs []string
	for i, f := range faults {
		t, err := startTarget(fmt.Sprintf("t%d", i+1), f, led)
		if err != nil {
			return fail(err)
		}
		cl.add(t.kill)
		targets = append(targets, t)
		addrs = append(addrs, t.addr())
	}

	listen, err := benchkit.FreeAddr()
	if err != nil {
		return fail(err)
	}
	res.Listen = listen
	res.Config = p.config(dir, listen, addrs)
	res.ConfigFile = filepath.Join(dir, p.file)
	if err := os.WriteFile(res.ConfigFile, []byte(res.Config), 0o644); err != nil {
		return fail(err)
	}
	if err := p.check(ctx, p, res.ConfigFile, dir); err != nil {
		return fail(err)
	}

	res.Log = filepath.Join(dir, "stderr.log")
	c, err := benchkit.StartChild(p.name, p.argv(p, res.ConfigFile, dir), res.Log)
	if err != nil {
		return fail(err)
	}
	var stopOnce sync.Once
	stop := func() { stopOnce.Do(func() { res.Killed = c.Stop() }) }
	cl.add(stop)
	if err := benchkit.WaitListening(ctx, c, listen, 15*time.Second); err != nil {
		return fail(err)
	}

	res.Load = runLoad(ctx, loadConfig{
		url:           "http://" + listen,
		run:           strings.ToLower(p.name),
		duration:      o.duration,
		workers:       o.workers,
		postPercent:   o.postPercent,
		clientTimeout: o.clientTimeout,
		atThird:       targets[0].kill,
	})
	exited := c.Exited()
	// Stop the proxy before the upstreams, so that no retry is still on
	// its way when the ledger is read.
	stop()
	for _, t := range targets {
		t.kill()
		res.Targets = append(res.Targets, t.stats())
	}
	res.Upstream = led.summary()
	res.DuplicatePOSTSample = led.duplicatePOSTIDs(20)
	switch {
	case ctx.Err() != nil:
		return fail(errors.New("interrupted"))
	case exited:
		msg := fmt.Sprintf("%s exited during the run (%v)", p.name, c.WaitErr())
		if l := c.LastLines(3); l != "" {
			msg += ": " + l
		}
		return fail(errors.New(msg))
	}
	return res
}

func writeJSON(path string, rep *report) error {
	data, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("results: %w", err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("results: %w", err)
	}
	return nil
}
