package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gatewise/gatewise/internal/config"
	"github.com/gatewise/gatewise/internal/doctor"
	"github.com/gatewise/gatewise/internal/logs"
)

// doctorUsage is the help of `gatewise doctor`.
const doctorUsage = `Usage: gatewise doctor [--config gatewise.yaml] [--logs FILE...] [--since 2h]
                       [--mysql DSN] [--memcached ADDR] [--redis ADDR] [--fpm ADDR]
                       [--report FILE] [--json]

Runs the checklist a site owner is given after a 502, and ranks what it finds,
most likely cause first, each with its evidence and fix:

  memory     MemAvailable as free -m reads it, swap, the largest processes,
             PHP-FPM's memory per worker × pm.max_children
  oom        OOM kills in the window (/dev/kmsg, journalctl -k, kern.log,
             /proc/vmstat, cgroup memory.events), naming the victim
  disk, fds, load
             space and inodes where logs, caches and sockets live; file
             descriptors against their limits; load against the cores
  upstream   every target of the config: DNS, connect, TLS, a request and its
             latency (FastCGI targets too)
  fpm        PHP-FPM's status page (--fpm, or pools with fastcgi.status_path)
  mysql, memcached, redis
             handshake, saturation (max_connections, -c, maxclients), memory
  changes    package upgrades (dpkg.log, apt history), the config file and
             WordPress plugins changed, set against when the errors began
  logs       the logs, read as 'gatewise logs' reads them

Exit code: 0 when every check is ok, 1 on a warning (or when a named file
cannot be read), 2 on a failure (or a bad command line). Each repeatable
flag may be given several times.

Flags:
`

// doctorFlags are the flags of `gatewise doctor`.
type doctorFlags struct {
	configFile string
	logs       multiFlag
	since      string
	mysql      multiFlag
	memcached  multiFlag
	redis      multiFlag
	fpm        multiFlag
	fpmStatus  string
	disks      multiFlag
	report     string
	json       bool
	timeout    time.Duration
	tried      multiFlag
	problem    string
}

// exitCode is an error that asks Run for a given exit code without
// printing anything more (the command has printed its result).
type exitCode int

func (c exitCode) Error() string { return fmt.Sprintf("exit code %d", int(c)) }

// runDoctor runs `gatewise doctor`.
func runDoctor(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return doctorCommand(ctx, args, doctor.Options{}, stdout, stderr)
}

