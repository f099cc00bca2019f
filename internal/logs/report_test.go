package logs

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// summarize scans testdata files into one Summary.
func summarize(t *testing.T, files ...string) *Report {
	t.Helper()
	sum := NewSummary(nil, 0)
	for _, f := range files {
		st, events := scanFile(t, "testdata/"+f)
		for _, ev := range events {
			sum.Add(ev)
		}
		sum.AddFile(st)
	}
	return sum.Report()
}

func TestReportRanksAndChains(t *testing.T) {
	t.Parallel()
	r := summarize(t, "kern.log", "nginx_error.log", "nginx_access.log")
	// Two of each; client_closed was seen first (22:10:12 UTC in the
	// access log's +0100 line).
	if len(r.Causes) < 2 || r.Causes[0].Cause != "client_closed" || r.Causes[1].Cause != "connection_terminated" || r.Causes[1].Count != 2 {
		t.Fatalf("causes = %s, %s; want client_closed then connection_terminated x2", r.Causes[0].Cause, r.Causes[1].Cause)
	}
	for i := 1; i < len(r.Causes); i++ {
		if r.Causes[i].Count > r.Causes[i-1].Count {
			t.Errorf("causes not ranked: %s %d after %s %d", r.Causes[i].Cause, r.Causes[i].Count, r.Causes[i-1].Cause, r.Causes[i-1].Count)
		}
	}
	for _, c := range r.Causes {
		if c.Fix == "" || c.FirstSeen.IsZero() || c.LastSeen.Before(c.FirstSeen) {
			t.Errorf("cause %s: fix %q, first %v, last %v", c.Cause, c.Fix, c.FirstSeen, c.LastSeen)
		}
	}
	if len(r.Chains) != 1 {
		t.Fatalf("chains = %+v, want one", r.Chains)
	}
	ch := r.Chains[0]
	for _, want := range []string{"oom_kill (php-fpm8.2)", "worker_exit (php-fpm8.2)", "restart", "connection_refused", "http_status"} {
		if !strings.Contains(ch.Summary, want) {
			t.Errorf("chain %q lacks %q", ch.Summary, want)
		}
	}
	if !strings.HasPrefix(ch.Summary, "oom_kill") {
		t.Errorf("chain %q does not start with the OOM kill", ch.Summary)
	}
	for _, st := range ch.Steps {
		if st.Evidence.Raw == "" || st.Evidence.Source == "" {
			t.Errorf("step %s has no evidence line", st.Label)
		}
	}
	if got := r.UnreadableLines["nginx_error.log"]; got != 1 {
		t.Errorf("unreadable lines of nginx_error.log = %d, want 1", got)
	}
	// 22:10 to 23:10 UTC is 61 minutes: more than 60 bars of a minute.
	if r.BucketSize != "5m" || len(r.Timeline) != 13 {
		t.Errorf("timeline: %s x %d buckets, want 5m x 13", r.BucketSize, len(r.Timeline))
	}
}

func TestReportNoChainWithoutFailure(t *testing.T) {
	t.Parallel()
	if r := summarize(t, "kern.log"); len(r.Chains) != 0 {
		t.Errorf("an OOM kill alone made chains %+v", r.Chains)
	}
	// Failures more than the window after the kill are not linked to it.
	sum := NewSummary(nil, 0)
	t0 := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	sum.Add(Event{Time: t0, Kind: KindOOMKill, Process: "php-fpm", Source: "k", Raw: "x"})
	sum.Add(Event{Time: t0.Add(10 * time.Minute), Kind: KindCause, Cause: "connection_refused", Source: "n", Raw: "y"})
	if r := sum.Report(); len(r.Chains) != 0 {
		t.Errorf("a failure 10 minutes after the kill made chains %+v", r.Chains)
	}
}

func TestReportJSONAndText(t *testing.T) {
	t.Parallel()
	r := summarize(t, "kern.log", "nginx_error.log")
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"causes", "events", "chains", "unreadable_lines", "timeline", "files"} {
		if _, ok := doc[k]; !ok {
			t.Errorf("JSON report lacks %q", k)
		}
	}
	var causes []map[string]any
	if err := json.Unmarshal(doc["causes"], &causes); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"cause", "count", "first_seen", "last_seen", "fix"} {
		if _, ok := causes[0][k]; !ok {
			t.Errorf("causes[0] lacks %q: %v", k, causes[0])
		}
	}
	var buf bytes.Buffer
	if err := r.WriteText(&buf, time.UTC); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"Causes, most frequent first:", "Fix: ", "Likely chains:", "Timeline (one bar per 1m):", "█", "nginx_error.log: nginx-error", "1 unreadable"} {
		if !strings.Contains(out, want) {
			t.Errorf("text report lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\x1b[") {
		t.Errorf("text report has terminal escapes")
	}
}

func TestReportBoundedEvents(t *testing.T) {
	t.Parallel()
	sum := NewSummary(nil, 5)
	t0 := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	for i := range 100 {
		sum.Add(Event{Time: t0.Add(time.Duration(i) * time.Hour), Kind: KindCause, Cause: "connection_refused"})
	}
	r := sum.Report()
	if len(r.Events) != 5 || r.EventsDropped != 95 || r.Causes[0].Count != 100 {
		t.Errorf("kept %d, dropped %d, counted %d; want 5, 95, 100", len(r.Events), r.EventsDropped, r.Causes[0].Count)
	}
	if len(r.Timeline) > maxBars || r.BucketSize != "6h" {
		t.Errorf("timeline over 100 hours: %d buckets of %s, want at most %d of 6h", len(r.Timeline), r.BucketSize, maxBars)
	}
}
