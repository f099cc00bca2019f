package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/gatewise/gatewise/bench/internal/benchkit"
)

// tryTimeout bounds the connect and the wait for response headers of one
// try, the same for every proxy.
const tryTimeout = "1s"

// proxy is one contender: how to configure, check and start it.
type proxy struct {
	name string
	bin  string
	// config returns the config file's text for a proxy listening on
	// listen in front of targets (host:port), with its files in dir.
	config func(dir, listen string, targets []string) string
	// file is the config file's name in dir.
	file string
	// check validates the config file; nil when valid.
	check func(ctx context.Context, p *proxy, file, dir string) error
	// argv is the command line that runs the proxy in the foreground.
	argv func(p *proxy, file, dir string) []string
}

func gatewiseProxy(bin string) *proxy {
	return &proxy{
		name: "gatewise", bin: bin, file: "gatewise.yaml",
		config: gatewiseConfig,
		check: func(ctx context.Context, p *proxy, file, _ string) error {
			return benchkit.CheckCommand(ctx, "chaos", "gatewise config validate", p.bin, "config", "validate", file)
		},
		argv: func(p *proxy, file, _ string) []string {
			return []string{p.bin, "serve", "--config", file, "--log-level", "warn"}
		},
	}
}

func gatewiseConfig(_, listen string, targets []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `# gatewise in front of the three chaos targets.
listeners:
  - address: %s
admin:
  address: "off"
access_log: "off"
shutdown_timeout: 3s
pools:
  chaos:
    targets:
`, listen)
	for _, t := range targets {
		fmt.Fprintf(&b, "      - url: http://%s\n", t)
	}
	fmt.Fprintf(&b, `    policy: p2c_ewma
    timeouts:
      dial: %[1]s
      response_header: %[1]s
    health:
      path: /
      interval: 1s
      timeout: 1s
    outlier:
      consecutive_failures: 3
      base_ejection: 10s
    retry:
      attempts: 3
      per_try_timeout: %[1]s
`, tryTimeout)
	return b.String()
}

func nginxProxy(bin string) *proxy {
	return &proxy{
		name: "nginx", bin: bin, file: "nginx.conf",
		config: nginxConfig,
		check: func(ctx context.Context, p *proxy, file, dir string) error {
			return benchkit.CheckCommand(ctx, "chaos", "nginx -t", p.bin, "-t", "-q", "-e", filepath.Join(dir, "error.log"),
				"-c", file, "-p", dir, "-g", "daemon off; pid "+filepath.Join(dir, "nginx.pid")+";")
		},
		argv: func(p *proxy, file, dir string) []string {
			return []string{p.bin, "-e", filepath.Join(dir, "error.log"), "-c", file, "-p", dir,
				"-g", "daemon off; pid " + filepath.Join(dir, "nginx.pid") + ";"}
		},
	}
}

func nginxConfig(dir, listen string, targets []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `# nginx in front of the three chaos targets: passive health
# (max_fails), upstream keep-alive, retries on the next upstream. nginx
# does not retry a non-idempotent request (POST) once it was sent.
user root;
worker_processes auto;
error_log %[1]s/error.log warn;

events {
    worker_connections 4096;
}

http {
    # Log only the requests that did not succeed at the first try.
    map "$status $upstream_status" $chaos_log {
        "~^2[0-9][0-9] [0-9]+$" 0;
        default 1;
    }
    log_format chaos '$remote_addr [$time_local] "$request" $status '
                     'upstream=$upstream_addr upstream_status=$upstream_status '
                     'request_time=$request_time';
    access_log %[1]s/access.log chaos buffer=64k flush=1s if=$chaos_log;
    client_body_temp_path %[1]s/client_body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;

    upstream chaos {
`, dir)
	for _, t := range targets {
		fmt.Fprintf(&b, "        server %s max_fails=3 fail_timeout=10s;\n", t)
	}
	fmt.Fprintf(&b, `        keepalive 32;
    }

    server {
        listen %[1]s;
        location / {
            proxy_pass http://chaos;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_next_upstream error timeout http_502 http_503 http_504;
            proxy_next_upstream_tries 3;
            proxy_connect_timeout %[2]s;
            proxy_read_timeout %[2]s;
        }
    }
}
`, listen, tryTimeout)
	return b.String()
}

func haproxyProxy(bin string) *proxy {
	return &proxy{
		name: "HAProxy", bin: bin, file: "haproxy.cfg",
		config: haproxyConfig,
		check: func(ctx context.Context, p *proxy, file, _ string) error {
			return benchkit.CheckCommand(ctx, "chaos", "haproxy -c", p.bin, "-c", "-q", "-f", file)
		},
		argv: func(p *proxy, file, _ string) []string {
			return []string{p.bin, "-f", file, "-db"}
		},
	}
}

func haproxyConfig(_, listen string, targets []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `# HAProxy in front of the three chaos targets: active health checks,
# retries with redispatch to another server, layer 7 retries. Only
# requests that did not end well are logged (to stderr).
global
    log stderr format short local0

defaults
    mode http
    log global
    option httplog
    option dontlog-normal
    timeout connect %[1]s
    timeout server %[1]s
    timeout client 30s
    timeout check %[1]s
    retries 3
    option redispatch
    retry-on conn-failure empty-response response-timeout
    http-reuse safe

frontend chaos_in
    bind %[2]s
    default_backend chaos

backend chaos
    balance roundrobin
    option httpchk GET /
`, tryTimeout, listen)
	for i, t := range targets {
		fmt.Fprintf(&b, "    server t%d %s check inter 1s fall 3 rise 2\n", i+1, t)
	}
	return b.String()
}
