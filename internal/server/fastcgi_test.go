package server_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatewise/gatewise/internal/config"
	"github.com/gatewise/gatewise/internal/fastcgi"
	"github.com/gatewise/gatewise/internal/testkit"
)

// fpmPool is one pool of a test php-fpm master.
type fpmPool struct {
	name        string
	tcp         bool     // listen on 127.0.0.1 and a free port instead of a unix socket
	maxChildren int      // pm.max_children (pm = static); default 2
	backlog     int      // listen.backlog; default 16
	extra       []string // more lines for the pool's section
	url         string   // the target URL, set by startPHPFPM
}

// phpFPM is a php-fpm master started by a test (testkit.PHPFPM), with its
// document root.
type phpFPM struct {
	*testkit.PHPFPM
	t     *testing.T
	dir   string
	root  string // the document root, symbolic links resolved
	pools map[string]*fpmPool
}

// startPHPFPM starts php-fpm without a php.ini (so its settings are the
// test's) with the given pools, each with pm.status_path = /fpm-status,
// and a fresh document root; it stops it when the test ends.
func startPHPFPM(t *testing.T, pools ...*fpmPool) *phpFPM {
	t.Helper()
	var c testkit.PHPFPMConfig
	for _, p := range pools {
		backlog := p.backlog
		if backlog == 0 {
			backlog = 16
		}
		extra := []string{"catch_workers_output = yes",
			"php_value[memory_limit] = 32M", "php_flag[log_errors] = on", "php_flag[display_errors] = off",
			"php_value[post_max_size] = 200M", "php_value[upload_max_filesize] = 200M"}
		c.Pools = append(c.Pools, testkit.Pool{Name: p.name, TCP: p.tcp, MaxChildren: p.maxChildren, Backlog: backlog,
			StatusPath: "/fpm-status", Extra: append(extra, p.extra...)})
	}
	s := testkit.StartPHPFPM(t, c)
	real, err := filepath.EvalSymlinks(s.Root())
	if err != nil {
		t.Fatal(err)
	}
	f := &phpFPM{PHPFPM: s, t: t, dir: s.Dir(), root: real, pools: map[string]*fpmPool{}}
	for _, p := range pools {
		if s.Network(p.name) == "tcp" {
			p.url = "fastcgi://" + s.Address(p.name)
		} else {
			p.url = "fastcgi+unix://" + s.Address(p.name)
		}
		f.pools[p.name] = p
	}
	return f
}

// stop ends the master and its workers, and waits for them.
func (f *phpFPM) stop() { f.Stop() }

// write creates a file under the document root.
func (f *phpFPM) write(name, content string) {
	f.t.Helper()
	f.Write(name, content)
}

// phpConfig returns a gateway config with one pool "php" of the given
// PHP-FPM targets on root, with defaults applied.
func phpConfig(root string, tune func(p *config.Pool), urls ...string) *config.Config {
	cfg := &config.Config{
		Listeners: []config.Listener{{Address: "127.0.0.1:0"}},
		Admin:     config.Admin{Address: "127.0.0.1:0"},
		Pools:     map[string]*config.Pool{"php": {FastCGI: &config.FastCGI{Root: root}}},
	}
	for _, u := range urls {
		cfg.Pools["php"].Targets = append(cfg.Pools["php"].Targets, config.Target{URL: u})
	}
	if tune != nil {
		tune(cfg.Pools["php"])
	}
	cfg.ApplyDefaults()
	return cfg
}

// get sends a GET with a request ID and returns the response and its body.
func get(t *testing.T, url, reqID string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if reqID != "" {
		req.Header.Set("X-Request-ID", reqID)
	}
	res, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("GET %s: body: %v", url, err)
	}
	return res, string(b)
}

