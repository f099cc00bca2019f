package limit

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatewise/gatewise/internal/cause"
	"github.com/gatewise/gatewise/internal/config"
)

// fakeClock is a clock that moves only when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeClock) Add(d time.Duration) {
	f.mu.Lock()
	f.t = f.t.Add(d)
	f.mu.Unlock()
}

func (f *fakeClock) Set(t time.Time) {
	f.mu.Lock()
	f.t = t
	f.mu.Unlock()
}

func intp(n int) *int    { return &n }
func boolp(b bool) *bool { return &b }

// fixedConfig is a fixed limit of n with a queue of q and a queue timeout.
func fixedConfig(n, q int, timeout time.Duration) config.Concurrency {
	return config.Concurrency{MaxInFlight: n, Adaptive: boolp(false), MinLimit: 4, MaxLimit: 1000,
		Queue: intp(q), QueueTimeout: config.Duration{Duration: timeout}}
}

// adaptiveConfig is an adaptive limit within [lo, hi] without a queue.
func adaptiveConfig(lo, hi int) config.Concurrency {
	return config.Concurrency{Adaptive: boolp(true), MinLimit: lo, MaxLimit: hi,
		Queue: intp(0), QueueTimeout: config.Duration{Duration: time.Second}}
}

// acquired is the outcome of an Acquire made in a goroutine.
type acquired struct {
	name    string
	release func(Result)
	err     error
}

// acquireAsync starts Acquire in a goroutine and waits until it has
// returned or is queued (Queued() reaches wantQueued).
func acquireAsync(t *testing.T, c *Concurrency, ctx context.Context, name string, p Priority, wantQueued int, out chan<- acquired) {
	t.Helper()
	go func() {
		rel, err := c.Acquire(ctx, p)
		out <- acquired{name, rel, err}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for c.Queued() < wantQueued {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not queued after 5s (queued %d, want %d)", name, c.Queued(), wantQueued)
		}
		time.Sleep(time.Millisecond)
	}
}

// receive returns the next outcome, failing after 5s.
func receive(t *testing.T, out <-chan acquired) acquired {
	t.Helper()
	select {
	case a := <-out:
		return a
	case <-time.After(5 * time.Second):
		t.Fatal("no Acquire returned within 5s")
		return acquired{}
	}
}

// limitError checks that err is a connection_limit_reached refusal with
// detail and a Retry-After within bounds.
func limitError(t *testing.T, err error, detail string) {
	t.Helper()
	ce, ok := cause.Of(err)
	if !ok {
		t.Fatalf("got error %v, want a *cause.Error", err)
	}
	if ce.ID != cause.ConnectionLimitReached || ce.Detail != detail {
		t.Errorf("got %s (%s), want %s (%s)", ce.ID, ce.Detail, cause.ConnectionLimitReached, detail)
	}
	if ce.RetryAfter < minRetryAfter || ce.RetryAfter >= maxRetryAfter {
		t.Errorf("RetryAfter = %v, want [%v, %v)", ce.RetryAfter, minRetryAfter, maxRetryAfter)
	}
}

func TestParsePriority(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want Priority
	}{
		{"low", PriorityLow}, {"normal", PriorityNormal}, {"", PriorityNormal}, {"high", PriorityHigh},
		{"HIGH", PriorityHigh}, {" low ", PriorityLow}, {"urgent", PriorityNormal},
	} {
		if got := ParsePriority(tc.in); got != tc.want {
			t.Errorf("ParsePriority(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
	if got := PriorityHigh.String(); got != "high" {
		t.Errorf("PriorityHigh.String() = %q", got)
	}
}

func TestConcurrencyFixedLimit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc  string
		limit int
	}{
		{"a limit of one", 1},
		{"a limit of three", 3},
		{"a limit of 64", 64},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			c := NewConcurrency(fixedConfig(tc.limit, 0, time.Second), nil)
			var rels []func(Result)
			for i := range tc.limit {
				rel, err := c.Acquire(context.Background(), PriorityNormal)
				if err != nil {
					t.Fatalf("Acquire %d of %d: %v", i+1, tc.limit, err)
				}
				rels = append(rels, rel)
			}
			if got, want := c.InFlight(), tc.limit; got != want {
				t.Errorf("InFlight = %d, want %d", got, want)
			}
			if got, want := c.Limit(), tc.limit; got != want {
				t.Errorf("Limit = %d, want %d", got, want)
			}
			_, err := c.Acquire(context.Background(), PriorityHigh)
			limitError(t, err, DetailQueueFull)
			rels[0](Result{Latency: time.Millisecond})
			rel, err := c.Acquire(context.Background(), PriorityLow)
			if err != nil {
				t.Fatalf("Acquire after a release: %v", err)
			}
			rel(Result{})
			for _, r := range rels[1:] {
				r(Result{})
			}
			if got := c.InFlight(); got != 0 {
				t.Errorf("InFlight after releasing all = %d, want 0", got)
			}
		})
	}
}

