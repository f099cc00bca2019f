package health

import (
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/gatewise/gatewise/internal/faults"
)

func TestTransitions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc       string
		mode       int32
		wantReason string
	}{
		{"error status", modeStatus500, "health check GET /healthz failed 3 times in a row: answered 500, want 2xx/3xx"},
		{"wrong body", modeWrongBody, `health check GET /healthz failed 3 times in a row: answered 200 but its body did not match expect_body "status: ok"`},
		{"listener closed", modeDown, "health check GET /healthz failed 3 times in a row: connection_refused"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			up := newSwitchable(t)
			var logs logBuffer
			pool := newPool(t, nil, &logs, up.url())
			hc := healthCheck("/healthz")
			hc.ExpectBody = "status: ok"
			hc.Rise, hc.Fall = 2, 3
			m, reg := newMetrics(t)
			c := Start(pool, hc, Options{Metrics: m, Logger: logs.logger()})
			t.Cleanup(c.Stop)

			waitFor(t, "2 passing checks", func() bool { return checks(t, reg, up.addr, "pass") >= 2 })
			if got := healthy(t, pool, up.addr); !got {
				t.Fatalf("healthy after passing checks = %v, want true", got)
			}

			up.set(tt.mode)
			waitFor(t, "the target marked unhealthy", func() bool { return !healthy(t, pool, up.addr) })
			down := logs.lines(t, "target unhealthy")
			if got, want := len(down), 1; got != want {
				t.Fatalf("%d WARN lines, want %d: %v", got, want, down)
			}
			if got, want := down[0]["reason"], tt.wantReason; got != want {
				t.Errorf("reason down = %q, want %q", got, want)
			}
			if got, want := down[0]["level"], "WARN"; got != want {
				t.Errorf("level down = %v, want %v", got, want)
			}
			if got, want := down[0]["pool"], "app"; got != want {
				t.Errorf("pool = %v, want %v", got, want)
			}
			if got, want := down[0]["target"], up.addr; got != want {
				t.Errorf("target = %v, want %v", got, want)
			}
			if got := len(logs.lines(t, "health check failed")); got < 3 {
				t.Errorf("%d DEBUG lines of failing checks, want at least 3", got)
			}
			if got := checks(t, reg, up.addr, "fail"); got < 3 {
				t.Errorf("failing checks counted = %d, want at least 3", got)
			}

			up.set(modeOK)
			waitFor(t, "the target marked healthy again", func() bool { return healthy(t, pool, up.addr) })
			back := logs.lines(t, "target healthy")
			if got, want := len(back), 1; got != want {
				t.Fatalf("%d INFO lines, want %d: %v", got, want, back)
			}
			if got, want := back[0]["reason"], "health check GET /healthz passed 2 times in a row"; got != want {
				t.Errorf("reason up = %q, want %q", got, want)
			}
			if got, want := back[0]["level"], "INFO"; got != want {
				t.Errorf("level up = %v, want %v", got, want)
			}
		})
	}
}

func TestTCP(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go acceptAndClose(ln)
	dead, err := faults.DeadAddr()
	if err != nil {
		t.Fatal(err)
	}
	live := ln.Addr().String()
	var logs logBuffer
	pool := newPool(t, nil, &logs, "http://"+live, "http://"+dead)
	hc := healthCheck("")
	hc.Rise, hc.Fall = 1, 2
	m, reg := newMetrics(t)
	c := Start(pool, hc, Options{Metrics: m, Logger: logs.logger()})
	t.Cleanup(c.Stop)

	waitFor(t, "the dead port marked unhealthy", func() bool { return !healthy(t, pool, dead) })
	down := logs.lines(t, "target unhealthy")
	if got, want := len(down), 1; got != want {
		t.Fatalf("%d WARN lines, want %d: %v", got, want, down)
	}
	if got, want := down[0]["reason"], "health check TCP connect failed 2 times in a row: connection_refused"; got != want {
		t.Errorf("reason = %q, want %q", got, want)
	}
	if got, want := down[0]["target"], dead; got != want {
		t.Errorf("target = %v, want %v", got, want)
	}
	base := checks(t, reg, live, "pass")
	waitFor(t, "3 more passing checks of the listener", func() bool { return checks(t, reg, live, "pass") >= base+3 })
	if got := healthy(t, pool, live); !got {
		t.Errorf("listener healthy = %v, want true", got)
	}
	if got := checks(t, reg, live, "fail"); got != 0 {
		t.Errorf("failing checks of the listener = %d, want 0", got)
	}

	// Something starts listening on the dead port: one pass (rise 1)
	// brings it back.
	ln2, err := net.Listen("tcp", dead)
	if err != nil {
		t.Fatalf("listen on %s: %v", dead, err)
	}
	t.Cleanup(func() { _ = ln2.Close() })
	go acceptAndClose(ln2)
	waitFor(t, "the revived port marked healthy", func() bool { return healthy(t, pool, dead) })
	back := logs.lines(t, "target healthy")
	if got, want := len(back), 1; got != want {
		t.Fatalf("%d INFO lines, want %d: %v", got, want, back)
	}
	if got, want := back[0]["reason"], "health check TCP connect passed"; got != want {
		t.Errorf("reason = %q, want %q", got, want)
	}
}

