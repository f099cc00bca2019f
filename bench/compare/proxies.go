package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/gatewise/gatewise/bench/internal/benchkit"
)

// params is what a proxy's config is written for.
type params struct {
	dir       string    // the run's directory: config, logs, temp files
	listen    string    // plain HTTP/1.1 listener, host:port
	tlsListen string    // HTTPS listener (HTTP/2 and HTTP/1.1), host:port
	upstream  string    // the upstream, host:port
	cert      certFiles // the TLS listener's certificate
	maxConns  int       // client connections the proxy must accept at once
	nofile    int       // the open-files limit the proxy inherits (and cannot raise without CAP_SYS_RESOURCE)
	threads   int       // CPU cores: HAProxy's nbthread
	root      bool      // running as root: nginx's workers stay root (they write temp files in dir)
	accessLog bool      // log every request to a file in dir (the "logs on" rows)
}

// contender is one thing the load is sent to: the upstream itself (no
// binary) or a proxy in front of it.
type contender struct {
	name string // "direct", "gatewise", "nginx", "HAProxy", "Caddy"
	key  string // the name in -contenders
	bin  string // empty for direct
	file string // the config file's name
	lang string // the config's language, for the page
	// config returns the config file's text.
	config func(p params) string
	// check validates the written config file with the program itself.
	check func(ctx context.Context, bin, file string, p params) error
	// argv is the command line that runs the proxy in the foreground.
	argv func(bin, file string, p params) []string
	// env is the proxy's environment; nil for this process's.
	env func(p params) []string
	// version returns the program's version line.
	version func(ctx context.Context, bin string) string
}

func directContender() *contender { return &contender{name: "direct", key: "direct"} }

func gatewiseContender(bin, repo, note string) *contender {
	return &contender{
		name: "gatewise", key: "gatewise", bin: bin, file: "gatewise.yaml", lang: "yaml",
		config: gatewiseConfig,
		check: func(ctx context.Context, bin, file string, _ params) error {
			return benchkit.CheckCommand(ctx, "compare", "gatewise config validate", bin, "config", "validate", file)
		},
		argv: func(bin, file string, _ params) []string {
			return []string{bin, "serve", "--config", file, "--log-level", "warn"}
		},
		version: func(ctx context.Context, bin string) string { return benchkit.GatewiseVersion(ctx, repo, bin, note) },
	}
}

// gatewiseConfig is gatewise with its defaults, the access log off, and
// the connection limits raised for the idle connections (every client of
// the benchmark is 127.0.0.1).
func gatewiseConfig(p params) string {
	log := `"off"`
	if p.accessLog {
		// A file's lines are written in 64KiB batches, flushed every
		// second (access_log_buffer and access_log_flush's defaults), as
		// nginx's buffer=64k flush=1s below.
		log = filepath.Join(p.dir, "access.log") + "\naccess_log_buffer: 64KiB\naccess_log_flush: 1s"
	}
	return fmt.Sprintf(`# gatewise: the defaults, access log %[6]s, limits raised for the idle connections.
listeners:
  - address: %[1]s
  - address: %[2]s
    tls:
      cert: %[3]s
      key: %[4]s
admin:
  address: "off"
access_log: %[7]s
shutdown_timeout: 3s
limits:
  # Every client of the benchmark comes from 127.0.0.1.
  max_conns_per_ip: 0
  max_conns: %[8]d
pools:
  app:
    targets:
      - url: http://%[5]s
`, p.listen, p.tlsListen, p.cert.Cert, p.cert.Key, p.upstream, onOff(p.accessLog), log, p.maxConns)
}

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