func TestConcurrencyNoLimit(t *testing.T) {
	t.Parallel()
	c := NewConcurrency(config.Concurrency{Adaptive: boolp(false)}, nil)
	for range 10000 {
		if _, err := c.Acquire(context.Background(), PriorityLow); err != nil {
			t.Fatal(err)
		}
	}
	if got := c.InFlight(); got != 10000 {
		t.Errorf("InFlight = %d, want 10000", got)
	}
}

func TestConcurrencyQueueFull(t *testing.T) {
	t.Parallel()
	c := NewConcurrency(fixedConfig(1, 2, 10*time.Second), nil)
	rel, err := c.Acquire(context.Background(), PriorityNormal)
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan acquired, 4)
	acquireAsync(t, c, context.Background(), "first", PriorityNormal, 1, out)
	acquireAsync(t, c, context.Background(), "second", PriorityHigh, 2, out)
	for _, p := range []Priority{PriorityLow, PriorityNormal} {
		_, err = c.Acquire(context.Background(), p)
		limitError(t, err, DetailQueueFull)
	}
	if got := c.Queued(); got != 2 {
		t.Errorf("Queued = %d, want 2", got)
	}
	rel(Result{})
	a := receive(t, out)
	if a.err != nil || a.name != "second" {
		t.Fatalf("got %s %v, want second (high) admitted", a.name, a.err)
	}
	a.release(Result{})
	a = receive(t, out)
	if a.err != nil || a.name != "first" {
		t.Fatalf("got %s %v, want first admitted", a.name, a.err)
	}
	a.release(Result{})
}

func TestConcurrencyQueueTimeout(t *testing.T) {
	t.Parallel()
	const timeout = 50 * time.Millisecond
	c := NewConcurrency(fixedConfig(1, 10, timeout), nil)
	rel, err := c.Acquire(context.Background(), PriorityNormal)
	if err != nil {
		t.Fatal(err)
	}
	defer rel(Result{})
	start := time.Now()
	_, err = c.Acquire(context.Background(), PriorityHigh)
	took := time.Since(start)
	limitError(t, err, DetailQueueTimeout)
	if took < timeout {
		t.Errorf("refused after %v, before the queue timeout %v", took, timeout)
	}
	if got := c.Queued(); got != 0 {
		t.Errorf("Queued after the timeout = %d, want 0", got)
	}
	if got := c.InFlight(); got != 1 {
		t.Errorf("InFlight = %d, want 1", got)
	}
}

func TestConcurrencyPriorityOrder(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc  string
		queue []Priority // in the order they arrive
		want  []string   // the order they are admitted
	}{
		{"high before normal before low", []Priority{PriorityLow, PriorityNormal, PriorityHigh}, []string{"2", "1", "0"}},
		{"FIFO within a priority", []Priority{PriorityNormal, PriorityNormal, PriorityNormal}, []string{"0", "1", "2"}},
		{"mixed", []Priority{PriorityNormal, PriorityLow, PriorityHigh, PriorityNormal, PriorityHigh},
			[]string{"2", "4", "0", "3", "1"}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			c := NewConcurrency(fixedConfig(1, 10, 10*time.Second), newFakeClock().Now)
			rel, err := c.Acquire(context.Background(), PriorityNormal)
			if err != nil {
				t.Fatal(err)
			}
			out := make(chan acquired, len(tc.queue))
			for i, p := range tc.queue {
				acquireAsync(t, c, context.Background(), fmt.Sprint(i), p, i+1, out)
			}
			var got []string
			for range tc.queue {
				rel(Result{})
				a := receive(t, out)
				if a.err != nil {
					t.Fatalf("%s: %v", a.name, a.err)
				}
				got = append(got, a.name)
				rel = a.release
			}
			rel(Result{})
			if !slices.Equal(got, tc.want) {
				t.Errorf("admitted %v, want %v", got, tc.want)
			}
		})
	}
}