// TestFastCGISite serves a small PHP site from a real php-fpm through a
// real gateway: hello world over a unix socket and over TCP, WordPress-like
// pretty URLs through the front controller, static files, hidden and
// source files, a 50 MB upload streamed through, and health checks over
// FastCGI.
func TestFastCGISite(t *testing.T) {
	t.Parallel()
	f := startPHPFPM(t, &fpmPool{name: "unix"}, &fpmPool{name: "tcp", tcp: true})
	f.write("hello.php", `<?php echo "Hello, world from ", $_SERVER['SERVER_SOFTWARE'];`)
	f.write("index.php", `<?php
header('Content-Type: text/plain');
echo "front controller\n";
echo 'REQUEST_URI=', $_SERVER['REQUEST_URI'], "\n";
echo 'SCRIPT_NAME=', $_SERVER['SCRIPT_NAME'], "\n";
echo 'PATH_INFO=', $_SERVER['PATH_INFO'] ?? '', "\n";
echo 'QUERY_STRING=', $_SERVER['QUERY_STRING'], "\n";
echo 'REMOTE_ADDR=', $_SERVER['REMOTE_ADDR'], "\n";
echo 'HTTP_HOST=', $_SERVER['HTTP_HOST'], "\n";
echo 'APP_ENV=', $_SERVER['APP_ENV'] ?? '', "\n";
`)
	f.write("wp-admin/index.php", `<?php echo "admin";`)
	f.write("wp-content/themes/x/style.css", "body { color: red }\n")
	f.write(".env", "DB_PASSWORD=secret\n")
	f.write("wp-config.php.bak", "<?php $password = 'secret';\n")
	f.write("ping.php", `<?php echo "pong";`)
	f.write("upload.php", `<?php
$in = fopen('php://input', 'rb');
$h = hash_init('sha256');
$n = 0;
while (!feof($in)) { $b = fread($in, 1 << 16); $n += strlen($b); hash_update($h, $b); }
echo $n, ' ', hash_final($h);
`)
	cfg := phpConfig(f.root, func(p *config.Pool) {
		p.FastCGI.Params = map[string]string{"APP_ENV": "test"}
		p.Health = &config.HealthCheck{Path: "/ping.php", Interval: config.Duration{Duration: 100 * time.Millisecond}, Timeout: config.Duration{Duration: 100 * time.Millisecond}}
	}, f.pools["unix"].url, f.pools["tcp"].url)
	cfg.Pools["php"].Policy = "round_robin"
	g := startGateway(t, cfg)

	t.Run("hello world on both targets", func(t *testing.T) {
		seen := map[string]bool{}
		for i := range 4 {
			id := "hello-" + strconv.Itoa(i)
			res, body := get(t, g.url+"/hello.php", id, nil)
			if res.StatusCode != 200 || body != "Hello, world from gatewise" {
				t.Fatalf("GET /hello.php: got %d %q, want 200 and the greeting", res.StatusCode, body)
			}
			// PHP sends no length; the gateway holds the short answer
			// whole and frames it by its length, not in chunks.
			if res.ContentLength != int64(len(body)) || len(res.TransferEncoding) > 0 {
				t.Errorf("GET /hello.php: Content-Length %d, Transfer-Encoding %v; want %d and none", res.ContentLength, res.TransferEncoding, len(body))
			}
			var line map[string]any
			waitFor(t, "access log line", func() bool {
				line = findLine(g.access.lines(t), map[string]any{"request_id": id})
				return line != nil
			})
			up, _ := line["upstream"].(string)
			seen[up] = true
		}
		unix := "unix:" + filepath.Join(f.dir, "unix.sock")
		tcp := strings.TrimPrefix(f.pools["tcp"].url, "fastcgi://")
		if !seen[unix] || !seen[tcp] {
			t.Errorf("upstreams in the access log: got %v, want %s and %s", seen, unix, tcp)
		}
	})

	t.Run("pretty URLs through the front controller", func(t *testing.T) {
		for _, tc := range []struct{ path, want string }{
			{"/2024/01/hello-world/?replytocom=5", "REQUEST_URI=/2024/01/hello-world/?replytocom=5\nSCRIPT_NAME=/index.php\nPATH_INFO=\nQUERY_STRING=replytocom=5\n"},
			{"/category/news/", "REQUEST_URI=/category/news/\nSCRIPT_NAME=/index.php\n"},
			{"/index.php/feed/atom", "SCRIPT_NAME=/index.php\nPATH_INFO=/feed/atom\n"},
			{"/", "REQUEST_URI=/\nSCRIPT_NAME=/index.php\n"},
		} {
			res, body := get(t, g.url+tc.path, "", nil)
			if res.StatusCode != 200 || !strings.HasPrefix(body, "front controller\n") || !strings.Contains(body, tc.want) {
				t.Errorf("GET %s: got %d %q, want 200 from the front controller with %q", tc.path, res.StatusCode, body, tc.want)
			}
			if !strings.Contains(body, "REMOTE_ADDR=127.0.0.1\n") || !strings.Contains(body, "APP_ENV=test\n") {
				t.Errorf("GET %s: got %q, want REMOTE_ADDR the visitor's and APP_ENV from fastcgi.params", tc.path, body)
			}
		}
		res, body := get(t, g.url+"/wp-admin/", "", nil)
		if res.StatusCode != 200 || body != "admin" {
			t.Errorf("GET /wp-admin/: got %d %q, want the directory's index.php", res.StatusCode, body)
		}
		res, _ = get(t, g.url+"/wp-admin", "", nil)
		// The client follows the 301 to /wp-admin/.
		if res.StatusCode != 200 || res.Request.URL.Path != "/wp-admin/" {
			t.Errorf("GET /wp-admin: ended at %s with %d, want a redirect to /wp-admin/", res.Request.URL.Path, res.StatusCode)
		}
	})

	t.Run("static files, hidden and source files", func(t *testing.T) {
		res, body := get(t, g.url+"/wp-content/themes/x/style.css", "", nil)
		if res.StatusCode != 200 || body != "body { color: red }\n" || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/css") {
			t.Fatalf("GET style.css: got %d %q %q, want 200 text/css and the file", res.StatusCode, res.Header.Get("Content-Type"), body)
		}
		etag := res.Header.Get("ETag")
		res, _ = get(t, g.url+"/wp-content/themes/x/style.css", "", http.Header{"If-None-Match": {etag}})
		if etag == "" || res.StatusCode != http.StatusNotModified {
			t.Errorf("If-None-Match %q: got %d, want 304", etag, res.StatusCode)
		}
		for _, p := range []string{"/.env", "/wp-config.php.bak", "/missing.php"} {
			res, body := get(t, g.url+p, "", nil)
			if res.StatusCode != 404 || strings.Contains(body, "secret") {
				t.Errorf("GET %s: got %d %q, want 404 without the file", p, res.StatusCode, body)
			}
		}
	})

	t.Run("50 MB upload streamed through", func(t *testing.T) {
		const size = 50 << 20
		data := bytes.Repeat([]byte("gatewise-fastcgi-upload\n"), size/24+1)[:size]
		sum := sha256.Sum256(data)
		res, err := (&http.Client{Timeout: 60 * time.Second}).Post(g.url+"/upload.php", "application/octet-stream", bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		want := fmt.Sprintf("%d %s", size, hex.EncodeToString(sum[:]))
		if res.StatusCode != 200 || string(body) != want {
			t.Errorf("POST 50 MB: got %d %q, want 200 %q", res.StatusCode, body, want)
		}
	})

	t.Run("health checks over FastCGI", func(t *testing.T) {
		waitFor(t, "passing health checks", func() bool {
			return strings.Contains(g.metrics(t), `gatewise_health_checks_total{pool="php",result="pass",target="unix:`)
		})
		if m := g.metrics(t); strings.Contains(m, `result="fail"`) {
			t.Errorf("failing health checks:\n%s", grepLines(m, "gatewise_health_checks_total"))
		}
	})
}

