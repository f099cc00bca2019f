package doctor

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/gatewise/gatewise/internal/cause"
	"github.com/gatewise/gatewise/internal/config"
)

// Status is the verdict of one finding.
type Status string

// The statuses, from the worst.
const (
	// StatusFail is a problem that explains (or will cause) failed
	// requests.
	StatusFail Status = "fail"
	// StatusWarn is a problem worth fixing, or a likely cause that is not
	// itself a failure (a package upgraded just before the errors began).
	StatusWarn Status = "warn"
	// StatusSkip is a check that could not run (no permission, a program
	// not installed, nothing to check); it says why.
	StatusSkip Status = "skip"
	// StatusOK is a check that found nothing wrong.
	StatusOK Status = "ok"
)

// severity orders statuses for ranking: higher is worse.
func (s Status) severity() int {
	switch s {
	case StatusFail:
		return 3
	case StatusWarn:
		return 2
	case StatusSkip:
		return 1
	}
	return 0
}

// Kinds of findings that are not a cause of the taxonomy, used in
// Finding.Cause the way `gatewise logs` labels such events.
const (
	// KindOOMKill is the kernel's OOM killer killing a process.
	KindOOMKill = "oom_kill"
	// KindDependency is a service the application needs (MySQL,
	// Memcached, Redis) down, full or refusing.
	KindDependency = "dependency"
	// KindChange is a package upgrade, a config edit or a plugin change
	// just before the errors began.
	KindChange = "change"
	// KindDisk is a file system short of space or inodes.
	KindDisk = "disk_full"
	// KindFDs is file descriptors near their limit.
	KindFDs = "fd_limit"
	// KindLoad is a load average well above the number of cores.
	KindLoad = "cpu_overload"
)

// Finding is one result of a check.
type Finding struct {
	// Rank is the finding's place in Result.Findings, from 1 (the most
	// likely cause).
	Rank int `json:"rank"`
	// Check names the check: memory, oom, disk, fds, load, upstream, fpm,
	// mysql, memcached, redis, changes, logs.
	Check string `json:"check"`
	// Target is what was checked, when the check has several (an address,
	// a pool's target, a file system). Secrets are redacted.
	Target string `json:"target,omitempty"`
	// Status is the verdict.
	Status Status `json:"status"`
	// Cause is the cause of the taxonomy the finding explains (such as
	// "fpm_pool_exhausted"), or one of the Kind constants, or empty.
	Cause string `json:"cause,omitempty"`
	// Summary is one line saying what was found.
	Summary string `json:"summary"`
	// Evidence are the facts behind the verdict: numbers read, log lines.
	Evidence []string `json:"evidence"`
	// Fix is what the owner should do; empty for an ok finding.
	Fix string `json:"fix,omitempty"`
	// Time is when what the finding reports happened (an OOM kill, an
	// upgrade, the first error), for the timeline; zero when it is a
	// state seen now.
	Time time.Time `json:"time,omitzero"`

	// weight orders findings of the same status: the most likely cause of
	// the 502s has the highest.
	weight int
}

// Likelihood weights of findings, highest first: what most often explains a
// wave of 502s comes first among findings of the same status.
const (
	weightChain      = 100 // a chain in the logs: trigger then failures
	weightOOM        = 95
	weightChange     = 90 // a change just before the errors began
	weightFPM        = 85
	weightUpstream   = 80
	weightDependency = 75
	weightMemory     = 70
	weightDisk       = 65
	weightLogs       = 50
	weightFDs        = 45
	weightLoad       = 40
	weightInfo       = 10
)

