package check

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/gatewise/gatewise/internal/testkit"
)

// upstreams are loopback servers behind the proxies under test, failing on
// purpose.
type upstreams struct {
	dead  string // a port nothing listens on
	reset string // reads the request, then resets the connection
	hang  string // reads the request and never answers
	ok    string // answers 200 "hello"
	flaky string // fails every other request (a reset), answers 200 otherwise
}

// startUpstreams starts the upstreams; they stop with the test.
func startUpstreams(t *testing.T) *upstreams {
	t.Helper()
	u := &upstreams{dead: freePort(t)}
	var mu sync.Mutex
	var conns []net.Conn
	serve := func(handle func(net.Conn)) string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
				go handle(c)
			}
		}()
		return l.Addr().String()
	}
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
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
	resetConn := func(c net.Conn) {
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
	}
	u.reset = serve(func(c net.Conn) { readHead(c); resetConn(c) })
	u.hang = serve(func(c net.Conn) { readHead(c) })
	answer := func(c net.Conn) {
		readHead(c)
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")
		c.Close()
	}
	u.ok = serve(answer)
	var n atomic.Int64
	u.flaky = serve(func(c net.Conn) {
		if n.Add(1)%2 == 1 {
			readHead(c)
			resetConn(c)
			return
		}
		answer(c)
	})
	return u
}

// freePort returns a loopback address that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	return testkit.FreePort(t)
}

