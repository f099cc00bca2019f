package health

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gatewise/gatewise/internal/config"
	"github.com/gatewise/gatewise/internal/obs"
	"github.com/gatewise/gatewise/internal/upstream"
)

// newPool builds a pool named "app" of the given target URLs, with its
// defaults applied; tune, when not nil, may change the pool's config
// first. The pool logs its state changes into logs when not nil.
func newPool(t *testing.T, tune func(*config.Pool), logs *logBuffer, urls ...string) *upstream.Pool {
	t.Helper()
	pc := &config.Pool{Name: "app"}
	for _, u := range urls {
		pc.Targets = append(pc.Targets, config.Target{URL: u, Weight: 1})
	}
	if tune != nil {
		tune(pc)
	}
	cfg := &config.Config{Pools: map[string]*config.Pool{"app": pc}}
	cfg.ApplyDefaults()
	var opts upstream.PoolOptions
	if logs != nil {
		opts.Logger = logs.logger()
	}
	p, err := upstream.NewPool(pc, cfg.Limits, opts)
	if err != nil {
		t.Fatalf("NewPool: %v", err)
	}
	t.Cleanup(p.Close)
	return p
}

// healthCheck returns a check config with short test intervals: the
// defaults of config.ApplyDefaults but Interval 20ms and Timeout 1s.
func healthCheck(path string) *config.HealthCheck {
	pc := &config.Pool{Health: &config.HealthCheck{Path: path, TCP: path == ""}}
	(&config.Config{Pools: map[string]*config.Pool{"app": pc}}).ApplyDefaults()
	hc := pc.Health
	hc.Interval.Duration = 20 * time.Millisecond
	hc.Timeout.Duration = time.Second
	return hc
}

// healthy reports the pool's view of the target at addr.
func healthy(t *testing.T, p *upstream.Pool, addr string) bool {
	t.Helper()
	for _, s := range p.Status() {
		if s.Addr == addr {
			return s.Healthy
		}
	}
	t.Fatalf("pool has no target %s", addr)
	return false
}

// waitFor polls cond until it holds or 5 seconds pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after 5s waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// logBuffer collects JSON log lines, safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// logger returns a DEBUG logger writing into b.
func (b *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// lines returns the log lines whose msg is msg.
func (b *logBuffer) lines(t *testing.T, msg string) []map[string]any {
	t.Helper()
	b.mu.Lock()
	data := append([]byte(nil), b.buf.Bytes()...)
	b.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// newMetrics returns metrics on a fresh registry.
func newMetrics(t *testing.T) (*obs.Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := obs.NewMetrics(reg)
	if err != nil {
		t.Fatalf("NewMetrics: %v", err)
	}
	return m, reg
}

// checks returns gatewise_health_checks_total for target and result
// ("pass" or "fail") from reg.
func checks(t *testing.T, reg *prometheus.Registry, target, result string) int {
	t.Helper()
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for line := range strings.SplitSeq(rec.Body.String(), "\n") {
		if !strings.HasPrefix(line, "gatewise_health_checks_total{") ||
			!strings.Contains(line, `target="`+target+`"`) || !strings.Contains(line, `result="`+result+`"`) {
			continue
		}
		n, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		return int(n)
	}
	return 0
}

// Modes of a switchable upstream.
const (
	modeOK        int32 = iota // 200 "status: ok"
	modeStatus500              // 500 "status: ok"
	modeWrongBody              // 200 "status: degraded"
	modeDown                   // listener closed: connections refused
)

// switchable is an HTTP upstream on a fixed loopback port whose answer to
// /healthz can be switched between healthy and failing, down to its
// listener being closed and reopened.
type switchable struct {
	t    *testing.T
	addr string
	mode atomic.Int32

	mu  sync.Mutex
	srv *http.Server
}

func newSwitchable(t *testing.T) *switchable {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	s := &switchable{t: t, addr: ln.Addr().String()}
	s.serve(ln)
	t.Cleanup(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.srv != nil {
			_ = s.srv.Close()
		}
	})
	return s
}

func (s *switchable) url() string { return "http://" + s.addr }

func (s *switchable) serve(ln net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch s.mode.Load() {
		case modeStatus500:
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte("status: ok"))
		case modeWrongBody:
			_, _ = w.Write([]byte("status: degraded"))
		default:
			_, _ = w.Write([]byte("status: ok"))
		}
	})}
	s.srv = srv
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.t.Errorf("serve: %v", err)
		}
	}()
}

// set switches the upstream to mode.
func (s *switchable) set(mode int32) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.mode.Swap(mode)
	switch {
	case mode == modeDown && old != modeDown:
		_ = s.srv.Close() // closes the listener and every connection
		s.srv = nil
	case mode != modeDown && old == modeDown:
		ln, err := net.Listen("tcp", s.addr)
		if err != nil {
			s.t.Fatalf("listen again on %s: %v", s.addr, err)
		}
		s.serve(ln)
	}
}
