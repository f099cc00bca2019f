package bisect

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
)

// Outcome is what the probes of one state of the site found.
type Outcome int

// The outcomes of a state.
const (
	// Pass means every probe of the state passed.
	Pass Outcome = iota + 1
	// Fail means every probe of the state failed.
	Fail
	// Flaky means some probes passed and some failed.
	Flaky
)

// String returns "pass", "fail" or "flaky".
func (o Outcome) String() string {
	switch o {
	case Pass:
		return "pass"
	case Fail:
		return "fail"
	case Flaky:
		return "flaky"
	}
	return "unknown"
}

// Phase says why the search probes a state.
type Phase string

// The phases of a search.
const (
	// PhaseAllEnabled checks that the site fails with every item enabled.
	PhaseAllEnabled Phase = "all enabled"
	// PhaseAllDisabled checks that the site works with every item disabled.
	PhaseAllDisabled Phase = "all disabled"
	// PhaseBisect probes half of the suspects, looking for one culprit.
	PhaseBisect Phase = "bisect"
	// PhaseConfirm checks that the one suspect left makes the site fail
	// on its own.
	PhaseConfirm Phase = "confirm"
	// PhaseDDMin is a step of delta debugging: no single item explains the
	// failure.
	PhaseDDMin Phase = "ddmin"
	// PhaseRest checks that the site works with every item enabled but the
	// culprits found.
	PhaseRest Phase = "rest"
)

// Step is one state the search asks the Test to probe.
type Step struct {
	// Number counts the states probed, from 1.
	Number int
	// Estimate is about how many steps the whole search takes; when
	// EstimateIsCap is set, it is the most it may take (MaxProbes).
	Estimate      int
	EstimateIsCap bool
	// Phase says why the state is probed.
	Phase Phase
	// Enabled holds the indices of the items enabled in this state, in
	// ascending order; every other item is disabled.
	Enabled []int
	// Suspects holds the indices of the items still suspected.
	Suspects []int
}

// Test puts the site in the state step.Enabled, probes it and says what
// it found. An error stops the search.
type Test func(ctx context.Context, step Step) (Outcome, error)

// Verdict is the conclusion of a search.
type Verdict string

// The verdicts.
const (
	// VerdictFound means culprits were found: each set makes the site fail
	// on its own, none has an item to spare, and the site works with every
	// other item enabled.
	VerdictFound Verdict = "found"
	// VerdictNoFailure means the site works with every item enabled.
	VerdictNoFailure Verdict = "no_failure"
	// VerdictNotAPlugin means the site fails even with every item disabled:
	// the cause lies elsewhere.
	VerdictNotAPlugin Verdict = "not_a_plugin"
	// VerdictFlaky means a state passed some probes and failed others.
	VerdictFlaky Verdict = "flaky"
	// VerdictGaveUp means the search reached MaxProbes.
	VerdictGaveUp Verdict = "gave_up"
	// VerdictInterrupted means the search was cancelled or failed before
	// its end (set by Run, never by Search).
	VerdictInterrupted Verdict = "interrupted"
)

// DefaultMaxProbes is the number of states a search probes at most when
// SearchOptions.MaxProbes is 0. Bisection needs about log2(n)+3; delta
// debugging may need up to n² for n items, hence the cap.
const DefaultMaxProbes = 64

// MinMaxProbes is the smallest MaxProbes accepted: the two checks and one
// more probe.
const MinMaxProbes = 3

// ErrBadSearch reports options or items a search cannot run with.
var ErrBadSearch = errors.New("bisect: bad search")

// SearchOptions tune Search.
type SearchOptions struct {
	// MaxProbes bounds the states probed. 0 means DefaultMaxProbes.
	MaxProbes int
}

// SearchResult is what Search concluded.
type SearchResult struct {
	// Verdict is the conclusion.
	Verdict Verdict
	// Culprits are the minimal failing sets found, each in ascending
	// order; with VerdictFound, at least one.
	Culprits [][]int
	// Suspects are the items still suspected when the search stopped
	// (VerdictFlaky, VerdictGaveUp).
	Suspects []int
	// FlakyState is the enabled set that was flaky (VerdictFlaky).
	FlakyState []int
	// Probes counts the states probed to the end (a state is probed once
	// and its outcome remembered).
	Probes int
}

