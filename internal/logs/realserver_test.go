package logs

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatewise/gatewise/internal/testkit"
)

// These tests run the real programs (nginx, Apache, PHP-FPM, HAProxy from
// Debian's packages) against upstreams that fail on purpose, read what
// they wrote into their logs, and check the causes gatewise logs finds.
// scripts/test installs the packages; a missing one fails the test with
// the install line.

// failing is a set of loopback upstreams that fail on purpose.
type failing struct {
	dead, reset, hang, junk string // host:port
	closers                 []io.Closer
}

// startFailing starts the failing upstreams; they stop with the test.
func startFailing(t *testing.T) *failing {
	t.Helper()
	f := &failing{}
	// dead: a port that was just free.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.dead = l.Addr().String()
	l.Close()
	serve := func(handle func(net.Conn)) string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		f.closers = append(f.closers, l)
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				go handle(c)
			}
		}()
		return l.Addr().String()
	}
	readHead := func(c net.Conn) {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		br := bufio.NewReader(c)
		for {
			line, err := br.ReadString('\n')
			if err != nil || line == "\r\n" || line == "\n" {
				return
			}
		}
	}
	// reset: reads the request, then resets the connection.
	f.reset = serve(func(c net.Conn) {
		readHead(c)
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
	})
	// hang: reads the request and never answers (until the test ends).
	var mu sync.Mutex
	var hung []net.Conn
	f.hang = serve(func(c net.Conn) {
		readHead(c)
		mu.Lock()
		hung = append(hung, c)
		mu.Unlock()
	})
	// junk: answers with bytes that are not HTTP.
	f.junk = serve(func(c net.Conn) {
		readHead(c)
		c.Write([]byte("\x00\x01junk that is not HTTP\x02\r\n\r\n"))
		c.Close()
	})
	t.Cleanup(func() {
		for _, c := range f.closers {
			c.Close()
		}
		mu.Lock()
		for _, c := range hung {
			c.Close()
		}
		mu.Unlock()
	})
	return f
}

// startServer runs a server in the foreground (in its own process group)
// until the test ends, and waits until addr accepts connections; stdout,
// if not nil, receives its standard output. stop ends it and waits for it.
func startServer(t *testing.T, addr string, stdout io.Writer, name string, args ...string) (stop func()) {
	t.Helper()
	return testkit.StartDaemon(t, testkit.Daemon{Binary: name, Args: args, Addr: addr, Stdout: stdout,
		Group: true, StartTimeout: 15 * time.Second}).Stop
}

