package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatewise/gatewise/internal/config"
	"github.com/gatewise/gatewise/internal/server"
)

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// lines returns the JSON log lines written so far.
func (s *syncBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(s.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line is not JSON: %v: %q", err, sc.Text())
		}
		out = append(out, m)
	}
	return out
}

// gateway is a running gatewise on loopback.
type gateway struct {
	srv    *server.Server
	url    string
	admin  string
	access *syncBuffer
	log    *syncBuffer
}

// oneTargetConfig returns a config with a loopback listener on a free port,
// an admin listener, and one pool "app" of the given target URLs.
func oneTargetConfig(targets ...string) *config.Config {
	cfg := &config.Config{
		Listeners: []config.Listener{{Address: "127.0.0.1:0"}},
		Admin:     config.Admin{Address: "127.0.0.1:0"},
		Pools:     map[string]*config.Pool{"app": {}},
	}
	for _, u := range targets {
		cfg.Pools["app"].Targets = append(cfg.Pools["app"].Targets, config.Target{URL: u, Weight: 1})
	}
	cfg.ApplyDefaults()
	return cfg
}

// startGateway validates cfg, starts the gateway and stops it at the end of
// the test.
func startGateway(t *testing.T, cfg *config.Config) *gateway {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	g := &gateway{access: &syncBuffer{}, log: &syncBuffer{}}
	logger := slog.New(slog.NewJSONHandler(g.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := server.New(cfg, server.Options{Stdout: g.access, Logger: logger})
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	if err := srv.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	g.srv = srv
	scheme := "http://"
	if cfg.Listeners[0].TLS != nil {
		scheme = "https://"
	}
	g.url = scheme + srv.Addrs()[0].String()
	if a := srv.AdminAddr(); a != nil {
		g.admin = "http://" + a.String()
	}
	return g
}

// startOwnShutdown starts a gateway, logging nowhere, whose Shutdown is
// the test's to call (startGateway's cleanup calls it).
func startOwnShutdown(t *testing.T, cfg *config.Config) *server.Server {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(cfg, server.Options{Stdout: &syncBuffer{}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	return srv
}

// metrics scrapes the admin listener's /metrics.
func (g *gateway) metrics(t *testing.T) string {
	t.Helper()
	res, err := http.Get(g.admin + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	return string(b)
}

// waitFor polls cond until it holds or 5 seconds pass (log lines are
// written when the handler returns, just after the client has its answer).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// findLine returns the first log line whose fields include all of want.
func findLine(lines []map[string]any, want map[string]any) map[string]any {
	for _, l := range lines {
		ok := true
		for k, v := range want {
			if l[k] != v {
				ok = false
				break
			}
		}
		if ok {
			return l
		}
	}
	return nil
}

// dialVisitor opens a raw connection to the gateway at addr (host:port),
// with a 10 s deadline, closed at the end of the test.
func dialVisitor(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return c, bufio.NewReader(c)
}