// TestPHPFailures makes PHP fail in each of its ways behind the gateway
// and checks what each party sees: the visitor the status, Proxy-Status
// and an error page holding no PHP path or message; the owner a warning
// line with the cause and the PHP file and line.
func TestPHPFailures(t *testing.T) {
	t.Parallel()
	f := startPHPFPM(t, &fpmPool{name: "www", extra: []string{"request_terminate_timeout = 1s"}})
	f.write("fatal.php", "<?php\necho '';\nthrow new RuntimeException('boom-secret');\n")
	f.write("memory.php", "<?php\n$a = [];\nfor ($i = 0; $i < 1000; $i++) {\n    $a[] = str_repeat('x', 1 << 20);\n}\n")
	f.write("sleep.php", "<?php\nsleep(10);\necho 'woke';\n")
	cfg := phpConfig(f.root, func(p *config.Pool) {
		p.FastCGI.TerminateTimeout.Duration = time.Second
	}, f.pools["www"].url)
	g := startGateway(t, cfg)

	for _, tc := range []struct {
		desc, script     string
		status           int
		errType, cause   string
		detail           string
		phpMessage, line string // in the owner's error=; "" for none
	}{
		{"uncaught exception", "/fatal.php", 500, "http_response_incomplete", "php_fatal_error", "", "Uncaught RuntimeException: boom-secret", "3"},
		{"memory_limit", "/memory.php", 500, "http_response_incomplete", "php_memory_exhausted", "", "Allowed memory size of", "4"},
		{"request_terminate_timeout", "/sleep.php", 504, "http_response_timeout", "php_timeout", "request_terminate_timeout", "", ""},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			id := "php-" + tc.cause
			res, body := get(t, g.url+tc.script, id, http.Header{"Accept": {"text/html"}})
			if res.StatusCode != tc.status {
				t.Errorf("status: got %d, want %d", res.StatusCode, tc.status)
			}
			ps := res.Header.Get("Proxy-Status")
			if !strings.Contains(ps, "error="+tc.errType) || !strings.Contains(ps, `details="`+tc.cause) {
				t.Errorf("Proxy-Status: got %q, want error=%s with details %s", ps, tc.errType, tc.cause)
			}
			if !strings.Contains(body, "<html") || !strings.Contains(body, id) {
				t.Errorf("body is not the gateway's error page with the request ID: %.300q", body)
			}
			if regexp.MustCompile(`(?i)\.php|boom-secret|RuntimeException|Allowed memory|` + regexp.QuoteMeta(f.dir)).MatchString(body + ps) {
				t.Errorf("the visitor sees PHP's detail: Proxy-Status %q, body %s", ps, body)
			}
			var warn map[string]any
			waitFor(t, "the owner's warning line", func() bool {
				warn = findLine(g.log.lines(t), map[string]any{"level": "WARN", "request_id": id})
				return warn != nil
			})
			if warn["cause"] != tc.cause || (tc.detail != "" && warn["detail"] != tc.detail) {
				t.Errorf("warning line: cause %v detail %v, want %s %s", warn["cause"], warn["detail"], tc.cause, tc.detail)
			}
			errText, _ := warn["error"].(string)
			if tc.phpMessage != "" {
				want := "in " + filepath.Join(f.root, tc.script) + " on line " + tc.line
				if !strings.Contains(errText, tc.phpMessage) || !strings.Contains(errText, want) {
					t.Errorf("warning line error=%q, want PHP's message %q and %q", errText, tc.phpMessage, want)
				}
			} else if !strings.Contains(errText, tc.script) {
				t.Errorf("warning line error=%q, want the script %s", errText, tc.script)
			}
			var access map[string]any
			waitFor(t, "access log line", func() bool {
				access = findLine(g.access.lines(t), map[string]any{"request_id": id})
				return access != nil
			})
			if access["cause"] != tc.cause || access["attempts"] != float64(1) {
				t.Errorf("access log: cause %v attempts %v, want %s and 1 attempt (PHP's failures are not retried)", access["cause"], access["attempts"], tc.cause)
			}
		})
	}
	m := g.metrics(t)
	for _, c := range []string{"php_fatal_error", "php_memory_exhausted", "php_timeout"} {
		if !strings.Contains(m, fmt.Sprintf(`gatewise_upstream_failures_total{cause=%q,pool="php",target="unix:`, c)) {
			t.Errorf("metrics lack the failures of %s:\n%s", c, grepLines(m, "gatewise_upstream_failures_total"))
		}
	}
}