// Options configure Run. The zero value checks the host it runs on, with
// no config, no dependency and the default logs.
type Options struct {
	// Root is the directory under which /proc, /sys, /etc and /var/log are
	// read, so tests can point the checks at a fixture tree. Default "/".
	Root string
	// Now is the time the run is taken to happen. Default time.Now().
	Now time.Time
	// Since starts the window in which OOM kills, log events and changes
	// count. Default two hours before Now.
	Since time.Time
	// Config is the gateway's config (defaults applied): its pools'
	// targets are checked. Default nil: no upstream is checked.
	Config *config.Config
	// ConfigError is the error validating the config gave, when it is
	// invalid: it becomes a failed finding (proxy_configuration_error),
	// and Config, parsed with defaults, is still checked. Default nil.
	ConfigError error
	// ConfigFile is the config's path, whose modification time counts as
	// a change. Default Config.File.
	ConfigFile string
	// Logs are the log files read through internal/logs. Default: the
	// usual ones under Root that exist (nginx's and Apache's error logs,
	// PHP-FPM's, MySQL's).
	Logs []string
	// MySQL are MySQL/MariaDB servers: "host:port", a socket path,
	// mysql://user:pass@host:port/db, or the driver's
	// user:pass@tcp(host:port)/db. Default none.
	MySQL []string
	// Memcached are Memcached servers: "host:port" or a socket path.
	// Default none.
	Memcached []string
	// Redis are Redis servers: "host:port", a socket path, or
	// redis://[:password@]host:port. Default none.
	Redis []string
	// FPM are PHP-FPM pools: "host:port", a socket path, fastcgi://host:port
	// or fastcgi+unix:///path. The config's FastCGI targets are added.
	// Default none.
	FPM []string
	// FPMStatusPath is the pools' pm.status_path for the --fpm addresses.
	// Default "/fpm-status".
	FPMStatusPath string
	// Disks are the directories whose file systems are checked for space
	// and inodes, besides the usual ones (/, /var/log, /var/lib/mysql,
	// /tmp, /run, ...) and those of the logs and sockets named. Default
	// none.
	Disks []string
	// CheckTimeout bounds each check. Default DefaultCheckTimeout (4s).
	CheckTimeout time.Duration
	// Statfs reads a file system's size and free space and inodes. Default
	// the statfs system call.
	Statfs func(path string) (DiskUsage, error)
	// Journal runs `journalctl -k` for the OOM check. Default: run it when
	// Root is "/" and journalctl is installed.
	Journal func(ctx context.Context, since time.Time) ([]byte, error)
	// Table is the cause taxonomy. Default cause.NewTable().
	Table *cause.Table
	// Progress, when set, is called as each check starts and ends (from
	// the goroutine running it; calls are serialised).
	Progress func(Progress)
	// Parallel is how many checks run at once. Default 4.
	Parallel int
}

// Progress is a check starting (Done false) or ending.
type Progress struct {
	// Check and Target name the check.
	Check, Target string
	// Done is false when the check starts.
	Done bool
	// Findings are its results, when Done.
	Findings []Finding
	// Took is how long it ran, when Done.
	Took time.Duration
	// Index and Total count the checks.
	Index, Total int
}

// DefaultCheckTimeout bounds each check when Options.CheckTimeout is zero.
const DefaultCheckTimeout = 4 * time.Second

// Result is what Run found.
type Result struct {
	// Findings are ranked: failures, then warnings, then skipped checks,
	// then ok; among the same status, the most likely cause first.
	Findings []Finding `json:"findings"`
	// Checks lists every check run, in the order they were listed.
	Checks []CheckRun `json:"checks"`
	// Facts are the system facts for a support report, in order.
	Facts []Fact `json:"facts"`
	// Timeline holds the dated events found (changes, OOM kills, the first
	// and last errors), in time order.
	Timeline []TimelineEntry `json:"timeline"`
	// ErrorsBegan is the time of the first failure in the logs' window;
	// zero when the logs show none.
	ErrorsBegan time.Time `json:"errors_began,omitzero"`
	// Since and Now bound the window.
	Since time.Time `json:"since"`
	Now   time.Time `json:"now"`

	table *cause.Table
}

// CheckRun is one check that ran.
type CheckRun struct {
	// Check and Target name it.
	Check  string `json:"check"`
	Target string `json:"target,omitempty"`
	// Status is its worst finding's.
	Status Status `json:"status"`
	// Took is how long it ran.
	Took time.Duration `json:"took_ns"`
}

// Fact is one system fact (hostname, kernel, memory, ...).
type Fact struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// TimelineEntry is one dated event.
type TimelineEntry struct {
	Time time.Time `json:"time"`
	What string    `json:"what"`
}

// Worst returns the worst status among the findings (StatusOK when there
// are none; a skipped check does not count).
func (r *Result) Worst() Status {
	w := StatusOK
	for _, f := range r.Findings {
		if f.Status == StatusFail {
			return StatusFail
		}
		if f.Status == StatusWarn {
			w = StatusWarn
		}
	}
	return w
}

// Counts returns how many findings have each status.
func (r *Result) Counts() map[Status]int {
	m := map[Status]int{}
	for _, f := range r.Findings {
		m[f.Status]++
	}
	return m
}

// check is one check to run.
type check struct {
	name, target string
	run          func(ctx context.Context) []Finding
}

// env is what the checks share: the options with defaults applied.
type env struct {
	opts  Options
	sys   sysfs
	table *cause.Table
}

