package upstream

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatewise/gatewise/internal/cause"
	"github.com/gatewise/gatewise/internal/config"
	"github.com/gatewise/gatewise/internal/obs"
)

// clock is a settable clock for tests.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// logBuffer collects log output from many goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// fixture is a pool with an injected clock, a log and metrics.
type fixture struct {
	pool  *Pool
	clock *clock
	logs  *logBuffer
	reg   *prometheus.Registry
}

// poolConfig returns a pool config with one target per weight, at
// http://10.0.0.N:80; a negative weight makes a backup of weight -w.
func poolConfig(policy string, weights ...int) *config.Pool {
	pc := &config.Pool{Policy: policy}
	for i, w := range weights {
		tc := config.Target{URL: fmt.Sprintf("http://10.0.0.%d:80", i+1), Weight: w}
		if w < 0 {
			tc.Weight, tc.Backup = -w, true
		}
		pc.Targets = append(pc.Targets, tc)
	}
	return pc
}

func intp(i int) *int    { return &i }
func boolp(b bool) *bool { return &b }

// newFixture builds a pool from pc after applying the config defaults and
// then mods (which may set a zero that the defaults would replace).
func newFixture(t *testing.T, pc *config.Pool, mods ...func(*config.Pool)) *fixture {
	t.Helper()
	cfg := &config.Config{Pools: map[string]*config.Pool{"test": pc}}
	cfg.ApplyDefaults()
	for _, m := range mods {
		m(pc)
	}
	f := &fixture{clock: newClock(), logs: &logBuffer{}, reg: prometheus.NewRegistry()}
	m, err := obs.NewMetrics(f.reg)
	if err != nil {
		t.Fatal(err)
	}
	f.pool, err = NewPool(pc, cfg.Limits, PoolOptions{
		Metrics: m,
		Logger:  slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:     f.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.pool.Close)
	return f
}

// metric returns the value of the counter or gauge name with labels.
func (f *fixture) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := f.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue metrics
				}
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}

// countLogs counts the log lines holding s.
func (f *fixture) countLogs(s string) int {
	return strings.Count(f.logs.String(), s)
}

// request returns a request from the client at ip.
func request(ip string) *http.Request {
	r, _ := http.NewRequest(http.MethodGet, "http://example.com/", nil)
	r.RemoteAddr = ip + ":40000"
	return r
}

var (
	success = Outcome{Status: 200, Latency: 10 * time.Millisecond}
	status  = func(code int) Outcome { return Outcome{Status: code, Latency: 10 * time.Millisecond} }
	failure = func(id cause.ID) Outcome {
		return Outcome{Err: cause.New(id, "", nil), Latency: time.Millisecond}
	}
)

// feed ends one request on t with each outcome.
func feed(t *Target, outcomes ...Outcome) {
	for _, o := range outcomes {
		t.Begin()(o)
	}
}

// repeat returns n copies of o.
func repeat(n int, o Outcome) []Outcome {
	out := make([]Outcome, n)
	for i := range out {
		out[i] = o
	}
	return out
}

// shares picks n times (ending each request with success) and returns the
// share of each target by index.
func shares(f *fixture, n int, req func(i int) *http.Request) []float64 {
	counts := make([]int, len(f.pool.Targets))
	index := make(map[*Target]int)
	for i, t := range f.pool.Targets {
		index[t] = i
	}
	for i := range n {
		t, _ := f.pool.Pick(req(i), nil)
		if t == nil {
			continue
		}
		counts[index[t]]++
		t.Begin()(success)
	}
	out := make([]float64, len(counts))
	for i, c := range counts {
		out[i] = float64(c) / float64(n)
	}
	return out
}
