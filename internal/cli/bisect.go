package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/gatewise/gatewise/internal/bisect"
)

// bisectUsage is the help of `gatewise bisect`.
const bisectUsage = `Usage: gatewise bisect --probe URL (--items FILE | --list-cmd CMD) --disable CMD --enable CMD [flags]
       gatewise bisect --probe URL --preset wordpress [--path DIR] [flags]
       gatewise bisect --restore [--journal FILE]

Finds the plugin that breaks a site in about log2(n) probes, or the plugins
that break it only together, and always puts every plugin back.

It checks first that URL fails with every plugin enabled and works with
every plugin disabled (else the cause is not a plugin: see gatewise doctor),
then halves the suspects until one is left, and runs delta debugging (ddmin)
when no single plugin explains the failure. A probe passes when URL answers
--expect-status (and matches --match). {} in --disable and --enable is
replaced by a plugin's name, shell-quoted; the commands run with /bin/sh.
--enable must be harmless for a plugin that is enabled already.

Before it disables anything it writes a journal; at the end, on an error,
on Ctrl-C and on SIGTERM it enables again every plugin it disabled and
removes the journal. After a crash, gatewise bisect --restore finishes the
job from the journal.

Exit status: 0 when the culprits were found and the site restored, 1 when
no culprit was found or something failed, 2 for a bad command line.

Flags:
`

// bisectFlags are the flags of `gatewise bisect`.
type bisectFlags struct {
	probe        string
	expectStatus int
	match        string
	items        string
	listCmd      string
	disable      string
	enable       string
	preset       string
	path         string
	wp           string
	repeat       int
	json         bool
	journal      string
	restore      bool
	force        bool
	timeout      time.Duration
	cmdTimeout   time.Duration
	settle       time.Duration
	maxProbes    int
}

// Bounds of the bisect flags.
const (
	bisectMaxTimeout    = 10 * time.Minute
	bisectMaxCmdTimeout = time.Hour
	bisectMaxProbes     = 10000
)

// runBisect runs `gatewise bisect`.
func runBisect(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f bisectFlags
	fs := newFlagSet("bisect", stderr)
	fs.StringVar(&f.probe, "probe", "", "the URL that fails (required)")
	fs.IntVar(&f.expectStatus, "expect-status", 200, "the status of a working page (redirects are not followed)")
	fs.StringVar(&f.match, "match", "", "a regular expression the body of a working page matches (Go syntax)")
	fs.StringVar(&f.items, "items", "", "a file listing the plugins to bisect, one a line (# comments); they must be enabled now")
	fs.StringVar(&f.listCmd, "list-cmd", "", "a command printing the enabled plugins, one a line")
	fs.StringVar(&f.disable, "disable", "", "the command that disables one plugin, {} for its name")
	fs.StringVar(&f.enable, "enable", "", "the command that enables one plugin, {} for its name")
	fs.StringVar(&f.preset, "preset", "", "wordpress: drive wp-cli (list, deactivate, activate)")
	fs.StringVar(&f.path, "path", "", "with --preset wordpress: the WordPress directory (wp-cli's --path)")
	fs.StringVar(&f.wp, "wp", "wp", "with --preset wordpress: how to run wp-cli, such as \"sudo -u www-data wp\" or \"wp --allow-root\"")
	fs.IntVar(&f.repeat, "repeat", 1, fmt.Sprintf("probes of each state, 1 to %d: a state that passes some and fails others is flaky", bisect.MaxRepeat))
	fs.BoolVar(&f.json, "json", false, `print {"culprits":[...],"probes":N,"restored":true,...} on stdout`)
	fs.StringVar(&f.journal, "journal", "", "the journal file (default $XDG_STATE_HOME/gatewise/bisect-journal.json or ~/.local/state/gatewise/bisect-journal.json)")
	fs.BoolVar(&f.restore, "restore", false, "enable again every plugin a crashed bisect left disabled, from its journal")
	fs.BoolVar(&f.force, "force", false, "with --restore: even if the process that wrote the journal seems alive")
	fs.DurationVar(&f.timeout, "timeout", bisect.DefaultProbeTimeout, "the limit of each probe request")
	fs.DurationVar(&f.cmdTimeout, "cmd-timeout", bisect.DefaultCommandTimeout, "the limit of each command")
	fs.DurationVar(&f.settle, "settle", 0, "a pause after each change, before probing (caches, opcache)")
	fs.IntVar(&f.maxProbes, "max-probes", bisect.DefaultMaxProbes, "the most states probed: ddmin may need n² for n plugins")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), bisectUsage)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	journal := f.journal
	if journal == "" {
		p, err := bisect.DefaultJournalPath()
		if err != nil {
			return err
		}
		journal = p
	}
	if f.restore {
		for name := range set {
			if name != "restore" && name != "journal" && name != "force" && name != "json" {
				return usageError("--restore takes only --journal, --force and --json, not --%s", name)
			}
		}
		return bisectRestore(ctx, journal, f, stdout, stderr)
	}
	if set["force"] {
		return usageError("--force goes with --restore")
	}
	cfg, err := bisectConfig(ctx, f, set, journal)
	if err != nil {
		return err
	}
	cfg.Log = prefixWriter{w: stderr, prefix: "gatewise bisect: "}
	rep, err := bisect.Run(ctx, cfg)
	if rep == nil {
		return err
	}
	if f.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if jerr := enc.Encode(rep); jerr != nil {
			return errors.Join(err, jerr)
		}
	} else if werr := rep.WriteText(stdout); werr != nil {
		return errors.Join(err, werr)
	}
	if err != nil {
		return err
	}
	if rep.Verdict != bisect.VerdictFound || !rep.Restored {
		return errSilentFailure
	}
	return nil
}

