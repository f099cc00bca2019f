package fastcgi

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gatewise/gatewise/internal/cause"
)

// dumpPHP answers the CGI variables PHP got, as JSON.
const dumpPHP = `<?php header('Content-Type: application/json'); echo json_encode($_SERVER);`

// get sends one request through tr and reads the whole response.
func roundTrip(t *testing.T, tr http.RoundTripper, req *http.Request) (*http.Response, string, error) {
	t.Helper()
	res, err := tr.RoundTrip(req)
	if err != nil {
		return nil, "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res, string(b), err
}

func newRequest(t *testing.T, method, target string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, "http://example.com"+target, body)
	if err != nil {
		t.Fatal(err)
	}
	req.RemoteAddr = "192.0.2.7:50123"
	return req
}

// wantCause checks err carries the cause id and returns it.
func wantCause(t *testing.T, err error, id cause.ID) *cause.Error {
	t.Helper()
	ce, ok := cause.Of(err)
	if !ok {
		t.Fatalf("err = %v, want a *cause.Error %s", err, id)
	}
	if ce.ID != id {
		t.Fatalf("cause = %s (%v), want %s", ce.ID, err, id)
	}
	return ce
}

// wantPHPError checks the cause's Err is a PHPError naming file and line,
// and that the Detail (which visitors may see) names neither.
func wantPHPError(t *testing.T, ce *cause.Error, file string, line int) *PHPError {
	t.Helper()
	var pe *PHPError
	if !errors.As(ce, &pe) {
		t.Fatalf("err = %v, want a *PHPError inside", ce)
	}
	if pe.File != file || pe.Line != line {
		t.Errorf("PHP error at %s:%d, want %s:%d (%v)", pe.File, pe.Line, file, line, pe)
	}
	if strings.Contains(ce.Detail, "/") || strings.Contains(ce.Detail, "line") {
		t.Errorf("Detail = %q names a file or line; visitors may see it", ce.Detail)
	}
	if !strings.Contains(ce.Error(), file) {
		t.Errorf("Error() = %q, want the file for the owner's log", ce.Error())
	}
	return pe
}

func TestHelloWorld(t *testing.T) {
	f := startFPM(t, &pool{name: "unix"}, &pool{name: "tcp", tcp: true})
	f.write("hello.php", `<?php echo "Hello, world";`)
	for _, name := range []string{"unix", "tcp"} {
		t.Run(name, func(t *testing.T) {
			tr := f.transport(name, Options{})
			res, body, err := roundTrip(t, tr, newRequest(t, "GET", "/hello.php", nil))
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != 200 || body != "Hello, world" {
				t.Errorf("got %d %q, want 200 %q", res.StatusCode, body, "Hello, world")
			}
			if got := res.Header.Get("Content-Type"); !strings.HasPrefix(got, "text/html") {
				t.Errorf("Content-Type = %q, want PHP's text/html", got)
			}
		})
	}
}

