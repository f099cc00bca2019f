package logs

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"time"
)

// barWidth is the width of the timeline's longest bar, in characters.
const barWidth = 40

// WriteText prints the report for a terminal: the causes ranked with their
// fix, the other events, the chains with their evidence, the timeline, and
// the files read (with their unreadable lines). Times are shown in loc
// (nil means time.Local). It uses no color.
func (r *Report) WriteText(w io.Writer, loc *time.Location) error {
	if loc == nil {
		loc = time.Local
	}
	bw := bufio.NewWriter(w)
	ts := func(t time.Time) string {
		if t.IsZero() {
			return "(no time)"
		}
		return t.In(loc).Format("2006-01-02 15:04:05")
	}
	if len(r.Causes) == 0 && len(r.Other) == 0 {
		fmt.Fprintln(bw, "No failures found in the logs.")
	}
	if len(r.Causes) > 0 {
		fmt.Fprintln(bw, "Causes, most frequent first:")
		for i, c := range r.Causes {
			fmt.Fprintf(bw, "\n%2d. %s (%s): %d, %s .. %s\n", i+1, c.Cause, c.Title, c.Count, ts(c.FirstSeen), ts(c.LastSeen))
			wrap(bw, "    Fix: ", c.Fix)
		}
	}
	if len(r.Other) > 0 {
		fmt.Fprintln(bw, "\nAround them:")
		for _, c := range r.Other {
			fmt.Fprintf(bw, "\n  - %s (%s): %d, %s .. %s\n", c.Cause, c.Title, c.Count, ts(c.FirstSeen), ts(c.LastSeen))
			wrap(bw, "    ", c.Fix)
		}
	}
	if len(r.Chains) > 0 {
		fmt.Fprintln(bw, "\nLikely chains:")
		for _, ch := range r.Chains {
			fmt.Fprintf(bw, "\n  %s .. %s  %s\n", ts(ch.Start), ts(ch.End), ch.Summary)
			for _, st := range ch.Steps {
				fmt.Fprintf(bw, "    %-22s x%-5d %s:%d: %s\n", st.Label, st.Count, st.Evidence.Source, st.Evidence.Line, cut(st.Evidence.Raw, 160))
			}
		}
	}
	if len(r.Timeline) > 0 {
		fmt.Fprintf(bw, "\nTimeline (one bar per %s):\n", r.BucketSize)
		var top int64
		for _, b := range r.Timeline {
			top = max(top, b.Count)
		}
		layout := "01-02 15:04"
		for _, b := range r.Timeline {
			fmt.Fprintf(bw, "  %s %s %d", b.Start.In(loc).Format(layout), bar(b.Count, top), b.Count)
			if b.Top != "" {
				fmt.Fprintf(bw, " %s", b.Top)
			}
			fmt.Fprintln(bw)
		}
	}
	if r.Untimed > 0 {
		fmt.Fprintf(bw, "\n%d events had no wall-clock time (dmesg without -T, /dev/kmsg): counted above, not in the timeline or chains.\n", r.Untimed)
	}
	if r.EventsDropped > 0 {
		fmt.Fprintf(bw, "\n%d more events were counted but not kept (the first %d are in --json).\n", r.EventsDropped, len(r.Events))
	}
	fmt.Fprintln(bw, "\nFiles:")
	for _, f := range r.Files {
		gz := ""
		if f.Compressed {
			gz = ", gzip"
		}
		fmt.Fprintf(bw, "  %s: %s%s, %d lines, %d events", f.Source, f.Format, gz, f.Lines, f.Events)
		if f.Unreadable > 0 {
			fmt.Fprintf(bw, ", %d unreadable (first: %q)", f.Unreadable, cut(f.FirstUnreadable, 80))
		}
		fmt.Fprintln(bw)
	}
	return bw.Flush()
}

// WriteEvent prints one event on one line, as --follow does.
func WriteEvent(w io.Writer, ev *Event, loc *time.Location) error {
	if loc == nil {
		loc = time.Local
	}
	t := "(no time)          "
	if !ev.Time.IsZero() {
		t = ev.Time.In(loc).Format("2006-01-02 15:04:05")
	}
	extra := ""
	if ev.Process != "" {
		extra += " process=" + ev.Process
	}
	if ev.Upstream != "" {
		extra += " upstream=" + ev.Upstream
	}
	if ev.Method != "" {
		extra += " request=" + ev.Method + " " + ev.Path
	}
	if ev.Detail != "" {
		extra += " (" + ev.Detail + ")"
	}
	_, err := fmt.Fprintf(w, "%s %-28s %s:%d%s\n", t, ev.Label(), ev.Source, ev.Line, extra)
	return err
}

// bar draws n of top as a bar of up to barWidth eighth-blocks.
func bar(n, top int64) string {
	if top <= 0 {
		return strings.Repeat(" ", barWidth)
	}
	eighths := int(n * barWidth * 8 / top)
	if n > 0 && eighths == 0 {
		eighths = 1
	}
	full := eighths / 8
	s := strings.Repeat("█", full)
	if rem := eighths % 8; rem > 0 {
		s += string([]rune("▏▎▍▌▋▊▉")[rem-1])
		full++
	}
	return s + strings.Repeat(" ", barWidth-full)
}

// wrap prints text after prefix, wrapped at 100 columns.
func wrap(w io.Writer, prefix, text string) {
	if text == "" {
		return
	}
	line := prefix
	indent := strings.Repeat(" ", len([]rune(prefix)))
	for _, word := range strings.Fields(text) {
		if len(line)+1+len(word) > 100 && strings.TrimSpace(line) != "" && line != prefix {
			fmt.Fprintln(w, line)
			line = indent
		}
		if line != prefix && line != indent {
			line += " "
		}
		line += word
	}
	fmt.Fprintln(w, line)
}

// cut shortens s to n runes.
func cut(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
