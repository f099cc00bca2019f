// Command compare measures gatewise side by side with nginx, HAProxy and
// Caddy, and the upstream on its own (the limit), on the same loopback
// upstream: small keep-alive GETs, 1 MiB responses, a new connection per
// request, 10,000 idle keep-alive connections, and HTTP/2 over TLS.
//
// For every contender and scenario in turn it starts a fresh upstream
// ("compare upstream", this program as a separate process: a plain
// net/http server), writes the proxy's best-practice config, checks it
// with the proxy itself, starts the proxy as a child process on free
// loopback ports, runs a warm-up and then the measured load (wrk, h2load,
// or its own idle connections), reads the CPU time and memory of the
// proxy's processes and of the upstream from /proc, and stops everything.
//
// The results go to stdout as Markdown tables, to a Markdown page (-out,
// docs/benchmarks.md from bench/run) with an SVG chart (-svg), and to
// results.json in the work directory. bench/run installs the peers, builds
// gatewise and this program, and runs it:
//
//	bench/run             # every contender and scenario, about 5 minutes
//	bench/run --quick     # a smoke run
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/gatewise/gatewise/bench/internal/benchkit"
)

func main() {
	os.Exit(benchkit.Main("compare", dispatch))
}

// dispatch runs the subcommand named by args[0] ("upstream", "page"), or
// the benchmark itself.
func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	switch {
	case len(args) > 0 && args[0] == "upstream":
		return runUpstream(ctx, args[1:], stderr)
	case len(args) > 0 && args[0] == "page":
		return runPage(args[1:], stdout, stderr)
	}
	return run(ctx, args, stdout, stderr)
}

// The scenarios, by their names in -scenarios.
const (
	scenSmall = "small"
	scenBig   = "1mb"
	scenClose = "close"
	scenIdle  = "idle"
	scenH2    = "h2"
	scenTLS   = "tls"
)

var allScenarios = []string{scenSmall, scenBig, scenClose, scenIdle, scenH2, scenTLS}