// TestReverseProxy puts the Transport under httputil.ReverseProxy, as the
// gateway does, and checks the CGI variables PHP sees.
func TestReverseProxy(t *testing.T) {
	f := startFPM(t, &pool{name: "www"})
	f.write("hello.php", `<?php echo "Hello, world";`)
	f.write("dump.php", dumpPHP)
	f.write("fatal.php", "<?php\nundefined_function();\n")
	tr := f.transport("www", Options{})
	var gotCause atomic.Value
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(&url.URL{Scheme: "http", Host: "php-fpm"})
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
		},
		Transport: tr,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			ce, _ := cause.Of(err)
			gotCause.Store(ce)
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	srv := httptest.NewServer(rp)
	defer srv.Close()

	res, err := http.Get(srv.URL + "/hello.php")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || string(b) != "Hello, world" {
		t.Errorf("hello.php through ReverseProxy: %d %q", res.StatusCode, b)
	}

	req, _ := http.NewRequest("POST", srv.URL+"/dump.php/extra/path?a=1&b=%2F", strings.NewReader("x=1"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Proxy", "http://evil.example:3128")
	req.Header.Set("X_Real_IP", "6.6.6.6")
	req.Header.Add("Cookie", "a=1")
	req.Header.Add("Cookie", "b=2")
	req.Header.Set("X-Custom", "yes")
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var env map[string]any
	if err := json.NewDecoder(res.Body).Decode(&env); err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	root, _ := filepath.EvalSymlinks(f.root)
	srvURL, _ := url.Parse(srv.URL)
	want := map[string]string{
		"SCRIPT_FILENAME":      root + "/dump.php",
		"SCRIPT_NAME":          "/dump.php",
		"PATH_INFO":            "/extra/path",
		"PATH_TRANSLATED":      root + "/extra/path",
		"DOCUMENT_ROOT":        root,
		"DOCUMENT_URI":         "/dump.php/extra/path",
		"REQUEST_URI":          "/dump.php/extra/path?a=1&b=%2F",
		"QUERY_STRING":         "a=1&b=%2F",
		"REQUEST_METHOD":       "POST",
		"REQUEST_SCHEME":       "http",
		"CONTENT_TYPE":         "application/x-www-form-urlencoded",
		"CONTENT_LENGTH":       "3",
		"SERVER_NAME":          "127.0.0.1",
		"SERVER_PORT":          srvURL.Port(),
		"SERVER_ADDR":          "127.0.0.1",
		"SERVER_PROTOCOL":      "HTTP/1.1",
		"SERVER_SOFTWARE":      "gatewise",
		"GATEWAY_INTERFACE":    "CGI/1.1",
		"REMOTE_ADDR":          "127.0.0.1",
		"REDIRECT_STATUS":      "200",
		"HTTP_HOST":            srvURL.Host,
		"HTTP_COOKIE":          "a=1; b=2",
		"HTTP_X_CUSTOM":        "yes",
		"HTTP_X_FORWARDED_FOR": "127.0.0.1",
	}
	for k, v := range want {
		if got, _ := env[k].(string); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	for _, k := range []string{"HTTP_PROXY", "HTTPS", "HTTP_X_REAL_IP"} {
		if v, ok := env[k]; ok {
			t.Errorf("%s = %v, want it absent", k, v)
		}
	}
	if port, _ := env["REMOTE_PORT"].(string); port == "" || port == "0" {
		t.Errorf("REMOTE_PORT = %q, want the visitor's port", port)
	}

	// A fatal error reaches the proxy's ErrorHandler as a cause.
	res, err = http.Get(srv.URL + "/fatal.php")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	ce, _ := gotCause.Load().(*cause.Error)
	if res.StatusCode != http.StatusBadGateway || ce == nil || ce.ID != cause.PHPFatalError {
		t.Errorf("fatal.php through ReverseProxy: status %d, cause %v; want the error handler with php_fatal_error", res.StatusCode, ce)
	}
}

func TestHTTPSVariables(t *testing.T) {
	f := startFPM(t, &pool{name: "www"})
	f.write("dump.php", dumpPHP)
	tr := f.transport("www", Options{Params: map[string]string{"APP_ENV": "test"}})
	for _, tc := range []struct {
		desc  string
		setup func(*http.Request)
		https bool
	}{
		{"plain", func(*http.Request) {}, false},
		{"TLS state", func(r *http.Request) { r.TLS = &tlsState }, true},
		{"X-Forwarded-Proto from the gateway", func(r *http.Request) { r.Header.Set("X-Forwarded-Proto", "https") }, true},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			req := newRequest(t, "GET", "/dump.php", nil)
			tc.setup(req)
			_, body, err := roundTrip(t, tr, req)
			if err != nil {
				t.Fatal(err)
			}
			var env map[string]any
			if err := json.Unmarshal([]byte(body), &env); err != nil {
				t.Fatalf("%v: %s", err, body)
			}
			wantScheme, wantPort := "http", "80"
			if tc.https {
				wantScheme, wantPort = "https", "443"
			}
			if got := env["HTTPS"]; (got == "on") != tc.https {
				t.Errorf("HTTPS = %v, want on: %v", got, tc.https)
			}
			if got := env["REQUEST_SCHEME"]; got != wantScheme {
				t.Errorf("REQUEST_SCHEME = %v, want %s", got, wantScheme)
			}
			if got := env["SERVER_PORT"]; got != wantPort {
				t.Errorf("SERVER_PORT = %v, want %s", got, wantPort)
			}
			if got := env["APP_ENV"]; got != "test" {
				t.Errorf("APP_ENV = %v, want the extra parameter", got)
			}
			if got := env["REMOTE_ADDR"]; got != "192.0.2.7" {
				t.Errorf("REMOTE_ADDR = %v, want 192.0.2.7", got)
			}
		})
	}
}

// patternReader yields n deterministic bytes without holding them.
type patternReader struct {
	n, off int64
}

func (r *patternReader) Read(p []byte) (int, error) {
	if r.off >= r.n {
		return 0, io.EOF
	}
	if int64(len(p)) > r.n-r.off {
		p = p[:r.n-r.off]
	}
	for i := range p {
		x := r.off + int64(i)
		p[i] = byte(x*2654435761>>13) ^ byte(x>>20)
	}
	r.off += int64(len(p))
	return len(p), nil
}

