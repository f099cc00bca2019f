package upstream

import (
	"fmt"
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/gatewise/gatewise/internal/config"
)

func clientIP(i int) string { return fmt.Sprintf("198.51.%d.%d", i/256%256, i%256) }

func TestPickDistribution(t *testing.T) {
	t.Parallel()
	const picks = 6000
	tests := []struct {
		desc    string
		policy  string
		weights []int
		tol     float64 // largest difference of a share from weight/sum
	}{
		{"round robin, equal weights", "round_robin", []int{1, 1, 1}, 0.001},
		{"round robin, weights 1:3", "round_robin", []int{1, 3}, 0.001},
		{"round robin, weights 1:1:2", "round_robin", []int{1, 1, 2}, 0.001},
		{"least requests, equal weights", "least_requests", []int{1, 1, 1}, 0.05},
		{"least requests, weights 1:3", "least_requests", []int{1, 3}, 0.05},
		{"least requests, weights 1:1:2", "least_requests", []int{1, 1, 2}, 0.05},
		{"p2c ewma, equal weights", "p2c_ewma", []int{1, 1, 1}, 0.05},
		{"p2c ewma, weights 1:3", "p2c_ewma", []int{1, 3}, 0.05},
		{"p2c ewma, weights 1:1:2", "p2c_ewma", []int{1, 1, 2}, 0.05},
		{"hash, equal weights", "hash", []int{1, 1, 1}, 0.05},
		{"hash, weights 1:3", "hash", []int{1, 3}, 0.05},
		{"hash, weights 1:1:2", "hash", []int{1, 1, 2}, 0.05},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, poolConfig(tt.policy, tt.weights...))
			got := shares(f, picks, func(i int) *http.Request { return request(clientIP(i)) })
			sum := 0
			for _, w := range tt.weights {
				sum += w
			}
			for i, w := range tt.weights {
				want := float64(w) / float64(sum)
				if math.Abs(got[i]-want) > tt.tol {
					t.Errorf("target %d (weight %d): got share %.3f, want %.3f ± %.3f", i, w, got[i], want, tt.tol)
				}
			}
		})
	}
}

// TestLeastRequestsFillsByWeight checks that with requests held open the
// outstanding requests spread in proportion to the weights.
func TestLeastRequestsFillsByWeight(t *testing.T) {
	t.Parallel()
	f := newFixture(t, poolConfig("least_requests", 1, 3))
	for range 400 {
		tg, _ := f.pool.Pick(nil, nil)
		tg.Begin()
	}
	st := f.pool.Status()
	if got, want := st[0].Outstanding, int64(100); got != want {
		t.Errorf("outstanding on weight 1: got %d, want %d", got, want)
	}
	if got, want := st[1].Outstanding, int64(300); got != want {
		t.Errorf("outstanding on weight 3: got %d, want %d", got, want)
	}
}