func TestConcurrencyDisplacement(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc     string
		queued   []Priority
		arriving Priority
		shed     string // the waiter refused, or "new" when the arriving one is
	}{
		{"high displaces the lowest", []Priority{PriorityNormal, PriorityLow, PriorityLow}, PriorityHigh, "1"},
		{"high displaces normal when no low waits", []Priority{PriorityNormal, PriorityHigh}, PriorityHigh, "0"},
		{"normal displaces low", []Priority{PriorityHigh, PriorityLow}, PriorityNormal, "1"},
		{"low displaces no one", []Priority{PriorityLow, PriorityLow}, PriorityLow, "new"},
		{"high does not displace high", []Priority{PriorityHigh, PriorityHigh}, PriorityHigh, "new"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			c := NewConcurrency(fixedConfig(1, len(tc.queued), 10*time.Second), newFakeClock().Now)
			rel, err := c.Acquire(context.Background(), PriorityNormal)
			if err != nil {
				t.Fatal(err)
			}
			out := make(chan acquired, len(tc.queued)+1)
			for i, p := range tc.queued {
				acquireAsync(t, c, context.Background(), fmt.Sprint(i), p, i+1, out)
			}
			if tc.shed == "new" {
				_, err := c.Acquire(context.Background(), tc.arriving)
				limitError(t, err, DetailQueueFull)
			} else {
				acquireAsync(t, c, context.Background(), "new", tc.arriving, len(tc.queued), out)
				a := receive(t, out)
				if a.name != tc.shed {
					t.Fatalf("%s returned first (%v), want %s shed", a.name, a.err, tc.shed)
				}
				limitError(t, a.err, DetailShed)
			}
			if got, want := c.Queued(), len(tc.queued); got != want {
				t.Errorf("Queued = %d, want %d", got, want)
			}
			for range len(tc.queued) {
				rel(Result{})
				a := receive(t, out)
				if a.err != nil {
					t.Fatalf("%s: %v", a.name, a.err)
				}
				rel = a.release
			}
			rel(Result{})
		})
	}
}

// TestConcurrencyStandingQueue checks the queue discipline: a priority
// level is served oldest first until its oldest waiter has waited longer
// than the interval; then, until the queue empties with a slot free, newest
// first, its waiters older than codelTarget are shed, and a newcomer to the
// full queue sheds its oldest waiter.
func TestConcurrencyStandingQueue(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	c := NewConcurrency(fixedConfig(1, 4, 10*time.Second), clock.Now)
	if c.interval != standingInterval {
		t.Fatalf("interval = %v, want %v", c.interval, standingInterval)
	}
	rel, err := c.Acquire(context.Background(), PriorityNormal)
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan acquired, 16)
	enqueue := func(name string, wantQueued int) {
		t.Helper()
		acquireAsync(t, c, context.Background(), name, PriorityNormal, wantQueued, out)
	}
	// expect receives len(want) outcomes: names to "admitted" or "shed".
	expect := func(want map[string]string) {
		t.Helper()
		got := map[string]string{}
		for range want {
			a := receive(t, out)
			switch {
			case a.err == nil:
				got[a.name] = "admitted"
				rel = a.release
			default:
				limitError(t, a.err, DetailShed)
				got[a.name] = "shed"
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	next := func(want map[string]string) {
		t.Helper()
		rel(Result{})
		expect(want)
	}
	enqueue("0", 1)
	enqueue("1", 2)
	enqueue("2", 3)
	next(map[string]string{"0": "admitted"}) // FIFO: a young queue
	clock.Add(standingInterval + time.Millisecond)
	enqueue("3", 3)
	enqueue("4", 4)
	// Full, and its oldest waiter waited longer than the interval: a
	// newcomer sheds it.
	acquireAsync(t, c, context.Background(), "5", PriorityNormal, 4, out)
	expect(map[string]string{"1": "shed"})
	// Standing: "2" is older than the target and shed; LIFO.
	next(map[string]string{"2": "shed", "5": "admitted"})
	next(map[string]string{"4": "admitted"})
	next(map[string]string{"3": "admitted"})
	// Still standing: the queue emptied, but no slot was left free.
	enqueue("6", 1)
	enqueue("7", 2)
	next(map[string]string{"7": "admitted"})
	next(map[string]string{"6": "admitted"})
	// Still standing: a slot was left free, but the queue filled again
	// within the interval.
	rel(Result{})
	rel, err = c.Acquire(context.Background(), PriorityNormal)
	if err != nil {
		t.Fatal(err)
	}
	enqueue("8", 1)
	enqueue("9", 2)
	next(map[string]string{"9": "admitted"})
	next(map[string]string{"8": "admitted"})
	// A slot stayed free for an interval: the overload is over, FIFO.
	rel(Result{})
	clock.Add(standingInterval)
	rel, err = c.Acquire(context.Background(), PriorityNormal)
	if err != nil {
		t.Fatal(err)
	}
	enqueue("10", 1)
	enqueue("11", 2)
	next(map[string]string{"10": "admitted"})
	next(map[string]string{"11": "admitted"})
	rel(Result{})
	if got := c.Queued(); got != 0 {
		t.Errorf("Queued = %d, want 0", got)
	}
}

func TestConcurrencyInterval(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc      string
		timeout   time.Duration
		latencies []time.Duration
		want      time.Duration
	}{
		{"100ms", time.Second, nil, 100 * time.Millisecond},
		{"at most half the queue timeout", 100 * time.Millisecond, nil, 50 * time.Millisecond},
		{"a fast upstream: 100ms", time.Second, []time.Duration{time.Millisecond, 2 * time.Millisecond}, 100 * time.Millisecond},
		{"a slow upstream: 100ms", time.Second, []time.Duration{2 * time.Second}, 100 * time.Millisecond},
		{"a slow upstream, a short queue timeout", 60 * time.Millisecond, []time.Duration{2 * time.Second}, 30 * time.Millisecond},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			c := NewConcurrency(fixedConfig(1, 1, tc.timeout), nil)
			for _, l := range tc.latencies {
				rel, err := c.Acquire(context.Background(), PriorityNormal)
				if err != nil {
					t.Fatal(err)
				}
				rel(Result{Latency: l})
			}
			if got := c.interval; got != tc.want {
				t.Errorf("interval %v, want %v", got, tc.want)
			}
		})
	}
}

