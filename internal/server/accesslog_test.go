package server_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatewise/gatewise/internal/server"
)

// countLines returns how many lines the file at path holds (0 when it
// does not exist yet).
func countLines(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return strings.Count(string(b), "\n")
}

// getN sends n GETs to url and checks each is answered 200.
func getN(t *testing.T, url string, n int) {
	t.Helper()
	for range n {
		res, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("status %d", res.StatusCode)
		}
	}
}

// TestAccessLogFileBuffered: a file's access log holds its lines and
// writes them together at a reload (the old file's lines) and at
// shutdown, every line whole. (The flush interval's write is tested with
// obs.LineBuffer.)
func TestAccessLogFileBuffered(t *testing.T) {
	t.Parallel()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	defer up.Close()
	dir := t.TempDir()
	first, second := filepath.Join(dir, "first.log"), filepath.Join(dir, "second.log")

	cfg := oneTargetConfig(up.URL)
	cfg.AccessLog = first
	cfg.AccessLogBuffer = 64 << 10
	cfg.AccessLogFlush.Duration = time.Minute // nothing is written by the timer
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(cfg, server.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	url := "http://" + srv.Addrs()[0].String() + "/"

	getN(t, url, 20)
	time.Sleep(50 * time.Millisecond) // the last line is written after the answer
	if n := countLines(t, first); n != 0 {
		t.Fatalf("%d lines written with 64KiB held for a minute: want them held", n)
	}

	// A reload writes what the old log holds, and opens the new one.
	next := oneTargetConfig(up.URL)
	next.Listeners = cfg.Listeners
	next.Admin = cfg.Admin
	next.AccessLog = second
	next.AccessLogBuffer = 64 << 10
	next.AccessLogFlush.Duration = time.Minute
	if err := srv.Reload(next); err != nil {
		t.Fatal(err)
	}
	if n := countLines(t, first); n != 20 {
		t.Errorf("after the reload the first log has %d lines, want 20", n)
	}

	// Shutdown writes what the new log holds.
	getN(t, url, 12)
	time.Sleep(50 * time.Millisecond)
	if n := countLines(t, second); n != 0 {
		t.Fatalf("%d lines written with 64KiB held for a minute: want them held", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if n := countLines(t, second); n != 12 {
		t.Errorf("after shutdown the second log has %d lines, want 12", n)
	}
	b, err := os.ReadFile(second)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if !strings.HasPrefix(line, "{") || !strings.HasSuffix(line, "}") {
			t.Errorf("a line not whole: %q", line)
		}
	}
}

// TestAccessLogReloadKeepsInFlightLines: a request in flight across a
// reload has its line written to the new access log, not lost in the
// old one's closed file.
func TestAccessLogReloadKeepsInFlightLines(t *testing.T) {
	t.Parallel()
	started := make(chan struct{}, 1)
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			started <- struct{}{}
			<-release
		}
		_, _ = io.WriteString(w, "ok")
	}))
	defer up.Close()
	dir := t.TempDir()
	first, second := filepath.Join(dir, "first.log"), filepath.Join(dir, "second.log")
	cfg := oneTargetConfig(up.URL)
	cfg.AccessLog = first
	cfg.AccessLogBuffer = 0 // each line at once: what is lost is not held
	g := startGateway(t, cfg)

	done := make(chan error, 1)
	go func() {
		res, err := http.Get(g.url + "/slow")
		if err == nil {
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
		done <- err
	}()
	<-started
	next := oneTargetConfig(up.URL)
	next.Listeners, next.Admin = cfg.Listeners, cfg.Admin
	next.AccessLog = second
	next.AccessLogBuffer = 0
	if err := g.srv.Reload(next); err != nil {
		t.Fatal(err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the in-flight request's line in the new log", func() bool { return countLines(t, second) == 1 })
	if b, _ := os.ReadFile(second); !strings.Contains(string(b), `"/slow"`) {
		t.Errorf("new log: %s", b)
	}
	if n := countLines(t, first); n != 0 {
		t.Errorf("old log has %d lines, want 0", n)
	}
}
