// Command fastcgi measures hello.php served by one php-fpm pool through
// gatewise and through nginx with fastcgi_pass, side by side in one run:
// requests per second, p50 and p99 latency from wrk, and the CPU time per
// request of the proxy (and of php-fpm), read from /proc.
//
// It writes the document root and php-fpm's config, starts php-fpm (a
// static pool on a unix socket), then for each contender in turn writes
// and checks its config, starts it, checks that GET /hello.php answers
// "Hello, world", runs wrk for a warm-up and then for the measured time,
// reads the CPU time of the proxy's process group and of php-fpm's around
// the measured run, and stops it. The results go to stdout as a Markdown
// table, to a Markdown page (-out, docs/fastcgi-bench.md from
// bench/fastcgi.sh) and to results.json in the work directory.
//
//	bash bench/fastcgi.sh                   # 10s per contender
//	bash bench/fastcgi.sh --duration 5s     # a quick run
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/gatewise/gatewise/bench/internal/benchkit"
)

func main() {
	os.Exit(benchkit.Main("fastcgi", run))
}

// options are the command-line flags.
type options struct {
	duration, warmup time.Duration
	conns, threads   int
	children         int
	gatewise, nginx  string
	fpm, wrk         string
	runs             string
	dir, out, repo   string
	gatewiseNote     string
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("fastcgi", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "measured wrk run per contender (2s to 2m)")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "wrk warm-up per contender, not measured (0 for none)")
	fs.IntVar(&o.conns, "conns", 8, "wrk connections")
	fs.IntVar(&o.threads, "threads", min(runtime.NumCPU(), 2), "wrk threads")
	fs.IntVar(&o.children, "children", 4, "php-fpm's pm.max_children (pm = static)")
	fs.StringVar(&o.gatewise, "gatewise", "", "gatewise binary (required unless -runs leaves gatewise out)")
	fs.StringVar(&o.nginx, "nginx", "", "nginx binary (default: from PATH or /usr/sbin)")
	fs.StringVar(&o.fpm, "php-fpm", "", "php-fpm binary (default: php-fpm8.2 from PATH or /usr/sbin)")
	fs.StringVar(&o.wrk, "wrk", "", "wrk binary (default: from PATH)")
	fs.StringVar(&o.runs, "runs", "nginx,gatewise", "contenders, comma-separated, in order")
	fs.StringVar(&o.dir, "dir", "", "work directory for configs, logs and results.json (default: a new temp dir)")
	fs.StringVar(&o.out, "out", "", "Markdown report to write, such as docs/fastcgi-bench.md; empty for none")
	fs.StringVar(&o.repo, "repo", ".", "gatewise repository, for git describe")
	fs.StringVar(&o.gatewiseNote, "gatewise-note", "", "where the gatewise binary comes from, for the report")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: fastcgi -gatewise BIN [flags]\n\nhello.php on one php-fpm pool through nginx (fastcgi_pass) and through gatewise.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := benchkit.ParseFlags(fs, args, stderr); err != nil {
		return nil, err
	}
	switch {
	case o.duration < 2*time.Second || o.duration > 2*time.Minute:
		return nil, benchkit.Usagef("-duration %v: want 2s to 2m", o.duration)
	case o.warmup < 0 || o.warmup > time.Minute:
		return nil, benchkit.Usagef("-warmup %v: want 0 to 1m", o.warmup)
	case o.conns < 1 || o.conns > 10000:
		return nil, benchkit.Usagef("-conns %d: want 1 to 10000", o.conns)
	case o.threads < 1 || o.threads > o.conns:
		return nil, benchkit.Usagef("-threads %d: want 1 to -conns", o.threads)
	case o.children < 1 || o.children > 256:
		return nil, benchkit.Usagef("-children %d: want 1 to 256", o.children)
	}
	return o, nil
}

// contender is a proxy in front of php-fpm.
type contender struct {
	name, bin, file string
	config          func(s setup) string
	argv            func(bin, file string, s setup) []string
	check           func(ctx context.Context, bin, file string, s setup) error
	version         func(ctx context.Context, o *options, bin string) string
}