// TestFastCGIPoolExhausted sends more concurrent requests than a pool of
// one worker with a listen backlog of one can take: each is served or
// answered 503 fpm_pool_exhausted with Retry-After at once, and none hangs.
func TestFastCGIPoolExhausted(t *testing.T) {
	t.Parallel()
	f := startPHPFPM(t, &fpmPool{name: "www", maxChildren: 1, backlog: 1})
	f.write("slow.php", "<?php\nusleep(300000);\necho 'done';\n")
	cfg := phpConfig(f.root, func(p *config.Pool) {
		no := false
		p.Concurrency.Adaptive = &no // the gateway's own limit would queue the excess: let PHP-FPM refuse it
	}, f.pools["www"].url)
	g := startGateway(t, cfg)
	const n = 8
	type outcome struct {
		status             int
		proxyStatus, retry string
		err                error
	}
	results := make([]outcome, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
			res, err := c.Get(g.url + "/slow.php")
			if err != nil {
				results[i].err = err
				return
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			results[i] = outcome{status: res.StatusCode, proxyStatus: res.Header.Get("Proxy-Status"), retry: res.Header.Get("Retry-After")}
		})
	}
	wg.Wait()
	served, exhausted := 0, 0
	for _, r := range results {
		switch {
		case r.err != nil:
			t.Errorf("request failed (none may hang): %v", r.err)
		case r.status == 200:
			served++
		case r.status == 503 && strings.Contains(r.proxyStatus, `details="fpm_pool_exhausted`):
			exhausted++
			if r.retry == "" {
				t.Errorf("503 fpm_pool_exhausted without Retry-After")
			}
		default:
			t.Errorf("got %d %q, want 200 or 503 fpm_pool_exhausted", r.status, r.proxyStatus)
		}
	}
	if served == 0 || exhausted == 0 {
		t.Errorf("%d served, %d fpm_pool_exhausted; want some of each", served, exhausted)
	}
	t.Logf("%d served, %d fpm_pool_exhausted", served, exhausted)
}

