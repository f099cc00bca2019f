package logs

import (
	"sort"
	"strings"
	"time"

	"github.com/gatewise/gatewise/internal/cause"
)

// Limits that keep a Summary's memory bounded whatever the size of the logs.
const (
	// DefaultMaxEvents is how many events a Summary keeps for the report's
	// "events" list by default; the rest are only counted.
	DefaultMaxEvents = 10000
	// maxMinutes is how many distinct minutes the timeline keeps; events
	// in later minutes are counted but not drawn.
	maxMinutes = 200000
	// maxAnchors is how many chain-starting events are kept.
	maxAnchors = 10000
	// chainWindow is how long after its trigger an event may belong to a
	// chain.
	chainWindow = 2 * time.Minute
	// maxRequestIDs bounds the set used to count a gatewise request once.
	maxRequestIDs = 100000
)

// Count is one line of the ranking: a cause of the taxonomy, or another
// kind of event.
type Count struct {
	// Cause is the cause ID, or the kind for events that are not a cause
	// (oom_kill, restart, http_status, ...).
	Cause string `json:"cause"`
	// Title is the cause's title, or a description of the kind.
	Title string `json:"title"`
	// Count is how many events there were.
	Count int64 `json:"count"`
	// FirstSeen and LastSeen bound the events' times (zero when none had a
	// time).
	FirstSeen time.Time `json:"first_seen,omitzero"`
	LastSeen  time.Time `json:"last_seen,omitzero"`
	// Fix is what the owner should do: the cause's Owner text.
	Fix string `json:"fix"`
}

// Chain is a likely sequence of events across files: a trigger (an OOM
// kill, a worker crash, a dependency failing, a full pool) and what
// followed it within two minutes.
type Chain struct {
	// Summary reads like "oom_kill (php-fpm8.2) → fpm_worker_crashed →
	// connection_refused".
	Summary string `json:"summary"`
	// Start and End bound the chain's events.
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Steps are the chain's links in time order, each with its first line.
	Steps []ChainStep `json:"steps"`
}

// ChainStep is one link of a Chain.
type ChainStep struct {
	// Label is the cause ID or event kind.
	Label string `json:"label"`
	// Count is how many events of the label fall in the chain's window.
	Count int64 `json:"count"`
	// Evidence is the first such event.
	Evidence Event `json:"evidence"`
}

// Bucket is one bar of the timeline.
type Bucket struct {
	// Start is the bucket's start; it lasts Report.BucketSize.
	Start time.Time `json:"start"`
	// Count is how many events fell in it, Top the label with most.
	Count int64  `json:"count"`
	Top   string `json:"top"`
}

// Report is what Summary.Report returns: the document `gatewise logs
// --json` prints.
type Report struct {
	Causes          []Count          `json:"causes"`
	Other           []Count          `json:"other"`
	Events          []Event          `json:"events"`
	EventsDropped   int64            `json:"events_dropped"`
	Chains          []Chain          `json:"chains"`
	BucketSize      string           `json:"bucket_size"`
	Timeline        []Bucket         `json:"timeline"`
	Files           []FileStats      `json:"files"`
	UnreadableLines map[string]int64 `json:"unreadable_lines"`
	// Untimed is how many events had no time (dmesg without -T): they are
	// counted but not in the timeline or chains.
	Untimed int64 `json:"untimed"`
}

// Summary accumulates events into counts, a timeline and chain candidates
// in bounded memory. It is not safe for concurrent use.
type Summary struct {
	table     *cause.Table
	maxEvents int
	counts    map[string]*Count
	events    []Event
	dropped   int64
	minutes   map[int64]map[string]*cell
	anchors   []Event
	files     []FileStats
	untimed   int64
	seenReq   map[string]struct{}
}

type cell struct {
	count int64
	first Event
}

// NewSummary returns an empty Summary that keeps up to maxEvents events
// for the report (DefaultMaxEvents when maxEvents <= 0). table nil means
// cause.NewTable().
func NewSummary(table *cause.Table, maxEvents int) *Summary {
	if table == nil {
		table = cause.NewTable()
	}
	if maxEvents <= 0 {
		maxEvents = DefaultMaxEvents
	}
	return &Summary{table: table, maxEvents: maxEvents, counts: map[string]*Count{},
		minutes: map[int64]map[string]*cell{}, seenReq: map[string]struct{}{}}
}

// AddFile records a file's statistics.
func (s *Summary) AddFile(st FileStats) { s.files = append(s.files, st) }

