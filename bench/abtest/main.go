// Command abtest measures two gatewise builds against each other, side by
// side and at the same time, so that a 2-5% difference shows through the
// drift of a shared machine.
//
// On a shared 2-core VM the requests/s of one proxy move by a third from
// minute to minute, so running build A and then build B cannot resolve a
// small difference. abtest starts both builds at once, in front of one
// shared upstream ("compare upstream", from bench/compare), and drives each
// with its own wrk at the same time: whatever slows the machine slows both,
// and the ratio B/A of their requests/s repeats from round to round.
//
// Each round starts a fresh pair of gateways on free loopback ports, with
// the start order (and the order the two wrk are launched in) alternating:
// A first in odd rounds, B first in even ones, since the first one started
// measures about 1.5% high. After a sanity GET to each and a warm-up of
// both, the two wrk run at once; the CPU time of each gateway over the
// measured window gives its CPU per request. Both gateways are stopped
// before the next round. At the end it prints, per build, the median
// requests/s, p99 and CPU per request, and the ratio B/A of every round
// with its median and range. bench/ab.sh builds two git revisions (by
// default HEAD and the working tree) and runs it:
//
//	bash bench/ab.sh                          # HEAD against the working tree
//	bash bench/ab.sh --a HEAD~1 --b HEAD -rounds 7
//	abtest -a OLD_BIN -b NEW_BIN -compare COMPARE_BIN
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/gatewise/gatewise/bench/internal/benchkit"
)

func main() {
	os.Exit(benchkit.Main("abtest", run))
}

// The values of -access-log.
const (
	accessLogOff  = "off"
	accessLogFile = "file"
)