// options are the command-line flags.
type options struct {
	quick        bool
	threads      int
	conns        int
	duration     time.Duration
	rounds       int
	warmup       time.Duration
	bigConns     int
	bigDuration  time.Duration
	closeDur     time.Duration
	idleConns    int
	h2Duration   time.Duration
	h2Clients    int
	h2Streams    int
	logsOn       bool
	contenders   string
	scenarios    string
	gatewise     string
	nginx        string
	haproxy      string
	caddy        string
	wrk          string
	h2load       string
	dir          string
	out          string
	svg          string
	jsonPath     string
	repo         string
	gatewiseNote string
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.BoolVar(&o.quick, "quick", false, "a smoke run: 1-2s per scenario and 1000 idle connections (overrides the durations and -idle-conns)")
	fs.IntVar(&o.threads, "threads", 2, "wrk and h2load threads")
	fs.IntVar(&o.conns, "connections", 50, "wrk connections for the small and close scenarios")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "small GETs: measured duration (whole seconds)")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "small GETs: warm-up before the measurement; the other scenarios warm up for half of it")
	fs.IntVar(&o.rounds, "rounds", 5, "small GETs (access log off): rounds, each running every contender once in turn; the tables show each contender's median run (1 with -quick)")
	fs.IntVar(&o.bigConns, "big-connections", 10, "wrk connections for the 1 MiB scenario")
	fs.DurationVar(&o.bigDuration, "big-duration", 5*time.Second, "1 MiB responses: measured duration")
	fs.DurationVar(&o.closeDur, "close-duration", 5*time.Second, "a connection per request, and HTTP/1.1 over TLS: measured duration")
	fs.IntVar(&o.idleConns, "idle-conns", 10000, "idle keep-alive connections held open")
	fs.DurationVar(&o.h2Duration, "h2-duration", 5*time.Second, "HTTP/2 over TLS: measured duration")
	fs.IntVar(&o.h2Clients, "h2-clients", 50, "h2load clients (connections)")
	fs.IntVar(&o.h2Streams, "h2-streams", 10, "h2load concurrent streams per connection")
	fs.BoolVar(&o.logsOn, "logs-on", true, "also run small GETs through each proxy with its access log on")
	fs.StringVar(&o.contenders, "contenders", "direct,gatewise,nginx,haproxy,caddy", "contenders, comma-separated, in order")
	fs.StringVar(&o.scenarios, "scenarios", strings.Join(allScenarios, ","), "scenarios, comma-separated")
	fs.StringVar(&o.gatewise, "gatewise", "", "gatewise binary (required unless -contenders leaves it out)")
	fs.StringVar(&o.nginx, "nginx", "", "nginx binary (default: from PATH or /usr/sbin)")
	fs.StringVar(&o.haproxy, "haproxy", "", "haproxy binary (default: from PATH or /usr/sbin)")
	fs.StringVar(&o.caddy, "caddy", "", "caddy binary (default: from PATH)")
	fs.StringVar(&o.wrk, "wrk", "", "wrk binary (default: from PATH)")
	fs.StringVar(&o.h2load, "h2load", "", "h2load binary (default: from PATH)")
	fs.StringVar(&o.dir, "dir", "", "work directory for configs, logs and results.json (default: a new temp dir)")
	fs.StringVar(&o.out, "out", "", "Markdown page to write, such as docs/benchmarks.md; empty for none")
	fs.StringVar(&o.svg, "svg", "", "SVG chart to write, such as docs/benchmarks.svg; empty for none")
	fs.StringVar(&o.jsonPath, "json", "", "JSON results file (default: DIR/results.json)")
	fs.StringVar(&o.repo, "repo", ".", "gatewise repository, for git describe")
	fs.StringVar(&o.gatewiseNote, "gatewise-note", "", "where the gatewise binary comes from, for the page")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: compare -gatewise BIN [flags]\n       compare upstream -listen ADDR\n\nMeasures gatewise beside nginx, HAProxy and Caddy.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := benchkit.ParseFlags(fs, args, stderr); err != nil {
		return nil, err
	}
	if o.quick {
		o.duration, o.warmup, o.bigDuration, o.closeDur, o.h2Duration = 2*time.Second, time.Second, time.Second, time.Second, time.Second
		o.idleConns = 1000
		o.rounds = 1
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"duration", o.duration}, {"big-duration", o.bigDuration}, {"close-duration", o.closeDur}, {"h2-duration", o.h2Duration}} {
		if d.v < time.Second || d.v > 2*time.Minute || d.v%time.Second != 0 {
			return nil, benchkit.Usagef("-%s %v: want whole seconds from 1s to 2m", d.name, d.v)
		}
	}
	switch {
	case o.warmup < 0 || o.warmup > time.Minute || o.warmup%time.Second != 0:
		return nil, benchkit.Usagef("-warmup %v: want whole seconds from 0 to 1m", o.warmup)
	case o.rounds < 1 || o.rounds > 9:
		return nil, benchkit.Usagef("-rounds %d: want 1 to 9", o.rounds)
	case o.threads < 1 || o.threads > 64:
		return nil, benchkit.Usagef("-threads %d: want 1 to 64", o.threads)
	case o.conns < o.threads || o.conns > 10000:
		return nil, benchkit.Usagef("-connections %d: want -threads (%d) to 10000", o.conns, o.threads)
	case o.bigConns < o.threads || o.bigConns > 1000:
		return nil, benchkit.Usagef("-big-connections %d: want -threads (%d) to 1000", o.bigConns, o.threads)
	case o.idleConns < 1 || o.idleConns > 50000:
		return nil, benchkit.Usagef("-idle-conns %d: want 1 to 50000", o.idleConns)
	case o.h2Clients < o.threads || o.h2Clients > 1000:
		return nil, benchkit.Usagef("-h2-clients %d: want -threads (%d) to 1000", o.h2Clients, o.threads)
	case o.h2Streams < 1 || o.h2Streams > 1000:
		return nil, benchkit.Usagef("-h2-streams %d: want 1 to 1000", o.h2Streams)
	}
	return o, nil
}