func TestP2CPrefersLessLoaded(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc  string
		load  func(f *fixture) // makes target 0 loaded or slow
		picks int              // default 3000
		max   float64          // the largest share target 0 may get; 0: no limit
		min   float64          // the smallest share target 0 must get
	}{
		{
			desc: "many outstanding requests",
			load: func(f *fixture) {
				for range 20 {
					f.pool.Targets[0].Begin()
				}
			},
			max: 0.05,
		},
		{
			desc: "high latency average",
			load: func(f *fixture) { feed(f.pool.Targets[0], Outcome{Status: 200, Latency: 500 * time.Millisecond}) },
			max:  0.05,
		},
		{
			desc: "failing fast does not look fast",
			load: func(f *fixture) {
				feed(f.pool.Targets[0], status(500), status(500), status(500), status(500))
			},
			max: 0.05,
		},
		{
			desc: "a target without a latency sample gets its share",
			load: func(f *fixture) {
				f.pool.Targets[0].stamp.Store(0) // forget its sample
			},
			min: 0.25,
			max: 0.42,
		},
		{
			desc: "an idle slow target is tried again as its average decays",
			load: func(f *fixture) {
				feed(f.pool.Targets[0], Outcome{Status: 200, Latency: 500 * time.Millisecond})
				f.clock.Add(time.Minute) // 500ms decays to about 1.2ms
				feed(f.pool.Targets[1], success)
				feed(f.pool.Targets[2], success)
			},
			picks: 20,
			min:   1.0 / 20,
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, poolConfig("p2c_ewma", 1, 1, 1))
			for _, tg := range f.pool.Targets {
				feed(tg, success)
			}
			tt.load(f)
			n := tt.picks
			if n == 0 {
				n = 3000
			}
			got := shares(f, n, func(int) *http.Request { return nil })[0]
			if tt.max > 0 && got > tt.max {
				t.Errorf("share of target 0: got %.3f, want at most %.3f", got, tt.max)
			}
			if got < tt.min {
				t.Errorf("share of target 0: got %.3f, want at least %.3f", got, tt.min)
			}
		})
	}
}

func TestHashStickiness(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc   string
		remove func(p *Pool, t *Target) // takes t out of the pool's choices
	}{
		{"unhealthy", func(p *Pool, t *Target) { p.SetHealthy(t, false, "test") }},
		{"ejected", func(p *Pool, t *Target) { feed(t, repeat(3, failure("connection_refused"))...) }},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, poolConfig("hash", 1, 2, 1, 1))
			const keys = 2000
			before := make([]*Target, keys)
			for i := range keys {
				before[i], _ = f.pool.Pick(request(clientIP(i)), nil)
				for range 3 { // the same key always goes to the same target
					if got, _ := f.pool.Pick(request(clientIP(i)), nil); got != before[i] {
						t.Fatalf("key %d: got %s, then %s", i, before[i].Addr, got.Addr)
					}
				}
			}
			gone := f.pool.Targets[1]
			tt.remove(f.pool, gone)
			moved := 0
			for i := range keys {
				r := request(clientIP(i))
				got, _ := f.pool.Pick(r, nil)
				switch {
				case before[i] == gone && got == gone:
					t.Errorf("key %d: still on the removed target", i)
				case before[i] == gone:
					moved++
				case got != before[i]:
					t.Errorf("key %d: got %s, want %s (it was not on the removed target)", i, got.Addr, before[i].Addr)
				}
				// Trying the first choice again moves the key where
				// removing that target would.
				if before[i] != gone {
					continue
				}
				retry, _ := f.pool.Pick(r, []*Target{got})
				if retry == got || retry == gone || retry == nil {
					t.Errorf("key %d: retry after %s went to %v", i, got.Addr, retry)
				}
			}
			if moved < keys/5*2-keys/10 { // weight 2 of 5: about 800 keys
				t.Errorf("keys moved: got %d, want about %d", moved, keys*2/5)
			}
		})
	}
}

func TestHashTriedKeepsStickiness(t *testing.T) {
	t.Parallel()
	noSlowStart := func(pc *config.Pool) { pc.SlowStart = config.Duration{} }
	f := newFixture(t, poolConfig("hash", 1, 1, 1, 1), noSlowStart)
	g := newFixture(t, poolConfig("hash", 1, 1, 1, 1), noSlowStart)
	for i := range 500 {
		r := request(clientIP(i))
		first, _ := f.pool.Pick(r, nil)
		idx := 0
		for j, tg := range f.pool.Targets {
			if tg == first {
				idx = j
			}
		}
		got, _ := f.pool.Pick(r, []*Target{first})
		// The same pool with the first choice unhealthy.
		g.pool.SetHealthy(g.pool.Targets[idx], false, "test")
		want, _ := g.pool.Pick(r, nil)
		g.pool.SetHealthy(g.pool.Targets[idx], true, "test")
		if got.Addr != want.Addr {
			t.Fatalf("key %d: retry got %s, want %s", i, got.Addr, want.Addr)
		}
	}
}

