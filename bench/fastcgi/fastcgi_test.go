package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatewise/gatewise/bench/internal/benchkit"
	"github.com/gatewise/gatewise/internal/config"
)

func testSetup(t *testing.T) setup {
	dir := t.TempDir()
	s := setup{dir: dir, root: filepath.Join(dir, "www"), socket: filepath.Join(dir, "php-fpm.sock"), children: 4,
		listen: "127.0.0.1:18080", isRoot: os.Geteuid() == 0}
	if err := os.MkdirAll(s.root, 0o755); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestGatewiseConfigValid(t *testing.T) {
	t.Parallel()
	s := testSetup(t)
	cfg, err := config.ParseValid("gatewise.yaml", []byte(gatewiseConfig(s)))
	if err != nil {
		t.Fatalf("%v\n%s", err, gatewiseConfig(s))
	}
	p := cfg.Pools["php"]
	if !p.IsFastCGI() || p.FastCGI.Root != s.root || cfg.AccessLog != "off" {
		t.Errorf("pool %+v, access log %q: want a fastcgi pool on %s and no access log", p, cfg.AccessLog, s.root)
	}
}

// TestConfigsCheck has nginx and php-fpm check their configs, when they are
// installed (bench/fastcgi.sh installs them).
func TestConfigsCheck(t *testing.T) {
	t.Parallel()
	s := testSetup(t)
	if text := nginxConfig(s, 2); !strings.Contains(text, "fastcgi_keep_conn on;") || !strings.Contains(text, "keepalive 2;") {
		t.Errorf("nginx config lacks FastCGI keep-alive (keepalive 2 per worker of 2, for 4 children):\n%s", text)
	}
	ctx := context.Background()
	if bin, err := benchkit.FindBinary("", "nginx"); err == nil {
		file := filepath.Join(s.dir, "nginx.conf")
		if err := os.WriteFile(file, []byte(nginxConfig(s, 2)), 0o644); err != nil {
			t.Fatal(err)
		}
		c := nginxContender(bin)
		if err := c.check(ctx, bin, file, s); err != nil {
			t.Errorf("nginx -t: %v", err)
		}
	} else {
		t.Logf("nginx not installed: its config is not checked (%v)", err)
	}
	if bin, err := benchkit.FindBinary("", "php-fpm8.2"); err == nil {
		file := filepath.Join(s.dir, "php-fpm.conf")
		if err := os.WriteFile(file, []byte(fpmConfig(s)), 0o644); err != nil {
			t.Fatal(err)
		}
		args := []string{"-t", "-n", "--fpm-config", file}
		if s.isRoot {
			args = append(args, "-R")
		}
		if err := benchkit.CheckCommand(ctx, "fastcgi", "php-fpm -t", bin, args...); err != nil {
			t.Errorf("php-fpm -t: %v", err)
		}
	} else {
		t.Logf("php-fpm not installed: its config is not checked (%v)", err)
	}
}

func TestParseWrk(t *testing.T) {
	t.Parallel()
	out := `Running 3s test @ http://127.0.0.1:18080/hello.php
  2 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.52ms    2.10ms  32.10ms   91.00%
    Req/Sec     2.29k   310.00     2.90k    70.00%
  Latency Distribution
     50%    1.52ms
     75%    2.00ms
     90%    3.95ms
     99%   13.32ms
  13671 requests in 3.00s, 2.97MB read
  Non-2xx or 3xx responses: 3
Requests/sec:   4557.00
Transfer/sec:      0.99MB
`
	w, err := parseWrk(out)
	if err != nil {
		t.Fatal(err)
	}
	if w.Requests != 13671 || w.RPS != 4557 || w.P50ms != 1.52 || w.P90ms != 3.95 || w.P99ms != 13.32 || w.MaxMs != 32.1 || w.Non2xx != 3 {
		t.Errorf("parseWrk: got %+v", w)
	}
	if _, err := parseWrk("Running 3s test\n  0 requests in 3.00s, 0B read\nRequests/sec: 0\n"); err == nil {
		t.Errorf("parseWrk without percentiles: no error")
	}
}

func TestParseStat(t *testing.T) {
	t.Parallel()
	pg, cpu, ok := parseStat("123 (php-fpm: pool (www)) S 1 120 120 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 100 1000 10 18446744073709551615")
	if !ok || pg != 120 || cpu.Milliseconds() != 3000 {
		t.Errorf("parseStat: got pgrp %d, cpu %v, %v; want 120, 3s", pg, cpu, ok)
	}
}