const inputPHP = `<?php
$in = fopen('php://input', 'rb');
$h = hash_init('sha256');
$n = 0;
while (!feof($in)) {
    $b = fread($in, 65536);
    if ($b === false) { break; }
    $n += strlen($b);
    hash_update($h, $b);
}
echo $n, ' ', hash_final($h);
`

// TestUploadStreamed sends 50 MB through and checks PHP got every byte
// while the gateway's heap did not grow with the body.
func TestUploadStreamed(t *testing.T) {
	f := startFPM(t, &pool{name: "www"})
	f.write("upload.php", inputPHP)
	tr := f.transport("www", Options{})

	const size = 50 << 20
	sum := sha256.New()
	io.Copy(sum, &patternReader{n: size})
	want := "52428800 " + hex.EncodeToString(sum.Sum(nil))

	req := newRequest(t, "POST", "/upload.php", &patternReader{n: size})
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	res, body, err := roundTrip(t, tr, req)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 200 || body != want {
		t.Fatalf("got %d %q, want 200 %q", res.StatusCode, body, want)
	}
	// A buffered body would allocate at least its 50 MB.
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 8<<20 {
		t.Errorf("allocated %d bytes while streaming %d, want under 8 MiB", grew, size)
	}
	t.Logf("allocated %d KiB for a %d MiB upload", (after.TotalAlloc-before.TotalAlloc)>>10, size>>20)

	// A body of unknown length (chunked) is spooled, so PHP gets its length.
	const small = 1 << 20
	sum.Reset()
	io.Copy(sum, &patternReader{n: small})
	req = newRequest(t, "POST", "/upload.php", io.NopCloser(&patternReader{n: small}))
	req.ContentLength = -1
	_, body, err = roundTrip(t, tr, req)
	if err != nil {
		t.Fatal(err)
	}
	if want := "1048576 " + hex.EncodeToString(sum.Sum(nil)); body != want {
		t.Errorf("chunked upload: got %q, want %q", body, want)
	}

	// Over MaxSpoolBytes: request_body_too_large.
	small2 := f.transport("www", Options{MaxSpoolBytes: 1000})
	req = newRequest(t, "POST", "/upload.php", io.NopCloser(&patternReader{n: 5000}))
	req.ContentLength = -1
	_, _, err = roundTrip(t, small2, req)
	wantCause(t, err, cause.RequestBodyTooLarge)
}

var tlsState = tls.ConnectionState{HandshakeComplete: true}

