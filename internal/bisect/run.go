package bisect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// MaxRepeat is the most probes of one state Config.Repeat allows.
const MaxRepeat = 20

// MaxSettle is the longest Config.Settle allowed.
const MaxSettle = 5 * time.Minute

// ErrBadConfig reports a Config that Run cannot use.
var ErrBadConfig = errors.New("bad bisect configuration")

// Config is one bisect of a real site.
type Config struct {
	// Items are the items enabled now, in the order they are bisected.
	Items []string
	// Disable and Enable are shell commands that disable and enable one
	// item, with {} replaced by the item, shell-quoted. Enable must be
	// harmless for an item that is enabled already: it is how the journal
	// finishes the job after a crash.
	Disable, Enable string
	// Shell runs the commands (working directory, timeout).
	Shell Shell
	// JournalPath is the journal file; it must not exist.
	JournalPath string
	// Probe checks the site.
	Probe *Probe
	// Repeat is how many times each state is probed: a state that passes
	// some probes and fails others is flaky. 0 means 1.
	Repeat int
	// Settle is a pause after each change, before the probes (for caches,
	// opcache's revalidation, a deploy hook). 0 means none.
	Settle time.Duration
	// MaxProbes bounds the states probed. 0 means DefaultMaxProbes.
	MaxProbes int
	// Log receives the progress, a line per step. Nil means none.
	Log io.Writer
}

// Report is the outcome of Run; it is also the JSON of `gatewise bisect
// --json`.
type Report struct {
	// Verdict is the conclusion.
	Verdict Verdict `json:"verdict"`
	// Culprits are the items to keep disabled, every set's items together;
	// empty (never null) when none was found.
	Culprits []string `json:"culprits"`
	// Sets are the minimal failing sets: one item, or items that fail
	// only together.
	Sets [][]string `json:"culprit_sets"`
	// Suspects are the items still suspected when the search stopped
	// without a verdict (flaky, gave up).
	Suspects []string `json:"suspects,omitempty"`
	// Probes counts the states probed; Requests the HTTP requests sent
	// (Probes × Repeat).
	Probes   int `json:"probes"`
	Requests int `json:"requests"`
	// Restored is set when every item disabled was enabled again and the
	// journal removed.
	Restored bool `json:"restored"`
	// KeepDisabled holds the commands that keep the culprits disabled.
	KeepDisabled []string `json:"keep_disabled,omitempty"`
	// Message says the verdict in words, for the owner.
	Message string `json:"message"`
	// Journal names the journal left when the site was not restored.
	Journal string `json:"journal,omitempty"`
}

