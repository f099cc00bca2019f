package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/gatewise/gatewise/internal/logs"
)

// logsUsage is the help of `gatewise logs`.
const logsUsage = `Usage: gatewise logs [--since DURATION|TIME] [--until DURATION|TIME] [--json] [--follow] FILE... | -

Reads the logs of nginx, Apache, PHP-FPM, PHP, HAProxy, Caddy, Traefik, the
kernel (dmesg, journalctl -k, kern.log, syslog), MySQL/MariaDB and gatewise,
detects each file's format from its first lines (gzip-compressed and rotated
files too), and says why the 502s happened: the causes ranked with the fix
for each, a timeline, and the likely chains across files (an OOM kill, then
the pool restarting, then refused connections) with their evidence lines.
FILE "-" reads the standard input. A file that cannot be opened stops the
command before anything is read.

Flags:
`

// logsFlags are the flags of `gatewise logs`.
type logsFlags struct {
	since, until string
	json         bool
	follow       bool
	format       string
	maxEvents    int
}

// runLogs runs `gatewise logs`.
func runLogs(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return logsCommand(ctx, args, os.Stdin, time.Now(), stdout, stderr)
}

// logsCommand is runLogs with the standard input and the current time as
// parameters.
func logsCommand(ctx context.Context, args []string, stdin io.Reader, now time.Time, stdout, stderr io.Writer) error {
	var f logsFlags
	fs := newFlagSet("logs", stderr)
	fs.StringVar(&f.since, "since", "", "only events at or after this time: a duration before now (2h, 30m) or a time (RFC 3339, \"2006-01-02 15:04\", \"2006-01-02\")")
	fs.StringVar(&f.until, "until", "", "only events before this time (same forms as --since)")
	fs.BoolVar(&f.json, "json", false, "print one JSON document (causes, events, chains, timeline, files, unreadable_lines)")
	fs.BoolVar(&f.follow, "follow", false, "follow the files from their end and print events as they come, until interrupted")
	fs.StringVar(&f.format, "format", "", "force the format of every file instead of detecting it (nginx-error, nginx-access, apache-error, php-fpm, php, haproxy, caddy, traefik-json, traefik, kernel, syslog, mysql, gatewise)")
	fs.IntVar(&f.maxEvents, "max-events", logs.DefaultMaxEvents, "events kept for --json's \"events\" list; the rest are only counted")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), logsUsage)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usageError("missing FILE (or - for the standard input)")
	}
	opts := logs.Options{}
	var err error
	if opts.Since, err = parseWhen(f.since, now); err != nil {
		return usageError("--since: %v", err)
	}
	if opts.Until, err = parseWhen(f.until, now); err != nil {
		return usageError("--until: %v", err)
	}
	if !opts.Since.IsZero() && !opts.Until.IsZero() && !opts.Since.Before(opts.Until) {
		return usageError("--since %s is not before --until %s", f.since, f.until)
	}
	if f.format != "" {
		if opts.Format, err = logs.ParseFormat(f.format); err != nil {
			return usageError("--format: %v", err)
		}
	}
	if f.maxEvents <= 0 {
		return usageError("--max-events: must be positive, got %d", f.maxEvents)
	}
	if f.follow && f.json {
		return usageError("--follow prints events as they come: it excludes --json")
	}
	rd, err := logs.NewReader(opts)
	if err != nil {
		return err
	}
	stdinUsed := 0
	for _, name := range fs.Args() {
		if name == "-" {
			stdinUsed++
		}
	}
	if stdinUsed > 1 {
		return usageError("- (the standard input) given %d times", stdinUsed)
	}
	if f.follow {
		return followLogs(ctx, rd, fs.Args(), stdin, stdout, stderr)
	}

	// Open every file before reading any: one line per file that cannot be
	// read, and nothing else.
	type opened struct {
		file *os.File
		src  logs.Source
	}
	var files []opened
	defer func() {
		for _, o := range files {
			if o.file != nil {
				o.file.Close()
			}
		}
	}()
	failed := false
	for _, name := range fs.Args() {
		if name == "-" {
			files = append(files, opened{src: logs.Source{Name: "-", R: stdin, Ref: now}})
			continue
		}
		file, src, err := logs.OpenFile(name)
		if err != nil {
			fmt.Fprintf(stderr, "gatewise logs: %s\n", oneLine(err.Error()))
			failed = true
			continue
		}
		files = append(files, opened{file: file, src: src})
	}
	if failed {
		return errSilentFailure
	}
	sum := logs.NewSummary(nil, f.maxEvents)
	for _, o := range files {
		st, err := rd.Scan(ctx, o.src, sum.Add)
		sum.AddFile(st)
		if err != nil {
			return err
		}
	}
	rep := sum.Report()
	if f.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return rep.WriteText(stdout, nil)
}

// followLogs follows every file (and the standard input, read as it comes)
// and prints each event on a line until ctx is done.
func followLogs(ctx context.Context, rd *logs.Reader, names []string, stdin io.Reader, stdout, stderr io.Writer) error {
	for _, name := range names {
		if name == "-" {
			continue
		}
		file, _, err := logs.OpenFile(name)
		if err != nil {
			return err
		}
		file.Close()
	}
	var mu sync.Mutex
	emit := func(ev logs.Event) {
		mu.Lock()
		defer mu.Unlock()
		logs.WriteEvent(stdout, &ev, nil)
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(names))
	for _, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if name == "-" {
				_, err = rd.Scan(ctx, logs.Source{Name: "-", R: stdin}, emit)
			} else {
				err = rd.Follow(ctx, name, emit)
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return err
	}
	return nil
}

// parseWhen parses --since and --until: a duration before now ("2h",
// "30m", "1h30m"), an RFC 3339 time, or a local "2006-01-02 15:04",
// "2006-01-02 15:04:05" or "2006-01-02". Empty means no bound.
func parseWhen(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("%q: a duration counts back from now and must be positive", s)
		}
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is neither a duration (2h, 30m) nor a time (2006-01-02T15:04:05Z07:00, \"2006-01-02 15:04\", 2006-01-02)", s)
}