// errFlaky and errCap stop a search from deep inside it.
var (
	errFlaky = errors.New("flaky state")
	errCap   = errors.New("maximum number of probes reached")
)

// Search finds the items among n whose being enabled makes the site fail,
// probing states through test. It first checks that the site fails with
// every item enabled and works with every item disabled; then it bisects
// for one culprit (the first half of the suspects is probed; when it
// passes, the culprit is taken to be in the other half, which is checked
// at the end by probing the last suspect alone); when no single item
// explains the failure it runs ddmin (Zeller and Hildebrandt, 2002) from
// the smallest failing state seen. When a set is found it probes every
// other item enabled, and searches again among them if the site still
// fails. A state is probed at most once. An error from test (a cancelled
// context, a command that failed) stops the search and is returned with
// the result so far.
func Search(ctx context.Context, n int, test Test, opts SearchOptions) (SearchResult, error) {
	if n < 1 {
		return SearchResult{}, fmt.Errorf("%w: no items", ErrBadSearch)
	}
	if opts.MaxProbes == 0 {
		opts.MaxProbes = DefaultMaxProbes
	}
	if opts.MaxProbes < MinMaxProbes {
		return SearchResult{}, fmt.Errorf("%w: at least %d probes are needed, got a maximum of %d", ErrBadSearch, MinMaxProbes, opts.MaxProbes)
	}
	s := &searcher{test: test, max: opts.MaxProbes, cache: map[string]Outcome{}}
	all := make([]int, n)
	for i := range all {
		all[i] = i
	}
	s.suspects = all
	s.estimate = 2 + ceilLog2(n) + 1
	var res SearchResult
	finish := func(v Verdict, err error) (SearchResult, error) {
		res.Verdict = v
		res.Probes = s.probes
		switch {
		case errors.Is(err, errFlaky):
			res.Verdict = VerdictFlaky
			res.Suspects = s.suspects
			res.FlakyState = s.flaky
			return res, nil
		case errors.Is(err, errCap):
			res.Verdict = VerdictGaveUp
			res.Suspects = s.suspects
			return res, nil
		}
		return res, err
	}

	o, err := s.probe(ctx, PhaseAllEnabled, all)
	if err != nil {
		return finish("", err)
	}
	if o == Pass {
		return finish(VerdictNoFailure, nil)
	}
	o, err = s.probe(ctx, PhaseAllDisabled, nil)
	if errors.Is(err, errFlaky) || (err == nil && o == Fail) {
		return finish(VerdictNotAPlugin, nil)
	}
	if err != nil {
		return finish("", err)
	}

	remaining := all
	for {
		set, err := s.minimal(ctx, remaining)
		if err != nil {
			return finish("", err)
		}
		res.Culprits = append(res.Culprits, set)
		remaining = minus(remaining, set)
		if len(remaining) == 0 {
			break // every item disabled: known to pass
		}
		s.suspects = remaining
		s.estimate = s.probes + 1
		s.capped = false
		o, err := s.probe(ctx, PhaseRest, remaining)
		if err != nil {
			return finish("", err)
		}
		if o == Pass {
			break
		}
		// The site still fails without them: another culprit is left.
		s.estimate = s.probes + ceilLog2(len(remaining)) + 1
	}
	return finish(VerdictFound, nil)
}

// searcher is the state of one Search.
type searcher struct {
	test     Test
	max      int
	cache    map[string]Outcome
	probes   int
	estimate int
	capped   bool
	suspects []int
	flaky    []int
}

