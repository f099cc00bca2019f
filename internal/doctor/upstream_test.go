package doctor

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatewise/gatewise/internal/config"
	"github.com/gatewise/gatewise/internal/fastcgi"
	"github.com/gatewise/gatewise/internal/testkit"
)

// fpmServer is a php-fpm master with one pool on a unix socket, started by
// a test.
type fpmServer struct {
	*testkit.PHPFPM
	sock, root string
}

// startFPM starts php-fpm (without php.ini) with one static pool of
// maxChildren workers, its status page at /fpm-status, and a document root
// holding sleep.php, which touches the file "started" and sleeps.
func startFPM(t *testing.T, maxChildren int) *fpmServer {
	t.Helper()
	s := testkit.StartPHPFPM(t, testkit.PHPFPMConfig{StartTimeout: startupTimeout,
		Pools: []testkit.Pool{{Name: "www", MaxChildren: maxChildren, Backlog: 16, StatusPath: "/fpm-status"}}})
	f := &fpmServer{PHPFPM: s, sock: s.Address("www"), root: s.Root()}
	f.Write("sleep.php", fmt.Sprintf("<?php touch(%q); sleep(20); echo 'done';\n", filepath.Join(s.Dir(), "started")))
	f.Write("ok.php", "<?php echo 'ok';\n")
	return f
}

