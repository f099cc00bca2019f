//go:build linux

package server_test

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gatewise/gatewise/internal/config"
	"github.com/gatewise/gatewise/internal/testkit"
)

// TestHalfCloseThroughGateway: a visitor that sends its request and its
// FIN in one segment (as `printf ... | nc -N` does) gets the answer, and
// then the gateway's close at once, whether the request is its
// connection's first or not. The gateway's HTTP/1 server waits for the
// next request without reading first (h1server's held reads), so it must
// learn of a FIN that came with the request from the read itself; with
// parking off, a server that missed it would hold the connection until
// the idle timeout (75 s), past the client's deadline.
func TestHalfCloseThroughGateway(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok "+r.URL.Path)
	}))
	defer up.Close()
	cfg := oneTargetConfig(up.URL)
	cfg.Limits.ClientParkAfter = config.Duration{Duration: 0}
	g := startGateway(t, cfg)
	addr := strings.TrimPrefix(g.url, "http://")
	read := func(br *bufio.Reader, path string) {
		t.Helper()
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusOK || string(b) != "ok "+path {
			t.Fatalf("%s: %d %q", path, res.StatusCode, b)
		}
	}
	for _, first := range []bool{true, false} {
		c, br := dialVisitor(t, addr)
		if !first {
			if _, err := io.WriteString(c, "GET /before HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			read(br, "/before")
		}
		testkit.SendWithFIN(t, c, "GET /last HTTP/1.1\r\nHost: x\r\n\r\n")
		read(br, "/last")
		if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
			t.Fatalf("after the answer to a request sent with the FIN (first on its connection: %v): %v, want the gateway's close", first, err)
		}
	}
}