// TestFrontController serves a WordPress-like tree: pretty URLs go to
// index.php with REQUEST_URI intact, static files come from disk, PHP
// source and dotfiles never do, nothing leaves the root.
func TestFrontController(t *testing.T) {
	f := startFPM(t, &pool{name: "www"})
	f.write("index.php", dumpPHP)
	f.write("wp-login.php", dumpPHP)
	f.write("wp-admin/index.php", dumpPHP)
	f.write("wp-content/style.css", "body { color: red }\n")
	f.write("wp-content/uploads/image.jpg", "<?php echo 'pwned';")
	f.write("wp-config.php.bak", "<?php define('DB_PASSWORD', 'secret');")
	f.write(".env", "DB_PASSWORD=secret\n")
	f.write(".git/config", "[core]\n")
	f.write(".well-known/acme-challenge/token", "challenge\n")
	f.write("docs/index.html", "<h1>docs</h1>\n")
	if err := os.Symlink("/etc", filepath.Join(f.root, "etc-link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(f.root, "passwd.css")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("wp-content/style.css", filepath.Join(f.root, "inner.css")); err != nil {
		t.Fatal(err)
	}
	tr := f.transport("www", Options{})
	root, _ := filepath.EvalSymlinks(f.root)

	type want struct {
		status   int
		script   string // SCRIPT_NAME when PHP ran
		pathInfo string
		body     string // exact body of a static file
		location string
	}
	for _, tc := range []struct {
		desc, method, target string
		want                 want
	}{
		{"pretty URL goes to the front controller", "GET", "/2024/01/hello-world/?utm=x", want{status: 200, script: "/index.php"}},
		{"root runs the index", "GET", "/", want{status: 200, script: "/index.php"}},
		{"a script runs itself", "GET", "/wp-login.php?action=lostpassword", want{status: 200, script: "/wp-login.php"}},
		{"PATH_INFO split at the first .php", "GET", "/index.php/feed/atom", want{status: 200, script: "/index.php", pathInfo: "/feed/atom"}},
		{"directory index", "GET", "/wp-admin/", want{status: 200, script: "/wp-admin/index.php"}},
		{"directory without its slash", "GET", "/wp-admin?x=1", want{status: 301, location: "/wp-admin/?x=1"}},
		{"static file from disk", "GET", "/wp-content/style.css", want{status: 200, body: "body { color: red }\n"}},
		{"static index.html", "GET", "/docs/", want{status: 200, body: "<h1>docs</h1>\n"}},
		{"upload is served, not run", "GET", "/wp-content/uploads/image.jpg", want{status: 200, body: "<?php echo 'pwned';"}},
		{"fix_pathinfo trick does not run the image", "GET", "/wp-content/uploads/image.jpg/x.php", want{status: 404}},
		{"missing script", "GET", "/nope.php", want{status: 404}},
		{"backup of PHP source", "GET", "/wp-config.php.bak", want{status: 404}},
		{"dotfile", "GET", "/.env", want{status: 404}},
		{"dot directory", "GET", "/.git/config", want{status: 404}},
		{"hidden path never reaches the front controller", "GET", "/.git/HEAD", want{status: 404}},
		{".well-known is served", "GET", "/.well-known/acme-challenge/token", want{status: 200, body: "challenge\n"}},
		{"traversal stays in the root", "GET", "/../../../../etc/passwd", want{status: 200, script: "/index.php"}},
		{"encoded traversal stays in the root", "GET", "/%2e%2e/%2e%2e/etc/passwd", want{status: 200, script: "/index.php"}},
		{"link to a directory outside", "GET", "/etc-link/passwd", want{status: 404}},
		{"link to a file outside", "GET", "/passwd.css", want{status: 404}},
		{"link inside the root", "GET", "/inner.css", want{status: 200, body: "body { color: red }\n"}},
		{"POST to a static file", "POST", "/wp-content/style.css", want{status: 405}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			req := newRequest(t, tc.method, "", nil)
			req.URL = &url.URL{Scheme: "http", Host: "example.com", Opaque: ""}
			u, err := url.ParseRequestURI(tc.target)
			if err != nil {
				t.Fatal(err)
			}
			req.URL.Path, req.URL.RawPath, req.URL.RawQuery = u.Path, u.RawPath, u.RawQuery
			res, body, err := roundTrip(t, tr, req)
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != tc.want.status {
				t.Fatalf("status %d, want %d (body %.200q)", res.StatusCode, tc.want.status, body)
			}
			if strings.Contains(body, "secret") || strings.Contains(body, "root:x:0") || strings.Contains(body, "[core]") {
				t.Fatalf("body leaks a protected file: %.200q", body)
			}
			if tc.want.location != "" {
				if got := res.Header.Get("Location"); got != tc.want.location {
					t.Errorf("Location = %q, want %q", got, tc.want.location)
				}
			}
			if tc.want.body != "" && body != tc.want.body {
				t.Errorf("body %q, want %q", body, tc.want.body)
			}
			if tc.want.script == "" {
				return
			}
			var env map[string]any
			if err := json.Unmarshal([]byte(body), &env); err != nil {
				t.Fatalf("PHP did not answer: %v: %.200q", err, body)
			}
			if got := env["SCRIPT_NAME"]; got != tc.want.script {
				t.Errorf("SCRIPT_NAME = %v, want %s", got, tc.want.script)
			}
			if got := env["SCRIPT_FILENAME"]; got != root+tc.want.script {
				t.Errorf("SCRIPT_FILENAME = %v, want %s", got, root+tc.want.script)
			}
			if got, _ := env["PATH_INFO"].(string); got != tc.want.pathInfo {
				t.Errorf("PATH_INFO = %q, want %q", got, tc.want.pathInfo)
			}
			if got := env["REQUEST_URI"]; got != req.URL.RequestURI() {
				t.Errorf("REQUEST_URI = %v, want the original %s", got, req.URL.RequestURI())
			}
		})
	}

	t.Run("front controller off", func(t *testing.T) {
		tr := f.transport("www", Options{NoFrontController: true})
		res, _, err := roundTrip(t, tr, newRequest(t, "GET", "/2024/01/hello-world/", nil))
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != 404 {
			t.Errorf("status %d, want 404", res.StatusCode)
		}
	})
}