// TestConcurrencyAdaptiveBurst checks that a queue behind an adaptive limit
// does not stand while the upstream is not congested: a burst waits its
// turn, oldest first, instead of being shed.
func TestConcurrencyAdaptiveBurst(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	cc := adaptiveConfig(1, 1)
	cc.Queue = intp(10)
	cc.QueueTimeout.Duration = 10 * time.Second
	c := NewConcurrency(cc, clock.Now)
	rel, err := c.Acquire(context.Background(), PriorityNormal)
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan acquired, 4)
	for i := range 4 {
		acquireAsync(t, c, context.Background(), fmt.Sprint(i), PriorityNormal, i+1, out)
	}
	for i := range 4 {
		clock.Add(standingInterval) // every waiter waits longer than the interval
		rel(Result{Latency: standingInterval})
		a := receive(t, out)
		if a.err != nil || a.name != fmt.Sprint(i) {
			t.Fatalf("got %s (%v), want %d admitted", a.name, a.err, i)
		}
		rel = a.release
	}
	rel(Result{Latency: standingInterval})
}

func TestConcurrencyCancelWhileQueued(t *testing.T) {
	t.Parallel()
	c := NewConcurrency(fixedConfig(1, 10, 10*time.Second), nil)
	rel, err := c.Acquire(context.Background(), PriorityNormal)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan acquired, 2)
	acquireAsync(t, c, ctx, "cancelled", PriorityHigh, 1, out)
	acquireAsync(t, c, context.Background(), "other", PriorityLow, 2, out)
	cancel()
	a := receive(t, out)
	if a.name != "cancelled" {
		t.Fatalf("%s returned first, want the cancelled one", a.name)
	}
	ce, ok := cause.Of(a.err)
	if !ok || ce.ID != cause.ClientClosed || !errors.Is(a.err, context.Canceled) {
		t.Fatalf("got %v, want client_closed wrapping context.Canceled", a.err)
	}
	if got := c.Queued(); got != 1 {
		t.Errorf("Queued = %d, want 1", got)
	}
	rel(Result{})
	a = receive(t, out)
	if a.err != nil || a.name != "other" {
		t.Fatalf("got %s %v, want other admitted", a.name, a.err)
	}
	a.release(Result{})
	if got := c.InFlight(); got != 0 {
		t.Errorf("InFlight = %d, want 0: a slot leaked", got)
	}
}