// get requests url and returns the status (0 on a transport error).
func get(url string) int {
	c := &http.Client{Timeout: 20 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// labels scans a log written by a real server and returns its format and
// the count of each label, and the events.
func labels(t *testing.T, path string) (Format, map[string]int, []Event) {
	t.Helper()
	rd, err := NewReader(Options{})
	if err != nil {
		t.Fatal(err)
	}
	f, src, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	counts := map[string]int{}
	var events []Event
	st, err := rd.Scan(context.Background(), src, func(ev Event) {
		counts[ev.Label()]++
		events = append(events, ev)
	})
	if err != nil {
		t.Fatal(err)
	}
	if st.Unreadable > 0 {
		t.Errorf("%s: %d unreadable lines, the first: %q", filepath.Base(path), st.Unreadable, st.FirstUnreadable)
	}
	return st.Format, counts, events
}

// dumpOnFailure logs the files when the test fails, to see what the
// server wrote. With -update, it copies them into testdata as
// real_NAME (kept as golden inputs: lines the real programs wrote).
func dumpOnFailure(t *testing.T, paths ...string) {
	t.Cleanup(func() {
		if *update && !t.Failed() {
			for _, p := range paths {
				data, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				name := "real_" + strings.ToLower(strings.TrimPrefix(t.Name(), "TestReal")) + "_" + filepath.Base(p)
				if !strings.Contains(name, ".log") {
					name += ".log"
				}
				if err := os.WriteFile(filepath.Join("testdata", name), data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
		if !t.Failed() {
			return
		}
		for _, p := range paths {
			data, _ := os.ReadFile(p)
			t.Logf("--- %s:\n%s", p, data)
		}
	})
}

// expectCauses checks that got has at least one of each wanted label.
func expectCauses(t *testing.T, file string, format, wantFormat Format, got map[string]int, want ...string) {
	t.Helper()
	if format != wantFormat {
		t.Errorf("%s: detected %s, want %s", file, format, wantFormat)
	}
	for _, w := range want {
		if got[w] == 0 {
			t.Errorf("%s: no %s event; got %v", file, w, got)
		}
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestRealNginxAndPHPFPM runs nginx in front of the failing upstreams and
// of PHP-FPM (one child, a 1s request timeout, an 8 MiB memory limit).
func TestRealNginxAndPHPFPM(t *testing.T) {
	if testing.Short() {
		t.Skip("runs nginx and php-fpm")
	}
	nginx := testkit.LookBinary(t, "nginx", "nginx")
	fpm := testkit.LookBinary(t, "php-fpm8.2", "php8.2-fpm")
	up := startFailing(t)
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	www := filepath.Join(dir, "www")
	os.Mkdir(www, 0o755)
	writeFile(t, filepath.Join(www, "sleep.php"), "<?php sleep(3); echo 'late';\n")
	writeFile(t, filepath.Join(www, "memory.php"), "<?php $a = []; for ($i = 0; $i < 1000000; $i++) { $a[] = str_repeat('x', 1024); }\n")
	writeFile(t, filepath.Join(www, "fatal.php"), "<?php no_such_function();\n")
	writeFile(t, filepath.Join(www, "ok.php"), "<?php echo 'ok';\n")

	fpmAddr := testkit.FreePort(t)
	writeFile(t, filepath.Join(dir, "php-fpm.conf"), fmt.Sprintf(`[global]
pid = %[1]s/php-fpm.pid
error_log = %[1]s/php-fpm.log
log_level = notice
daemonize = no

[www]
user = root
group = root
listen = %[2]s
pm = dynamic
pm.max_children = 1
pm.start_servers = 1
pm.min_spare_servers = 1
pm.max_spare_servers = 1
request_terminate_timeout = 1s
catch_workers_output = yes
php_admin_value[memory_limit] = 8M
php_admin_value[error_log] = %[1]s/php_errors.log
php_admin_flag[log_errors] = on
php_admin_flag[display_errors] = off
`, dir, fpmAddr))
	startServer(t, fpmAddr, nil, fpm, "-R", "-F", "-y", filepath.Join(dir, "php-fpm.conf"))

	addr := testkit.FreePort(t)
	writeFile(t, filepath.Join(dir, "nginx.conf"), fmt.Sprintf(`user root;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events { worker_connections 64; }
http {
	access_log %[1]s/access.log;
	log_format gw '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" rt=$request_time us=$upstream_status ua=$upstream_addr';
	access_log %[1]s/access_us.log gw;
	client_body_temp_path %[1]s/tmp_body;
	proxy_temp_path %[1]s/tmp_proxy;
	fastcgi_temp_path %[1]s/tmp_fastcgi;
	uwsgi_temp_path %[1]s/tmp_uwsgi;
	scgi_temp_path %[1]s/tmp_scgi;
	proxy_connect_timeout 1s;
	proxy_read_timeout 1s;
	proxy_next_upstream off;
	server {
		listen %[2]s;
		root %[3]s;
		location /refused { proxy_pass http://%[4]s; }
		location /reset { proxy_pass http://%[5]s; }
		location /hang { proxy_pass http://%[6]s; }
		location /junk { proxy_pass http://%[7]s; }
		location ~ \.php$ {
			fastcgi_pass %[8]s;
			fastcgi_read_timeout 5s;
			include /etc/nginx/fastcgi_params;
			fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
		}
	}
}
`, dir, addr, www, up.dead, up.reset, up.hang, up.junk, fpmAddr))
	stopNginx := startServer(t, addr, nil, nginx, "-c", filepath.Join(dir, "nginx.conf"), "-g", "daemon off;")
	dumpOnFailure(t, filepath.Join(dir, "error.log"), filepath.Join(dir, "php-fpm.log"), filepath.Join(dir, "php_errors.log"), filepath.Join(dir, "access_us.log"))
	// PHP-FPM's log is complete once it stops: stop it before the copy.

	base := "http://" + addr
	for _, p := range []string{"/refused", "/reset", "/hang", "/junk", "/memory.php", "/fatal.php"} {
		get(base + p)
	}
	// Three at once at a pool of one child that sleeps past its timeout:
	// the pool is full, and the child is killed.
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() { defer wg.Done(); get(base + "/sleep.php") }()
	}
	wg.Wait()
	get(base + "/ok.php")
	stopNginx()

	f, got, _ := labels(t, filepath.Join(dir, "error.log"))
	expectCauses(t, "nginx error.log", f, FormatNginxError, got,
		"connection_refused", "connection_terminated", "http_response_timeout", "http_protocol_error")
	f, got, _ = labels(t, filepath.Join(dir, "access.log"))
	expectCauses(t, "nginx access.log", f, FormatNginxAccess, got, "http_status")
	f, got, evs := labels(t, filepath.Join(dir, "access_us.log"))
	expectCauses(t, "nginx access_us.log", f, FormatNginxAccess, got, "http_status")
	for _, ev := range evs {
		if ev.Path == "/refused" && ev.Upstream != up.dead {
			t.Errorf("access_us.log: /refused upstream %q, want %q", ev.Upstream, up.dead)
		}
	}
	// PHP-FPM's log comes after it stops (it flushes then).
	f, got, _ = labels(t, filepath.Join(dir, "php-fpm.log"))
	expectCauses(t, "php-fpm.log", f, FormatPHPFPM, got, "fpm_pool_exhausted", "php_timeout", "restart")
	f, got, _ = labels(t, filepath.Join(dir, "php_errors.log"))
	expectCauses(t, "php_errors.log", f, FormatPHP, got, "php_memory_exhausted", "php_fatal_error")
}

// TestRealApache runs Apache 2.4's mod_proxy in front of the failing
// upstreams.
func TestRealApache(t *testing.T) {
	if testing.Short() {
		t.Skip("runs apache2")
	}
	apache := testkit.LookBinary(t, "apache2", "apache2")
	up := startFailing(t)
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	addr := testkit.FreePort(t)
	mods := "/usr/lib/apache2/modules/"
	writeFile(t, filepath.Join(dir, "apache2.conf"), fmt.Sprintf(`ServerRoot %[1]s
ServerName localhost
Listen %[2]s
PidFile %[1]s/apache2.pid
Mutex file:%[1]s default
DefaultRuntimeDir %[1]s
LoadModule mpm_event_module %[3]smod_mpm_event.so
LoadModule authz_core_module %[3]smod_authz_core.so
LoadModule proxy_module %[3]smod_proxy.so
LoadModule proxy_http_module %[3]smod_proxy_http.so
User nobody
Group nogroup
ErrorLog %[1]s/error.log
LogLevel warn
CustomLog %[1]s/access.log combined
LogFormat "%%h %%l %%u %%t \"%%r\" %%>s %%O \"%%{Referer}i\" \"%%{User-Agent}i\"" combined
ProxyTimeout 1
ProxyPass /refused http://%[4]s/refused retry=0
ProxyPass /reset http://%[5]s/reset retry=0
ProxyPass /hang http://%[6]s/hang retry=0
ProxyPass /junk http://%[7]s/junk retry=0
`, dir, addr, mods, up.dead, up.reset, up.hang, up.junk))
	stop := startServer(t, addr, nil, apache, "-f", filepath.Join(dir, "apache2.conf"), "-DFOREGROUND")
	dumpOnFailure(t, filepath.Join(dir, "error.log"), filepath.Join(dir, "access.log"))
	base := "http://" + addr
	for _, p := range []string{"/refused", "/reset", "/hang", "/junk"} {
		get(base + p)
	}
	stop()
	f, got, _ := labels(t, filepath.Join(dir, "error.log"))
	expectCauses(t, "apache error.log", f, FormatApacheError, got, "connection_refused", "connection_terminated", "http_response_timeout")
	f, got, _ = labels(t, filepath.Join(dir, "access.log"))
	expectCauses(t, "apache access.log", f, FormatNginxAccess, got, "http_status")
}

// TestRealHAProxy runs HAProxy in front of the failing upstreams, logging
// in its HTTP format to its standard output.
func TestRealHAProxy(t *testing.T) {
	if testing.Short() {
		t.Skip("runs haproxy")
	}
	haproxy := testkit.LookBinary(t, "haproxy", "haproxy")
	up := startFailing(t)
	dir := t.TempDir()
	addr := testkit.FreePort(t)
	writeFile(t, filepath.Join(dir, "haproxy.cfg"), fmt.Sprintf(`global
	log stdout format raw local0 info
	pidfile %[1]s/haproxy.pid
defaults
	mode http
	log global
	option httplog
	timeout connect 1s
	timeout client 5s
	timeout server 1s
	retries 0
frontend fe
	bind %[2]s
	use_backend refused if { path_beg /refused }
	use_backend reset if { path_beg /reset }
	use_backend hang if { path_beg /hang }
	use_backend junk if { path_beg /junk }
	default_backend empty
backend refused
	server s1 %[3]s
backend reset
	server s1 %[4]s
backend hang
	server s1 %[5]s
backend junk
	server s1 %[6]s
backend empty
	server s1 %[3]s check inter 200ms fall 1
`, dir, addr, up.dead, up.reset, up.hang, up.junk))
	logPath := filepath.Join(dir, "haproxy.log")
	out, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	stop := startServer(t, addr, out, haproxy, "-db", "-f", filepath.Join(dir, "haproxy.cfg"))
	dumpOnFailure(t, logPath)
	base := "http://" + addr
	time.Sleep(600 * time.Millisecond) // the empty backend's check marks its server down
	for _, p := range []string{"/refused", "/reset", "/hang", "/junk", "/other"} {
		get(base + p)
	}
	stop()
	f, got, _ := labels(t, logPath)
	expectCauses(t, "haproxy.log", f, FormatHAProxy, got, "connection_refused", "connection_terminated", "http_response_timeout", "http_protocol_error", "no_healthy_upstream")
}