func TestHashKeys(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc    string
		key     string
		req     func(ip string) *http.Request
		sticky  bool // requests from many clients with the same key go to one target
		missing bool // the key is missing: falls back to p2c_ewma
	}{
		{"client ip", "client_ip", func(ip string) *http.Request { return request(ip) }, false, false},
		{"header", "header:x-session", func(ip string) *http.Request {
			r := request(ip)
			r.Header.Set("X-Session", "abc")
			return r
		}, true, false},
		{"cookie", "cookie:sid", func(ip string) *http.Request {
			r := request(ip)
			r.Header.Add("Cookie", "a=1; sid=\"xyz\"; b=2")
			return r
		}, true, false},
		{"missing header", "header:X-Session", func(ip string) *http.Request { return request(ip) }, false, true},
		{"missing cookie", "cookie:sid", func(ip string) *http.Request {
			r := request(ip)
			r.Header.Add("Cookie", "a=1; sidx=2; sid=")
			return r
		}, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			pc := poolConfig("hash", 1, 1, 1, 1)
			pc.HashKey = tt.key
			f := newFixture(t, pc)
			seen := map[*Target]int{}
			for i := range 400 {
				got, _ := f.pool.Pick(tt.req(clientIP(i)), nil)
				if got == nil {
					t.Fatal("got no target")
				}
				seen[got]++
				got.Begin()(success)
			}
			if got, want := len(seen) == 1, tt.sticky; got != want {
				t.Errorf("all on one target: got %v, want %v (%d targets)", got, want, len(seen))
			}
		})
	}
}

func TestCookieValue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc   string
		lines  []string
		want   string
		wantOK bool
	}{
		{"none", nil, "", false},
		{"only", []string{"sid=1"}, "1", true},
		{"among others", []string{"a=1; sid=2; b=3"}, "2", true},
		{"quoted", []string{`sid="q"`}, "q", true},
		{"prefix is not the name", []string{"sidx=1; xsid=2"}, "", false},
		{"second line", []string{"a=1", "sid=9"}, "9", true},
		{"empty skipped", []string{"sid=; sid=5"}, "5", true},
		{"no value", []string{"sid"}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			got, ok := cookieValue(tt.lines, "sid")
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("got %q, %v; want %q, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestPickExcludesTried(t *testing.T) {
	t.Parallel()
	for _, policy := range []string{"p2c_ewma", "round_robin", "least_requests", "hash"} {
		t.Run(policy, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, poolConfig(policy, 1, 2, 3))
			ts := f.pool.Targets
			tests := []struct {
				desc  string
				tried []*Target
				want  []*Target // the allowed answers; nil: no target
			}{
				{"none tried", nil, ts},
				{"first tried", ts[:1], ts[1:]},
				{"two tried", []*Target{ts[0], ts[2]}, ts[1:2]},
				{"all tried", ts, nil},
			}
			for _, tc := range tests {
				for i := range 300 {
					got, panicked := f.pool.Pick(request(clientIP(i)), tc.tried)
					if panicked {
						t.Errorf("%s: got panic pick", tc.desc)
					}
					ok := got == nil && tc.want == nil
					for _, w := range tc.want {
						ok = ok || got == w
					}
					if !ok {
						t.Fatalf("%s: got %v, want one of %v", tc.desc, got, tc.want)
					}
				}
			}
		})
	}
}

