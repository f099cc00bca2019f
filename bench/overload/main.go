// Command overload offers 5× an upstream's capacity to it straight, through
// nginx with its documented overload protection, and through gatewise
// (with its default adaptive concurrency limit, and with a fixed limit),
// and reports the goodput, the latency of the admitted requests, and how
// the others were refused.
//
// For each contender in turn it starts a fresh upstream on a loopback port
// (a fixed number of slots, a service time, and its own unbounded queue
// beyond them, as an application server has), writes the proxy's config,
// starts the proxy as a child process, sends an open-loop load (requests
// started on schedule whatever the answers) for a bounded time, waits for
// every answer, and stops everything.
//
// The results go to stdout as a Markdown table, to a Markdown page (-out,
// docs/overload.md from bench/overload.sh) and to results.json in the work
// directory. bench/overload.sh installs nginx, builds gatewise and this
// program, and runs it:
//
//	bash bench/overload.sh                  # 10s per contender
//	bash bench/overload.sh --duration 5s    # a quick run
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
	os.Exit(benchkit.Main("overload", run))
}

// options are the command-line flags.
type options struct {
	duration      time.Duration
	warmup        time.Duration
	slots         int
	service       time.Duration
	factor        float64
	clientTimeout time.Duration
	gatewise      string
	nginx         string
	runs          string
	dir           string
	out           string
	jsonPath      string
	repo          string
	gatewiseNote  string
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("overload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "load duration per contender (2s to 2m)")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "start of the run left out of the steady p99")
	fs.IntVar(&o.slots, "slots", 8, "the upstream's concurrent slots")
	fs.DurationVar(&o.service, "service", 50*time.Millisecond, "the upstream's service time (±10%)")
	fs.Float64Var(&o.factor, "factor", 5, "offered load, as a multiple of the upstream's capacity")
	fs.DurationVar(&o.clientTimeout, "client-timeout", 5*time.Second, "bound of one client request, body included")
	fs.StringVar(&o.gatewise, "gatewise", "", "gatewise binary (required unless -runs leaves gatewise out)")
	fs.StringVar(&o.nginx, "nginx", "", "nginx binary (default: from PATH or /usr/sbin)")
	fs.StringVar(&o.runs, "runs", "direct,nginx,gatewise,gatewise-fixed", "contenders, comma-separated, in order")
	fs.StringVar(&o.dir, "dir", "", "work directory for configs, logs and results.json (default: a new temp dir)")
	fs.StringVar(&o.out, "out", "", "Markdown report to write, such as docs/overload.md; empty for none")
	fs.StringVar(&o.jsonPath, "json", "", "JSON results file (default: DIR/results.json)")
	fs.StringVar(&o.repo, "repo", ".", "gatewise repository, for git describe")
	fs.StringVar(&o.gatewiseNote, "gatewise-note", "", "where the gatewise binary comes from, for the report")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: overload -gatewise BIN [flags]\n\nOffers 5× an upstream's capacity straight, through nginx and through gatewise.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := benchkit.ParseFlags(fs, args, stderr); err != nil {
		return nil, err
	}
	switch {
	case o.duration < 2*time.Second || o.duration > 2*time.Minute:
		return nil, benchkit.Usagef("-duration %v: want 2s to 2m", o.duration)
	case o.warmup < 0 || o.warmup >= o.duration:
		return nil, benchkit.Usagef("-warmup %v: want 0 to less than -duration", o.warmup)
	case o.slots < 1 || o.slots > 1000:
		return nil, benchkit.Usagef("-slots %d: want 1 to 1000", o.slots)
	case o.service < time.Millisecond || o.service > 10*time.Second:
		return nil, benchkit.Usagef("-service %v: want 1ms to 10s", o.service)
	case o.factor < 1 || o.factor > 20:
		return nil, benchkit.Usagef("-factor %v: want 1 to 20", o.factor)
	case o.clientTimeout < time.Second || o.clientTimeout > time.Minute:
		return nil, benchkit.Usagef("-client-timeout %v: want 1s to 1m", o.clientTimeout)
	}
	if rate := o.factor * float64(o.slots) / o.service.Seconds(); rate > 20000 {
		return nil, fmt.Errorf("an offered load of %.0f requests per second: want at most 20000 (fewer slots, a longer service time or a lower factor)", rate)
	}
	return o, nil
}