// options are the command-line flags.
type options struct {
	a, b      string // the two gatewise binaries
	compare   string // bench/compare's binary, for the upstream
	repo      string // where bench/compare is built from when compare is empty
	wrk       string
	rounds    int
	duration  time.Duration
	warmup    time.Duration
	conns     int
	threads   int
	path      string
	accessLog string
	jsonPath  string
	keep      bool
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	set := flag.NewFlagSet("abtest", flag.ContinueOnError)
	set.SetOutput(stderr)
	set.StringVar(&o.a, "a", "", "gatewise binary A, the baseline (required)")
	set.StringVar(&o.b, "b", "", "gatewise binary B, the candidate (required)")
	set.StringVar(&o.compare, "compare", "", "bench/compare binary, run as the upstream (default: built from -repo with go build)")
	set.StringVar(&o.repo, "repo", ".", "gatewise repository to build bench/compare from when -compare is not given")
	set.StringVar(&o.wrk, "wrk", "", "wrk binary (default: from PATH)")
	set.IntVar(&o.rounds, "rounds", 5, "rounds, each with a fresh pair of gateways; the start order alternates")
	set.DurationVar(&o.duration, "duration", 10*time.Second, "measured load per round (whole seconds)")
	set.DurationVar(&o.warmup, "warmup", 2*time.Second, "warm-up of both gateways at once before each measurement, not measured (whole seconds)")
	set.IntVar(&o.conns, "connections", 25, "wrk connections per gateway")
	set.IntVar(&o.threads, "threads", 1, "threads per wrk")
	set.StringVar(&o.path, "path", "/small", "path to GET: /small (13 bytes) or /1mb, as the compare upstream serves")
	set.StringVar(&o.accessLog, "access-log", accessLogOff, "the gateways' access log: off, or file (each its own file in the work directory)")
	set.StringVar(&o.jsonPath, "json", "", "write the results to this JSON file too")
	set.BoolVar(&o.keep, "keep", false, "keep the work directory (configs, logs, wrk outputs)")
	set.Usage = func() {
		fmt.Fprintln(stderr, "Usage: abtest -a BIN -b BIN [flags]\n\nRuns two gatewise builds side by side, at the same time, and prints the ratio B/A of their requests/s.\n\nFlags:")
		set.PrintDefaults()
	}
	if err := benchkit.ParseFlags(set, args, stderr); err != nil {
		return nil, err
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	return o, nil
}

// flagError is a bad value of one flag.
type flagError struct {
	Flag string // the flag's name with its dash: "-rounds"
	Err  error
}

func (e *flagError) Error() string { return e.Flag + " " + e.Err.Error() }
func (e *flagError) Unwrap() error { return e.Err }

// flagErr returns a *flagError for flag with a formatted message.
func flagErr(flag, format string, args ...any) error {
	return &flagError{Flag: flag, Err: fmt.Errorf(format, args...)}
}

// validate checks the flags' values (not yet the files they name); every
// failure is a *flagError.
func (o *options) validate() error {
	switch {
	case o.a == "":
		return flagErr("-a", "BIN is required: the baseline gatewise binary (bench/ab.sh builds it from a git revision)")
	case o.b == "":
		return flagErr("-b", "BIN is required: the candidate gatewise binary (bench/ab.sh builds it from a git revision)")
	case o.rounds < 1 || o.rounds > 50:
		return flagErr("-rounds", "%d: want 1 to 50", o.rounds)
	case o.duration < time.Second || o.duration > 10*time.Minute || o.duration%time.Second != 0:
		return flagErr("-duration", "%v: want whole seconds from 1s to 10m", o.duration)
	case o.warmup < 0 || o.warmup > time.Minute || o.warmup%time.Second != 0:
		return flagErr("-warmup", "%v: want whole seconds from 0 to 1m", o.warmup)
	case o.threads < 1 || o.threads > 64:
		return flagErr("-threads", "%d: want 1 to 64", o.threads)
	case o.conns < o.threads || o.conns > 10000:
		return flagErr("-connections", "%d: want -threads (%d) to 10000", o.conns, o.threads)
	case !strings.HasPrefix(o.path, "/") || strings.ContainsFunc(o.path, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		return flagErr("-path", "%q: want an absolute path without spaces, such as /small", o.path)
	case o.accessLog != accessLogOff && o.accessLog != accessLogFile:
		return flagErr("-access-log", "%q: want off or file", o.accessLog)
	}
	if o.jsonPath != "" {
		if fi, err := os.Stat(filepath.Dir(o.jsonPath)); err != nil || !fi.IsDir() {
			return flagErr("-json", "%s: its directory does not exist", o.jsonPath)
		}
	}
	return nil
}

// build is one of the two gatewise builds.
type build struct {
	Name    string `json:"name"` // "A" or "B"
	Bin     string `json:"binary"`
	Version string `json:"version"`
}

// findBuild resolves the binary of -a or -b (name "A" or "B"); a bad one
// is a *flagError.
func findBuild(ctx context.Context, name, given string) (build, error) {
	flagName := "-" + strings.ToLower(name)
	fi, err := os.Stat(given)
	switch {
	case err == nil && fi.IsDir():
		return build{}, flagErr(flagName, "%s: a directory, want a gatewise binary", given)
	case errors.Is(err, fs.ErrNotExist) && strings.ContainsRune(given, '/'):
		return build{}, flagErr(flagName, "%s: no such file", given)
	case err != nil && strings.ContainsRune(given, '/'):
		return build{}, &flagError{Flag: flagName, Err: err}
	}
	bin, err := benchkit.FindBinary(given, "gatewise")
	if err != nil {
		return build{}, flagErr(flagName, "%s: not an executable file", given)
	}
	return build{Name: name, Bin: bin, Version: benchkit.OrUnknown(benchkit.FirstLine(benchkit.Output(ctx, bin, "version")))}, nil
}

// report is the whole run, as -json writes it.
type report struct {
	Started  time.Time        `json:"started"`
	Finished time.Time        `json:"finished"`
	Machine  benchkit.Machine `json:"machine"`
	Settings settings         `json:"settings"`
	A        build            `json:"a"`
	B        build            `json:"b"`
	Wrk      string           `json:"wrk_version"`
	Upstream procRef          `json:"upstream"`
	Rounds   []*roundResult   `json:"rounds"`
	Summary  summary          `json:"summary"`
}

// settings are the load's parameters, for the report.
type settings struct {
	Rounds      int    `json:"rounds"`
	Duration    string `json:"duration"`
	Warmup      string `json:"warmup"`
	Connections int    `json:"connections_per_gateway"`
	Threads     int    `json:"threads_per_wrk"`
	Path        string `json:"path"`
	AccessLog   string `json:"access_log"`
}

// procRef is a child process: its process group leads, and its address.
type procRef struct {
	Pgid int    `json:"pgid"`
	Addr string `json:"address"`
}

// run is the whole program; it stops every child it started before it
// returns, whatever happens.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	a, err := findBuild(ctx, "A", o.a)
	if err != nil {
		return err
	}
	b, err := findBuild(ctx, "B", o.b)
	if err != nil {
		return err
	}
	wrk, err := benchkit.FindBinary(o.wrk, "wrk")
	if err != nil {
		return &flagError{Flag: "-wrk", Err: fmt.Errorf("%w: install it with apt-get install wrk (bench/ab.sh does, as root)", err)}
	}
	dir, err := os.MkdirTemp("", "gatewise-abtest-")
	if err != nil {
		return fmt.Errorf("work directory: %w", err)
	}
	if o.keep {
		fmt.Fprintf(stderr, "abtest: work directory %s (kept)\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	compare := o.compare
	if compare == "" {
		if compare, err = buildCompare(ctx, o.repo, dir, stderr); err != nil {
			return err
		}
	} else if compare, err = benchkit.FindBinary(compare, "compare"); err != nil {
		return flagErr("-compare", "%s: not an executable file", o.compare)
	}
	if _, err := raiseNofile(4*o.conns + 1024); err != nil {
		return err
	}

	rep := &report{
		Started: time.Now().UTC(), Machine: benchkit.MachineInfo(), A: a, B: b,
		Wrk: benchkit.OrUnknown(strings.TrimSuffix(benchkit.FirstLine(benchkit.Output(ctx, wrk, "-v")), " Copyright (C) 2012 Will Glozer")),
		Settings: settings{Rounds: o.rounds, Duration: o.duration.String(), Warmup: o.warmup.String(),
			Connections: o.conns, Threads: o.threads, Path: o.path, AccessLog: o.accessLog},
	}
	r := &runner{o: o, dir: dir, wrk: wrk, stderr: stderr, start: time.Now()}

	up, upAddr, err := r.startUpstream(ctx, compare)
	if up != nil {
		defer up.Stop()
	}
	if err != nil {
		return err
	}
	rep.Upstream = procRef{Pgid: up.Pid(), Addr: upAddr}
	r.progress("A %s (%s)", a.Bin, a.Version)
	r.progress("B %s (%s)", b.Bin, b.Version)
	r.progress("%d rounds: %v warm-up, then %v of wrk -t%d -c%d on each gateway at once, GET %s, access log %s",
		o.rounds, o.warmup, o.duration, o.threads, o.conns, o.path, o.accessLog)
	for i := 1; i <= o.rounds; i++ {
		res, err := r.round(ctx, i, a, b, upAddr)
		if ctx.Err() != nil {
			return errors.New("interrupted; every process was stopped")
		}
		if err != nil {
			return fmt.Errorf("round %d: %w", i, err)
		}
		rep.Rounds = append(rep.Rounds, res)
		r.progress("%s", res.line(o.rounds))
		if up.Exited() {
			return fmt.Errorf("the upstream exited during round %d (%v): %s", i, up.WaitErr(), up.LastLines(3))
		}
	}
	rep.Finished = time.Now().UTC()
	rep.Summary = summarize(rep.Rounds)
	fmt.Fprint(stdout, rep.text())
	if o.jsonPath != "" {
		data, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return fmt.Errorf("results: %w", err)
		}
		if err := os.WriteFile(o.jsonPath, append(data, '\n'), 0o644); err != nil {
			return fmt.Errorf("results: %w", err)
		}
		fmt.Fprintf(stdout, "JSON results: %s\n", o.jsonPath)
	}
	if !finite(rep.Summary.MedianRatio) {
		return errors.New("no ratio could be computed: build A served no request")
	}
	return nil
}

// buildCompare builds bench/compare from repo into dir.
func buildCompare(ctx context.Context, repo, dir string, stderr io.Writer) (string, error) {
	if _, err := os.Stat(filepath.Join(repo, "bench", "compare")); err != nil {
		abs, _ := filepath.Abs(repo)
		return "", flagErr("-repo", "%s: no bench/compare in it; pass -compare BIN, or the repository with -repo", abs)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", errors.New("go is not on PATH to build bench/compare: pass -compare BIN (bench/ab.sh builds it)")
	}
	out := filepath.Join(dir, "compare")
	fmt.Fprintf(stderr, "abtest: go build ./bench/compare\n")
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", out, "./bench/compare")
	cmd.Dir = repo
	if text, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building bench/compare: %w: %s", err, benchkit.LastLine(string(text)))
	}
	return out, nil
}

// raiseNofile raises this process's open-files limit, which the gateways
// inherit, to want, and fails if it stays below.
func raiseNofile(want int) (uint64, error) {
	cur, err := benchkit.RaiseNofile(uint64(want))
	if err == nil && cur < uint64(want) {
		err = fmt.Errorf("open-files limit %d is too low for -connections: raise it (ulimit -n %d) or lower -connections", cur, want)
	}
	return cur, err
}

// finite reports whether v is a number other than an infinity.
func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