// Run bisects a site: it writes the journal, runs Search with each state
// applied through the commands and checked with the probe, and restores
// the site whatever happens (the end, an error, ctx cancelled by a signal).
// The report is returned whenever the journal was created, with an error
// when the search or the restore failed; Report.Restored says whether the
// site is as it was.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	repeat := max(cfg.Repeat, 1)
	log := cfg.Log
	if log == nil {
		log = io.Discard
	}
	s, err := newSite(cfg.Items, cfg.Disable, cfg.Enable, cfg.Shell, cfg.JournalPath, log)
	if err != nil {
		return nil, err
	}
	n := len(cfg.Items)
	rep := &Report{Culprits: []string{}, Sets: [][]string{}}
	fmt.Fprintf(log, "bisecting %d plugins: about %d steps (2 checks, %d halvings, 1 final check), each state probed %s; journal %s\n",
		n, 2+ceilLog2(n)+1, ceilLog2(n), times(repeat), cfg.JournalPath)
	seen := map[string]string{} // what the probes of each state found, by key
	test := func(ctx context.Context, step Step) (Outcome, error) {
		if err := s.apply(ctx, step.Enabled); err != nil {
			return 0, err
		}
		if cfg.Settle > 0 {
			t := time.NewTimer(cfg.Settle)
			select {
			case <-ctx.Done():
				t.Stop()
				return 0, ctx.Err()
			case <-t.C:
			}
		}
		var results []ProbeResult
		for range repeat {
			r, err := cfg.Probe.Do(ctx)
			if err != nil {
				return 0, err
			}
			rep.Requests++
			results = append(results, r)
		}
		o, summary, detail := summarize(results)
		seen[keyOf(step.Enabled)] = detail
		about := "about"
		if step.EstimateIsCap {
			about = "at most"
		}
		line := fmt.Sprintf("step %d of %s %d: %s: %s", step.Number, about, step.Estimate, describeState(cfg.Items, step), summary)
		if step.Phase != PhaseAllEnabled && step.Phase != PhaseAllDisabled {
			line += "; suspects before: " + names(cfg.Items, step.Suspects, 8)
		}
		fmt.Fprintln(log, line) // one write per line: the CLI prefixes each
		if step.Phase == PhaseConfirm && o == Pass {
			fmt.Fprintln(log, "no single plugin explains the failure: delta debugging (ddmin) for the plugins that fail only together")
		}
		return o, nil
	}
	res, serr := Search(ctx, n, test, SearchOptions{MaxProbes: cfg.MaxProbes})
	rep.Probes = res.Probes
	enabled, rerr := s.restore(ctx)
	rep.Restored = rerr == nil
	for _, set := range res.Culprits {
		rep.Sets = append(rep.Sets, pick(cfg.Items, set))
		for _, i := range set {
			rep.Culprits = append(rep.Culprits, cfg.Items[i])
			rep.KeepDisabled = append(rep.KeepDisabled, Expand(cfg.Disable, cfg.Items[i]))
		}
	}
	rep.Suspects = pick(cfg.Items, res.Suspects)
	rep.Verdict = res.Verdict
	if serr != nil {
		rep.Verdict = VerdictInterrupted
	}
	rep.Message = message(rep, res, cfg, seen, serr)
	switch {
	case rerr != nil:
		rep.Journal = cfg.JournalPath
		fmt.Fprintf(log, "NOT RESTORED: %s\n", strings.Join(strings.Fields(rerr.Error()), " "))
	case len(enabled) == 0:
		fmt.Fprintln(log, "restored: nothing was left disabled")
	default:
		fmt.Fprintf(log, "restored: %s disabled during the bisect enabled again; journal removed\n", plural(len(enabled), "plugin", "plugins"))
	}
	if serr != nil || rerr != nil {
		if rerr != nil {
			rerr = fmt.Errorf("the site is NOT restored: %w; the journal %s lists what is still disabled: fix the cause, then run gatewise bisect --restore --journal %s", rerr, cfg.JournalPath, Quote(cfg.JournalPath))
		}
		if serr != nil {
			what := "restored"
			if rerr != nil {
				what = "not restored"
			}
			if errors.Is(serr, context.Canceled) {
				serr = fmt.Errorf("interrupted after %d probes (site %s): %w", res.Probes, what, serr)
			} else {
				serr = fmt.Errorf("stopped after %d probes (site %s): %w", res.Probes, what, serr)
			}
		}
		return rep, errors.Join(serr, rerr)
	}
	return rep, nil
}

// check validates a Config.
func (cfg *Config) check() error {
	switch {
	case len(cfg.Items) == 0:
		return fmt.Errorf("%w: no items", ErrBadConfig)
	case !strings.Contains(cfg.Disable, "{}"):
		return fmt.Errorf("%w: the disable command %q has no {} for the item", ErrBadConfig, cfg.Disable)
	case !strings.Contains(cfg.Enable, "{}"):
		return fmt.Errorf("%w: the enable command %q has no {} for the item", ErrBadConfig, cfg.Enable)
	case cfg.JournalPath == "":
		return fmt.Errorf("%w: no journal file", ErrBadConfig)
	case cfg.Probe == nil || cfg.Probe.URL == "":
		return fmt.Errorf("%w: no probe URL", ErrBadConfig)
	case cfg.Repeat < 0 || cfg.Repeat > MaxRepeat:
		return fmt.Errorf("%w: repeat %d: must be 1 to %d", ErrBadConfig, cfg.Repeat, MaxRepeat)
	case cfg.Settle < 0 || cfg.Settle > MaxSettle:
		return fmt.Errorf("%w: settle %s: must be 0 to %s", ErrBadConfig, cfg.Settle, MaxSettle)
	case cfg.MaxProbes != 0 && cfg.MaxProbes < MinMaxProbes:
		return fmt.Errorf("%w: max probes %d: must be at least %d", ErrBadConfig, cfg.MaxProbes, MinMaxProbes)
	}
	return nil
}