// TestFastCGINotRunning stops php-fpm: requests get 502 fpm_not_running,
// on a unix socket (the socket is gone) and on TCP (refused).
func TestFastCGINotRunning(t *testing.T) {
	t.Parallel()
	f := startPHPFPM(t, &fpmPool{name: "unix"}, &fpmPool{name: "tcp", tcp: true})
	f.write("hello.php", `<?php echo "hi";`)
	gateways := map[string]*gateway{}
	for _, name := range []string{"unix", "tcp"} {
		g := startGateway(t, phpConfig(f.root, nil, f.pools[name].url))
		if res, body := get(t, g.url+"/hello.php", "", nil); res.StatusCode != 200 || body != "hi" {
			t.Fatalf("%s, before the stop: got %d %q", name, res.StatusCode, body)
		}
		gateways[name] = g
	}
	f.stop()
	for name, g := range gateways {
		id := "not-running-" + name
		res, body := get(t, g.url+"/hello.php", id, http.Header{"Accept": {"application/problem+json"}})
		var problem map[string]any
		_ = json.Unmarshal([]byte(body), &problem)
		if res.StatusCode != 502 || problem["cause"] != "fpm_not_running" || !strings.Contains(res.Header.Get("Proxy-Status"), "error=connection_refused") {
			t.Errorf("%s: got %d %q %s, want 502 fpm_not_running (connection_refused)", name, res.StatusCode, res.Header.Get("Proxy-Status"), body)
		}
		if strings.Contains(body, f.dir) || strings.Contains(body, "127.0.0.1") {
			t.Errorf("%s: the visitor sees the address: %s", name, body)
		}
	}
}