// nginxWorkers is nginx's worker_processes: one per core, as "auto".
func nginxWorkers() int { return runtime.NumCPU() }

func nginxContender(bin string) *contender {
	args := func(file string, s setup) []string {
		return []string{"-e", filepath.Join(s.dir, "nginx-error.log"), "-c", file, "-p", s.dir,
			"-g", "daemon off; pid " + filepath.Join(s.dir, "nginx.pid") + ";"}
	}
	return &contender{
		name: "nginx", bin: bin, file: "nginx.conf",
		config: func(s setup) string { return nginxConfig(s, nginxWorkers()) },
		argv:   func(bin, file string, s setup) []string { return append([]string{bin}, args(file, s)...) },
		check: func(ctx context.Context, bin, file string, s setup) error {
			return benchkit.CheckCommand(ctx, "fastcgi", "nginx -t", bin, append([]string{"-t", "-q"}, args(file, s)...)...)
		},
		version: func(ctx context.Context, _ *options, bin string) string {
			return benchkit.OrUnknown(benchkit.FirstLine(benchkit.Output(ctx, bin, "-v")))
		},
	}
}

func gatewiseContender(bin string) *contender {
	return &contender{
		name: "gatewise", bin: bin, file: "gatewise.yaml",
		config: gatewiseConfig,
		argv: func(bin, file string, _ setup) []string {
			return []string{bin, "serve", "--config", file, "--log-level", "warn"}
		},
		check: func(ctx context.Context, bin, file string, _ setup) error {
			return benchkit.CheckCommand(ctx, "fastcgi", "gatewise config validate", bin, "config", "validate", file)
		},
		version: func(ctx context.Context, o *options, bin string) string {
			return benchkit.GatewiseVersion(ctx, o.repo, bin, o.gatewiseNote)
		},
	}
}

// selectContenders resolves the -runs list.
func selectContenders(o *options) ([]*contender, error) {
	var cs []*contender
	seen := map[string]bool{}
	for name := range strings.SplitSeq(o.runs, ",") {
		name = strings.ToLower(strings.TrimSpace(name))
		if name == "" || seen[name] {
			continue
		}
		seen[name] = true
		switch name {
		case "nginx":
			bin, err := benchkit.FindBinary(o.nginx, "nginx")
			if err != nil {
				return nil, fmt.Errorf("%w: install it with apt-get install nginx (bench/fastcgi.sh does, as root)", err)
			}
			cs = append(cs, nginxContender(bin))
		case "gatewise":
			if o.gatewise == "" {
				return nil, benchkit.Usagef("-gatewise BIN is required (bench/fastcgi.sh builds it)")
			}
			bin, err := benchkit.FindBinary(o.gatewise, "gatewise")
			if err != nil {
				return nil, err
			}
			cs = append(cs, gatewiseContender(bin))
		default:
			return nil, benchkit.Usagef("-runs: unknown contender %q (want nginx, gatewise)", name)
		}
	}
	if len(cs) == 0 {
		return nil, benchkit.Usagef("-runs: nothing to run")
	}
	return cs, nil
}

// runResult is one contender's run.
type runResult struct {
	Name       string              `json:"name"`
	Err        string              `json:"error,omitempty"`
	ConfigFile string              `json:"config_file,omitempty"`
	Config     string              `json:"config,omitempty"`
	Command    string              `json:"wrk_command,omitempty"`
	Wrk        *benchkit.WrkResult `json:"wrk,omitempty"`
	// ProxyCPUus and FPMCPUus are the CPU time per request of the proxy's
	// processes and of php-fpm's, in microseconds.
	ProxyCPUus float64 `json:"proxy_cpu_us_per_request"`
	FPMCPUus   float64 `json:"php_fpm_cpu_us_per_request"`
}

