package upstream

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatewise/gatewise/internal/cause"
	"github.com/gatewise/gatewise/internal/config"
)

// ejectionCase is a case of TestEjection.
type ejectionCase struct {
	desc      string
	outcomes  []Outcome
	mod       func(*config.Pool)
	want      bool
	wantCause cause.ID
}

func TestEjection(t *testing.T) {
	t.Parallel()
	var cases []ejectionCase
	add := func(desc string, outcomes []Outcome, want bool, wantCause cause.ID) {
		cases = append(cases, ejectionCase{desc, outcomes, nil, want, wantCause})
	}
	for _, id := range []cause.ID{cause.DNSError, cause.ConnectionRefused, cause.ConnectionTimeout, cause.DestinationUnavailable,
		cause.TLSProtocolError, cause.TLSCertificateError, cause.HTTPResponseTimeout} {
		add(fmt.Sprintf("3 × %s", id), repeat(3, failure(id)), true, id)
		add(fmt.Sprintf("2 × %s", id), repeat(2, failure(id)), false, "")
	}
	for _, id := range []cause.ID{cause.ConnectionTerminated, cause.HTTPProtocolError, cause.HTTPResponseHeaderSectionSize, cause.HTTPResponseIncomplete} {
		add(fmt.Sprintf("5 × %s", id), repeat(5, failure(id)), true, id)
		add(fmt.Sprintf("4 × %s", id), repeat(4, failure(id)), false, "")
	}
	for _, code := range []int{500, 502, 503, 504, 599} {
		add(fmt.Sprintf("5 × status %d", code), repeat(5, status(code)), true, cause.UpstreamErrorStatus)
		add(fmt.Sprintf("4 × status %d", code), repeat(4, status(code)), false, "")
	}
	for _, id := range []cause.ID{cause.ClientClosed, cause.NoRoute, cause.RateLimited, cause.ConnectionLimitReached,
		cause.NoHealthyUpstream, cause.ProxyConfigurationError, cause.ProxyInternalError} {
		add(fmt.Sprintf("10 × %s: ignored", id), repeat(10, failure(id)), false, "")
	}
	for _, code := range []int{200, 301, 404, 429, 499} {
		add(fmt.Sprintf("10 × status %d: success", code), repeat(10, status(code)), false, "")
	}
	refused, s503 := failure(cause.ConnectionRefused), status(503)
	add("failures with successes between", []Outcome{refused, refused, success, refused, refused, success, refused}, false, "")
	add("5xx with successes between", append(append(repeat(4, s503), status(404)), repeat(4, s503)...), false, "")
	add("ignored causes do not reset", []Outcome{refused, refused, failure(cause.ClientClosed), refused}, true, cause.ConnectionRefused)
	add("a 5xx does not reset the failures", []Outcome{refused, s503, refused, s503, refused}, true, cause.ConnectionRefused)
	add("failures of both kinds below both thresholds", []Outcome{refused, refused, s503, s503, s503, s503}, false, "")
	cases = append(cases,
		ejectionCase{"consecutive_failures 0: off", repeat(10, refused), func(pc *config.Pool) { pc.Outlier.ConsecutiveFailures = intp(0) }, false, ""},
		ejectionCase{"consecutive_5xx 0: off", repeat(10, s503), func(pc *config.Pool) { pc.Outlier.Consecutive5xx = intp(0) }, false, ""},
		ejectionCase{"consecutive_failures 1", []Outcome{refused}, func(pc *config.Pool) { pc.Outlier.ConsecutiveFailures = intp(1) }, true, cause.ConnectionRefused},
	)

	for _, tt := range cases {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			pc := poolConfig("round_robin", 1, 1, 1, 1)
			if tt.mod != nil {
				tt.mod(pc)
			}
			f := newFixture(t, pc)
			tg := f.pool.Targets[0]
			feed(tg, tt.outcomes...)
			st := f.pool.Status()[0]
			if got := st.Ejected; got != tt.want {
				t.Fatalf("ejected: got %v, want %v\n%s", got, tt.want, f.logs)
			}
			got := f.metric(t, "gatewise_upstream_ejections_total", "target", tg.Addr, "cause", string(tt.wantCause))
			if want := map[bool]float64{true: 1}[tt.want]; got != want {
				t.Errorf("ejections counted with cause %q: got %v, want %v", tt.wantCause, got, want)
			}
			if !tt.want {
				return
			}
			if got, want := f.metric(t, "gatewise_upstream_target_up", "target", tg.Addr), 0.0; got != want {
				t.Errorf("target up: got %v, want %v", got, want)
			}
			if got, want := f.metric(t, "gatewise_upstream_state_changes_total", "target", tg.Addr, "state", "ejected"), 1.0; got != want {
				t.Errorf("state changes to ejected: got %v, want %v", got, want)
			}
			for i := range 100 {
				if got, _ := f.pool.Pick(request(clientIP(i)), nil); got == tg {
					t.Fatal("picked the ejected target")
				}
			}
		})
	}
}

