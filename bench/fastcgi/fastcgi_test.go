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