// run is the whole program; it stops every child it started before it
// returns, whatever happens.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	contenders, err := selectContenders(o)
	if err != nil {
		return err
	}
	fpmBin, err := benchkit.FindBinary(o.fpm, "php-fpm8.2")
	if err != nil {
		return fmt.Errorf("%w: install it with apt-get install php8.2-fpm (bench/fastcgi.sh does, as root)", err)
	}
	wrkBin, err := benchkit.FindBinary(o.wrk, "wrk")
	if err != nil {
		return fmt.Errorf("%w: install it with apt-get install wrk (bench/fastcgi.sh does, as root)", err)
	}
	if o.dir == "" {
		if o.dir, err = os.MkdirTemp("", "gatewise-fastcgi-"); err != nil {
			return fmt.Errorf("work directory: %w", err)
		}
	}
	if o.dir, err = filepath.Abs(o.dir); err != nil {
		return fmt.Errorf("work directory: %w", err)
	}
	s := setup{dir: o.dir, root: filepath.Join(o.dir, "www"), socket: filepath.Join(o.dir, "php-fpm.sock"),
		children: o.children, isRoot: os.Geteuid() == 0}
	for _, d := range []string{o.dir, s.root} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("work directory: %w", err)
		}
	}
	if err := os.WriteFile(filepath.Join(s.root, "hello.php"), []byte(helloPHP), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "fastcgi: work directory %s\n", o.dir)

	fpm, err := startFPM(ctx, fpmBin, s)
	if err != nil {
		return err
	}
	defer fpm.Stop()

	rep := &report{
		Started: time.Now().UTC(), Machine: benchkit.MachineInfo(),
		Duration: o.duration.String(), Warmup: o.warmup.String(),
		Conns: o.conns, Threads: o.threads, Children: o.children, NginxWorkers: nginxWorkers(),
		NginxKeepalive: nginxKeepalive(o.children, nginxWorkers()), Dir: o.dir,
		FPMConfig: fpmConfig(s),
		Versions: map[string]string{
			"php-fpm": benchkit.OrUnknown(benchkit.FirstLine(benchkit.Output(ctx, fpmBin, "-v"))),
			"wrk":     benchkit.OrUnknown(benchkit.FirstLine(benchkit.Output(ctx, wrkBin, "-v"))),
		},
	}
	for _, c := range contenders {
		rep.Versions[c.name] = c.version(ctx, o, c.bin)
	}
	var failed []string
	for _, c := range contenders {
		fmt.Fprintf(stderr, "fastcgi: %s: wrk -c%d for %v after %v of warm-up\n", c.name, o.conns, o.duration, o.warmup)
		res := runContender(ctx, o, s, c, wrkBin, fpm)
		rep.Runs = append(rep.Runs, res)
		if res.Err != "" {
			fmt.Fprintf(stderr, "fastcgi: %s: %s\n", c.name, res.Err)
			failed = append(failed, c.name+": "+res.Err)
		} else {
			fmt.Fprintf(stderr, "fastcgi: %s: %.0f requests/s, p50 %.2f ms, p99 %.2f ms, %.0f µs of proxy CPU per request\n",
				c.name, res.Wrk.RPS, res.Wrk.P50ms, res.Wrk.P99ms, res.ProxyCPUus)
		}
		if ctx.Err() != nil {
			return errors.New("interrupted; every child was stopped")
		}
		if fpm.Exited() {
			return fmt.Errorf("php-fpm exited during the run: %s", fpm.LastLines(3))
		}
	}
	rep.Finished = time.Now().UTC()
	data, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("results: %w", err)
	}
	jsonPath := filepath.Join(o.dir, "results.json")
	if err := os.WriteFile(jsonPath, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("results: %w", err)
	}
	fmt.Fprintln(stdout, rep.table())
	fmt.Fprintf(stdout, "JSON results: %s\n", jsonPath)
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