func TestEjectionDuration(t *testing.T) {
	t.Parallel()
	f := newFixture(t, poolConfig("round_robin", 1, 1), func(pc *config.Pool) {
		pc.Outlier.BaseEjection = config.Duration{Duration: 10 * time.Second}
		pc.Outlier.MaxEjection = config.Duration{Duration: 25 * time.Second}
	})
	tg := f.pool.Targets[0]
	refused := failure(cause.ConnectionRefused)
	steps := []struct {
		desc      string
		before    func()        // before the failures
		want      time.Duration // the ejection's length
		wantCount int           // its number in a row
	}{
		{"first", func() {}, 10 * time.Second, 1},
		{"right after returning", func() {}, 20 * time.Second, 2},
		{"capped", func() {}, 25 * time.Second, 3},
		{"still capped", func() {}, 25 * time.Second, 4},
		{"a success right after returning does not reset", func() { feed(tg, success) }, 25 * time.Second, 5},
		{"a success base_ejection after returning resets", func() {
			f.clock.Add(10 * time.Second)
			feed(tg, success)
		}, 10 * time.Second, 1},
	}
	for _, s := range steps {
		s.before()
		start := f.clock.Now()
		feed(tg, repeat(3, refused)...)
		st := f.pool.Status()[0]
		if !st.Ejected {
			t.Fatalf("%s: not ejected", s.desc)
		}
		if got := st.EjectedUntil.Sub(start); got != s.want {
			t.Errorf("%s: ejected for %s, want %s", s.desc, got, s.want)
		}
		if got := st.Ejections; got != s.wantCount {
			t.Errorf("%s: ejections in a row: got %d, want %d", s.desc, got, s.wantCount)
		}
		reason := fmt.Sprintf("3 connection failures in a row, last connection_refused; ejected for %s (ejection %d)", s.want, s.wantCount)
		if !strings.Contains(f.logs.String(), reason) {
			t.Errorf("%s: log lacks %q:\n%s", s.desc, reason, f.logs)
		}
		f.clock.Add(s.want - time.Nanosecond)
		if st := f.pool.Status()[0]; !st.Ejected {
			t.Errorf("%s: restored before the end", s.desc)
		}
		f.clock.Add(time.Nanosecond)
		if st := f.pool.Status()[0]; st.Ejected {
			t.Errorf("%s: still ejected at the end", s.desc)
		}
	}
	if got, want := f.pool.Status()[0].EjectionsTotal, len(steps); got != want {
		t.Errorf("ejections in all: got %d, want %d", got, want)
	}
}