// summarize turns the probes of one state into its outcome, a few words
// for the progress ("FAIL (500 php_fatal_error)", "FLAKY: 1 of 2 failed
// (500 php_fatal_error; 200)") and the detail alone for the verdict ("500
// php_fatal_error", "1 of 2 failed: 500 php_fatal_error; 200").
func summarize(results []ProbeResult) (Outcome, string, string) {
	failed := 0
	var kinds []string
	for _, r := range results {
		if !r.OK {
			failed++
		}
		k := r.String()
		if k == "" {
			k = "no answer"
		}
		found := false
		for _, x := range kinds {
			found = found || x == k
		}
		if !found {
			kinds = append(kinds, k)
		}
	}
	detail := strings.Join(kinds, "; ")
	n := len(results)
	switch {
	case failed == 0 && n == 1:
		return Pass, "pass (" + detail + ")", detail
	case failed == 0:
		return Pass, fmt.Sprintf("pass %d/%d (%s)", n, n, detail), detail
	case failed == n && n == 1:
		return Fail, "FAIL (" + detail + ")", detail
	case failed == n:
		return Fail, fmt.Sprintf("FAIL %d/%d (%s)", n, n, detail), detail
	}
	return Flaky, fmt.Sprintf("FLAKY: %d of %d failed (%s)", failed, n, detail), fmt.Sprintf("%d of %d probes failed: %s", failed, n, detail)
}

// plural returns "1 plugin" or "3 plugins".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// describeState says which items a step enables.
func describeState(items []string, step Step) string {
	switch {
	case step.Phase == PhaseAllEnabled:
		return fmt.Sprintf("every plugin enabled (%d)", len(items))
	case len(step.Enabled) == 0:
		return "every plugin disabled"
	case step.Phase == PhaseRest:
		return fmt.Sprintf("every plugin but the culprits enabled (%d)", len(step.Enabled))
	case step.Phase == PhaseConfirm:
		return fmt.Sprintf("only %s enabled", names(items, step.Enabled, 8))
	}
	return fmt.Sprintf("%d of %d enabled: %s", len(step.Enabled), len(items), names(items, step.Enabled, 8))
}

// names lists the items at idx, or the first max and a count.
func names(items []string, idx []int, max int) string {
	if len(idx) == 0 {
		return "none"
	}
	var parts []string
	for n, i := range idx {
		if n == max {
			parts = append(parts, fmt.Sprintf("and %d more", len(idx)-max))
			break
		}
		parts = append(parts, items[i])
	}
	return strings.Join(parts, ", ")
}

// pick returns the items at idx.
func pick(items []string, idx []int) []string {
	if idx == nil {
		return nil
	}
	out := make([]string, len(idx))
	for n, i := range idx {
		out[n] = items[i]
	}
	return out
}

func times(n int) string {
	if n == 1 {
		return "once"
	}
	return fmt.Sprintf("%d times", n)
}