// Add counts one event. A gatewise request's cause is counted once even
// when both its warning and its access log line are read.
func (s *Summary) Add(ev Event) {
	if ev.RequestID != "" && ev.Kind == KindCause {
		k := ev.RequestID + " " + string(ev.Cause)
		if _, dup := s.seenReq[k]; dup {
			return
		}
		if len(s.seenReq) < maxRequestIDs {
			s.seenReq[k] = struct{}{}
		}
	}
	label := ev.Label()
	c := s.counts[label]
	if c == nil {
		c = &Count{Cause: label}
		c.Title, c.Fix = s.describe(ev)
		s.counts[label] = c
	}
	c.Count++
	if !ev.Time.IsZero() {
		if c.FirstSeen.IsZero() || ev.Time.Before(c.FirstSeen) {
			c.FirstSeen = ev.Time
		}
		if ev.Time.After(c.LastSeen) {
			c.LastSeen = ev.Time
		}
	}
	if len(s.events) < s.maxEvents {
		s.events = append(s.events, ev)
	} else {
		s.dropped++
	}
	if ev.Time.IsZero() {
		s.untimed++
		return
	}
	minute := ev.Time.Unix() / 60
	m := s.minutes[minute]
	if m == nil {
		if len(s.minutes) >= maxMinutes {
			return
		}
		m = map[string]*cell{}
		s.minutes[minute] = m
	}
	ce := m[label]
	if ce == nil {
		ce = &cell{first: ev}
		m[label] = ce
	}
	ce.count++
	if ev.Time.Before(ce.first.Time) {
		ce.first = ev
	}
	if isTrigger(ev) && len(s.anchors) < maxAnchors {
		s.anchors = append(s.anchors, ev)
	}
}

// describe returns the title and fix of an event's label.
func (s *Summary) describe(ev Event) (string, string) {
	switch ev.Kind {
	case KindCause:
		if c, ok := s.table.Lookup(ev.Cause); ok {
			return c.Title, c.Owner
		}
		return string(ev.Cause), ""
	case KindOOMKill:
		return "Killed by the kernel's OOM killer", "The kernel ran out of memory and killed a process (the victim is in each event). Find what uses the memory (`free -m`, `ps aux --sort=-rss`), lower PHP-FPM's pm.max_children or memory_limit so the pool fits in RAM, add memory or swap, and set MySQL's buffers to what the host can spare."
	case KindWorkerExit:
		return "Worker process died", "A worker died of a signal: SIGKILL is usually the OOM killer (see oom_kill), SIGSEGV a crash in PHP or an extension. Check the kernel log and PHP-FPM's log around that time; disable the extension that crashes."
	case KindRestart:
		return "Service started or restarted", "A service (re)started. Requests in flight at that moment fail; if it was not a deploy, look just before it for the crash or OOM kill that brought it down."
	case KindDependency:
		return "Dependency failed", "A service the application needs failed (MySQL refusing connections, crashing or recovering). Check its log and its limits (max_connections, memory), and the application's connection handling."
	case KindStatus:
		return "Error status in an access log", "A 502, 503 or 504 sent to a client; the access log does not say why. Read the same server's error log beside it (pass both to gatewise logs): the chains link them."
	}
	return string(ev.Kind), ""
}

// isTrigger reports whether an event may start a chain.
func isTrigger(ev Event) bool {
	switch ev.Kind {
	case KindOOMKill, KindWorkerExit, KindDependency:
		return true
	case KindCause:
		switch ev.Cause {
		case cause.FPMPoolExhausted, cause.FPMWorkerCrashed, cause.PHPMemoryExhausted, cause.PHPTimeout:
			return true
		}
	}
	return false
}

// Report returns the summary: causes ranked by count (ties by first seen),
// the other kinds, the kept events in the order read, the chains, the
// timeline and the files' statistics.
func (s *Summary) Report() *Report {
	r := &Report{Events: s.events, EventsDropped: s.dropped, Files: s.files, Untimed: s.untimed,
		UnreadableLines: map[string]int64{}, Causes: []Count{}, Other: []Count{}, Chains: []Chain{}, Timeline: []Bucket{}}
	if r.Events == nil {
		r.Events = []Event{}
	}
	for _, f := range s.files {
		r.UnreadableLines[f.Source] += f.Unreadable
	}
	for _, c := range s.counts {
		if _, ok := s.table.Lookup(cause.ID(c.Cause)); ok {
			r.Causes = append(r.Causes, *c)
		} else {
			r.Other = append(r.Other, *c)
		}
	}
	rank := func(l []Count) {
		sort.Slice(l, func(i, j int) bool {
			if l[i].Count != l[j].Count {
				return l[i].Count > l[j].Count
			}
			if !l[i].FirstSeen.Equal(l[j].FirstSeen) {
				return l[i].FirstSeen.Before(l[j].FirstSeen)
			}
			return l[i].Cause < l[j].Cause
		})
	}
	rank(r.Causes)
	rank(r.Other)
	r.Chains = s.chains()
	r.BucketSize, r.Timeline = s.timeline()
	return r
}