// doctorCommand is runDoctor with base options (Root, Now, Statfs for
// tests) that the flags complete.
func doctorCommand(ctx context.Context, args []string, base doctor.Options, stdout, stderr io.Writer) error {
	var f doctorFlags
	fs := newFlagSet("doctor", stderr)
	fs.StringVar(&f.configFile, "config", "", "the gateway's config file: its pools' targets are checked")
	fs.Var(&f.logs, "logs", "a log file to read (nginx, Apache, PHP-FPM, kernel, MySQL, ...; repeat; default: the usual ones under /var/log that exist)")
	fs.StringVar(&f.since, "since", "2h", "the window for OOM kills, log events and changes: a duration before now (2h, 30m) or a time (RFC 3339, \"2006-01-02 15:04\")")
	fs.Var(&f.mysql, "mysql", "a MySQL/MariaDB server: host:port, a socket path, mysql://user:pass@host:port/db or user:pass@tcp(host:port)/db (repeat)")
	fs.Var(&f.memcached, "memcached", "a Memcached server: host:port or a socket path (repeat)")
	fs.Var(&f.redis, "redis", "a Redis server: host:port, a socket path or redis://:pass@host:port (repeat)")
	fs.Var(&f.fpm, "fpm", "a PHP-FPM pool: host:port, a socket path, fastcgi://host:port or fastcgi+unix:///path (repeat)")
	fs.StringVar(&f.fpmStatus, "fpm-status", "/fpm-status", "the --fpm pools' pm.status_path")
	fs.Var(&f.disks, "disk", "a directory whose file system to check besides the usual ones (repeat)")
	fs.StringVar(&f.report, "report", "", "write a Markdown support report to this file (secrets redacted)")
	fs.BoolVar(&f.json, "json", false, `print {"findings":[{"check","status","cause","evidence","fix", ...}], ...} instead of text`)
	fs.DurationVar(&f.timeout, "timeout", doctor.DefaultCheckTimeout, "the time limit of each check")
	fs.Var(&f.tried, "tried", "something already tried, for the report (repeat)")
	fs.StringVar(&f.problem, "problem", "", "what visitors see, for the report (default: \"Visitors see 502 Bad Gateway errors.\")")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), doctorUsage)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("unexpected argument %q: doctor takes only flags (--logs FILE for a log)", fs.Arg(0))
	}
	if f.timeout <= 0 || f.timeout > 5*time.Minute {
		return usageError("--timeout: want a duration between 0 and 5m, got %s", f.timeout)
	}
	if !strings.HasPrefix(f.fpmStatus, "/") {
		return usageError("--fpm-status: %q must start with /", f.fpmStatus)
	}
	for _, list := range []struct {
		name string
		vals []string
	}{{"mysql", f.mysql}, {"memcached", f.memcached}, {"redis", f.redis}, {"fpm", f.fpm}, {"logs", f.logs}, {"disk", f.disks}} {
		for _, v := range list.vals {
			if strings.TrimSpace(v) == "" {
				return usageError("--%s: empty value", list.name)
			}
		}
	}
	opts := base
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
		opts.Now = now
	}
	var err error
	if opts.Since, err = parseWhen(f.since, now); err != nil {
		return usageError("--since: %v", err)
	}
	if !opts.Since.Before(now) {
		return usageError("--since %s is not in the past", f.since)
	}
	opts.MySQL, opts.Memcached, opts.Redis, opts.FPM = f.mysql, f.memcached, f.redis, f.fpm
	opts.FPMStatusPath, opts.CheckTimeout, opts.Disks = f.fpmStatus, f.timeout, f.disks

	// Every named file is opened before anything runs: one line per file
	// that cannot be read.
	failed := false
	for _, name := range f.logs {
		file, _, err := logs.OpenFile(name)
		if err != nil {
			fmt.Fprintf(stderr, "gatewise doctor: %s\n", oneLine(err.Error()))
			failed = true
			continue
		}
		file.Close()
	}
	opts.Logs = f.logs
	if f.configFile != "" {
		cfg, cerr := loadDoctorConfig(f.configFile)
		switch {
		case cerr == nil:
			opts.Config = cfg
		case errors.Is(cerr, iofs.ErrNotExist), errors.Is(cerr, iofs.ErrPermission), !errors.As(cerr, new(*config.Errors)):
			fmt.Fprintf(stderr, "gatewise doctor: %s\n", oneLine(cerr.Error()))
			failed = true
		default:
			opts.Config, opts.ConfigError = cfg, cerr
		}
		opts.ConfigFile = f.configFile
		if cfg := opts.Config; cfg != nil {
			// The config's dependencies, then the flags'.
			d := cfg.Dependencies
			opts.MySQL = append(slices.Clone(d.MySQL), opts.MySQL...)
			opts.Memcached = append(slices.Clone(d.Memcached), opts.Memcached...)
			opts.Redis = append(slices.Clone(d.Redis), opts.Redis...)
			opts.FPM = append(slices.Clone(d.FPM), opts.FPM...)
		}
	}
	var report *os.File
	if f.report != "" && !failed {
		if report, err = os.Create(f.report); err != nil {
			fmt.Fprintf(stderr, "gatewise doctor: cannot write the report: %s\n", oneLine(err.Error()))
			failed = true
		} else {
			defer report.Close()
		}
	}
	if failed {
		return errSilentFailure
	}

	opts.Progress = progressPrinter(stderr, isTerminal(stderr), f.json)
	res := doctor.Run(ctx, opts)
	if opts.Progress != nil && isTerminal(stderr) {
		fmt.Fprint(stderr, "\r\033[K")
	}
	if f.json {
		if err := res.WriteJSON(stdout); err != nil {
			return err
		}
	} else {
		if err := res.WriteText(stdout); err != nil {
			return err
		}
	}
	if report != nil {
		if err := res.WriteReport(report, doctor.ReportInput{Problem: f.problem, Tried: f.tried, Version: version()}); err != nil {
			return fmt.Errorf("writing the report %s: %w", f.report, err)
		}
		if err := report.Close(); err != nil {
			return fmt.Errorf("writing the report %s: %w", f.report, err)
		}
		if !f.json {
			fmt.Fprintf(stdout, "Support report written to %s.\n", f.report)
		}
	}
	switch res.Worst() {
	case doctor.StatusFail:
		return exitCode(ExitUsage)
	case doctor.StatusWarn:
		return exitCode(ExitFailure)
	}
	return nil
}

// loadDoctorConfig loads and validates the config. An invalid config is
// still returned (parsed, with defaults) with its *config.Errors, so its
// upstreams can be checked and the problems reported as a finding.
func loadDoctorConfig(path string) (*config.Config, error) {
	cfg, err := config.LoadValid(path)
	if err == nil {
		return cfg, nil
	}
	if !errors.As(err, new(*config.Errors)) {
		return nil, err
	}
	parsed, perr := config.Load(path)
	if perr != nil {
		return nil, err
	}
	parsed.ApplyDefaults()
	return parsed, err
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progressPrinter shows the checks as they run on stderr: on a terminal a
// line that changes as checks start, and one line per finding as each
// check ends; in a pipe only the latter, as plain lines. With --json
// nothing is shown in a pipe.
func progressPrinter(w io.Writer, tty, quietInPipe bool) func(doctor.Progress) {
	if !tty && quietInPipe {
		return nil
	}
	var mu sync.Mutex
	return func(p doctor.Progress) {
		mu.Lock()
		defer mu.Unlock()
		name := p.Check
		if p.Target != "" {
			name += " " + p.Target
		}
		if !p.Done {
			if tty {
				fmt.Fprintf(w, "\r\033[K[%d/%d] checking %s …", p.Index, p.Total, name)
			}
			return
		}
		if tty {
			fmt.Fprint(w, "\r\033[K")
		}
		for i := range p.Findings {
			p.Findings[i].WriteLine(w)
		}
	}
}
