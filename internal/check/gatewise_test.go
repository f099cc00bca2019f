package check

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/gatewise/gatewise/internal/cause"
	"github.com/gatewise/gatewise/internal/config"
	"github.com/gatewise/gatewise/internal/server"
)

// startGatewise starts the real gateway in-process in front of target (a
// URL) and returns its URL; it stops with the test.
func startGatewise(t *testing.T, target string) string {
	t.Helper()
	cfg := &config.Config{
		Listeners: []config.Listener{{Address: "127.0.0.1:0"}},
		Admin:     config.Admin{Address: "127.0.0.1:0"},
		Pools:     map[string]*config.Pool{"app": {Targets: []config.Target{{URL: target, Weight: 1}}}},
	}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	srv, err := server.New(cfg, server.Options{Stdout: io.Discard, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	if err := srv.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return "http://" + srv.Addrs()[0].String()
}

// TestRealGatewiseInFrontOfNginx: gatewise → nginx → a dead upstream gives
// nginx's page through gatewise; gatewise → a dead nginx gives gatewise's
// own page with its cause.
func TestRealGatewiseInFrontOfNginx(t *testing.T) {
	if testing.Short() {
		t.Skip("runs nginx")
	}
	up := startUpstreams(t)
	nginx := startNginx(t, up)
	gw := startGatewise(t, nginx)
	runCheck(t, gw+"/refused", testOptions(t), want{atFault: "application", pattern: "persistent", answered: "nginx", failed: "application", status: 502,
		hops: []string{"you", "gatewise", "nginx", "application"}})
	runCheck(t, gw+"/ok", testOptions(t), want{atFault: "none", pattern: "ok", status: 200, hops: []string{"you", "gatewise", "nginx", "application"}})

	deadNginx := startGatewise(t, "http://"+freePort(t))
	rep := runCheck(t, deadNginx+"/", testOptions(t), want{atFault: "application", pattern: "persistent", answered: "gatewise", failed: "application", cause: cause.ConnectionRefused, status: 502})
	if rep.RequestID == "" {
		t.Errorf("no request ID from gatewise's X-Request-ID")
	}
}