// TestFastCGIStatusPolling reads two PHP-FPM pools' status pages into the
// metrics; a pool whose only worker is held busy is saturated: logged once,
// marked unhealthy (the other target takes the requests), and healthy again
// when the worker is free.
func TestFastCGIStatusPolling(t *testing.T) {
	t.Parallel()
	f := startPHPFPM(t, &fpmPool{name: "a", maxChildren: 1}, &fpmPool{name: "b", maxChildren: 2})
	f.write("hello.php", `<?php echo "hi";`)
	marker := filepath.Join(f.dir, "started")
	f.write("hold.php", "<?php\ntouch('"+marker+"');\nsleep(3);\necho 'held';\n")
	cfg := phpConfig(f.root, func(p *config.Pool) {
		p.FastCGI.StatusPath = "/fpm-status"
		p.FastCGI.StatusInterval.Duration = 300 * time.Millisecond
		p.FastCGI.StatusTimeout.Duration = 300 * time.Millisecond
		// The worker is held by another client: a connection the gateway
		// kept would hold pool a's only worker itself.
		none := 0
		p.FastCGI.MaxIdleConns = &none
	}, f.pools["a"].url, f.pools["b"].url)
	g := startGateway(t, cfg)
	a := "unix:" + filepath.Join(f.dir, "a.sock")

	waitFor(t, "status metrics of both pools", func() bool {
		m := g.metrics(t)
		return strings.Contains(m, `gatewise_fpm_total_processes{pool="php",target="`+a+`"} 1`) &&
			strings.Contains(m, `gatewise_fpm_total_processes{pool="php",target="unix:`+filepath.Join(f.dir, "b.sock")+`"} 2`) &&
			strings.Contains(m, `gatewise_fpm_up{pool="php",target="`+a+`"} 1`)
	})
	for _, name := range []string{"gatewise_fpm_listen_queue", "gatewise_fpm_idle_processes", "gatewise_fpm_active_processes",
		"gatewise_fpm_max_children_reached", "gatewise_fpm_slow_requests", "gatewise_fpm_saturated"} {
		if m := g.metrics(t); !strings.Contains(m, name+`{pool="php",target="`+a+`"}`) {
			t.Errorf("metrics lack %s for %s", name, a)
		}
	}

	// Hold pool a's only worker, straight over FastCGI.
	tr, err := fastcgi.New(fastcgi.Options{Address: filepath.Join(f.dir, "a.sock"), Root: f.root, MaxIdleConns: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	held := make(chan error, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, "http://localhost/hold.php", nil)
		res, err := tr.RoundTrip(req)
		if err == nil {
			_, err = io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
		held <- err
	}()
	waitFor(t, "the held request to start", func() bool { _, err := os.Stat(marker); return err == nil })
	waitFor(t, "target a marked unhealthy", func() bool {
		return findLine(g.log.lines(t), map[string]any{"msg": "target unhealthy", "target": a}) != nil
	})
	if m := g.metrics(t); !strings.Contains(m, `gatewise_fpm_saturated{pool="php",target="`+a+`"} 1`) {
		t.Errorf("gatewise_fpm_saturated for a: want 1:\n%s", grepLines(m, "gatewise_fpm_saturated"))
	}
	// Requests meanwhile go to b, at once.
	for i := range 3 {
		id := "while-held-" + strconv.Itoa(i)
		if res, body := get(t, g.url+"/hello.php", id, nil); res.StatusCode != 200 || body != "hi" {
			t.Errorf("while a is saturated: got %d %q", res.StatusCode, body)
		}
		var line map[string]any
		waitFor(t, "access log line", func() bool {
			line = findLine(g.access.lines(t), map[string]any{"request_id": id})
			return line != nil
		})
		if line["upstream"] == a {
			t.Errorf("request %s went to the saturated target %s", id, a)
		}
	}
	if err := <-held; err != nil {
		t.Fatalf("the held request: %v", err)
	}
	waitFor(t, "target a healthy again", func() bool {
		return findLine(g.log.lines(t), map[string]any{"msg": "target healthy", "target": a}) != nil
	})
	saturated := 0
	for _, l := range g.log.lines(t) {
		if msg, _ := l["msg"].(string); strings.HasPrefix(msg, "php-fpm pool saturated") && l["target"] == a {
			saturated++
		}
	}
	if saturated != 1 {
		t.Errorf("logged %d saturation lines for a, want 1 (once per change):\n%s", saturated, g.log.String())
	}
	if findLine(g.log.lines(t), map[string]any{"msg": "php-fpm pool no longer saturated", "target": a}) == nil {
		t.Errorf("no line saying a is no longer saturated:\n%s", g.log.String())
	}
}

// TestFastCGIStatusPathWrong checks that a status_path PHP-FPM does not
// serve is logged once as a configuration problem, and does not mark the
// target down.
func TestFastCGIStatusPathWrong(t *testing.T) {
	t.Parallel()
	f := startPHPFPM(t, &fpmPool{name: "a"}, &fpmPool{name: "b"})
	cfg := phpConfig(f.root, func(p *config.Pool) {
		p.FastCGI.StatusPath = "/not-the-status"
		p.FastCGI.StatusInterval.Duration = 100 * time.Millisecond
		p.FastCGI.StatusTimeout.Duration = 100 * time.Millisecond
	}, f.pools["a"].url, f.pools["b"].url)
	g := startGateway(t, cfg)
	waitFor(t, "the unreadable status page logged", func() bool {
		return findLine(g.log.lines(t), map[string]any{"level": "WARN", "status_path": "/not-the-status"}) != nil
	})
	time.Sleep(time.Second) // ten more reads
	n := 0
	for _, l := range g.log.lines(t) {
		if msg, _ := l["msg"].(string); strings.Contains(msg, "unreadable") {
			n++
		}
		if l["msg"] == "target unhealthy" {
			t.Errorf("a wrong status path marked a target down: %v", l)
		}
	}
	if n != 2 {
		t.Errorf("logged %d lines about the unreadable status page, want 2 (one per target, once)", n)
	}
}