// Run runs every check and returns the findings ranked. It never fails:
// a check that cannot run gives a skip finding saying why. It returns when
// every check has ended, each within Options.CheckTimeout (plus a second
// for a check that does not heed its context, which is then reported as
// hung).
func Run(ctx context.Context, opts Options) *Result {
	e := newEnv(opts)
	opts = e.opts
	res := &Result{Since: opts.Since, Now: opts.Now, table: e.table}
	// The logs come first: the changes check sets its findings against the
	// time the errors began.
	lc := &logsCheck{e: e}
	first := []check{{name: "logs", run: lc.run}}
	rest := e.checks()
	total := len(first) + len(rest) + 1
	var mu sync.Mutex
	index := 0
	progress := func(p Progress) {
		if opts.Progress == nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if p.Done {
			index++
		}
		p.Index, p.Total = index, total
		opts.Progress(p)
	}
	runs := e.runAll(ctx, first, progress)
	res.ErrorsBegan = lc.errorsBegan()
	runs = append(runs, e.runAll(ctx, rest, progress)...)
	chg := []check{{name: "changes", run: func(ctx context.Context) []Finding { return e.changes(ctx, res.ErrorsBegan) }}}
	runs = append(runs, e.runAll(ctx, chg, progress)...)

	for _, r := range runs {
		res.Findings = append(res.Findings, r.findings...)
		res.Checks = append(res.Checks, CheckRun{Check: r.c.name, Target: Redact(r.c.target), Status: worst(r.findings), Took: r.took})
	}
	for i := range res.Findings {
		redactFinding(&res.Findings[i])
	}
	rank(res.Findings)
	res.Facts = e.facts()
	res.Timeline = timeline(res)
	return res
}

// newEnv applies the defaults of opts.
func newEnv(opts Options) *env {
	if opts.Root == "" {
		opts.Root = "/"
	}
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	if opts.Since.IsZero() {
		opts.Since = opts.Now.Add(-2 * time.Hour)
	}
	if opts.CheckTimeout <= 0 {
		opts.CheckTimeout = DefaultCheckTimeout
	}
	if opts.FPMStatusPath == "" {
		opts.FPMStatusPath = "/fpm-status"
	}
	if opts.Parallel <= 0 {
		opts.Parallel = 4
	}
	if opts.ConfigFile == "" && opts.Config != nil {
		opts.ConfigFile = opts.Config.File
	}
	if opts.Statfs == nil {
		opts.Statfs = statfs
	}
	if opts.Journal == nil && opts.Root == "/" {
		opts.Journal = journalctl
	}
	e := &env{opts: opts, sys: sysfs{root: opts.Root}, table: opts.Table}
	if e.table == nil {
		e.table = cause.NewTable()
	}
	return e
}

// checks returns every check after the logs, in the order they are listed.
func (e *env) checks() []check {
	o := e.opts
	cs := []check{}
	if o.ConfigError != nil {
		cs = append(cs, check{name: "config", target: o.ConfigFile, run: e.configProblems})
	}
	cs = append(cs, []check{
		{name: "memory", run: e.memory},
		{name: "oom", run: e.oom},
		{name: "disk", run: e.disks},
		{name: "fds", run: e.fds},
		{name: "load", run: e.load},
	}...)
	fpms := map[string]bool{}
	if o.Config != nil {
		for _, pc := range e.upstreamChecks() {
			cs = append(cs, pc)
		}
		for _, a := range configFPM(o.Config) {
			fpms[a.addr] = true
			cs = append(cs, check{name: "fpm", target: a.addr, run: func(ctx context.Context) []Finding { return e.fpm(ctx, a.addr, a.status) }})
		}
	}
	for _, a := range o.FPM {
		addr := fpmAddress(a)
		if fpms[addr] {
			continue
		}
		fpms[addr] = true
		cs = append(cs, check{name: "fpm", target: addr, run: func(ctx context.Context) []Finding { return e.fpm(ctx, addr, o.FPMStatusPath) }})
	}
	for _, d := range dedupe(o.MySQL) {
		cs = append(cs, check{name: "mysql", target: Redact(d), run: func(ctx context.Context) []Finding { return e.mysql(ctx, d) }})
	}
	for _, a := range dedupe(o.Memcached) {
		cs = append(cs, check{name: "memcached", target: a, run: func(ctx context.Context) []Finding { return e.memcached(ctx, a) }})
	}
	for _, a := range dedupe(o.Redis) {
		cs = append(cs, check{name: "redis", target: Redact(a), run: func(ctx context.Context) []Finding { return e.redis(ctx, a) }})
	}
	return cs
}

// dedupe returns list without repeats, in order.
func dedupe(list []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range list {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

type runResult struct {
	c        check
	findings []Finding
	took     time.Duration
}

// runAll runs the checks, Parallel at a time, each under CheckTimeout, and
// returns their results in the checks' order.
func (e *env) runAll(ctx context.Context, cs []check, progress func(Progress)) []runResult {
	out := make([]runResult, len(cs))
	sem := make(chan struct{}, e.opts.Parallel)
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			progress(Progress{Check: c.name, Target: Redact(c.target)})
			start := time.Now()
			fs := e.runOne(ctx, c)
			for j := range fs {
				if fs[j].Check == "" {
					fs[j].Check = c.name
				}
				if fs[j].Target == "" {
					fs[j].Target = c.target
				}
				redactFinding(&fs[j])
			}
			out[i] = runResult{c: c, findings: fs, took: time.Since(start)}
			progress(Progress{Check: c.name, Target: Redact(c.target), Done: true, Findings: fs, Took: out[i].took})
		}()
	}
	wg.Wait()
	return out
}