// run is the whole program; it stops every child and upstream it started
// before it returns, whatever happens.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	contenders, err := selectContenders(o)
	if err != nil {
		return err
	}
	if o.dir == "" {
		if o.dir, err = os.MkdirTemp("", "gatewise-overload-"); err != nil {
			return fmt.Errorf("work directory: %w", err)
		}
	} else if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return fmt.Errorf("work directory: %w", err)
	}
	if o.jsonPath == "" {
		o.jsonPath = filepath.Join(o.dir, "results.json")
	}
	fmt.Fprintf(stderr, "overload: work directory %s\n", o.dir)

	s := scenario{slots: o.slots, service: o.service}
	rep := &report{
		Started:  time.Now().UTC(),
		Machine:  benchkit.MachineInfo(),
		Duration: o.duration.String(),
		Warmup:   o.warmup.String(),
		Slots:    o.slots,
		Service:  o.service.String(),
		Capacity: s.capacity(),
		Offered:  o.factor * s.capacity(),
		Timeout:  o.clientTimeout.String(),
		Dir:      o.dir,
	}
	rep.Versions = versions(ctx, o, contenders)
	var failed []string
	for _, c := range contenders {
		fmt.Fprintf(stderr, "overload: %s: %.0f requests per second for %v\n", c.name, rep.Offered, o.duration)
		res := runContender(ctx, o, s, c)
		rep.Runs = append(rep.Runs, res)
		if res.Err != "" {
			fmt.Fprintf(stderr, "overload: %s: %s\n", c.name, res.Err)
			failed = append(failed, c.name+": "+res.Err)
		} else {
			l := res.Load
			fmt.Fprintf(stderr, "overload: %s: %d admitted (%.0f/s), p99 %s, %d refused, %d other\n",
				c.name, l.Admitted, l.Goodput, fmtMS(l.P99), l.Refused, l.others())
		}
		if ctx.Err() != nil {
			return errors.New("interrupted; every child and upstream was stopped")
		}
	}
	rep.Finished = time.Now().UTC()

	data, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("results: %w", err)
	}
	if err := os.WriteFile(o.jsonPath, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("results: %w", err)
	}
	fmt.Fprintln(stdout, rep.table())
	fmt.Fprintf(stdout, "JSON results: %s\n", o.jsonPath)
	if len(failed) > 0 {
		msg := fmt.Sprintf("%d of %d contenders failed (%s)", len(failed), len(contenders), strings.Join(failed, "; "))
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

// selectContenders resolves the -runs list.
func selectContenders(o *options) ([]*contender, error) {
	var cs []*contender
	seen := map[string]bool{}
	for _, name := range strings.Split(o.runs, ",") {
		name = strings.ToLower(strings.TrimSpace(name))
		if name == "" || seen[name] {
			continue
		}
		seen[name] = true
		switch name {
		case "direct":
			cs = append(cs, directContender())
		case "nginx":
			bin, err := benchkit.FindBinary(o.nginx, "nginx")
			if err != nil {
				return nil, fmt.Errorf("%w: install it with apt-get install nginx (bench/overload.sh does, as root)", err)
			}
			cs = append(cs, nginxContender(bin))
		case "gatewise", "gatewise-fixed":
			if o.gatewise == "" {
				return nil, benchkit.Usagef("-gatewise BIN is required (bench/overload.sh builds it)")
			}
			bin, err := benchkit.FindBinary(o.gatewise, "gatewise")
			if err != nil {
				return nil, err
			}
			if name == "gatewise" {
				cs = append(cs, gatewiseContender("gatewise (adaptive)", bin, false))
			} else {
				cs = append(cs, gatewiseContender(fmt.Sprintf("gatewise (max_in_flight %d)", o.slots), bin, true))
			}
		default:
			return nil, benchkit.Usagef("-runs: unknown contender %q (want direct, nginx, gatewise, gatewise-fixed)", name)
		}
	}
	if len(cs) == 0 {
		return nil, benchkit.Usagef("-runs: nothing to run")
	}
	return cs, nil
}

// runResult is one contender's run.
type runResult struct {
	Name       string        `json:"name"`
	Err        string        `json:"error,omitempty"`
	Lang       string        `json:"config_language,omitempty"`
	ConfigFile string        `json:"config_file,omitempty"`
	Config     string        `json:"config,omitempty"`
	Log        string        `json:"log,omitempty"`
	Load       *loadStats    `json:"load,omitempty"`
	Upstream   upstreamStats `json:"upstream"`
}

// runContender runs the load against one contender with a fresh upstream
// and stops everything it started before returning.
func runContender(ctx context.Context, o *options, s scenario, c *contender) (res *runResult) {
	res = &runResult{Name: c.name, Lang: c.lang}
	var cleanups []func()
	defer func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
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
	up, err := startUpstream(s.slots, s.service)
	if err != nil {
		return fail(err)
	}
	cleanups = append(cleanups, up.stop)

	url := "http://" + up.addr()
	var proc *benchkit.Child
	if c.bin != "" {
		dir := filepath.Join(o.dir, strings.NewReplacer(" ", "-", "(", "", ")", "").Replace(c.name))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fail(err)
		}
		listen, err := benchkit.FreeAddr()
		if err != nil {
			return fail(err)
		}
		res.Config = c.config(dir, listen, up.addr(), s)
		res.ConfigFile = filepath.Join(dir, c.file)
		if err := os.WriteFile(res.ConfigFile, []byte(res.Config), 0o644); err != nil {
			return fail(err)
		}
		if err := c.check(ctx, c, res.ConfigFile, dir); err != nil {
			return fail(err)
		}
		res.Log = filepath.Join(dir, "stderr.log")
		proc, err = benchkit.StartChild(c.name, c.argv(c, res.ConfigFile, dir), res.Log)
		if err != nil {
			return fail(err)
		}
		var once sync.Once
		cleanups = append(cleanups, func() { once.Do(func() { proc.Stop() }) })
		if err := benchkit.WaitListening(ctx, proc, listen, 15*time.Second); err != nil {
			return fail(err)
		}
		url = "http://" + listen
	}
	res.Load = runLoad(ctx, loadConfig{
		url:           url,
		rate:          o.factor * s.capacity(),
		duration:      o.duration,
		warmup:        o.warmup,
		clientTimeout: o.clientTimeout,
	})
	res.Upstream = up.stats()
	switch {
	case ctx.Err() != nil:
		return fail(errors.New("interrupted"))
	case proc != nil && proc.Exited():
		msg := fmt.Sprintf("%s exited during the run (%v)", c.name, proc.WaitErr())
		if l := proc.LastLines(3); l != "" {
			msg += ": " + l
		}
		return fail(errors.New(msg))
	}
	return res
}