// selectScenarios resolves -scenarios, in the canonical order.
func selectScenarios(list string) ([]string, error) {
	want := map[string]bool{}
	for _, s := range strings.Split(list, ",") {
		s = strings.ToLower(strings.TrimSpace(s))
		if s == "" {
			continue
		}
		if !contains(allScenarios, s) {
			return nil, benchkit.Usagef("-scenarios: unknown scenario %q (want %s)", s, strings.Join(allScenarios, ", "))
		}
		want[s] = true
	}
	var out []string
	for _, s := range allScenarios {
		if want[s] {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil, benchkit.Usagef("-scenarios: nothing to run")
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// selectContenders resolves -contenders.
func selectContenders(o *options) ([]*contender, error) {
	var cs []*contender
	seen := map[string]bool{}
	for _, name := range strings.Split(o.contenders, ",") {
		name = strings.ToLower(strings.TrimSpace(name))
		if name == "" || seen[name] {
			continue
		}
		seen[name] = true
		find := func(given, prog, pkg string) (string, error) {
			bin, err := benchkit.FindBinary(given, prog)
			if err != nil {
				return "", fmt.Errorf("%w: install it with apt-get install %s (bench/run does, as root)", err, pkg)
			}
			return bin, nil
		}
		switch name {
		case "direct":
			cs = append(cs, directContender())
		case "gatewise":
			if o.gatewise == "" {
				return nil, benchkit.Usagef("-gatewise BIN is required (bench/run builds it)")
			}
			bin, err := benchkit.FindBinary(o.gatewise, "gatewise")
			if err != nil {
				return nil, err
			}
			cs = append(cs, gatewiseContender(bin, o.repo, o.gatewiseNote))
		case "nginx":
			bin, err := find(o.nginx, "nginx", "nginx")
			if err != nil {
				return nil, err
			}
			cs = append(cs, nginxContender(bin))
		case "haproxy":
			bin, err := find(o.haproxy, "haproxy", "haproxy")
			if err != nil {
				return nil, err
			}
			cs = append(cs, haproxyContender(bin))
		case "caddy":
			bin, err := find(o.caddy, "caddy", "caddy")
			if err != nil {
				return nil, err
			}
			cs = append(cs, caddyContender(bin))
		default:
			return nil, benchkit.Usagef("-contenders: unknown contender %q (want direct, gatewise, nginx, haproxy, caddy)", name)
		}
	}
	if len(cs) == 0 {
		return nil, benchkit.Usagef("-contenders: nothing to run")
	}
	return cs, nil
}

// run is the whole program; it stops every child it started before it
// returns, whatever happens.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	scens, err := selectScenarios(o.scenarios)
	if err != nil {
		return err
	}
	cs, err := selectContenders(o)
	if err != nil {
		return err
	}
	tools := map[string]string{}
	if contains(scens, scenSmall) || contains(scens, scenBig) || contains(scens, scenClose) || contains(scens, scenTLS) {
		if tools["wrk"], err = benchkit.FindBinary(o.wrk, "wrk"); err != nil {
			return fmt.Errorf("%w: install it with apt-get install wrk (bench/run does, as root)", err)
		}
	}
	if contains(scens, scenH2) {
		if tools["h2load"], err = benchkit.FindBinary(o.h2load, "h2load"); err != nil {
			return fmt.Errorf("%w: install it with apt-get install nghttp2-client (bench/run does, as root)", err)
		}
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding this program for the upstream: %w", err)
	}
	if o.dir == "" {
		if o.dir, err = os.MkdirTemp("", "gatewise-compare-"); err != nil {
			return fmt.Errorf("work directory: %w", err)
		}
	} else if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return fmt.Errorf("work directory: %w", err)
	}
	if o.jsonPath == "" {
		o.jsonPath = filepath.Join(o.dir, "results.json")
	}
	nofile, err := raiseNofile(o.idleConns)
	if err != nil {
		return err
	}
	cert, err := writeSelfSigned(o.dir)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "compare: work directory %s; open files limit %d\n", o.dir, nofile)

	rep := &report{
		Started: time.Now().UTC(), Machine: benchkit.MachineInfo(), Dir: o.dir, Nofile: nofile,
		Settings:  settingsOf(o),
		Scenarios: scens,
	}
	rep.Versions = versions(ctx, cs, tools)
	b := &bench{o: o, self: self, tools: tools, cert: cert, nofile: int(min(nofile, 1<<20)), start: time.Now(), stderr: stderr}
	var failed []string
	// Small GETs with the access log off, the figure the others are
	// judged by, run in rounds: every contender once per round, in turn,
	// so that a slow spell of a shared machine falls on all of them.
	rounds := 0
	if contains(scens, scenSmall) {
		rounds = o.rounds
	}
	for round := 1; round <= rounds; round++ {
		for _, c := range cs {
			res := b.runOne(ctx, c, scenSmall, false)
			if rounds > 1 {
				res.Round = round
			}
			rep.Runs = append(rep.Runs, res)
			if res.Err != "" {
				failed = append(failed, res.Contender+" "+res.Scenario+": "+res.Err)
			}
			if ctx.Err() != nil {
				return errors.New("interrupted; every child was stopped")
			}
		}
	}
	for _, c := range cs {
		variants := []bool{false}
		if o.logsOn && c.bin != "" && contains(scens, scenSmall) {
			variants = append(variants, true)
		}
		for _, s := range scens {
			for _, logs := range variants {
				if logs && s != scenSmall || s == scenSmall && !logs && rounds > 0 {
					continue
				}
				res := b.runOne(ctx, c, s, logs)
				rep.Runs = append(rep.Runs, res)
				if res.Err != "" {
					failed = append(failed, res.Contender+" "+res.Scenario+": "+res.Err)
				}
				if ctx.Err() != nil {
					return errors.New("interrupted; every child was stopped")
				}
			}
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
	fmt.Fprintln(stdout, rep.tables())
	fmt.Fprintf(stdout, "JSON results: %s\n", o.jsonPath)
	if err := writePage(rep, o.out, o.svg, stdout); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "compare: done in %s\n", elapsed(time.Since(b.start)))
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d runs failed (%s)", len(failed), len(rep.Runs), strings.Join(failed, "; "))
	}
	return nil
}