func TestBackups(t *testing.T) {
	t.Parallel()
	// Targets 0 and 1 are primaries, 2 a backup.
	tests := []struct {
		desc        string
		panicOff    bool
		unhealthy   []int
		tried       []int
		want        int // index of the only target allowed; -1: any primary; -2: none
		wantPanic   bool
		allowBackup bool
	}{
		{desc: "primaries up: never the backup", want: -1},
		{desc: "one primary down: the other", unhealthy: []int{0}, want: 1},
		{desc: "primaries down: the backup", unhealthy: []int{0, 1}, want: 2},
		{desc: "primaries tried: the backup", tried: []int{0, 1}, want: 2},
		{desc: "one primary down, the other tried: the backup", unhealthy: []int{1}, tried: []int{0}, want: 2},
		{desc: "primaries down, backup tried: none, not panic", unhealthy: []int{0, 1}, tried: []int{2}, want: -2},
		{desc: "all down, panic on: any", unhealthy: []int{0, 1, 2}, want: -3, wantPanic: true},
		{desc: "all down, panic on, primaries tried: the backup in panic", unhealthy: []int{0, 1, 2}, tried: []int{0, 1}, want: 2, wantPanic: true},
		{desc: "all down, panic off: none", panicOff: true, unhealthy: []int{0, 1, 2}, want: -2},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			pc := poolConfig("p2c_ewma", 1, 1, -1)
			pc.Panic = boolp(!tt.panicOff)
			f := newFixture(t, pc)
			ts := f.pool.Targets
			for _, i := range tt.unhealthy {
				f.pool.SetHealthy(ts[i], false, "test")
			}
			var tried []*Target
			for _, i := range tt.tried {
				tried = append(tried, ts[i])
			}
			for range 200 {
				got, panicked := f.pool.Pick(nil, tried)
				if panicked != tt.wantPanic {
					t.Fatalf("panic: got %v, want %v", panicked, tt.wantPanic)
				}
				switch tt.want {
				case -1:
					if got == nil || got.Backup {
						t.Fatalf("got %v, want a primary", got)
					}
				case -2:
					if got != nil {
						t.Fatalf("got %s, want none", got.Addr)
					}
				case -3:
					if got == nil {
						t.Fatal("got none, want a target")
					}
				default:
					if got != ts[tt.want] {
						t.Fatalf("got %v, want %s", got, ts[tt.want].Addr)
					}
				}
			}
		})
	}
}

func TestPanicMode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc      string
		panic     bool
		wantPicks bool
	}{
		{"on: spreads over every target", true, true},
		{"off: no target", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			pc := poolConfig("round_robin", 1, 1)
			pc.Panic = boolp(tt.panic)
			f := newFixture(t, pc)
			ts := f.pool.Targets
			f.pool.SetHealthy(ts[0], false, "probe failed")
			f.pool.SetHealthy(ts[1], false, "probe failed")
			seen := map[*Target]bool{}
			for range 10 {
				got, panicked := f.pool.Pick(nil, nil)
				if (got != nil) != tt.wantPicks || panicked != tt.wantPicks {
					t.Fatalf("got %v, panic %v; want a target: %v", got, panicked, tt.wantPicks)
				}
				seen[got] = true
			}
			if tt.wantPicks && len(seen) != 2 {
				t.Errorf("targets picked in panic: got %d, want 2", len(seen))
			}
			if got, _ := f.pool.Pick(nil, ts); got != nil {
				t.Errorf("every target tried: got %s, want none", got.Addr)
			}
			if got, want := f.countLogs("every target is down"), 1; got != want {
				t.Errorf("logs of entering: got %d, want %d\n%s", got, want, f.logs)
			}
			wantCount := 0.0
			if tt.panic {
				wantCount = 10
			}
			if got := f.metric(t, "gatewise_upstream_panic_picks_total", "pool", "test"); got != wantCount {
				t.Errorf("panic picks counted: got %v, want %v", got, wantCount)
			}
			f.pool.SetHealthy(ts[1], true, "probe passed")
			for range 10 {
				got, panicked := f.pool.Pick(nil, nil)
				if got != ts[1] || panicked {
					t.Fatalf("after recovery: got %v, panic %v; want %s, false", got, panicked, ts[1].Addr)
				}
			}
			if got, want := f.countLogs("a target is up again"), 1; got != want {
				t.Errorf("logs of leaving: got %d, want %d\n%s", got, want, f.logs)
			}
		})
	}
}