// runOne runs one check under the timeout; a panic or a check that
// outlives its context by a second becomes a fail finding.
func (e *env) runOne(ctx context.Context, c check) []Finding {
	ctx, cancel := context.WithTimeout(ctx, e.opts.CheckTimeout)
	defer cancel()
	done := make(chan []Finding, 1)
	go func() {
		defer func() {
			if v := recover(); v != nil {
				done <- []Finding{{Status: StatusSkip, Summary: fmt.Sprintf("the check failed unexpectedly: %v", v), Evidence: []string{}, Fix: "Please report this as a bug of gatewise doctor.", weight: weightInfo}}
			}
		}()
		done <- c.run(ctx)
	}()
	select {
	case fs := <-done:
		return fs
	case <-ctx.Done():
	}
	select {
	case fs := <-done:
		return fs
	case <-time.After(time.Second):
		return []Finding{{Status: StatusFail, Summary: fmt.Sprintf("did not answer within %s", e.opts.CheckTimeout), Evidence: []string{}, Fix: "The check hung past its time limit: the service it talks to accepts connections but does not answer.", weight: weightDependency}}
	}
}

// worst returns the worst status of fs.
func worst(fs []Finding) Status {
	w := StatusOK
	for _, f := range fs {
		if f.Status.severity() > w.severity() {
			w = f.Status
		}
	}
	return w
}

// rank sorts findings: worst status first, then the highest weight, then
// the earliest, then by check and target, and numbers them.
func rank(fs []Finding) {
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := fs[i], fs[j]
		if a.Status.severity() != b.Status.severity() {
			return a.Status.severity() > b.Status.severity()
		}
		if a.weight != b.weight {
			return a.weight > b.weight
		}
		if !a.Time.Equal(b.Time) {
			if a.Time.IsZero() || b.Time.IsZero() {
				return !a.Time.IsZero()
			}
			return a.Time.Before(b.Time)
		}
		if a.Check != b.Check {
			return a.Check < b.Check
		}
		return a.Target < b.Target
	})
	for i := range fs {
		fs[i].Rank = i + 1
		if fs[i].Evidence == nil {
			fs[i].Evidence = []string{}
		}
	}
}

// timeline collects the dated findings and the first error.
func timeline(r *Result) []TimelineEntry {
	var tl []TimelineEntry
	for _, f := range r.Findings {
		if f.Time.IsZero() || f.Status == StatusOK {
			continue
		}
		tl = append(tl, TimelineEntry{Time: f.Time, What: f.Check + ": " + f.Summary})
	}
	if !r.ErrorsBegan.IsZero() {
		tl = append(tl, TimelineEntry{Time: r.ErrorsBegan, What: "errors began (first failure in the logs)"})
	}
	sort.SliceStable(tl, func(i, j int) bool { return tl[i].Time.Before(tl[j].Time) })
	return tl
}

// fail, warn, ok and skip build findings.
func newFinding(st Status, weight int, summary string, evidence []string, fix string) Finding {
	if evidence == nil {
		evidence = []string{}
	}
	if st == StatusOK {
		fix = ""
	}
	return Finding{Status: st, Summary: summary, Evidence: evidence, Fix: fix, weight: weight}
}

func skip(summary string, evidence ...string) Finding {
	return newFinding(StatusSkip, weightInfo, summary, evidence, "")
}

func ok(summary string, evidence ...string) Finding {
	return newFinding(StatusOK, weightInfo, summary, evidence, "")
}

// configProblems reports an invalid config.
func (e *env) configProblems(context.Context) []Finding {
	var ev []string
	var errs *config.Errors
	if errors.As(e.opts.ConfigError, &errs) {
		for i, fe := range errs.List {
			if i == 20 {
				ev = append(ev, fmt.Sprintf("... and %d more", len(errs.List)-i))
				break
			}
			ev = append(ev, fe.Error())
		}
	} else {
		ev = append(ev, e.opts.ConfigError.Error())
	}
	c := e.table.Get(cause.ProxyConfigurationError)
	f := newFinding(StatusFail, weightUpstream, "the config does not validate: gatewise would refuse to load it", ev, "Fix each problem listed (gatewise config validate FILE shows them with their lines). "+c.Owner)
	f.Cause = string(cause.ProxyConfigurationError)
	return []Finding{f}
}