// TestConcurrencyStress runs many goroutines through a small limit with a
// queue, some with contexts that end, and checks the limit is never
// exceeded and no slot leaks (run it with -race).
func TestConcurrencyStress(t *testing.T) {
	t.Parallel()
	const limit = 4
	c := NewConcurrency(fixedConfig(limit, 8, 20*time.Millisecond), nil)
	var inside, worst atomic.Int64
	var wg sync.WaitGroup
	var admitted, refused, gone atomic.Int64
	for g := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration(i%5)*time.Millisecond+time.Millisecond)
				rel, err := c.Acquire(ctx, Priority(g%3))
				cancel()
				if err != nil {
					if ce, _ := cause.Of(err); ce != nil && ce.ID == cause.ClientClosed {
						gone.Add(1)
					} else {
						refused.Add(1)
					}
					continue
				}
				admitted.Add(1)
				n := inside.Add(1)
				for {
					w := worst.Load()
					if n <= w || worst.CompareAndSwap(w, n) {
						break
					}
				}
				time.Sleep(50 * time.Microsecond)
				inside.Add(-1)
				rel(Result{Latency: time.Millisecond})
			}
		}()
	}
	wg.Wait()
	if w := worst.Load(); w > limit {
		t.Errorf("%d requests in flight at once, limit %d", w, limit)
	}
	if got := c.InFlight(); got != 0 {
		t.Errorf("InFlight = %d after all, want 0", got)
	}
	if got := c.Queued(); got != 0 {
		t.Errorf("Queued = %d after all, want 0", got)
	}
	t.Logf("admitted %d, refused %d, client gone %d", admitted.Load(), refused.Load(), gone.Load())
}

// fill acquires slots until the limit is reached and returns their
// releases.
func fill(t *testing.T, c *Concurrency) []func(Result) {
	t.Helper()
	var rels []func(Result)
	for c.InFlight() < c.Limit() {
		rel, err := c.Acquire(context.Background(), PriorityNormal)
		if err != nil {
			t.Fatalf("Acquire below the limit: %v", err)
		}
		rels = append(rels, rel)
	}
	return rels
}

// rounds runs n rounds at the limit: fill every slot, let lat pass, release
// them all with latency lat (failed when fail). It returns the limits seen
// after each round.
func rounds(t *testing.T, c *Concurrency, clock *fakeClock, n int, lat time.Duration, fail bool) []int {
	t.Helper()
	var seen []int
	for range n {
		rels := fill(t, c)
		clock.Add(lat)
		for _, r := range rels {
			r(Result{Latency: lat, Failed: fail})
		}
		seen = append(seen, c.Limit())
	}
	return seen
}