// message says the verdict in words.
func message(rep *Report, res SearchResult, cfg Config, seen map[string]string, serr error) string {
	all := make([]int, len(cfg.Items))
	for i := range all {
		all[i] = i
	}
	if serr != nil {
		if errors.Is(serr, context.Canceled) {
			return fmt.Sprintf("interrupted after %d probes, before a verdict", res.Probes)
		}
		return fmt.Sprintf("stopped after %d probes, before a verdict: %v", res.Probes, serr)
	}
	switch res.Verdict {
	case VerdictNoFailure:
		return fmt.Sprintf("the site works with every plugin enabled (%s): nothing to bisect. If visitors see errors, check the URL, --expect-status and --match, or run gatewise check %s", seen[keyOf(all)], cfg.Probe.URL)
	case VerdictNotAPlugin:
		return fmt.Sprintf("the site fails even with every plugin disabled (%s): the cause is not a plugin. Run gatewise doctor to audit the server and its services (PHP-FPM, the database, memory), and gatewise logs on the error logs", seen[keyOf(nil)])
	case VerdictGaveUp:
		return fmt.Sprintf("stopped at the limit of %d probes (--max-probes) with no certain culprit: no single plugin explains the failure, and delta debugging needs up to n² probes. The smallest failing set found: %s. Run again with a larger --max-probes, or with --items listing only these",
			res.Probes, strings.Join(rep.Suspects, ", "))
	case VerdictFlaky:
		state := seen[keyOf(res.FlakyState)]
		if len(res.FlakyState) == len(cfg.Items) {
			return fmt.Sprintf("the site fails only some of the time with every plugin enabled (%s): that is a flaky site, not one broken plugin, so no culprit is named. Look for the cause of the failures with gatewise logs and gatewise doctor, or run again with a larger --repeat", state)
		}
		msg := fmt.Sprintf("the site was flaky with %s enabled (%s), so no culprit is certain; still suspected: %s. Run again with a larger --repeat, or look for the cause with gatewise logs and gatewise doctor",
			names(cfg.Items, res.FlakyState, 8), state, strings.Join(rep.Suspects, ", "))
		if len(rep.Sets) > 0 {
			msg = fmt.Sprintf("found %s, but then %s", describeSets(rep.Sets), msg)
		}
		return msg
	case VerdictFound:
		return "found " + describeSets(rep.Sets)
	}
	return string(res.Verdict)
}

// describeSets says what the culprit sets are.
func describeSets(sets [][]string) string {
	var parts []string
	for _, set := range sets {
		if len(set) == 1 {
			parts = append(parts, fmt.Sprintf("%s (the site fails with it enabled alone)", set[0]))
			continue
		}
		parts = append(parts, fmt.Sprintf("%s (they fail only together: disabling any one of them is enough)", strings.Join(set, " + ")))
	}
	s := strings.Join(parts, "; and ")
	if len(sets) > 1 {
		s += "; each fails on its own"
	}
	return s + "; the site works with every other plugin enabled"
}

// WriteText writes the report for a person: the verdict, the commands to
// keep the culprits disabled, and whether the site was restored.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	switch {
	case len(r.Sets) == 1 && len(r.Sets[0]) == 1:
		fmt.Fprintf(&b, "culprit: %s\n", r.Sets[0][0])
	case len(r.Sets) > 0:
		var parts []string
		for _, s := range r.Sets {
			parts = append(parts, strings.Join(s, " + "))
		}
		fmt.Fprintf(&b, "culprits: %s\n", strings.Join(parts, ", "))
	default:
		fmt.Fprintf(&b, "no culprit (%s)\n", r.Verdict)
	}
	fmt.Fprintf(&b, "%s\n", r.Message)
	if len(r.KeepDisabled) > 0 {
		if len(r.KeepDisabled) == 1 {
			b.WriteString("keep it disabled:\n")
		} else {
			b.WriteString("keep them disabled (for a set that fails only together, one of its commands is enough):\n")
		}
		for _, c := range r.KeepDisabled {
			fmt.Fprintf(&b, "  %s\n", c)
		}
	}
	if r.Restored {
		fmt.Fprintf(&b, "restored: every plugin is as it was before the bisect (%d probes, %d requests)\n", r.Probes, r.Requests)
	} else {
		fmt.Fprintf(&b, "NOT RESTORED: some plugins are still disabled; the journal %s lists them: run gatewise bisect --restore --journal %s\n", r.Journal, Quote(r.Journal))
	}
	_, err := io.WriteString(w, b.String())
	return err
}