func TestStaticFiles(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "app.css"), []byte("0123456789"), 0o644); err != nil {
		t.Fatal(err)
	}
	// No PHP-FPM: static files never touch it.
	tr, err := New(Options{Address: filepath.Join(dir, "none.sock"), Root: dir})
	if err != nil {
		t.Fatal(err)
	}
	res, body, err := roundTrip(t, tr, newRequest(t, "GET", "/app.css", nil))
	if err != nil {
		t.Fatal(err)
	}
	etag, lastMod := res.Header.Get("Etag"), res.Header.Get("Last-Modified")
	if res.StatusCode != 200 || body != "0123456789" || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/css") ||
		res.ContentLength != 10 || etag == "" || lastMod == "" {
		t.Fatalf("GET: %d %q %v (length %d)", res.StatusCode, body, res.Header, res.ContentLength)
	}
	for _, tc := range []struct {
		desc, method string
		header       http.Header
		status       int
		body         string
	}{
		{"range", "GET", http.Header{"Range": {"bytes=2-4"}}, 206, "234"},
		{"unsatisfiable range", "GET", http.Header{"Range": {"bytes=50-60"}}, 416, ""},
		{"If-None-Match", "GET", http.Header{"If-None-Match": {etag}}, 304, ""},
		{"If-Modified-Since", "GET", http.Header{"If-Modified-Since": {lastMod}}, 304, ""},
		{"HEAD", "HEAD", nil, 200, ""},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			req := newRequest(t, tc.method, "/app.css", nil)
			for k, v := range tc.header {
				req.Header[k] = v
			}
			res, body, err := roundTrip(t, tr, req)
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != tc.status || (tc.body != "" && body != tc.body) || (tc.method == "HEAD" && body != "") {
				t.Errorf("got %d %q, want %d %q", res.StatusCode, body, tc.status, tc.body)
			}
		})
	}
}

// TestPHPFailures runs scripts that fail and checks the cause, and the
// file and line for the owner.
func TestPHPFailures(t *testing.T) {
	f := startFPM(t,
		&pool{name: "www"},
		&pool{name: "display", extra: []string{"php_flag[display_errors] = on"}},
		&pool{name: "term", terminate: "1s"},
	)
	f.write("fatal.php", "<?php\necho '';\nthrow new RuntimeException('boom');\n")
	f.write("undefined.php", "<?php\n\nundefined_function();\n")
	f.write("parse.php", "<?php\necho 'a'\necho 'b';\n")
	f.write("memory.php", "<?php\n$a = [];\nfor ($i = 0; $i < 1000; $i++) {\n    $a[] = str_repeat('x', 1 << 20);\n}\n")
	f.write("cpu.php", "<?php\nset_time_limit(1);\nwhile (true) { $x = 1; }\n")
	f.write("sleep.php", "<?php\nsleep(10);\necho 'woke';\n")
	f.write("own500.php", "<?php\nhttp_response_code(500);\necho 'Our own error page';\n")
	f.write("empty500.php", "<?php\nini_set('log_errors', '0');\nundefined_function();\n")
	f.write("late.php", "<?php\necho str_repeat('a', 100);\nflush();\nthrow new Exception('late');\n")
	root, _ := filepath.EvalSymlinks(f.root)

	for _, tc := range []struct {
		desc, pool, script string
		id                 cause.ID
		detail             string
		line               int // 0: no PHP message
	}{
		{"uncaught exception", "www", "/fatal.php", cause.PHPFatalError, "", 3},
		{"undefined function", "www", "/undefined.php", cause.PHPFatalError, "", 3},
		{"parse error", "www", "/parse.php", cause.PHPFatalError, "", 3},
		{"display_errors on", "display", "/undefined.php", cause.PHPFatalError, "", 3},
		{"memory_limit", "www", "/memory.php", cause.PHPMemoryExhausted, "", 4},
		{"max_execution_time", "www", "/cpu.php", cause.PHPTimeout, "max_execution_time", 3},
		{"request_terminate_timeout", "term", "/sleep.php", cause.PHPTimeout, "request_terminate_timeout", 0},
		{"empty 500 without a message", "www", "/empty500.php", cause.PHPFatalError, "", 0},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			tr := f.transport(tc.pool, Options{TerminateTimeout: time.Second})
			_, body, err := roundTrip(t, tr, newRequest(t, "GET", tc.script, nil))
			if err == nil {
				t.Fatalf("no error; PHP's answer went through: %.200q", body)
			}
			ce := wantCause(t, err, tc.id)
			if ce.Detail != tc.detail {
				t.Errorf("Detail = %q, want %q", ce.Detail, tc.detail)
			}
			if ce.Phase < cause.PhaseConnected || ce.Target == "" {
				t.Errorf("Phase %v, Target %q: want a phase after connecting and the target", ce.Phase, ce.Target)
			}
			if tc.line > 0 {
				wantPHPError(t, ce, root+tc.script, tc.line)
			}
			t.Logf("owner's log: %v", ce)
		})
	}

	t.Run("the application's own 500 passes through", func(t *testing.T) {
		tr := f.transport("www", Options{})
		res, body, err := roundTrip(t, tr, newRequest(t, "GET", "/own500.php", nil))
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != 500 || body != "Our own error page" {
			t.Errorf("got %d %q, want 500 and the page", res.StatusCode, body)
		}
	})

	t.Run("fatal error after the headers", func(t *testing.T) {
		tr := f.transport("www", Options{})
		res, err := tr.RoundTrip(newRequest(t, "GET", "/late.php", nil))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		_, err = io.ReadAll(res.Body)
		ce := wantCause(t, err, cause.PHPFatalError)
		if ce.Phase != cause.PhaseHeaders {
			t.Errorf("Phase = %v, want headers", ce.Phase)
		}
		wantPHPError(t, ce, root+"/late.php", 4)
	})

	t.Run("terminate timeout unknown: a crash", func(t *testing.T) {
		tr := f.transport("term", Options{})
		_, _, err := roundTrip(t, tr, newRequest(t, "GET", "/sleep.php", nil))
		wantCause(t, err, cause.FPMWorkerCrashed)
	})
}