// probe returns the outcome of the state where exactly enabled is
// enabled, from the cache or from the test. A flaky outcome is errFlaky;
// probing past the maximum is errCap.
func (s *searcher) probe(ctx context.Context, phase Phase, enabled []int) (Outcome, error) {
	key := keyOf(enabled)
	if o, ok := s.cache[key]; ok {
		return o, nil
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if s.probes >= s.max {
		return 0, errCap
	}
	s.probes++
	if s.estimate < s.probes {
		s.estimate = s.probes
	}
	est, capped := s.estimate, s.capped
	if capped {
		est = s.max
	}
	o, err := s.test(ctx, Step{
		Number:        s.probes,
		Estimate:      est,
		EstimateIsCap: capped,
		Phase:         phase,
		Enabled:       append([]int(nil), enabled...),
		Suspects:      append([]int(nil), s.suspects...),
	})
	if err != nil {
		s.probes-- // not probed to the end: not counted
		return 0, err
	}
	switch o {
	case Pass, Fail:
	case Flaky:
		s.flaky = append([]int(nil), enabled...)
		return o, errFlaky
	default:
		return 0, fmt.Errorf("%w: the test returned outcome %d", ErrBadSearch, o)
	}
	s.cache[key] = o
	return o, nil
}

// cached returns the remembered outcome of a state, if any.
func (s *searcher) cached(enabled []int) (Outcome, bool) {
	o, ok := s.cache[keyOf(enabled)]
	return o, ok
}

// minimal returns a minimal failing subset of c, a set known to fail:
// bisection while one item may explain the failure, ddmin otherwise.
func (s *searcher) minimal(ctx context.Context, c []int) ([]int, error) {
	cand, lastFail, inferred := c, c, false
	for len(cand) > 1 {
		s.suspects = cand
		if !s.capped {
			s.estimate = max(s.estimate, s.probes+ceilLog2(len(cand))+1)
		}
		first, second := cand[:len(cand)/2], cand[len(cand)/2:]
		o, err := s.probe(ctx, PhaseBisect, first)
		if err != nil {
			return nil, err
		}
		if o == Fail {
			cand, lastFail, inferred = first, first, false
			continue
		}
		// The first half passes: if one item explains the failure, it is
		// in the second half.
		if o2, ok := s.cached(second); ok {
			if o2 == Pass { // both halves pass: items fail only together
				return s.ddmin(ctx, lastFail)
			}
			cand, lastFail, inferred = second, second, false
			continue
		}
		cand, inferred = second, true
	}
	if !inferred {
		return cand, nil
	}
	s.suspects = cand
	o, err := s.probe(ctx, PhaseConfirm, cand)
	if err != nil {
		return nil, err
	}
	if o == Fail {
		return cand, nil
	}
	return s.ddmin(ctx, lastFail)
}

// ddmin is Zeller and Hildebrandt's minimizing delta debugging over c, a
// set known to fail: it returns a subset that fails and passes without any
// one of its items (1-minimal).
func (s *searcher) ddmin(ctx context.Context, c []int) ([]int, error) {
	s.capped = true
	n := 2
	for len(c) >= 2 {
		s.suspects = c
		parts := split(c, n)
		reduced := false
		for _, p := range parts {
			o, err := s.probe(ctx, PhaseDDMin, p)
			if err != nil {
				return nil, err
			}
			if o == Fail {
				c, n, reduced = p, 2, true
				break
			}
		}
		if !reduced && n > 2 { // with two parts the complements are the parts
			for _, p := range parts {
				comp := minus(c, p)
				o, err := s.probe(ctx, PhaseDDMin, comp)
				if err != nil {
					return nil, err
				}
				if o == Fail {
					c, n, reduced = comp, max(n-1, 2), true
					break
				}
			}
		}
		if reduced {
			continue
		}
		if n >= len(c) {
			break
		}
		n = min(len(c), 2*n)
	}
	s.suspects = c
	return c, nil
}

// split cuts c into n contiguous parts whose sizes differ by one at most.
func split(c []int, n int) [][]int {
	parts := make([][]int, 0, n)
	start := 0
	for i := range n {
		end := start + (len(c)-start)/(n-i)
		parts = append(parts, c[start:end])
		start = end
	}
	return parts
}

// minus returns the items of a (ascending) that are not in b.
func minus(a, b []int) []int {
	drop := make(map[int]bool, len(b))
	for _, x := range b {
		drop[x] = true
	}
	out := make([]int, 0, len(a))
	for _, x := range a {
		if !drop[x] {
			out = append(out, x)
		}
	}
	return out
}

// keyOf names a state for the cache.
func keyOf(enabled []int) string {
	var b strings.Builder
	for _, x := range enabled {
		b.WriteString(strconv.Itoa(x))
		b.WriteByte(',')
	}
	return b.String()
}

// ceilLog2 returns the number of halvings that bring n suspects to one.
func ceilLog2(n int) int {
	if n <= 1 {
		return 0
	}
	return bits.Len(uint(n - 1))
}