func TestConcurrencyAdaptive(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc string
		lo   int
		hi   int
		run  func(t *testing.T, c *Concurrency, clock *fakeClock)
	}{
		{"starts at the initial limit", 1, 1000, func(t *testing.T, c *Concurrency, _ *fakeClock) {
			if got := c.Limit(); got != gradInitialLimit {
				t.Errorf("Limit = %d, want %d", got, gradInitialLimit)
			}
		}},
		{"the initial limit is within the bounds", 10, 1000, func(t *testing.T, c *Concurrency, _ *fakeClock) {
			if got := c.Limit(); got != 10 {
				t.Errorf("Limit = %d, want the min limit 10", got)
			}
		}},
		{"grows while the latency stays low and the limit is used", 4, 1000, func(t *testing.T, c *Concurrency, clock *fakeClock) {
			seen := rounds(t, c, clock, 50, 20*time.Millisecond, false)
			if !slices.IsSorted(seen) || seen[len(seen)-1] < 100 {
				t.Errorf("limits %v: want a steady growth past 100", seen)
			}
		}},
		{"doubles until the upstream is first seen to queue, then grows by the tolerance", 4, 1000, func(t *testing.T, c *Concurrency, clock *fakeClock) {
			seen := rounds(t, c, clock, 5, 20*time.Millisecond, false)
			if seen[len(seen)-1] < 64 {
				t.Fatalf("limits %v after 5 rounds at a steady latency: want a slow start past 64", seen)
			}
			// One round at 3× the latency ends the slow start.
			rounds(t, c, clock, 1, 60*time.Millisecond, false)
			before := c.Limit()
			seen = rounds(t, c, clock, 3, 20*time.Millisecond, false)
			for i, l := range seen {
				prev := before
				if i > 0 {
					prev = seen[i-1]
				}
				if float64(l) > gradTolerance*float64(prev)+1 {
					t.Errorf("from %d, limits %v after the upstream queued once: want growth of at most %.1f× a round", before, seen, gradTolerance)
					break
				}
			}
		}},
		{"does not grow when the load uses less than half of it", 4, 1000, func(t *testing.T, c *Concurrency, clock *fakeClock) {
			rounds(t, c, clock, 10, 20*time.Millisecond, false)
			one := func() {
				rel, err := c.Acquire(context.Background(), PriorityNormal)
				if err != nil {
					t.Fatal(err)
				}
				clock.Add(20 * time.Millisecond)
				rel(Result{Latency: 20 * time.Millisecond})
			}
			for range 2 * gradWindowSamples { // the window that saw the rounds end
				one()
			}
			before := c.Limit()
			for range 10 * gradWindowSamples {
				one()
			}
			if got := c.Limit(); got != before {
				t.Errorf("Limit went from %d to %d while one request was in flight", before, got)
			}
		}},
		{"decreases when the latency rises", 4, 1000, func(t *testing.T, c *Concurrency, clock *fakeClock) {
			rounds(t, c, clock, 40, 20*time.Millisecond, false)
			before := c.Limit()
			seen := rounds(t, c, clock, 10, 60*time.Millisecond, false)
			if !slices.IsSortedFunc(seen, func(a, b int) int { return b - a }) || seen[len(seen)-1] > before/4 {
				t.Errorf("from %d, limits %v: want a steady decrease below a quarter", before, seen)
			}
		}},
		{"a latency within the tolerance is no decrease", 4, 1000, func(t *testing.T, c *Concurrency, clock *fakeClock) {
			rounds(t, c, clock, 10, 20*time.Millisecond, false)
			before := c.Limit()
			seen := rounds(t, c, clock, 5, 24*time.Millisecond, false)
			if seen[len(seen)-1] < before {
				t.Errorf("from %d, limits %v at 1.2× the no-load latency: want no decrease", before, seen)
			}
		}},
		{"failures decrease it multiplicatively", 4, 1000, func(t *testing.T, c *Concurrency, clock *fakeClock) {
			rounds(t, c, clock, 40, 20*time.Millisecond, false)
			before := c.Limit()
			seen := rounds(t, c, clock, 4, 20*time.Millisecond, true)
			if !slices.IsSortedFunc(seen, func(a, b int) int { return b - a }) || seen[len(seen)-1] > before/4 {
				t.Errorf("from %d, limits %v after rounds of timeouts: want a steady decrease below a quarter", before, seen)
			}
		}},
		{"stays within the max limit", 4, 50, func(t *testing.T, c *Concurrency, clock *fakeClock) {
			seen := rounds(t, c, clock, 40, 20*time.Millisecond, false)
			if m := slices.Max(seen); m != 50 {
				t.Errorf("limits %v: want a max of 50", seen)
			}
		}},
		{"stays within the min limit", 6, 50, func(t *testing.T, c *Concurrency, clock *fakeClock) {
			rounds(t, c, clock, 10, 20*time.Millisecond, false)
			seen := rounds(t, c, clock, 30, 2*time.Second, true)
			if m := slices.Min(seen); m != 6 {
				t.Errorf("limits %v: want a min of 6", seen)
			}
		}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			clock := newFakeClock()
			c := NewConcurrency(adaptiveConfig(tc.lo, tc.hi), clock.Now)
			tc.run(t, c, clock)
		})
	}
}

// TestConcurrencyAdaptiveProbe checks that the limit is halved for one
// window every gradProbeEvery, and that the probe lets the no-load latency
// rise when the upstream got slower for good.
func TestConcurrencyAdaptiveProbe(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	c := NewConcurrency(adaptiveConfig(4, 40), clock.Now)
	rounds(t, c, clock, 30, 20*time.Millisecond, false)
	if got := c.Limit(); got != 40 {
		t.Fatalf("Limit = %d, want the max 40", got)
	}
	// Now the upstream takes 100ms: the limit falls to its floor.
	rounds(t, c, clock, 10, 100*time.Millisecond, false)
	if got := c.Limit(); got != 4 {
		t.Fatalf("Limit at 5× the no-load latency = %d, want the min 4", got)
	}
	// Up to the probe, the limit stays at its floor; the probe measures
	// the new no-load latency and the limit grows again.
	var seen []int
	for range 150 {
		seen = append(seen, rounds(t, c, clock, 1, 100*time.Millisecond, false)...)
	}
	if slices.Max(seen) != 40 {
		t.Errorf("limits %v: want a growth back to 40 after the probe", seen)
	}
	// A probe halves the limit for one window.
	for range 120 {
		if got := rounds(t, c, clock, 1, 100*time.Millisecond, false)[0]; got == 20 {
			return
		}
	}
	t.Errorf("no probe (a limit of 20) within 12s at the max")
}