func TestWorkerKilled(t *testing.T) {
	f := startFPM(t, &pool{name: "www", maxChildren: 1})
	marker := filepath.Join(f.dir, "started")
	f.write("slow.php", "<?php\ntouch('"+marker+"');\nsleep(30);\n")
	tr := f.transport("www", Options{})
	done := make(chan error, 1)
	go func() {
		_, _, err := roundTrip(t, tr, newRequest(t, "POST", "/slow.php", strings.NewReader("a=1")))
		done <- err
	}()
	for i := 0; ; i++ {
		if _, err := os.Stat(marker); err == nil {
			break
		}
		if i == 500 {
			t.Fatal("slow.php did not start in 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	workers := f.workers()
	if len(workers) != 1 {
		t.Fatalf("workers %v, want one", workers)
	}
	if err := syscall.Kill(workers[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := <-done
	ce := wantCause(t, err, cause.FPMWorkerCrashed)
	if !ce.Phase.RequestMayHaveReached() {
		t.Errorf("Phase = %v: the POST reached PHP, so it must not be retried", ce.Phase)
	}
}

func TestPoolExhausted(t *testing.T) {
	f := startFPM(t, &pool{name: "www", maxChildren: 1, backlog: 1})
	f.write("slow.php", "<?php\nusleep(300000);\necho 'done';\n")
	tr := f.transport("www", Options{})
	const n = 8
	var wg sync.WaitGroup
	results := make([]error, n)
	for i := range n {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			req := newRequest(t, "GET", "/slow.php", nil).WithContext(ctx)
			res, body, err := roundTrip(t, tr, req)
			if err == nil && (res.StatusCode != 200 || body != "done") {
				err = errors.New("unexpected answer " + res.Status + " " + body)
			}
			results[i] = err
		})
	}
	wg.Wait()
	var ok, exhausted int
	for _, err := range results {
		switch ce, _ := cause.Of(err); {
		case err == nil:
			ok++
		case ce != nil && ce.ID == cause.FPMPoolExhausted:
			exhausted++
			if ce.Phase.RequestMayHaveReached() {
				t.Errorf("Phase = %v: a refused connection never reached PHP", ce.Phase)
			}
		default:
			t.Errorf("request failed with %v, want success or fpm_pool_exhausted (none may hang)", err)
		}
	}
	if ok == 0 || exhausted == 0 {
		t.Errorf("%d served, %d fpm_pool_exhausted; want some of each", ok, exhausted)
	}
	t.Logf("%d served, %d fpm_pool_exhausted", ok, exhausted)
}

func TestFPMNotRunning(t *testing.T) {
	f := startFPM(t, &pool{name: "unix"}, &pool{name: "tcp", tcp: true})
	f.write("hello.php", `<?php echo "hi";`)
	trUnix := f.transport("unix", Options{})
	trTCP := f.transport("tcp", Options{})
	for _, tr := range []*Transport{trUnix, trTCP} {
		if _, body, err := roundTrip(t, tr, newRequest(t, "GET", "/hello.php", nil)); err != nil || body != "hi" {
			t.Fatalf("before the stop: %q %v", body, err)
		}
	}
	f.stop()
	for _, tc := range []struct {
		desc string
		tr   *Transport
	}{{"stopped pool, unix socket", trUnix}, {"stopped pool, TCP", trTCP}} {
		t.Run(tc.desc, func(t *testing.T) {
			_, _, err := roundTrip(t, tc.tr, newRequest(t, "GET", "/hello.php", nil))
			ce := wantCause(t, err, cause.FPMNotRunning)
			if ce.Phase != cause.PhaseConnect {
				t.Errorf("Phase = %v, want connect", ce.Phase)
			}
			if strings.Contains(ce.Detail, "/") {
				t.Errorf("Detail = %q holds a path", ce.Detail)
			}
		})
	}

	t.Run("socket never existed", func(t *testing.T) {
		tr, err := New(Options{Address: filepath.Join(t.TempDir(), "php8.1-fpm.sock"), Root: f.root})
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = roundTrip(t, tr, newRequest(t, "GET", "/hello.php", nil))
		ce := wantCause(t, err, cause.FPMNotRunning)
		if ce.Detail != "socket missing" || !errors.Is(err, syscall.ENOENT) {
			t.Errorf("Detail %q, err %v: want socket missing and ENOENT", ce.Detail, err)
		}
	})

	t.Run("stale socket file", func(t *testing.T) {
		sock := filepath.Join(t.TempDir(), "stale.sock")
		l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
		if err != nil {
			t.Fatal(err)
		}
		l.SetUnlinkOnClose(false)
		l.Close()
		tr, err := New(Options{Address: sock, Root: f.root})
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = roundTrip(t, tr, newRequest(t, "GET", "/hello.php", nil))
		ce := wantCause(t, err, cause.FPMNotRunning)
		if ce.Detail != "refused" || !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("Detail %q, err %v: want refused and ECONNREFUSED", ce.Detail, err)
		}
	})
}

// countingDialer counts the connections a Transport makes.
type countingDialer struct {
	n atomic.Int32
	d net.Dialer
}

func (c *countingDialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c.n.Add(1)
	return c.d.DialContext(ctx, network, addr)
}

func TestConnectionReuse(t *testing.T) {
	f := startFPM(t, &pool{name: "www", maxChildren: 2})
	f.write("hello.php", `<?php echo "hi";`)
	f.write("upload.php", inputPHP)
	f.write("big.php", `<?php echo str_repeat('z', 300000);`)
	for _, tc := range []struct {
		desc      string
		maxIdle   int
		wantDials int32
		slack     uint64 // how far PHP-FPM's count may be off (see below)
	}{
		{"reuse", 0, 1, 0},
		{"no reuse", -1, 14, 1},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			var cd countingDialer
			tr := f.transport("www", Options{MaxIdleConns: tc.maxIdle, DialContext: cd.dial})
			before, err := tr.Status(context.Background(), "/fpm-status")
			if err != nil {
				t.Fatal(err)
			}
			for i := range 12 {
				var req *http.Request
				switch i % 3 {
				case 0:
					req = newRequest(t, "GET", "/hello.php", nil)
				case 1:
					req = newRequest(t, "POST", "/upload.php", strings.NewReader(strings.Repeat("p", 100000)))
				default:
					req = newRequest(t, "GET", "/big.php", nil)
				}
				res, body, err := roundTrip(t, tr, req)
				if err != nil || res.StatusCode != 200 || len(body) == 0 {
					t.Fatalf("request %d: %v", i, err)
				}
			}
			after, err := tr.Status(context.Background(), "/fpm-status")
			if err != nil {
				t.Fatal(err)
			}
			if got := cd.n.Load(); got != tc.wantDials {
				t.Errorf("%d connections for 14 requests (with the first status read), want %d", got, tc.wantDials)
			}
			// PHP-FPM's "accepted conn" is a shared counter that each
			// worker updates for its own requests. On one kept
			// connection every request goes to the same worker, in turn,
			// and the count is exact. On a connection each, the two
			// workers take turns, and a status read by one may miss the
			// other's last update, or meet a late one from the previous
			// subtest. A CI run under load saw 14 here once, so one
			// either way is allowed. The dial count above stays exact.
			got := after.AcceptedConn - before.AcceptedConn
			if lo, hi := 13-tc.slack, 13+tc.slack; got < lo || got > hi {
				t.Errorf("PHP-FPM accepted %d requests, want 13 (within %d)", got, tc.slack)
			}
		})
	}

	t.Run("a connection PHP-FPM closed is not reused", func(t *testing.T) {
		var cd countingDialer
		tr := f.transport("www", Options{DialContext: cd.dial})
		if _, _, err := roundTrip(t, tr, newRequest(t, "GET", "/hello.php", nil)); err != nil {
			t.Fatal(err)
		}
		// Kill the workers: the idle connection's worker goes with them.
		for _, pid := range f.workers() {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		var err error
		for range 50 { // the master restarts workers
			if _, _, err = roundTrip(t, tr, newRequest(t, "GET", "/hello.php", nil)); err == nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("after the workers died: %v", err)
		}
		if cd.n.Load() < 2 {
			t.Errorf("%d dials: the dead idle connection was reused", cd.n.Load())
		}
	})
}

func TestStatusPage(t *testing.T) {
	f := startFPM(t, &pool{name: "shop", maxChildren: 3})
	tr := f.transport("shop", Options{})
	// The master may still be forking its static workers when the socket
	// first accepts: read until all three are there (bounded).
	var st *Status
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var err error
		if st, err = tr.Status(context.Background(), "/fpm-status"); err != nil {
			t.Fatal(err)
		}
		if st.TotalProcesses == 3 || time.Now().After(deadline) {
			break
		}
	}
	if st.Pool != "shop" || st.ProcessManager != "static" || st.TotalProcesses != 3 || st.ActiveProcesses < 1 ||
		time.Since(st.StartTime.Time) > time.Minute || st.AcceptedConn < 1 {
		t.Errorf("status %+v: want pool shop, static, 3 processes, one active (this request), a start time just now", st)
	}
	if st.Saturated() {
		t.Error("an idle pool reads as saturated")
	}
	st2, err := tr.Status(context.Background(), "/fpm-status")
	if err != nil {
		t.Fatal(err)
	}
	if st2.AcceptedConn != st.AcceptedConn+1 {
		t.Errorf("accepted conn %d then %d, want one more", st.AcceptedConn, st2.AcceptedConn)
	}
	if _, err := tr.Status(context.Background(), "/not-the-status"); err == nil {
		t.Error("a path that is not the status page gave no error")
	}
	if _, err := tr.Status(context.Background(), "fpm-status?json"); !errors.Is(err, ErrOptions) {
		t.Errorf("bad path: %v, want ErrOptions", err)
	}
}