// acceptAndClose accepts connections on ln and closes them at once, until
// ln is closed.
func acceptAndClose(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		_ = c.Close()
	}
}

func TestFallOne(t *testing.T) {
	t.Parallel()
	dead, err := faults.DeadAddr()
	if err != nil {
		t.Fatal(err)
	}
	var logs logBuffer
	pool := newPool(t, nil, &logs, "http://"+dead)
	hc := healthCheck("/healthz")
	hc.Fall = 1
	c := Start(pool, hc, Options{Logger: logs.logger()})
	t.Cleanup(c.Stop)
	waitFor(t, "the target marked unhealthy", func() bool { return !healthy(t, pool, dead) })
	down := logs.lines(t, "target unhealthy")
	if len(down) != 1 {
		t.Fatalf("%d WARN lines, want 1", len(down))
	}
	if got, want := down[0]["reason"], "health check GET /healthz failed: connection_refused"; got != want {
		t.Errorf("reason = %q, want %q", got, want)
	}
}

// TestStopEndsGoroutines is not parallel: it counts the process's
// goroutines, and parallel tests wait until it has finished.
func TestStopEndsGoroutines(t *testing.T) {
	up, up2 := newSwitchable(t), newSwitchable(t)
	dead, err := faults.DeadAddr()
	if err != nil {
		t.Fatal(err)
	}
	pool := newPool(t, nil, nil, up.url(), "http://"+dead, up2.url())
	m, reg := newMetrics(t)
	before := runtime.NumGoroutine()

	c := Start(pool, healthCheck("/healthz"), Options{Metrics: m})
	waitFor(t, "checks of every target", func() bool {
		return checks(t, reg, up.addr, "pass") >= 2 && checks(t, reg, up2.addr, "pass") >= 2 && checks(t, reg, dead, "fail") >= 2
	})
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(c.Stop) // concurrent calls are safe
	}
	wg.Wait()
	c.Stop() // and a later one returns at once

	waitFor(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
}

func TestStopDuringCheck(t *testing.T) {
	t.Parallel()
	srv, err := faults.Start("hang", faults.Hang)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	pool := newPool(t, nil, nil, srv.URL())
	hc := healthCheck("/healthz")
	hc.Timeout.Duration = time.Minute
	hc.Fall = 1
	m, reg := newMetrics(t)
	c := Start(pool, hc, Options{Metrics: m})
	waitFor(t, "the check to reach the upstream", func() bool { return srv.Served() >= 1 })

	stopped := make(chan struct{})
	go func() {
		c.Stop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("Stop did not return within 5s of a check in flight")
	}
	if got := checks(t, reg, srv.Addr(), "fail"); got != 0 {
		t.Errorf("failing checks counted = %d, want 0 (the cancelled check means nothing)", got)
	}
	if got := healthy(t, pool, srv.Addr()); !got {
		t.Errorf("healthy = %v, want true", got)
	}
}

func TestHangingCheckMarkedDown(t *testing.T) {
	t.Parallel()
	srv, err := faults.Start("hang", faults.Hang)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	var logs logBuffer
	pool := newPool(t, nil, &logs, srv.URL())
	hc := healthCheck("/healthz")
	hc.Timeout.Duration = 50 * time.Millisecond
	hc.Fall = 2
	c := Start(pool, hc, Options{Logger: logs.logger()})
	t.Cleanup(c.Stop)
	waitFor(t, "the hanging target marked unhealthy", func() bool { return !healthy(t, pool, srv.Addr()) })
	down := logs.lines(t, "target unhealthy")
	if len(down) != 1 {
		t.Fatalf("%d WARN lines, want 1", len(down))
	}
	want := "health check GET /healthz failed 2 times in a row: http_response_timeout (no answer within 50ms)"
	if got := down[0]["reason"]; got != want {
		t.Errorf("reason = %q, want %q", got, want)
	}
}

// TestStartsFromPoolView checks that a Checker started on a pool whose
// target is already unhealthy (a previous Checker's verdict, before a
// reload) brings it back after Rise passes.
func TestStartsFromPoolView(t *testing.T) {
	t.Parallel()
	up := newSwitchable(t)
	var logs logBuffer
	pool := newPool(t, nil, &logs, up.url())
	pool.SetHealthy(pool.Targets[0], false, "previous checker")
	hc := healthCheck("/healthz")
	hc.Rise = 3
	c := Start(pool, hc, Options{})
	t.Cleanup(c.Stop)
	waitFor(t, "the target marked healthy", func() bool { return healthy(t, pool, up.addr) })
	back := logs.lines(t, "target healthy")
	if len(back) != 1 {
		t.Fatalf("%d INFO lines, want 1", len(back))
	}
	if got, want := back[0]["reason"], "health check GET /healthz passed 3 times in a row"; got != want {
		t.Errorf("reason = %q, want %q", got, want)
	}
}
