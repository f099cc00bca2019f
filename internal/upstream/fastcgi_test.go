package upstream

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/gatewise/gatewise/internal/cause"
	"github.com/gatewise/gatewise/internal/config"
	"github.com/gatewise/gatewise/internal/fastcgi"
)

// fastcgiPool returns the config of a pool of the given fastcgi targets
// on root.
func fastcgiPool(root string, urls ...string) *config.Pool {
	c := &config.Config{Pools: map[string]*config.Pool{"php": {FastCGI: &config.FastCGI{Root: root}}}}
	for _, u := range urls {
		c.Pools["php"].Targets = append(c.Pools["php"].Targets, config.Target{URL: u})
	}
	c.ApplyDefaults()
	return c.Pools["php"]
}

func TestFastCGIPool(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	sock := filepath.Join(t.TempDir(), "fpm.sock")
	pc := fastcgiPool(root, "fastcgi+unix://"+sock, "fastcgi://127.0.0.1:9")
	p, err := NewPool(pc, config.Limits{ResponseHeaderBytes: 64 << 10}, PoolOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, ok := p.Transport.(*FastCGITransport); !ok {
		t.Fatalf("Transport: got %T, want *FastCGITransport", p.Transport)
	}
	wantAddrs := []string{"unix:" + sock, "127.0.0.1:9"}
	for i, tg := range p.Targets {
		if tg.Addr != wantAddrs[i] || tg.URL.Host != tg.Addr || tg.FastCGI == nil {
			t.Errorf("target %d: got Addr %q, URL host %q, FastCGI %v; want Addr and host %q and a transport", i, tg.Addr, tg.URL.Host, tg.FastCGI, wantAddrs[i])
		}
	}
	o := p.Targets[0].FastCGI.Options()
	if o.Network != "unix" || o.Address != sock || o.Root != root || o.MaxIdleConns != config.DefaultFastCGIMaxIdleConns || o.NoFrontController {
		t.Errorf("options: got %+v", o)
	}
	// The request goes to the target its URL names: the socket does not
	// exist, so that target's answer is fpm_not_running.
	req, _ := http.NewRequest(http.MethodGet, "http://example.com/x.php", nil)
	req.URL.Scheme, req.URL.Host = p.Targets[0].URL.Scheme, p.Targets[0].URL.Host
	if err := writeFile(root, "x.php"); err != nil {
		t.Fatal(err)
	}
	_, err = p.Transport.RoundTrip(req)
	if ce, ok := cause.Of(err); !ok || ce.ID != cause.FPMNotRunning {
		t.Errorf("RoundTrip to a missing socket: got %v, want fpm_not_running", err)
	}
	req.URL.Host = "127.0.0.1:10"
	_, err = p.Transport.RoundTrip(req)
	if ce, ok := cause.Of(err); !ok || ce.ID != cause.ProxyInternalError {
		t.Errorf("RoundTrip to a target not in the pool: got %v, want proxy_internal_error", err)
	}
}

func TestFastCGIPoolErrors(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	tests := []struct {
		desc string
		pc   *config.Pool
	}{
		{"no fastcgi block", func() *config.Pool { pc := fastcgiPool(root, "fastcgi://127.0.0.1:9000"); pc.FastCGI = nil; return pc }()},
		{"missing root", fastcgiPool(filepath.Join(root, "nope"), "fastcgi://127.0.0.1:9000")},
		{"no port", fastcgiPool(root, "fastcgi://127.0.0.1")},
		{"relative socket", fastcgiPool(root, "fastcgi+unix://run/php.sock")},
		{"twice", fastcgiPool(root, "fastcgi+unix:///run/php.sock", "fastcgi+unix:///run/../run/php.sock")},
		{"an http target among them", fastcgiPool(root, "fastcgi://127.0.0.1:9000", "http://127.0.0.1:80")},
		{"a fastcgi target among http ones", fastcgiPool(root, "http://127.0.0.1:80", "fastcgi://127.0.0.1:9000")},
	}
	for _, tc := range tests {
		p, err := NewPool(tc.pc, config.Limits{}, PoolOptions{})
		if err == nil {
			p.Close()
			t.Errorf("%s: NewPool succeeded, want an error", tc.desc)
		}
	}
	_, err := NewPool(fastcgiPool(filepath.Join(root, "nope"), "fastcgi://127.0.0.1:9000"), config.Limits{}, PoolOptions{})
	if !errors.Is(err, fastcgi.ErrOptions) {
		t.Errorf("missing root: got %v, want an error wrapping fastcgi.ErrOptions", err)
	}
}

func TestJudgePHPCauses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		id   cause.ID
		want verdict
	}{
		{cause.FPMNotRunning, verdictFailure},
		{cause.FPMPoolExhausted, verdictFailure},
		{cause.FPMWorkerCrashed, verdictError},
		{cause.PHPFatalError, verdictError},
		{cause.PHPMemoryExhausted, verdictError},
		{cause.PHPTimeout, verdictError},
	}
	for _, tc := range tests {
		if got := judge(Outcome{Err: &cause.Error{ID: tc.id}}); got != tc.want {
			t.Errorf("judge(%s): got %d, want %d", tc.id, got, tc.want)
		}
	}
}

// writeFile writes an empty file name under dir.
func writeFile(dir, name string) error {
	return os.WriteFile(filepath.Join(dir, name), nil, 0o644)
}