func nginxContender(bin string) *contender {
	nginxArgs := func(file string, p params) []string {
		return []string{"-e", filepath.Join(p.dir, "error.log"), "-c", file, "-p", p.dir,
			"-g", "daemon off; pid " + filepath.Join(p.dir, "nginx.pid") + ";"}
	}
	return &contender{
		name: "nginx", key: "nginx", bin: bin, file: "nginx.conf", lang: "nginx",
		config: nginxConfig,
		check: func(ctx context.Context, bin, file string, p params) error {
			return benchkit.CheckCommand(ctx, "compare", "nginx -t", bin, append([]string{"-t", "-q"}, nginxArgs(file, p)...)...)
		},
		argv: func(bin, file string, p params) []string { return append([]string{bin}, nginxArgs(file, p)...) },
		version: func(ctx context.Context, bin string) string {
			return benchkit.OrUnknown(benchkit.FirstLine(benchkit.Output(ctx, bin, "-v")))
		},
	}
}

// nginxConfig is nginx's documented tuning for a reverse proxy: a worker
// per core, SO_REUSEPORT listeners, upstream keep-alive (HTTP/1.1 and an
// empty Connection header), no access log, enough connections and files
// for the idle ones, long keep-alive timeouts and no cap on the requests
// per connection (the default 1000 would make wrk reconnect).
func nginxConfig(p params) string {
	user := ""
	if p.root {
		user = "user root;\n"
	}
	log := "access_log off;"
	if p.accessLog {
		log = "access_log " + filepath.Join(p.dir, "access.log") + " combined buffer=64k flush=1s;"
	}
	return fmt.Sprintf(`# nginx: reverse proxy with upstream keep-alive, access log %[8]s.
%[1]sworker_processes auto;
worker_rlimit_nofile %[7]d;
error_log %[2]s/error.log warn;

events {
    worker_connections %[6]d;
}

http {
    %[9]s
    client_body_temp_path %[2]s/client_body;
    proxy_temp_path %[2]s/proxy;
    fastcgi_temp_path %[2]s/fastcgi;
    uwsgi_temp_path %[2]s/uwsgi;
    scgi_temp_path %[2]s/scgi;

    keepalive_timeout 300s;
    keepalive_requests 1000000;

    upstream app {
        server %[3]s;
        keepalive 64;
        keepalive_requests 1000000;
        keepalive_timeout 60s;
    }

    server {
        listen %[4]s reuseport;
        listen %[5]s ssl http2 reuseport;
        ssl_certificate %[10]s;
        ssl_certificate_key %[11]s;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache shared:SSL:10m;

        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            # The headers every reverse-proxy guide sets (gatewise and
            # Caddy send them by default), so the upstream does the same
            # work behind each proxy.
            proxy_set_header Host $host;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            # Buffers for large responses (the default is 8 of a memory
            # page: 1 MiB responses then take twice the time), and stream
            # what does not fit rather than spool it to a temporary file.
            proxy_buffers 16 64k;
            proxy_busy_buffers_size 128k;
            proxy_max_temp_file_size 0;
        }
    }
}
`, user, p.dir, p.upstream, p.listen, p.tlsListen, min(p.maxConns*2+1024, p.nofile-100), p.nofile, onOff(p.accessLog), log, p.cert.Cert, p.cert.Key)
}

func haproxyContender(bin string) *contender {
	return &contender{
		name: "HAProxy", key: "haproxy", bin: bin, file: "haproxy.cfg", lang: "haproxy",
		config: haproxyConfig,
		check: func(ctx context.Context, bin, file string, _ params) error {
			return benchkit.CheckCommand(ctx, "compare", "haproxy -c", bin, "-c", "-q", "-f", file)
		},
		argv: func(bin, file string, _ params) []string { return []string{bin, "-f", file, "-db"} },
		version: func(ctx context.Context, bin string) string {
			return benchkit.OrUnknown(benchkit.FirstLine(benchkit.Output(ctx, bin, "-v")))
		},
	}
}