func TestSlowStart(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc      string
		slowStart time.Duration
		leave     func(f *fixture, t *Target) // takes t out; the clock then moves to its return
		want      []int                       // effective weight of 100 at 0, 25%, 50%, 100% of the window
	}{
		{
			desc:      "back from unhealthy",
			slowStart: 10 * time.Second,
			leave: func(f *fixture, t *Target) {
				f.pool.SetHealthy(t, false, "test")
				f.clock.Add(time.Minute)
				f.pool.SetHealthy(t, true, "test")
			},
			want: []int{10, 33, 55, 100},
		},
		{
			desc:      "back from ejection",
			slowStart: 10 * time.Second,
			leave: func(f *fixture, t *Target) {
				feed(t, repeat(3, failure("connection_refused"))...)
				f.clock.Add(10 * time.Second)
			},
			want: []int{10, 33, 55, 100},
		},
		{
			desc:      "off",
			slowStart: 0,
			leave: func(f *fixture, t *Target) {
				f.pool.SetHealthy(t, false, "test")
				f.pool.SetHealthy(t, true, "test")
			},
			want: []int{100, 100, 100, 100},
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, poolConfig("round_robin", 100, 100), func(pc *config.Pool) {
				pc.SlowStart = config.Duration{Duration: tt.slowStart}
			})
			if got, want := f.pool.Status()[0].EffectiveWeight, 100; got != want {
				t.Fatalf("at creation: got %d, want %d (no slow start)", got, want)
			}
			tt.leave(f, f.pool.Targets[0])
			f.pool.Pick(nil, nil) // restores a target whose ejection ended
			window := 10 * time.Second
			for i, at := range []time.Duration{0, window / 4, window / 2, window} {
				if i > 0 {
					f.clock.Add(at - []time.Duration{0, window / 4, window / 2, window}[i-1])
				}
				st := f.pool.Status()[0]
				if got, want := st.EffectiveWeight, tt.want[i]; got != want {
					t.Errorf("at %s: effective weight: got %d, want %d", at, got, want)
				}
				if got, want := st.SlowStart, tt.want[i] < 100; got != want {
					t.Errorf("at %s: slow start: got %v, want %v", at, got, want)
				}
			}
		})
	}
}

// TestSlowStartShare checks that a returning target's share follows its
// effective weight.
func TestSlowStartShare(t *testing.T) {
	t.Parallel()
	f := newFixture(t, poolConfig("round_robin", 1, 1))
	f.pool.SetHealthy(f.pool.Targets[0], false, "test")
	f.pool.SetHealthy(f.pool.Targets[0], true, "test")
	// 100 thousandths against 1000: exactly 1 in 11 with the clock still.
	got := shares(f, 1100, func(int) *http.Request { return nil })
	if want := 100.0 / 1100; math.Abs(got[0]-want) > 1e-9 {
		t.Errorf("share during slow start: got %.4f, want %.4f", got[0], want)
	}
}

func TestPickNoAllocs(t *testing.T) {
	for _, policy := range []string{"p2c_ewma", "round_robin", "least_requests", "hash"} {
		t.Run(policy, func(t *testing.T) {
			pc := poolConfig(policy, 1, 2, 3, 1)
			pc.HashKey = "cookie:sid"
			f := newFixture(t, pc)
			r := request("192.0.2.1")
			r.Header.Set("Cookie", "a=b; sid=123")
			tried := []*Target{f.pool.Targets[0]}
			got := testing.AllocsPerRun(1000, func() {
				tg, _ := f.pool.Pick(r, tried)
				tg.Begin()(success)
			})
			if got != 0 {
				t.Errorf("allocations per Pick, Begin and end: got %v, want 0", got)
			}
		})
	}
}