// bisectConfig checks the flags of a bisect and builds its config; the
// plugins come from --items, --list-cmd or the preset.
func bisectConfig(ctx context.Context, f bisectFlags, set map[string]bool, journal string) (bisect.Config, error) {
	var cfg bisect.Config
	if f.probe == "" {
		return cfg, usageError("missing --probe URL")
	}
	u, err := url.Parse(f.probe)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return cfg, usageError("--probe %q: want an http:// or https:// URL with a host", f.probe)
	}
	if f.expectStatus < 100 || f.expectStatus > 599 {
		return cfg, usageError("--expect-status %d: must be 100 to 599", f.expectStatus)
	}
	probe := &bisect.Probe{URL: f.probe, ExpectStatus: f.expectStatus, Timeout: f.timeout}
	if f.match != "" {
		if probe.Match, err = regexp.Compile(f.match); err != nil {
			return cfg, usageError("--match: %v", err)
		}
	}
	switch {
	case f.repeat < 1 || f.repeat > bisect.MaxRepeat:
		return cfg, usageError("--repeat %d: must be 1 to %d", f.repeat, bisect.MaxRepeat)
	case f.timeout <= 0 || f.timeout > bisectMaxTimeout:
		return cfg, usageError("--timeout %s: must be positive and at most %s", f.timeout, bisectMaxTimeout)
	case f.cmdTimeout <= 0 || f.cmdTimeout > bisectMaxCmdTimeout:
		return cfg, usageError("--cmd-timeout %s: must be positive and at most %s", f.cmdTimeout, bisectMaxCmdTimeout)
	case f.settle < 0 || f.settle > bisect.MaxSettle:
		return cfg, usageError("--settle %s: must be 0 to %s", f.settle, bisect.MaxSettle)
	case f.maxProbes < bisect.MinMaxProbes || f.maxProbes > bisectMaxProbes:
		return cfg, usageError("--max-probes %d: must be %d to %d", f.maxProbes, bisect.MinMaxProbes, bisectMaxProbes)
	case f.items != "" && f.listCmd != "":
		return cfg, usageError("--items and --list-cmd exclude each other")
	}
	switch f.preset {
	case "":
		for _, name := range []string{"path", "wp"} {
			if set[name] {
				return cfg, usageError("--%s goes with --preset wordpress", name)
			}
		}
		if f.items == "" && f.listCmd == "" {
			return cfg, usageError("missing --items FILE or --list-cmd CMD (or --preset wordpress)")
		}
	case "wordpress":
		for _, name := range []string{"disable", "enable", "list-cmd"} {
			if set[name] {
				return cfg, usageError("--preset wordpress sets --%s itself", name)
			}
		}
		if strings.TrimSpace(f.wp) == "" {
			return cfg, usageError("--wp: empty")
		}
		// --skip-plugins and --skip-themes: a broken plugin would break
		// wp-cli too, as it loads WordPress for every command.
		path := ""
		if f.path != "" {
			path = " --path=" + bisect.Quote(f.path)
		}
		f.listCmd = f.wp + " plugin list --status=active --field=name --skip-plugins --skip-themes" + path
		f.disable = f.wp + " plugin deactivate {} --skip-plugins --skip-themes" + path
		f.enable = f.wp + " plugin activate {} --skip-plugins --skip-themes" + path
		if f.items != "" {
			f.listCmd = ""
		}
	default:
		return cfg, usageError("--preset %q: the only preset is wordpress", f.preset)
	}
	if !strings.Contains(f.disable, "{}") {
		return cfg, usageError("--disable: want a command with {} for the plugin's name, got %q", f.disable)
	}
	if !strings.Contains(f.enable, "{}") {
		return cfg, usageError("--enable: want a command with {} for the plugin's name, got %q", f.enable)
	}
	sh := bisect.Shell{Timeout: f.cmdTimeout}
	var items []string
	if f.items != "" {
		data, err := readLimited(f.items, 1<<20)
		if err != nil {
			return cfg, err
		}
		if items, err = bisect.ParseItems(f.items, data); err != nil {
			return cfg, err
		}
	} else {
		out, err := sh.Run(ctx, f.listCmd)
		if err != nil {
			return cfg, fmt.Errorf("listing the plugins: %w", err)
		}
		if items, err = bisect.ParseItems("the output of "+f.listCmd, []byte(out)); err != nil {
			return cfg, err
		}
	}
	return bisect.Config{
		Items: items, Disable: f.disable, Enable: f.enable, Shell: sh, JournalPath: journal,
		Probe: probe, Repeat: f.repeat, Settle: f.settle, MaxProbes: f.maxProbes,
	}, nil
}