// startServer runs a server in the foreground (in its own process group,
// with env added to the test's) until the test ends and waits until addr
// accepts connections.
func startServer(t *testing.T, addr string, env []string, name string, args ...string) {
	t.Helper()
	testkit.StartDaemon(t, testkit.Daemon{Binary: name, Args: args, Env: env, Addr: addr, Group: true, StartTimeout: 15 * time.Second})
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// startNginx runs nginx with its default error pages and buffers on addr,
// one location per upstream; it returns the base URL.
func startNginx(t *testing.T, up *upstreams) string {
	t.Helper()
	nginx := testkit.LookBinary(t, "nginx", "nginx")
	dir := t.TempDir()
	addr := freePort(t)
	writeFile(t, filepath.Join(dir, "nginx.conf"), fmt.Sprintf(`user root;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events { worker_connections 64; }
http {
	access_log %[1]s/access.log;
	client_body_temp_path %[1]s/tmp_body;
	proxy_temp_path %[1]s/tmp_proxy;
	fastcgi_temp_path %[1]s/tmp_fastcgi;
	uwsgi_temp_path %[1]s/tmp_uwsgi;
	scgi_temp_path %[1]s/tmp_scgi;
	proxy_connect_timeout 1s;
	proxy_read_timeout 1s;
	server {
		listen %[2]s;
		location /refused { proxy_pass http://%[3]s; }
		location /reset { proxy_pass http://%[4]s; }
		location /hang { proxy_pass http://%[5]s; }
		location /ok { proxy_pass http://%[6]s; }
		location /flaky { proxy_pass http://%[7]s; }
	}
}
`, dir, addr, up.dead, up.reset, up.hang, up.ok, up.flaky))
	startServer(t, addr, nil, nginx, "-c", filepath.Join(dir, "nginx.conf"), "-g", "daemon off;")
	return "http://" + addr
}

// startApache runs Apache's mod_proxy (Debian's build, default error
// pages) in front of the upstreams.
func startApache(t *testing.T, up *upstreams) string {
	t.Helper()
	apache := testkit.LookBinary(t, "apache2", "apache2")
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	addr := freePort(t)
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
ProxyTimeout 1
ProxyPass /refused http://%[4]s/refused retry=0
ProxyPass /reset http://%[5]s/reset retry=0
ProxyPass /ok http://%[6]s/ok retry=0
`, dir, addr, mods, up.dead, up.reset, up.ok))
	startServer(t, addr, nil, apache, "-f", filepath.Join(dir, "apache2.conf"), "-DFOREGROUND")
	return "http://" + addr
}

// startHAProxy runs HAProxy (default error pages) in front of the
// upstreams.
func startHAProxy(t *testing.T, up *upstreams) string {
	t.Helper()
	haproxy := testkit.LookBinary(t, "haproxy", "haproxy")
	dir := t.TempDir()
	addr := freePort(t)
	writeFile(t, filepath.Join(dir, "haproxy.cfg"), fmt.Sprintf(`global
	pidfile %[1]s/haproxy.pid
defaults
	mode http
	timeout connect 1s
	timeout client 5s
	timeout server 1s
	retries 0
frontend fe
	bind %[2]s
	use_backend refused if { path_beg /refused }
	use_backend reset if { path_beg /reset }
	use_backend hang if { path_beg /hang }
	default_backend ok
backend refused
	server s1 %[3]s
backend reset
	server s1 %[4]s
backend hang
	server s1 %[5]s
backend ok
	server s1 %[6]s
`, dir, addr, up.dead, up.reset, up.hang, up.ok))
	startServer(t, addr, nil, haproxy, "-db", "-f", filepath.Join(dir, "haproxy.cfg"))
	return "http://" + addr
}

// startCaddy runs Caddy's reverse_proxy in front of a dead upstream.
func startCaddy(t *testing.T, up *upstreams) string {
	t.Helper()
	caddy := testkit.LookBinary(t, "caddy", "caddy")
	dir := t.TempDir()
	addr := freePort(t)
	writeFile(t, filepath.Join(dir, "Caddyfile"), fmt.Sprintf(`{
	admin off
	auto_https off
	storage file_system %[1]s/data
}
http://%[2]s {
	reverse_proxy %[3]s
}
`, dir, addr, up.dead))
	startServer(t, addr, []string{"HOME=" + dir, "XDG_DATA_HOME=" + dir, "XDG_CONFIG_HOME=" + dir}, caddy, "run", "--config", filepath.Join(dir, "Caddyfile"), "--adapter", "caddyfile")
	return "http://" + addr
}

// dnsAnswer decides a test DNS server's answer: the A records (IPv4
// addresses), or NXDOMAIN, or no answer at all.
type dnsAnswer struct {
	a      []string
	nx     bool
	silent bool
}

// startDNS runs a DNS server (miekg/dns) on 127.0.0.1:random over UDP,
// answering A queries from zone and AAAA queries with no record.
func startDNS(t *testing.T, zone map[string]dnsAnswer) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, NotifyStartedFunc: func() { close(started) }, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		if len(req.Question) != 1 {
			return
		}
		q := req.Question[0]
		ans, ok := zone[strings.TrimSuffix(strings.ToLower(q.Name), ".")]
		if ans.silent {
			return
		}
		m := new(dns.Msg)
		m.SetReply(req)
		m.RecursionAvailable = true
		switch {
		case !ok || ans.nx:
			m.Rcode = dns.RcodeNameError
		case q.Qtype == dns.TypeA:
			for _, a := range ans.a {
				m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.ParseIP(a)})
			}
		}
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	select {
	case <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("DNS server did not start")
	}
	t.Cleanup(func() { srv.Shutdown() })
	return pc.LocalAddr().String()
}

// resolverAt returns a resolver that sends every query to the DNS server
// at addr, standing in for the system's.
func resolverAt(addr string) *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
}

// controlServer is a loopback control URL that answers 204.
func controlServer(t *testing.T) string {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	t.Cleanup(s.Close)
	return s.URL
}

// testOptions are quick options that only talk to loopback.
func testOptions(t *testing.T) Options {
	return Options{
		Attempts: 2,
		Backoff:  10 * time.Millisecond,
		Timeout:  4 * time.Second,
		Resolver: ResolverOff,
		Controls: []string{controlServer(t)},
	}
}

// httptestServer starts a loopback HTTP server with handler h.
func httptestServer(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s.URL
}