// startFPM writes php-fpm's config, checks it, starts php-fpm and waits
// for its socket.
func startFPM(ctx context.Context, bin string, s setup) (*benchkit.Child, error) {
	conf := filepath.Join(s.dir, "php-fpm.conf")
	if err := os.WriteFile(conf, []byte(fpmConfig(s)), 0o644); err != nil {
		return nil, err
	}
	args := []string{"--nodaemonize", "-n", "--fpm-config", conf}
	if s.isRoot {
		args = append(args, "-R")
	}
	if err := benchkit.CheckCommand(ctx, "fastcgi", "php-fpm -t", bin, append([]string{"-t"}, args...)...); err != nil {
		return nil, err
	}
	c, err := benchkit.StartChild("php-fpm", append([]string{bin}, args...), filepath.Join(s.dir, "php-fpm.stderr.log"))
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		conn, err := net.Dial("unix", s.socket)
		if err == nil {
			conn.Close()
			return c, nil
		}
		if c.Exited() || time.Now().After(deadline) || ctx.Err() != nil {
			c.Stop()
			return nil, fmt.Errorf("php-fpm does not listen on %s: %v: %s", s.socket, err, c.LastLines(3))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// runContender measures one contender and stops it before returning.
func runContender(ctx context.Context, o *options, s setup, c *contender, wrkBin string, fpm *benchkit.Child) (res *runResult) {
	res = &runResult{Name: c.name}
	fail := func(err error) *runResult {
		res.Err = benchkit.OneLine(err.Error())
		return res
	}
	listen, err := benchkit.FreeAddr()
	if err != nil {
		return fail(err)
	}
	s.listen = listen
	res.Config = c.config(s)
	res.ConfigFile = filepath.Join(s.dir, c.file)
	if err := os.WriteFile(res.ConfigFile, []byte(res.Config), 0o644); err != nil {
		return fail(err)
	}
	if err := c.check(ctx, c.bin, res.ConfigFile, s); err != nil {
		return fail(err)
	}
	proc, err := benchkit.StartChild(c.name, c.argv(c.bin, res.ConfigFile, s), filepath.Join(s.dir, c.name+".stderr.log"))
	if err != nil {
		return fail(err)
	}
	defer proc.Stop()
	if err := benchkit.WaitListening(ctx, proc, listen, 15*time.Second); err != nil {
		return fail(err)
	}
	url := "http://" + listen + "/hello.php"
	if err := sanityGet(ctx, url); err != nil {
		return fail(fmt.Errorf("%s: %w", c.name, err))
	}
	argv := func(d time.Duration) []string {
		return []string{wrkBin, "-t" + strconv.Itoa(o.threads), "-c" + strconv.Itoa(o.conns),
			"-d" + strconv.Itoa(int(d.Round(time.Second)/time.Second)) + "s", "--latency", url}
	}
	if o.warmup >= time.Second {
		if _, err := benchkit.RunTool(ctx, o.warmup+30*time.Second, argv(o.warmup)); err != nil {
			return fail(fmt.Errorf("warm-up: %w", err))
		}
	}
	proxy0, _, err := benchkit.GroupCPU(proc.Pid())
	if err != nil {
		return fail(err)
	}
	fpm0, _, err := benchkit.GroupCPU(fpm.Pid())
	if err != nil {
		return fail(err)
	}
	a := argv(o.duration)
	res.Command = strings.Join(a, " ")
	out, err := benchkit.RunTool(ctx, o.duration+30*time.Second, a)
	_ = os.WriteFile(filepath.Join(s.dir, c.name+".wrk.txt"), []byte(out), 0o644)
	if err != nil {
		return fail(err)
	}
	w, err := benchkit.ParseWrk(out)
	if err != nil {
		return fail(err)
	}
	res.Wrk = &w
	proxy1, _, err := benchkit.GroupCPU(proc.Pid())
	if err != nil {
		return fail(err)
	}
	fpm1, _, err := benchkit.GroupCPU(fpm.Pid())
	if err != nil {
		return fail(err)
	}
	if w.Requests <= 0 {
		return fail(errors.New("wrk: no request was answered"))
	}
	res.ProxyCPUus = float64(proxy1-proxy0) / 1e3 / float64(w.Requests)
	res.FPMCPUus = float64(fpm1-fpm0) / 1e3 / float64(w.Requests)
	if proc.Exited() {
		return fail(fmt.Errorf("%s exited during the run: %s", c.name, proc.LastLines(3)))
	}
	return res
}

// sanityGet checks that url answers 200 "Hello, world".
func sanityGet(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
	if res.StatusCode != 200 || string(body) != "Hello, world\n" {
		return fmt.Errorf("GET %s: got %d %q, want 200 \"Hello, world\"", url, res.StatusCode, body)
	}
	return nil
}