// occupy runs sleep.php on one worker until the test ends, and returns when
// the script has started.
func (f *fpmServer) occupy(t *testing.T) {
	t.Helper()
	tr, err := fastcgi.New(fastcgi.Options{Address: f.sock, Root: f.root, MaxIdleConns: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done; tr.Close() })
	go func() {
		defer close(done)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://localhost/sleep.php", nil)
		req.RemoteAddr = "127.0.0.1:1"
		if res, err := tr.RoundTrip(req); err == nil {
			res.Body.Close()
		}
	}()
	started := filepath.Join(filepath.Dir(f.root), "started")
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(started); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("sleep.php did not start within 10s\n%s", f.ReadLog())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestFPMRealServer(t *testing.T) {
	t.Parallel()
	e := testEnv(2 * time.Second)
	check := func(addr string) []Finding {
		return runCheck(e, "fpm", addr, func(ctx context.Context) []Finding { return e.fpm(ctx, addr, "/fpm-status") })
	}
	t.Run("healthy", func(t *testing.T) {
		f := startFPM(t, 2)
		expect(t, check(f.sock), StatusOK, "", "pool www: 0 active, 2 idle", "pm = static")
		expect(t, check("fastcgi+unix://"+f.sock), StatusOK, "", "pool www")
	})
	t.Run("wrong status path", func(t *testing.T) {
		f := startFPM(t, 2)
		fs := runCheck(e, "fpm", f.sock, func(ctx context.Context) []Finding { return e.fpm(ctx, f.sock, "/nope") })
		expect(t, fs, StatusWarn, "", "not with its status page")
	})
	t.Run("every worker busy, then stopped", func(t *testing.T) {
		f := startFPM(t, 1)
		f.occupy(t)
		expect(t, check(f.sock), StatusFail, "fpm_pool_exhausted", "every PHP-FPM worker is busy", "no worker was free")
		f.Stop()
		expect(t, check(f.sock), StatusFail, "fpm_not_running", "socket does not exist")
	})
}

// fixtureConfig parses a config for the tests.
func fixtureConfig(t *testing.T, yaml string) *config.Config {
	t.Helper()
	cfg, err := config.ParseValid("gatewise.yaml", []byte(yaml))
	if err != nil {
		t.Fatalf("config: %v\n%s", err, yaml)
	}
	return cfg
}

// findingFor returns the findings of a check whose target contains target.
func findingFor(res *Result, check, target string) []Finding {
	var out []Finding
	for _, f := range res.Findings {
		if f.Check == check && strings.Contains(f.Target, target) {
			out = append(out, f)
		}
	}
	return out
}

func TestUpstreamsFromConfig(t *testing.T) {
	t.Parallel()
	healthy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte("ok"))
	}))
	defer healthy.Close()
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "bad gateway", http.StatusBadGateway)
	}))
	defer bad.Close()
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(1200 * time.Millisecond)
	}))
	defer slow.Close()
	selfSigned := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	selfSigned.Config.ErrorLog = log.New(io.Discard, "", 0) // the handshake doctor aborts
	selfSigned.StartTLS()
	defer selfSigned.Close()
	refused := freePort(t)
	fpm := startFPM(t, 2)
	dead := filepath.Join(t.TempDir(), "dead.sock")

	cfg := fixtureConfig(t, fmt.Sprintf(`listeners:
  - address: %s
pools:
  app:
    targets:
      - url: %s
      - url: %s
      - url: http://%s
    health:
      path: /healthz
  named:
    targets:
      - url: http://localhost:%s
  slow:
    targets:
      - url: %s
  tls:
    targets:
      - url: %s
  php:
    targets:
      - url: fastcgi+unix://%s
    fastcgi:
      root: %s
      status_path: /fpm-status
  phpdead:
    targets:
      - url: fastcgi+unix://%s
    fastcgi:
      root: %s
routes:
  - path: /
    pool: app
`, freePort(t), healthy.URL, bad.URL, refused, strings.TrimPrefix(healthy.URL, "http://127.0.0.1:"), slow.URL, selfSigned.URL, fpm.sock, fpm.root, dead, fpm.root))

	root := fixture(t, "host-healthy")
	res := Run(context.Background(), Options{Root: root, Now: fixtureNow, Config: cfg, CheckTimeout: 3 * time.Second, Statfs: fakeDisk(20<<30, 10<<30), Parallel: 4})
	for _, tc := range []struct {
		desc, check, target string
		want                Status
		cause, text         string
	}{
		{"health path answers 200", "upstream", healthy.URL, StatusOK, "", "GET /healthz → 200"},
		{"the upstream's own 502", "upstream", bad.URL, StatusFail, "upstream_error_status", "answered 502"},
		{"nothing listens", "upstream", "http://" + refused, StatusFail, "connection_refused", "connect: Connection refused"},
		{"a name that resolves", "upstream", "http://localhost:", StatusOK, "", "→ 404"},
		{"slow", "upstream", slow.URL, StatusWarn, "http_response_timeout", "slow"},
		{"self-signed certificate", "upstream", selfSigned.URL, StatusFail, "tls_certificate_error", "TLS"},
		{"PHP-FPM status page from the config", "fpm", fpm.sock, StatusOK, "", "pool www"},
		{"PHP-FPM target without a status page, stopped", "upstream", dead, StatusFail, "fpm_not_running", "connect"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			fs := findingFor(res, tc.check, tc.target)
			if len(fs) != 1 {
				t.Fatalf("want one %s finding for %s, got %+v", tc.check, tc.target, fs)
			}
			f := fs[0]
			text := f.Summary + "\n" + strings.Join(f.Evidence, "\n")
			if f.Status != tc.want || f.Cause != tc.cause || !strings.Contains(text, tc.text) {
				t.Errorf("got %s %q:\n%s\nwant %s %q with %q", f.Status, f.Cause, text, tc.want, tc.cause, tc.text)
			}
		})
	}
	if n := len(findingFor(res, "upstream", fpm.sock)); n != 0 {
		t.Errorf("the PHP-FPM target with a status page is checked by the fpm check only, got %d upstream findings", n)
	}
}

func TestRunBoundedAgainstDeadAddresses(t *testing.T) {
	t.Parallel()
	// A listener that accepts and never answers: every protocol waits.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	hang := l.Addr().String()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	res := Run(context.Background(), Options{Root: fixture(t, "host-healthy"), Now: fixtureNow, CheckTimeout: time.Second, Statfs: fakeDisk(1, 1),
		MySQL: []string{hang, freePort(t)}, Memcached: []string{hang}, Redis: []string{hang}, FPM: []string{hang, "/nonexistent/php.sock"}})
	for _, f := range res.Findings {
		if f.Target == hang && f.Status != StatusFail {
			t.Errorf("%s %s against a server that never answers: got %s %q, want fail", f.Check, f.Target, f.Status, f.Summary)
		}
	}
	if n := len(findingFor(res, "mysql", "")); n != 2 {
		t.Errorf("want 2 mysql findings, got %d", n)
	}
}