// bisectRestore runs `gatewise bisect --restore`.
func bisectRestore(ctx context.Context, journal string, f bisectFlags, stdout, stderr io.Writer) error {
	enabled, err := bisect.Restore(ctx, journal, bisect.RestoreOptions{Force: f.force, Log: prefixWriter{w: stderr, prefix: "gatewise bisect: "}})
	if errors.Is(err, bisect.ErrNoJournal) {
		fmt.Fprintf(stderr, "gatewise bisect: nothing to restore: no journal at %s\n", journal)
		err = nil
	}
	if f.json {
		out := struct {
			Restored bool     `json:"restored"`
			Enabled  []string `json:"enabled"`
		}{err == nil, append([]string{}, enabled...)}
		if jerr := json.NewEncoder(stdout).Encode(out); jerr != nil {
			return errors.Join(err, jerr)
		}
	} else if err == nil && len(enabled) > 0 {
		noun := "plugins"
		if len(enabled) == 1 {
			noun = "plugin"
		}
		fmt.Fprintf(stdout, "restored: %d %s enabled again (%s); journal %s removed\n", len(enabled), noun, strings.Join(enabled, ", "), journal)
	}
	return err
}

// prefixWriter starts every line written to w with prefix (writes are
// whole lines, as the bisect's progress is).
type prefixWriter struct {
	w      io.Writer
	prefix string
}

func (p prefixWriter) Write(b []byte) (int, error) {
	s := strings.TrimSuffix(string(b), "\n")
	var out strings.Builder
	for line := range strings.SplitSeq(s, "\n") {
		out.WriteString(p.prefix)
		out.WriteString(line)
		out.WriteByte('\n')
	}
	if _, err := io.WriteString(p.w, out.String()); err != nil {
		return 0, err
	}
	return len(b), nil
}
