package bisect

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
)

// fakeSite is a fake site for the search: it fails when every item of one of
// its culprit sets is enabled, or always when broken; flaky items make a
// state flaky.
type fakeSite struct {
	culprits [][]int
	broken   bool
	flaky    []int
	seen     map[string]bool
	steps    []Step
}

func (s *fakeSite) test(t *testing.T) Test {
	return func(_ context.Context, step Step) (Outcome, error) {
		t.Helper()
		k := keyOf(step.Enabled)
		if s.seen == nil {
			s.seen = map[string]bool{}
		}
		if s.seen[k] {
			t.Errorf("state %v probed twice", step.Enabled)
		}
		s.seen[k] = true
		if got, want := step.Number, len(s.steps)+1; got != want {
			t.Errorf("step number: got %d, want %d", got, want)
		}
		if step.Estimate < step.Number {
			t.Errorf("step %d: estimate %d is below the step", step.Number, step.Estimate)
		}
		s.steps = append(s.steps, step)
		on := map[int]bool{}
		for _, x := range step.Enabled {
			on[x] = true
		}
		for _, x := range s.flaky {
			if on[x] {
				return Flaky, nil
			}
		}
		if s.broken {
			return Fail, nil
		}
		for _, set := range s.culprits {
			all := true
			for _, x := range set {
				all = all && on[x]
			}
			if all {
				return Fail, nil
			}
		}
		return Pass, nil
	}
}

// TestSearchOneCulprit puts one culprit at every position of lists of 1 to
// 40 items: it is found with at most log2(n)+4 probes (two checks, the
// halvings, a confirmation when the last half was inferred, the rest).
func TestSearchOneCulprit(t *testing.T) {
	t.Parallel()
	worst := map[int]int{}
	for n := 1; n <= 40; n++ {
		for c := range n {
			s := &fakeSite{culprits: [][]int{{c}}}
			res, err := Search(context.Background(), n, s.test(t), SearchOptions{})
			if err != nil {
				t.Fatalf("n=%d culprit %d: %v", n, c, err)
			}
			if res.Verdict != VerdictFound || !reflect.DeepEqual(res.Culprits, [][]int{{c}}) {
				t.Errorf("n=%d culprit %d: got %s %v, want found [[%d]]", n, c, res.Verdict, res.Culprits, c)
			}
			if limit := 2 + ceilLog2(n) + 2; res.Probes > limit {
				t.Errorf("n=%d culprit %d: %d probes, want at most %d", n, c, res.Probes, limit)
			}
			if res.Probes != len(s.steps) {
				t.Errorf("n=%d: Probes %d, but the test ran %d times", n, res.Probes, len(s.steps))
			}
			worst[n] = max(worst[n], res.Probes)
		}
	}
	t.Logf("most probes for one culprit among n items: n=8: %d, n=16: %d, n=32: %d, n=40: %d", worst[8], worst[16], worst[32], worst[40])
}

// TestSearchPairs puts every pair of culprits that fail only together in
// lists of 2 to 12 items: ddmin finds the pair.
func TestSearchPairs(t *testing.T) {
	t.Parallel()
	worst := map[int]int{}
	for n := 2; n <= 12; n++ {
		for a := range n {
			for b := a + 1; b < n; b++ {
				s := &fakeSite{culprits: [][]int{{a, b}}}
				res, err := Search(context.Background(), n, s.test(t), SearchOptions{MaxProbes: 200})
				if err != nil {
					t.Fatal(err)
				}
				if res.Verdict != VerdictFound || !reflect.DeepEqual(res.Culprits, [][]int{{a, b}}) {
					t.Errorf("n=%d pair %d,%d: got %s %v", n, a, b, res.Verdict, res.Culprits)
				}
				worst[n] = max(worst[n], res.Probes)
			}
		}
	}
	t.Logf("most probes for a pair among n items: n=4: %d, n=8: %d, n=12: %d", worst[4], worst[8], worst[12])
}