// writePage writes the chart to svg and the page to out, each when not
// empty.
func writePage(rep *report, out, svg string, stdout io.Writer) error {
	if svg != "" {
		if err := os.WriteFile(svg, []byte(rep.svg()), 0o644); err != nil {
			return fmt.Errorf("writing the chart: %w", err)
		}
		fmt.Fprintf(stdout, "Chart: %s\n", svg)
	}
	if out != "" {
		svgRef := ""
		if svg != "" {
			if rel, err := filepath.Rel(filepath.Dir(out), svg); err == nil {
				svgRef = rel
			}
		}
		if err := os.WriteFile(out, []byte(rep.markdown(svgRef)), 0o644); err != nil {
			return fmt.Errorf("writing the page: %w", err)
		}
		fmt.Fprintf(stdout, "Page: %s\n", out)
	}
	return nil
}

// runPage is "compare page -json FILE -out PAGE -svg CHART": the page and
// the chart written again from a run's results.json (after a change to
// how they are written), without measuring anything.
func runPage(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("compare page", flag.ContinueOnError)
	jsonPath := fs.String("json", "", "results.json of a run (required)")
	out := fs.String("out", "", "Markdown page to write")
	svg := fs.String("svg", "", "SVG chart to write")
	fs.SetOutput(stderr)
	if err := benchkit.ParseFlags(fs, args, stderr); err != nil {
		return err
	}
	if *jsonPath == "" || (*out == "" && *svg == "") {
		return errors.New("page: want -json FILE and -out PAGE or -svg CHART")
	}
	data, err := os.ReadFile(*jsonPath)
	if err != nil {
		return fmt.Errorf("page: %w", err)
	}
	var rep report
	if err := json.Unmarshal(data, &rep); err != nil {
		return fmt.Errorf("page: %s: %w", *jsonPath, err)
	}
	if len(rep.Runs) == 0 || len(rep.Scenarios) == 0 {
		return fmt.Errorf("page: %s holds no runs", *jsonPath)
	}
	return writePage(&rep, *out, *svg, stdout)
}

// raiseNofile raises this process's open-files limit (which the upstream
// and the proxies inherit) to 65536, or 4 × conns + 1024 if more, when it
// can (with CAP_SYS_RESOURCE, as root usually has), else to the hard
// limit. It returns the limit in force, and an error when it is too low
// for conns (each of this process and the proxy holds one file per idle
// connection).
func raiseNofile(conns int) (uint64, error) {
	cur, err := benchkit.RaiseNofile(uint64(max(65536, 4*conns+1024)))
	if err != nil {
		return 0, err
	}
	if cur < uint64(conns+1024) {
		return cur, fmt.Errorf("open-files limit %d is too low for %d idle connections: raise it (ulimit -n %d) or lower -idle-conns", cur, conns, 2*conns+1024)
	}
	return cur, nil
}

// versions returns each program's version line.
func versions(ctx context.Context, cs []*contender, tools map[string]string) map[string]string {
	v := map[string]string{"upstream": "Go net/http, " + runtime.Version()}
	for _, c := range cs {
		if c.bin != "" {
			v[c.name] = c.version(ctx, c.bin)
		}
	}
	if bin := tools["wrk"]; bin != "" {
		v["wrk"] = benchkit.OrUnknown(strings.TrimSuffix(benchkit.FirstLine(benchkit.Output(ctx, bin, "-v")), " Copyright (C) 2012 Will Glozer"))
	}
	if bin := tools["h2load"]; bin != "" {
		v["h2load"] = benchkit.OrUnknown(benchkit.FirstLine(benchkit.Output(ctx, bin, "--version")))
	}
	return v
}

// elapsed formats a duration as m:ss.
func elapsed(d time.Duration) string {
	s := int(d.Round(time.Second).Seconds())
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}

// sanityGet checks that url answers 200 with the small body.
func sanityGet(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return fmt.Errorf("a first GET %s: %w", url, err)
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return fmt.Errorf("a first GET %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK || string(body) != smallBody {
		return fmt.Errorf("a first GET %s: status %d, body %q; want 200 and %q", url, resp.StatusCode, body, smallBody)
	}
	return nil
}