// upstreamEvent is a request finishing at the simulated upstream.
type upstreamEvent struct {
	at      time.Time
	started time.Time
	release func(Result)
}

type eventHeap []upstreamEvent

func (h eventHeap) Len() int           { return len(h) }
func (h eventHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h eventHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *eventHeap) Push(x any)        { *h = append(*h, x.(upstreamEvent)) }
func (h *eventHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// simResult is what a simulated run measured after its warm-up.
type simResult struct {
	goodput  float64 // share of the upstream's capacity used
	p99      time.Duration
	mean     time.Duration
	avgLimit float64
	limits   []int
}

// upstreamSim is a simulated upstream: slots concurrent slots, a service
// time around service (uniform within ±jitter), and its own FIFO queue
// beyond the slots. noise (uniform in [0, noise)) is added to the latency
// the gateway measures, as its own delays would.
type upstreamSim struct {
	slots           int
	service, jitter time.Duration
	noise           time.Duration
}

func (u upstreamSim) capacity() float64 { return float64(u.slots) / u.service.Seconds() }

// simulate offers rate requests per second, evenly spaced, for d to u
// through c (without a queue, so that Acquire never blocks), on the fake
// clock, and measures from warm on.
func simulate(c *Concurrency, clock *fakeClock, u upstreamSim, rate float64, d, warm time.Duration) simResult {
	rng := rand.New(rand.NewPCG(1, 2))
	start := clock.Now()
	var busy eventHeap
	var waiting []upstreamEvent // at the upstream, beyond its slots
	every := time.Duration(float64(time.Second) / rate)
	nextArrival := start
	var lats []time.Duration
	var sum time.Duration
	var limitSum float64
	var limitN int
	var res simResult
	serve := func(e upstreamEvent, now time.Time) {
		s := u.service
		if u.jitter > 0 {
			s += time.Duration(rng.Int64N(int64(2*u.jitter))) - u.jitter
		}
		e.at = now.Add(s)
		heap.Push(&busy, e)
	}
	for {
		now := nextArrival
		arrival := true
		if busy.Len() > 0 && busy[0].at.Before(now) {
			now, arrival = busy[0].at, false
		}
		if now.Sub(start) > d {
			break
		}
		clock.Set(now)
		if arrival {
			nextArrival = nextArrival.Add(every)
			rel, err := c.Acquire(context.Background(), PriorityNormal)
			if err != nil {
				continue
			}
			e := upstreamEvent{started: now, release: rel}
			if busy.Len() < u.slots {
				serve(e, now)
			} else {
				waiting = append(waiting, e)
			}
			continue
		}
		e := heap.Pop(&busy).(upstreamEvent)
		lat := now.Sub(e.started)
		measured := lat
		if u.noise > 0 {
			measured += time.Duration(rng.Int64N(int64(u.noise)))
		}
		e.release(Result{Latency: measured})
		if now.Sub(start) >= warm {
			lats = append(lats, lat)
			sum += lat
			limitSum += float64(c.Limit())
			limitN++
			if limitN%50 == 0 {
				res.limits = append(res.limits, c.Limit())
			}
		}
		if len(waiting) > 0 {
			serve(waiting[0], now)
			waiting = waiting[1:]
		}
	}
	slices.Sort(lats)
	res.goodput = float64(len(lats)) / (u.capacity() * (d - warm).Seconds())
	if n := len(lats); n > 0 {
		res.p99 = lats[(n*99+99)/100-1]
		res.mean = sum / time.Duration(n)
	}
	res.avgLimit = limitSum / float64(max(limitN, 1))
	return res
}

// TestConcurrencyAdaptiveSaturated simulates upstreams of a fixed capacity
// under 5× their capacity and checks that the learned limit keeps them
// busy while the admitted requests keep a latency close to their service
// time, even when the gateway's own delays add noise to its measure.
func TestConcurrencyAdaptiveSaturated(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc string
		up   upstreamSim
	}{
		{"8 slots of 50ms", upstreamSim{8, 50 * time.Millisecond, 0, 0}},
		{"8 slots of 50ms ±5ms", upstreamSim{8, 50 * time.Millisecond, 5 * time.Millisecond, 0}},
		{"8 slots of 50ms ±5ms, 2ms of noise", upstreamSim{8, 50 * time.Millisecond, 5 * time.Millisecond, 2 * time.Millisecond}},
		{"4 slots of 200ms ±20ms", upstreamSim{4, 200 * time.Millisecond, 20 * time.Millisecond, 0}},
		{"64 slots of 10ms ±2ms", upstreamSim{64, 10 * time.Millisecond, 2 * time.Millisecond, 0}},
		{"64 slots of 10ms ±2ms, 2ms of noise", upstreamSim{64, 10 * time.Millisecond, 2 * time.Millisecond, 2 * time.Millisecond}},
		{"20 slots of 2ms ±0.5ms, 0.5ms of noise", upstreamSim{20, 2 * time.Millisecond, 500 * time.Microsecond, 500 * time.Microsecond}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			clock := newFakeClock()
			c := NewConcurrency(adaptiveConfig(config.DefaultConcurrencyMinLimit, config.DefaultConcurrencyMaxLimit), clock.Now)
			r := simulate(c, clock, tc.up, 5*tc.up.capacity(), 15*time.Second, 3*time.Second)
			t.Logf("goodput %.1f%% of capacity, mean %v, p99 %v, average limit %.1f; last limits %v",
				100*r.goodput, r.mean, r.p99, r.avgLimit, r.limits[max(len(r.limits)-20, 0):])
			if r.goodput < 0.95 {
				t.Errorf("goodput %.1f%% of capacity, want at least 95%%", 100*r.goodput)
			}
			// The upstream may queue up to the tolerance (and the slack).
			if max := 2*tc.up.service + gradSlack; r.p99 > max {
				t.Errorf("p99 latency %v, want at most %v", r.p99, max)
			}
			tolerated := time.Duration(gradTolerance*float64(tc.up.service)) + gradSlack
			if max := 115 * tolerated / 100; r.mean > max {
				t.Errorf("mean latency %v, want at most %v", r.mean, max)
			}
		})
	}
}