func TestSearchCases(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc         string
		n            int
		site         fakeSite
		max          int
		want         Verdict
		wantCulprits [][]int
		wantSuspects []int
		wantProbes   int // 0: not checked
	}{
		{desc: "no failure with every item enabled", n: 8, want: VerdictNoFailure, wantProbes: 1},
		{desc: "fails with every item disabled", n: 8, site: fakeSite{broken: true}, want: VerdictNotAPlugin, wantProbes: 2},
		{desc: "flaky with every item enabled", n: 8, site: fakeSite{culprits: [][]int{{3}}, flaky: []int{5}}, want: VerdictFlaky, wantSuspects: []int{0, 1, 2, 3, 4, 5, 6, 7}, wantProbes: 1},
		{desc: "two independent culprits", n: 8, site: fakeSite{culprits: [][]int{{1}, {6}}}, want: VerdictFound, wantCulprits: [][]int{{1}, {6}}},
		{desc: "a triple", n: 10, site: fakeSite{culprits: [][]int{{0, 4, 9}}}, max: 200, want: VerdictFound, wantCulprits: [][]int{{0, 4, 9}}},
		{desc: "a culprit and a pair", n: 10, site: fakeSite{culprits: [][]int{{2}, {5, 8}}}, max: 200, want: VerdictFound, wantCulprits: [][]int{{2}, {5, 8}}},
		{desc: "every item is needed", n: 3, site: fakeSite{culprits: [][]int{{0, 1, 2}}}, want: VerdictFound, wantCulprits: [][]int{{0, 1, 2}}},
		{desc: "one item", n: 1, site: fakeSite{culprits: [][]int{{0}}}, want: VerdictFound, wantCulprits: [][]int{{0}}, wantProbes: 2},
		{desc: "the cap stops ddmin", n: 32, site: fakeSite{culprits: [][]int{{3, 29}}}, max: 10, want: VerdictGaveUp, wantProbes: 10},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			res, err := Search(context.Background(), tc.n, tc.site.test(t), SearchOptions{MaxProbes: tc.max})
			if err != nil {
				t.Fatal(err)
			}
			if res.Verdict != tc.want {
				t.Fatalf("verdict: got %s, want %s (%+v)", res.Verdict, tc.want, res)
			}
			if tc.wantCulprits != nil && !reflect.DeepEqual(res.Culprits, tc.wantCulprits) {
				t.Errorf("culprits: got %v, want %v", res.Culprits, tc.wantCulprits)
			}
			if tc.wantSuspects != nil && !reflect.DeepEqual(res.Suspects, tc.wantSuspects) {
				t.Errorf("suspects: got %v, want %v", res.Suspects, tc.wantSuspects)
			}
			if tc.wantProbes != 0 && res.Probes != tc.wantProbes {
				t.Errorf("probes: got %d, want %d", res.Probes, tc.wantProbes)
			}
			if tc.want == VerdictGaveUp {
				// The suspects are a failing set holding the pair.
				for _, x := range tc.site.culprits[0] {
					if !slices.Contains(res.Suspects, x) {
						t.Errorf("suspects %v lack culprit %d", res.Suspects, x)
					}
				}
			}
			t.Logf("%s: %s %v in %d probes", tc.desc, res.Verdict, res.Culprits, res.Probes)
		})
	}
}

// TestSearchFlakyMidway makes a state flaky in the middle of a bisection:
// the search stops there and names the flaky state.
func TestSearchFlakyMidway(t *testing.T) {
	t.Parallel()
	// Item 6 is the culprit; item 1 is flaky only when item 6 is off, so
	// every enabled and every disabled pass the checks.
	calls := 0
	test := func(_ context.Context, step Step) (Outcome, error) {
		calls++
		if slices.Contains(step.Enabled, 6) {
			return Fail, nil
		}
		if slices.Contains(step.Enabled, 1) {
			return Flaky, nil
		}
		return Pass, nil
	}
	res, err := Search(context.Background(), 8, test, SearchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Verdict != VerdictFlaky || !reflect.DeepEqual(res.FlakyState, []int{0, 1, 2, 3}) {
		t.Errorf("got %s flaky state %v, want flaky at [0 1 2 3]", res.Verdict, res.FlakyState)
	}
	if res.Probes != calls {
		t.Errorf("probes %d, calls %d", res.Probes, calls)
	}
}

func TestSearchErrors(t *testing.T) {
	t.Parallel()
	t.Run("an error from the test stops the search", func(t *testing.T) {
		boom := errors.New("disable failed")
		n := 0
		res, err := Search(context.Background(), 8, func(context.Context, Step) (Outcome, error) {
			n++
			if n == 3 {
				return 0, boom
			}
			return Fail - Outcome(n-1), nil // fail, pass, then the error
		}, SearchOptions{})
		if !errors.Is(err, boom) || res.Probes != 2 {
			t.Errorf("got %v after %d probes, want the test's error after 2", err, res.Probes)
		}
	})
	t.Run("a cancelled context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		res, err := Search(ctx, 8, func(ctx context.Context, s Step) (Outcome, error) {
			if s.Number == 2 {
				cancel()
				return 0, ctx.Err()
			}
			return Fail, nil
		}, SearchOptions{})
		if !errors.Is(err, context.Canceled) || res.Probes != 1 {
			t.Errorf("got %v after %d probes, want context.Canceled after 1", err, res.Probes)
		}
	})
	for _, tc := range []struct {
		n, max int
	}{{0, 0}, {-1, 0}, {4, 2}, {4, -5}} {
		t.Run(fmt.Sprintf("n=%d max=%d", tc.n, tc.max), func(t *testing.T) {
			_, err := Search(context.Background(), tc.n, func(context.Context, Step) (Outcome, error) {
				t.Fatal("probed")
				return 0, nil
			}, SearchOptions{MaxProbes: tc.max})
			if !errors.Is(err, ErrBadSearch) {
				t.Errorf("got %v, want ErrBadSearch", err)
			}
		})
	}
}

func TestSplit(t *testing.T) {
	t.Parallel()
	c := []int{0, 1, 2, 3, 4, 5, 6}
	for n := 1; n <= len(c); n++ {
		parts := split(c, n)
		if len(parts) != n {
			t.Fatalf("split into %d: got %d parts", n, len(parts))
		}
		var all []int
		for _, p := range parts {
			if len(p) == 0 {
				t.Errorf("split into %d: an empty part in %v", n, parts)
			}
			all = append(all, p...)
		}
		if !reflect.DeepEqual(all, c) {
			t.Errorf("split into %d: parts %v do not make %v", n, parts, c)
		}
	}
}
