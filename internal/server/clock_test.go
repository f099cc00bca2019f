package server_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/gatewise/gatewise/internal/server"
)

// TestSystemClockShared checks that a server given no clock, as `gatewise
// serve` builds it, leaves its proxy on the system's clock, whose readings
// the proxy's transports then share (two clock readings fewer per
// request); a server given a clock of its own does not.
func TestSystemClockShared(t *testing.T) {
	t.Parallel()
	cfg := oneTargetConfig("http://127.0.0.1:9")
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		now  func() time.Time
		want bool
	}{{nil, true}, {time.Now, false}} {
		srv, err := server.New(cfg, server.Options{Stdout: io.Discard, Logger: slog.New(slog.DiscardHandler), Now: tc.now})
		if err != nil {
			t.Fatal(err)
		}
		if got := srv.ProxySystemClock(); got != tc.want {
			t.Errorf("Now given: %v; the proxy on the system's clock: %v, want %v", tc.now != nil, got, tc.want)
		}
		_ = srv.Shutdown(context.Background())
	}
}