// BenchmarkHello measures hello.php round trips over a unix socket.
func BenchmarkHello(b *testing.B) {
	for _, bc := range []struct {
		name    string
		maxIdle int
	}{{"reuse", 0}, {"no_reuse", -1}} {
		b.Run(bc.name, func(b *testing.B) {
			f := startFPM(b, &pool{name: "www", maxChildren: 2})
			f.write("hello.php", `<?php echo "Hello, world";`)
			tr, err := New(Options{Address: f.Address("www"), Root: f.root, MaxIdleConns: bc.maxIdle})
			if err != nil {
				b.Fatal(err)
			}
			defer tr.Close()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				req, _ := http.NewRequest("GET", "http://example.com/hello.php", nil)
				res, err := tr.RoundTrip(req)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
			}
		})
	}
}

// TestMaxConns checks MaxConns: 8 concurrent requests to a pool of 1
// worker and a listen backlog of 1 (where, uncapped, most are refused:
// see TestPoolExhausted) all succeed, over at most 1 connection at a time,
// waiting in the gateway rather than in PHP-FPM's queue; and a request
// whose context ends while it waits gets its context's error.
func TestMaxConns(t *testing.T) {
	f := startFPM(t, &pool{name: "www", maxChildren: 1, backlog: 1})
	f.write("slow.php", "<?php\nusleep(30000);\necho 'done';\n")
	cd := &countingDialer{}
	tr := f.transport("www", Options{MaxConns: 1, DialContext: cd.dial})
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			res, body, err := roundTrip(t, tr, newRequest(t, "GET", "/slow.php", nil).WithContext(ctx))
			if err == nil && (res.StatusCode != 200 || body != "done") {
				err = errors.New("unexpected answer " + res.Status + " " + body)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("request %d: %v", i, err)
		}
	}
	if got := cd.n.Load(); got != 1 {
		t.Errorf("%d connections made for %d requests with MaxConns 1 and reuse; want 1", got, n)
	}

	// One request holds the only connection; another waits and gives up.
	marker := filepath.Join(t.TempDir(), "started")
	f.write("slower.php", "<?php\nfile_put_contents('"+marker+"', '1');\nusleep(500000);\necho 'done';\n")
	held := make(chan error, 1)
	go func() {
		_, _, err := roundTrip(t, tr, newRequest(t, "GET", "/slower.php", nil))
		held <- err
	}()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if _, err := os.Stat(marker); err == nil {
			break // PHP runs it: the connection is taken
		}
		if time.Now().After(deadline) {
			t.Fatal("the holding request never reached PHP")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, _, err := roundTrip(t, tr, newRequest(t, "GET", "/slow.php", nil).WithContext(ctx))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("waiting past its deadline: got %v, want context.DeadlineExceeded", err)
	}
	if err := <-held; err != nil {
		t.Errorf("the request holding the connection: %v", err)
	}
}
