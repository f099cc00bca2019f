package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/gatewise/gatewise/bench/internal/benchkit"
)

// scenario is what the configs are written for.
type scenario struct {
	slots   int           // the upstream's concurrent slots
	service time.Duration // its service time
}

// capacity is the upstream's requests per second.
func (s scenario) capacity() float64 { return float64(s.slots) / s.service.Seconds() }

// contender is one way to put something in front of the upstream.
type contender struct {
	name string
	bin  string // empty: no proxy (the clients go straight to the upstream)
	// config returns the config file's text for a proxy listening on
	// listen in front of the upstream at target (host:port), with its
	// files in dir.
	config func(dir, listen, target string, s scenario) string
	file   string // the config file's name in dir
	lang   string // the config's language, for the report
	// check validates the config file; nil when valid.
	check func(ctx context.Context, c *contender, file, dir string) error
	// argv is the command line that runs the proxy in the foreground.
	argv func(c *contender, file, dir string) []string
}

func directContender() *contender { return &contender{name: "no gateway"} }

func gatewiseContender(name, bin string, fixed bool) *contender {
	return &contender{
		name: name, bin: bin, file: "gatewise.yaml", lang: "yaml",
		config: func(_, listen, target string, s scenario) string { return gatewiseConfig(listen, target, s, fixed) },
		check: func(ctx context.Context, c *contender, file, _ string) error {
			return benchkit.CheckCommand(ctx, "overload", "gatewise config validate", c.bin, "config", "validate", file)
		},
		argv: func(c *contender, file, _ string) []string {
			return []string{c.bin, "serve", "--config", file, "--log-level", "warn"}
		},
	}
}

// gatewiseConfig is gatewise with its default admission control (an
// adaptive concurrency limit, a queue of 100 for up to 1s), or a fixed
// limit of the upstream's slots.
func gatewiseConfig(listen, target string, s scenario, fixed bool) string {
	conc := "    # concurrency: the defaults (an adaptive limit, a queue of 100, 1s)\n"
	if fixed {
		conc = fmt.Sprintf("    concurrency:\n      max_in_flight: %d\n", s.slots)
	}
	return fmt.Sprintf(`# gatewise in front of the overloaded upstream.
listeners:
  - address: %s
admin:
  address: "off"
access_log: "off"
shutdown_timeout: 3s
limits:
  # Every client of the benchmark comes from 127.0.0.1.
  max_conns_per_ip: 0
pools:
  app:
    targets:
      - url: http://%s
%s`, listen, target, conc)
}

func nginxContender(bin string) *contender {
	return &contender{
		name: "nginx", bin: bin, file: "nginx.conf", lang: "nginx",
		config: nginxConfig,
		check: func(ctx context.Context, c *contender, file, dir string) error {
			return benchkit.CheckCommand(ctx, "overload", "nginx -t", c.bin, "-t", "-q", "-e", filepath.Join(dir, "error.log"),
				"-c", file, "-p", dir, "-g", "daemon off; pid "+filepath.Join(dir, "nginx.pid")+";")
		},
		argv: func(c *contender, file, dir string) []string {
			return []string{c.bin, "-e", filepath.Join(dir, "error.log"), "-c", file, "-p", dir,
				"-g", "daemon off; pid " + filepath.Join(dir, "nginx.pid") + ";"}
		},
	}
}

// nginxConfig is open-source nginx's documented overload protection: at
// most the upstream's slots in flight (limit_conn over the whole server,
// and max_conns on the upstream server, shared by the workers through a
// zone), a request rate of the upstream's capacity with a burst of its
// slots (limit_req ... nodelay), and 503 with a Retry-After for the rest.
// The upstream queue (the "queue" directive) is nginx Plus only, so the
// excess is refused at once.
func nginxConfig(dir, listen, target string, s scenario) string {
	rate := int(s.capacity() + 0.5)
	return fmt.Sprintf(`# nginx in front of the overloaded upstream: limit_conn and
# limit_req with burst and nodelay, 503 with Retry-After when refused.
user root;
worker_processes auto;
error_log %[1]s/error.log warn;

events {
    worker_connections 8192;
}

http {
    access_log off;
    client_body_temp_path %[1]s/client_body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;

    limit_conn_zone $server_name zone=inflight:1m;
    limit_req_zone $server_name zone=rate:1m rate=%[4]dr/s;

    upstream app {
        zone app 64k;
        server %[3]s max_conns=%[5]d;
        keepalive 32;
    }

    server {
        listen %[2]s;

        limit_conn inflight %[5]d;
        limit_conn_status 503;
        limit_conn_log_level warn;
        limit_req zone=rate burst=%[5]d nodelay;
        limit_req_status 503;
        limit_req_log_level warn;
        error_page 502 503 =503 @overloaded;

        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_connect_timeout 5s;
            proxy_read_timeout 30s;
        }

        location @overloaded {
            add_header Retry-After 1 always;
            return 503 "overloaded\n";
        }
    }
}
`, dir, listen, target, rate, s.slots)
}