func BenchmarkAcquireRelease(b *testing.B) {
	for _, bc := range []struct {
		name string
		cc   config.Concurrency
	}{
		{"fixed", fixedConfig(1000, 100, time.Second)},
		{"adaptive", adaptiveConfig(1000, 1000)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			c := NewConcurrency(bc.cc, nil)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				rel, err := c.Acquire(ctx, PriorityNormal)
				if err != nil {
					b.Fatal(err)
				}
				rel(Result{Latency: time.Millisecond})
			}
		})
		b.Run(bc.name+"-parallel", func(b *testing.B) {
			c := NewConcurrency(bc.cc, nil)
			ctx := context.Background()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					rel, err := c.Acquire(ctx, PriorityNormal)
					if err != nil {
						b.Fatal(err)
					}
					rel(Result{Latency: time.Millisecond})
				}
			})
		})
	}
}

// TestConcurrencyResultAt: a result's At stands for the limiter's clock.
// With the clock stopped, results that carry their time close the windows
// and the limit grows as with a running clock; results without one leave
// every window open.
func TestConcurrencyResultAt(t *testing.T) {
	t.Parallel()
	const lat = 20 * time.Millisecond
	for _, withAt := range []bool{true, false} {
		clock := newFakeClock() // never moves
		c := NewConcurrency(adaptiveConfig(4, 1000), clock.Now)
		at := clock.Now()
		for range 50 {
			rels := fill(t, c)
			at = at.Add(lat)
			res := Result{Latency: lat}
			if withAt {
				res.At = at
			}
			for _, r := range rels {
				r(res)
			}
		}
		switch got := c.Limit(); {
		case withAt && got < 100:
			t.Errorf("with At: limit %d after 50 rounds, want a growth past 100", got)
		case !withAt && got != gradInitialLimit:
			t.Errorf("without At, the clock stopped: limit %d, want the initial %d", got, gradInitialLimit)
		}
	}
}