// haproxyConfig is HAProxy with a thread per core, upstream connection
// reuse "always" (see the comment in the config), timeouts set, and no
// logging.
func haproxyConfig(p params) string {
	glog, dlog := "", "    no log\n"
	if p.accessLog {
		glog = "    log stderr format short local0\n"
		dlog = "    log global\n    option httplog\n"
	}
	return fmt.Sprintf(`# HAProxy: a thread per core, upstream connection reuse, logging %[7]s.
global
    nbthread %[1]d
    maxconn %[2]d
    ssl-default-bind-options ssl-min-ver TLSv1.2
%[8]s
defaults
    mode http
%[9]s    option http-keep-alive
    # X-Forwarded-For, as gatewise, nginx (set here) and Caddy send.
    option forwardfor
    timeout connect 5s
    timeout client 300s
    timeout server 30s
    timeout http-request 10s
    timeout http-keep-alive 300s
    # "always": an idle server connection serves any client's request,
    # the first of a client connection included, as nginx's and Go's pools
    # do; "safe" (the default) sends the first request of every client
    # connection on a connection of its own, which would open a server
    # connection per request in the "Connection: close" scenario. This
    # upstream never closes an idle connection, so the race "safe" guards
    # against cannot happen here.
    http-reuse always

frontend web
    bind %[3]s
    bind %[4]s ssl crt %[5]s alpn h2,http/1.1
    default_backend app

backend app
    server app1 %[6]s
`, p.threads, haproxyMaxconn(p), p.listen, p.tlsListen, p.cert.Combined, p.upstream, onOff(p.accessLog), glog, dlog)
}

// haproxyMaxconn is HAProxy's global maxconn: the connections wanted, or
// as many as the open-files limit allows, as HAProxy reserves two files
// per connection (the client's and the server's) and refuses to start
// when the limit is below that.
func haproxyMaxconn(p params) int {
	return min(p.maxConns, (p.nofile-100)/2)
}

func caddyContender(bin string) *contender {
	return &contender{
		name: "Caddy", key: "caddy", bin: bin, file: "Caddyfile", lang: "caddyfile",
		config: caddyConfig,
		check: func(ctx context.Context, bin, file string, p params) error {
			return checkEnv(ctx, caddyEnv(p), "caddy validate", bin, "validate", "--config", file, "--adapter", "caddyfile")
		},
		argv: func(bin, file string, _ params) []string {
			return []string{bin, "run", "--config", file, "--adapter", "caddyfile"}
		},
		env: caddyEnv,
		version: func(ctx context.Context, bin string) string {
			return benchkit.OrUnknown(benchkit.FirstLine(benchkit.Output(ctx, bin, "version")))
		},
	}
}

// caddyEnv keeps Caddy's data and autosaved config in the run's directory.
func caddyEnv(p params) []string {
	var env []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k != "HOME" && k != "XDG_DATA_HOME" && k != "XDG_CONFIG_HOME" {
			env = append(env, kv)
		}
	}
	return append(env, "HOME="+p.dir, "XDG_DATA_HOME="+filepath.Join(p.dir, "data"), "XDG_CONFIG_HOME="+filepath.Join(p.dir, "config"))
}

// caddyConfig is Caddy's reverse_proxy with the admin endpoint off, no
// access log (Caddy logs requests only with a log directive), HTTP/3 off
// (h1 and h2 only, as the others), automatic HTTPS off (the certificate
// is given), and an idle pool larger than the load's connections (the
// default keeps 32 per host).
func caddyConfig(p params) string {
	log := ""
	if p.accessLog {
		log = fmt.Sprintf("\tlog {\n\t\toutput file %s\n\t}\n", filepath.Join(p.dir, "access.log"))
	}
	site := fmt.Sprintf(`	reverse_proxy %s {
		transport http {
			keepalive 60s
			keepalive_idle_conns 256
			keepalive_idle_conns_per_host 128
		}
	}
%s`, p.upstream, log)
	return fmt.Sprintf(`# Caddy: reverse_proxy, admin off, access log %[1]s.
{
	admin off
	auto_https off
	servers {
		protocols h1 h2
		timeouts {
			idle 5m
		}
	}
}

http://%[2]s {
%[4]s}

https://%[3]s {
	tls %[5]s %[6]s
%[4]s}
`, onOff(p.accessLog), p.listen, p.tlsListen, site, p.cert.Cert, p.cert.Key)
}