func TestMaxEjectedPercent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc    string
		targets int
		percent int
		want    int
	}{
		{"4 targets, 50%", 4, 50, 2},
		{"2 targets, 50%", 2, 50, 1},
		{"3 targets, 50%: rounded up", 3, 50, 2},
		{"5 targets, 30%: rounded up", 5, 30, 2},
		{"5 targets, 20%", 5, 20, 1},
		{"10 targets, 10%", 10, 10, 1},
		{"4 targets, 10%: at least one", 4, 10, 1},
		{"1 target: never", 1, 50, 0},
		{"1 target, 100%: never", 1, 100, 0},
		{"4 targets, 0%: never", 4, 0, 0},
		{"4 targets, 100%: all", 4, 100, 4},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			weights := make([]int, tt.targets)
			for i := range weights {
				weights[i] = 1
			}
			pc := poolConfig("round_robin", weights...)
			pc.Outlier.MaxEjectedPercent = intp(tt.percent)
			f := newFixture(t, pc)
			for _, tg := range f.pool.Targets {
				feed(tg, repeat(3, failure(cause.ConnectionRefused))...)
			}
			got := 0
			for _, st := range f.pool.Status() {
				if st.Ejected {
					got++
				}
			}
			if got != tt.want {
				t.Errorf("ejected: got %d, want %d", got, tt.want)
			}
			if got, want := f.countLogs("target not ejected"), tt.targets-tt.want; got != want {
				t.Errorf("logs of ejections refused: got %d, want %d", got, want)
			}
		})
	}
}

func TestRestore(t *testing.T) {
	t.Parallel()
	f := newFixture(t, poolConfig("round_robin", 1, 1))
	tg := f.pool.Targets[0]
	feed(tg, repeat(3, failure(cause.ConnectionTimeout))...)
	for range 10 {
		if got, _ := f.pool.Pick(nil, nil); got == tg {
			t.Fatal("picked the ejected target")
		}
	}
	f.clock.Add(10 * time.Second)
	picked := 0
	for range 20 {
		if got, _ := f.pool.Pick(nil, nil); got == tg {
			picked++
		}
	}
	if picked == 0 {
		t.Error("not picked after the ejection ended")
	}
	if got, want := f.countLogs("target restored"), 1; got != want {
		t.Errorf("logs of restoring: got %d, want %d\n%s", got, want, f.logs)
	}
	if !strings.Contains(f.logs.String(), "ejection of 10s ended") {
		t.Errorf("log lacks the reason:\n%s", f.logs)
	}
	if got, want := f.metric(t, "gatewise_upstream_state_changes_total", "target", tg.Addr, "state", "restored"), 1.0; got != want {
		t.Errorf("state changes to restored: got %v, want %v", got, want)
	}
	if got, want := f.metric(t, "gatewise_upstream_target_up", "target", tg.Addr), 1.0; got != want {
		t.Errorf("target up: got %v, want %v", got, want)
	}
	// Three more failures: ejected again, as the counts started over.
	feed(tg, repeat(2, failure(cause.ConnectionTimeout))...)
	if f.pool.Status()[0].Ejected {
		t.Error("ejected again after 2 failures")
	}
	feed(tg, failure(cause.ConnectionTimeout))
	if !f.pool.Status()[0].Ejected {
		t.Error("not ejected again after 3 failures")
	}
}

// TestRestoreByTimer checks that an ejection ends on time with no request
// to notice it.
func TestRestoreByTimer(t *testing.T) {
	t.Parallel()
	f := newFixture(t, poolConfig("round_robin", 1, 1), func(pc *config.Pool) {
		pc.Outlier.BaseEjection = config.Duration{Duration: 20 * time.Millisecond}
	})
	tg := f.pool.Targets[0]
	feed(tg, repeat(3, failure(cause.ConnectionRefused))...)
	f.clock.Add(20 * time.Millisecond)
	deadline := time.Now().Add(5 * time.Second)
	for f.countLogs("target restored") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("not restored by the timer")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got, want := f.metric(t, "gatewise_upstream_target_up", "target", tg.Addr), 1.0; got != want {
		t.Errorf("target up: got %v, want %v", got, want)
	}
}

