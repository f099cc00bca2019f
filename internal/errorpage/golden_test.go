package errorpage

import (
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatewise/gatewise/internal/cause"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestGolden compares the three bodies of two causes, with a fixed clock,
// with the files in testdata/. Run `go test ./internal/errorpage -run
// TestGolden -update` to rewrite them after a deliberate change, and read
// the diff.
func TestGolden(t *testing.T) {
	t.Parallel()
	r := newRenderer(t)
	problems := []struct {
		name string
		p    Problem
	}{
		{"connection_terminated", Problem{
			Cause: mustCause(t, cause.ConnectionTerminated), Detail: "reset", RequestID: "01JD6Z4W8Q2N3V5X7Y9A1B3C5D",
			Internal: "read tcp 10.0.0.2:51234->10.0.0.7:8080: read: connection reset by peer", Route: "www", Upstream: "app",
		}},
		{"rate_limited_owner", Problem{
			Cause: mustCause(t, cause.RateLimited), RequestID: "01JD6Z5B2C4D6E8F0G1H2J3K4M", RetryAfter: 30 * time.Second,
			ShowInternal: true, Internal: `limit "api" 10/s by client 203.0.113.9`, Route: "api", Upstream: "api-pool",
		}},
	}
	formats := []struct {
		ext, accept string
	}{
		{"html", "text/html"},
		{"json", "application/problem+json"},
		{"txt", "*/*"},
	}
	for _, pr := range problems {
		for _, f := range formats {
			name := pr.name + "." + f.ext
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				got := do(r, http.MethodGet, f.accept, pr.p).Body.Bytes()
				path := filepath.Join("testdata", name)
				if *update {
					if err := os.WriteFile(path, got, 0o644); err != nil {
						t.Fatal(err)
					}
					return
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (run with -update to create it)", err)
				}
				if string(got) != string(want) {
					t.Errorf("body differs from %s (run with -update and read the diff):\n%s", path, got)
				}
			})
		}
	}
}
