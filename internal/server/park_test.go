//go:build linux

package server_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gatewise/gatewise/internal/config"
)

// connGoroutines counts the goroutines serving a visitor's HTTP/1
// connection, in the whole test binary: the test runs alone (not
// parallel) for that.
func connGoroutines() int {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Count(string(buf), "h1server.(*conn).serve(")
}

// TestClientParkAfter: limits.client_park_after reaches the HTTP/1 server:
// visitors' idle keep-alive connections lose their goroutine after it and
// are answered on as before; with 0s they keep it.
func TestClientParkAfter(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok "+r.URL.Path)
	}))
	defer up.Close()
	for _, tc := range []struct {
		park    time.Duration
		serving int
	}{{50 * time.Millisecond, 0}, {0, 3}} {
		cfg := oneTargetConfig(up.URL)
		cfg.Limits.ClientParkAfter = config.Duration{Duration: tc.park}
		g := startGateway(t, cfg)
		addr := strings.TrimPrefix(g.url, "http://")
		get := func(c net.Conn, br *bufio.Reader, path string) {
			t.Helper()
			if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			res, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			if string(b) != "ok "+path {
				t.Fatalf("client_park_after %v: %s: %q", tc.park, path, b)
			}
		}
		var conns []net.Conn
		var readers []*bufio.Reader
		for range 3 {
			c, br := dialVisitor(t, addr)
			get(c, br, "/1")
			conns, readers = append(conns, c), append(readers, br)
		}
		// Past the park and the sweeper's ticks, and well before the
		// h1server default (5s) would park them.
		time.Sleep(tc.park + 300*time.Millisecond)
		for deadline := time.Now().Add(2 * time.Second); connGoroutines() != tc.serving; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("client_park_after %v: %d connection goroutines, want %d", tc.park, connGoroutines(), tc.serving)
			}
		}
		for i, c := range conns {
			get(c, readers[i], "/2")
		}
		for _, c := range conns {
			_ = c.Close()
		}
	}
}