func TestSetHealthy(t *testing.T) {
	t.Parallel()
	f := newFixture(t, poolConfig("round_robin", 1, 1))
	tg := f.pool.Targets[0]
	f.pool.SetHealthy(tg, false, "GET /healthz: 503")
	f.pool.SetHealthy(tg, false, "GET /healthz: 503") // no change: not logged again
	if got, want := f.countLogs("target unhealthy"), 1; got != want {
		t.Errorf("logs of unhealthy: got %d, want %d", got, want)
	}
	if !strings.Contains(f.logs.String(), "GET /healthz: 503") {
		t.Errorf("log lacks the reason:\n%s", f.logs)
	}
	if got, want := f.metric(t, "gatewise_upstream_target_up", "target", tg.Addr), 0.0; got != want {
		t.Errorf("target up: got %v, want %v", got, want)
	}
	for range 10 {
		if got, _ := f.pool.Pick(nil, nil); got == tg {
			t.Fatal("picked the unhealthy target")
		}
	}
	f.pool.SetHealthy(tg, true, "GET /healthz: 200")
	if got, want := f.metric(t, "gatewise_upstream_state_changes_total", "target", tg.Addr, "state", "healthy"), 1.0; got != want {
		t.Errorf("state changes to healthy: got %v, want %v", got, want)
	}
	if got, want := f.metric(t, "gatewise_upstream_target_up", "target", tg.Addr), 1.0; got != want {
		t.Errorf("target up: got %v, want %v", got, want)
	}
	other := newFixture(t, poolConfig("round_robin", 1)).pool.Targets[0]
	f.pool.SetHealthy(other, false, "not ours") // ignored
	if got, want := f.countLogs("not ours"), 0; got != want {
		t.Errorf("logs of a target of another pool: got %d, want %d", got, want)
	}
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc  string
		setup func(f *fixture)
		want  time.Duration
	}{
		{"nothing down", func(*fixture) {}, 5 * time.Second},
		{"unhealthy only", func(f *fixture) { f.pool.SetHealthy(f.pool.Targets[0], false, "test") }, 5 * time.Second},
		{"ejected for 10s", func(f *fixture) { feed(f.pool.Targets[0], repeat(3, failure(cause.ConnectionRefused))...) }, 10 * time.Second},
		{"ejected, 9.5s later: rounded up", func(f *fixture) {
			feed(f.pool.Targets[0], repeat(3, failure(cause.ConnectionRefused))...)
			f.clock.Add(9500 * time.Millisecond)
		}, time.Second},
		{"ejected, 7.2s later: rounded up", func(f *fixture) {
			feed(f.pool.Targets[0], repeat(3, failure(cause.ConnectionRefused))...)
			f.clock.Add(7200 * time.Millisecond)
		}, 3 * time.Second},
		{"ejected, ejection over", func(f *fixture) {
			feed(f.pool.Targets[0], repeat(3, failure(cause.ConnectionRefused))...)
			f.clock.Add(10 * time.Second)
		}, 5 * time.Second},
		{"ejected for 90s: at most 60s", func(f *fixture) {
			f.pool.baseEjection = 90 * time.Second
			feed(f.pool.Targets[0], repeat(3, failure(cause.ConnectionRefused))...)
		}, 60 * time.Second},
		{"ejected and unhealthy: unknown", func(f *fixture) {
			feed(f.pool.Targets[0], repeat(3, failure(cause.ConnectionRefused))...)
			f.pool.SetHealthy(f.pool.Targets[0], false, "test")
		}, 5 * time.Second},
		{"the earliest of two", func(f *fixture) {
			feed(f.pool.Targets[0], repeat(3, failure(cause.ConnectionRefused))...)
			f.clock.Add(4 * time.Second)
			feed(f.pool.Targets[1], repeat(3, failure(cause.ConnectionRefused))...)
		}, 6 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, poolConfig("round_robin", 1, 1, 1, 1))
			tt.setup(f)
			if got := f.pool.RetryAfter(); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestStatus(t *testing.T) {
	t.Parallel()
	f := newFixture(t, poolConfig("round_robin", 2, 1, -3))
	ts := f.pool.Targets
	ts[0].Begin()
	ts[0].Begin()
	feed(ts[0], Outcome{Status: 200, Latency: 40 * time.Millisecond})
	feed(ts[1], status(502))
	ts[1].Idle.ObserveHeader(map[string][]string{"Keep-Alive": {"timeout=5, max=100"}})
	feed(ts[2], repeat(3, failure(cause.TLSCertificateError))...)
	now := f.clock.Now()
	got := f.pool.Status()
	want := []TargetStatus{
		{Addr: "10.0.0.1:80", Healthy: true, Outstanding: 2, EWMA: 40 * time.Millisecond, Weight: 2, EffectiveWeight: 2},
		{Addr: "10.0.0.2:80", Healthy: true, EWMA: 10 * time.Millisecond, Weight: 1, EffectiveWeight: 1,
			LastFailure: cause.UpstreamErrorStatus, LastFailureAt: now, LearnedIdle: 5 * time.Second},
		{Addr: "10.0.0.3:80", Backup: true, Healthy: true, Ejected: true, EjectedUntil: now.Add(10 * time.Second),
			Ejections: 1, EjectionsTotal: 1, EWMA: 4 * time.Millisecond, Weight: 3, EffectiveWeight: 3,
			LastFailure: cause.TLSCertificateError, LastFailureAt: now},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d targets, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		g.EjectedUntil, w.EjectedUntil = g.EjectedUntil.UTC(), w.EjectedUntil.UTC()
		if !g.EjectedUntil.Equal(w.EjectedUntil) {
			t.Errorf("target %d: ejected until: got %v, want %v", i, g.EjectedUntil, w.EjectedUntil)
		}
		g.EjectedUntil, w.EjectedUntil = time.Time{}, time.Time{}
		if g != w {
			t.Errorf("target %d:\ngot  %+v\nwant %+v", i, g, w)
		}
	}
}

// TestConcurrent runs picks, outcomes, health verdicts and snapshots at
// once, for the race detector, and checks that every request is counted
// out.
func TestConcurrent(t *testing.T) {
	t.Parallel()
	for _, policy := range []string{"p2c_ewma", "round_robin", "least_requests", "hash"} {
		t.Run(policy, func(t *testing.T) {
			t.Parallel()
			pc := poolConfig(policy, 1, 2, 3, -1)
			cfg := &config.Config{Pools: map[string]*config.Pool{"test": pc}}
			cfg.ApplyDefaults()
			pc.Outlier.BaseEjection = config.Duration{Duration: time.Millisecond}
			p, err := NewPool(pc, cfg.Limits, PoolOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			outcomes := []Outcome{success, status(503), failure(cause.ConnectionRefused), failure(cause.ClientClosed), failure(cause.HTTPProtocolError)}
			var wg sync.WaitGroup
			for g := range 8 {
				wg.Go(func() {
					for i := range 2000 {
						r := request(clientIP(g*2000 + i))
						var tried []*Target
						for range 3 {
							tg, _ := p.Pick(r, tried)
							if tg == nil {
								break
							}
							tried = append(tried, tg)
							tg.Begin()(outcomes[rand.IntN(len(outcomes))])
						}
					}
				})
			}
			wg.Go(func() {
				for i := range 500 {
					p.SetHealthy(p.Targets[i%len(p.Targets)], i%3 != 0, "test")
					_ = p.Status()
					_ = p.RetryAfter()
				}
			})
			wg.Wait()
			for _, st := range p.Status() {
				if st.Outstanding != 0 {
					t.Errorf("%s: outstanding: got %d, want 0", st.Addr, st.Outstanding)
				}
			}
		})
	}
}

func TestNewPoolErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc string
		mod  func(*config.Pool)
		want string
	}{
		{"unknown policy", func(pc *config.Pool) { pc.Policy = "random" }, `pool test: policy: unknown policy "random"`},
		{"bad hash key", func(pc *config.Pool) { pc.HashKey = "query:x" }, `pool test: hash_key "query:x": want client_ip, header:NAME or cookie:NAME`},
		{"empty header name", func(pc *config.Pool) { pc.HashKey = "header:" }, `pool test: hash_key "header:"`},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			pc := poolConfig("round_robin", 1)
			pc.Name = "test"
			tt.mod(pc)
			_, err := NewPool(pc, config.Limits{}, PoolOptions{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error with %q", err, tt.want)
			}
		})
	}
}

func TestUnsetConfigTakesDefaults(t *testing.T) {
	t.Parallel()
	pc := poolConfig("", 1, 1) // no ApplyDefaults
	p, err := NewPool(pc, config.Limits{}, PoolOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	got := p.settings
	want := settings{policy: policyP2CEWMA, hashKind: hashClientIP, panicOn: true, failThreshold: 3, errorThreshold: 5,
		baseEjection: 10 * time.Second, maxEjection: 5 * time.Minute, maxEjectedPct: 50}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}