// chains links each trigger to what followed it within chainWindow: more
// triggers (merged into the chain), workers dying, services restarting,
// and failures. A chain needs at least one failure after its trigger.
func (s *Summary) chains() []Chain {
	anchors := append([]Event(nil), s.anchors...)
	sort.SliceStable(anchors, func(i, j int) bool { return anchors[i].Time.Before(anchors[j].Time) })
	out := []Chain{}
	for i := 0; i < len(anchors); {
		start := anchors[i]
		end := start.Time.Add(chainWindow)
		j := i + 1
		for j < len(anchors) && !anchors[j].Time.After(end) {
			end = anchors[j].Time.Add(chainWindow)
			j++
		}
		i = j
		steps := map[string]*ChainStep{}
		for m := start.Time.Unix() / 60; m <= end.Unix()/60; m++ {
			for label, ce := range s.minutes[m] {
				if ce.first.Time.Before(start.Time) || ce.first.Time.After(end) {
					continue
				}
				st := steps[label]
				if st == nil {
					steps[label] = &ChainStep{Label: label, Count: ce.count, Evidence: ce.first}
					continue
				}
				st.Count += ce.count
				if ce.first.Time.Before(st.Evidence.Time) {
					st.Evidence = ce.first
				}
			}
		}
		failures := 0
		list := make([]ChainStep, 0, len(steps))
		for _, st := range steps {
			if !isTrigger(st.Evidence) && st.Evidence.Kind != KindRestart {
				failures++
			}
			list = append(list, *st)
		}
		if failures == 0 {
			continue
		}
		sort.Slice(list, func(a, b int) bool {
			if !list[a].Evidence.Time.Equal(list[b].Evidence.Time) {
				return list[a].Evidence.Time.Before(list[b].Evidence.Time)
			}
			return list[a].Label < list[b].Label
		})
		names := make([]string, 0, len(list))
		last := start.Time
		for _, st := range list {
			n := st.Label
			if st.Evidence.Process != "" && (st.Evidence.Kind == KindOOMKill || st.Evidence.Kind == KindWorkerExit) {
				n += " (" + st.Evidence.Process + ")"
			}
			names = append(names, n)
			if st.Evidence.Time.After(last) {
				last = st.Evidence.Time
			}
		}
		out = append(out, Chain{Summary: strings.Join(names, " → "), Start: start.Time, End: last, Steps: list})
	}
	return out
}

// bucketSizes are the timeline's bucket sizes, the smallest that gives at
// most maxBars bars is used.
func bucketSizes() []time.Duration {
	return []time.Duration{time.Minute, 5 * time.Minute, 15 * time.Minute, time.Hour, 6 * time.Hour, 24 * time.Hour, 7 * 24 * time.Hour}
}

const maxBars = 60

// timeline groups the per-minute counts into buckets.
func (s *Summary) timeline() (string, []Bucket) {
	if len(s.minutes) == 0 {
		return "1m", []Bucket{}
	}
	lo, hi := int64(1<<62), int64(-1<<62)
	for m := range s.minutes {
		lo, hi = min(lo, m), max(hi, m)
	}
	size := bucketSizes()[len(bucketSizes())-1]
	for _, d := range bucketSizes() {
		if (hi-lo)/int64(d/time.Minute)+1 <= maxBars {
			size = d
			break
		}
	}
	per := int64(size / time.Minute)
	first := lo - lo%per
	n := (hi-first)/per + 1
	buckets := make([]Bucket, n)
	tops := make([]map[string]int64, n)
	for i := range buckets {
		buckets[i].Start = time.Unix((first+int64(i)*per)*60, 0).UTC()
	}
	for m, cells := range s.minutes {
		i := (m - first) / per
		if tops[i] == nil {
			tops[i] = map[string]int64{}
		}
		for label, ce := range cells {
			buckets[i].Count += ce.count
			tops[i][label] += ce.count
		}
	}
	for i, t := range tops {
		var best string
		for label, c := range t {
			if c > t[best] || (c == t[best] && label < best) {
				best = label
			}
		}
		buckets[i].Top = best
	}
	return shortDuration(size), buckets
}

// shortDuration prints 5m, 1h, 1d.
func shortDuration(d time.Duration) string {
	switch {
	case d%(24*time.Hour) == 0:
		return strings.TrimSuffix(time.Duration(d/(24*time.Hour)).String(), "ns") + "d"
	case d%time.Hour == 0:
		return strings.TrimSuffix(time.Duration(d/time.Hour).String(), "ns") + "h"
	}
	return strings.TrimSuffix(time.Duration(d/time.Minute).String(), "ns") + "m"
}
