package main

import (
	"fmt"
	"path/filepath"
)

// setup is what the configs need to know.
type setup struct {
	dir      string // the work directory
	root     string // the document root, holding hello.php
	socket   string // php-fpm's unix socket
	children int    // pm.max_children
	listen   string // the proxy's address
	isRoot   bool   // running as root: php-fpm needs -R, nginx's workers stay root
}

// helloPHP is the page every request asks for.
const helloPHP = "<?php\necho \"Hello, world\\n\";\n"

// fpmConfig is a php-fpm master with one static pool on a unix socket:
// pm.max_children workers started at once (no spawning during the run), a
// listen backlog big enough for the connections of wrk, and no php.ini
// (opcache is then off for both contenders alike).
func fpmConfig(s setup) string {
	user := ""
	if s.isRoot {
		user = "user = root\ngroup = root\n"
	}
	return fmt.Sprintf(`; php-fpm for bench/fastcgi: one static pool on a unix socket.
[global]
error_log = %[1]s
pid = %[2]s
daemonize = no

[www]
%[3]slisten = %[4]s
listen.backlog = 511
pm = static
pm.max_children = %[5]d
pm.max_requests = 0
pm.status_path = /fpm-status
`, filepath.Join(s.dir, "php-fpm.log"), filepath.Join(s.dir, "php-fpm.pid"), user, s.socket, s.children)
}

// nginxKeepalive is the idle FastCGI connections each nginx worker keeps:
// a kept connection holds a PHP-FPM worker, so the caches of every nginx
// worker together must not pass pm.max_children, or a worker's new
// connection waits in the queue behind workers held idle by the other
// nginx workers.
func nginxKeepalive(children, workers int) int {
	return max(1, children/max(workers, 1))
}

// nginxConfig is nginx with the usual configuration for a PHP site
// (try_files to index.php, the split of PATH_INFO, $realpath_root) and
// the documented tuning for FastCGI: a worker per core, connections to
// PHP-FPM kept (upstream keepalive with fastcgi_keep_conn on), no access
// log.
func nginxConfig(s setup, workers int) string {
	user := ""
	if s.isRoot {
		user = "user root;\n"
	}
	return fmt.Sprintf(`# nginx in front of php-fpm: FastCGI keep-alive, no access log.
%[1]sworker_processes %[2]d;
error_log %[3]s/nginx-error.log warn;

events {
    worker_connections 4096;
}

http {
    access_log off;
    client_body_temp_path %[3]s/client_body;
    proxy_temp_path %[3]s/proxy;
    fastcgi_temp_path %[3]s/fastcgi;
    uwsgi_temp_path %[3]s/uwsgi;
    scgi_temp_path %[3]s/scgi;
    keepalive_timeout 300s;
    keepalive_requests 1000000;

    upstream php {
        server unix:%[4]s;
        keepalive %[5]d;
        keepalive_requests 1000000;
    }

    server {
        listen %[6]s reuseport;
        root %[7]s;
        index index.php;

        location / {
            try_files $uri $uri/ /index.php?$args;
        }

        location ~ [^/]\.php(/|$) {
            fastcgi_split_path_info ^(.+?\.php)(/.*)$;
            try_files $fastcgi_script_name =404;
            fastcgi_param QUERY_STRING $query_string;
            fastcgi_param REQUEST_METHOD $request_method;
            fastcgi_param CONTENT_TYPE $content_type;
            fastcgi_param CONTENT_LENGTH $content_length;
            fastcgi_param SCRIPT_NAME $fastcgi_script_name;
            fastcgi_param REQUEST_URI $request_uri;
            fastcgi_param DOCUMENT_URI $document_uri;
            fastcgi_param DOCUMENT_ROOT $realpath_root;
            fastcgi_param SCRIPT_FILENAME $realpath_root$fastcgi_script_name;
            fastcgi_param PATH_INFO $fastcgi_path_info;
            fastcgi_param SERVER_PROTOCOL $server_protocol;
            fastcgi_param REQUEST_SCHEME $scheme;
            fastcgi_param HTTPS $https if_not_empty;
            fastcgi_param GATEWAY_INTERFACE CGI/1.1;
            fastcgi_param SERVER_SOFTWARE nginx/$nginx_version;
            fastcgi_param REMOTE_ADDR $remote_addr;
            fastcgi_param REMOTE_PORT $remote_port;
            fastcgi_param SERVER_ADDR $server_addr;
            fastcgi_param SERVER_PORT $server_port;
            fastcgi_param SERVER_NAME $server_name;
            fastcgi_param REDIRECT_STATUS 200;
            fastcgi_param HTTP_PROXY "";
            fastcgi_pass php;
            fastcgi_keep_conn on;
        }
    }
}
`, user, workers, s.dir, s.socket, nginxKeepalive(s.children, workers), s.listen, s.root)
}

// gatewiseConfig is gatewise's config for the same site: a pool of one
// fastcgi+unix target on the document root with max_conns set to
// pm.max_children, as docs/fastcgi.md advises (nginx's keepalive is sized
// to the workers the same way), everything else at its default, with no
// access log and no admin listener, as nginx's. Every client is
// 127.0.0.1, so the per-IP connection limit is off.
func gatewiseConfig(s setup) string {
	return fmt.Sprintf(`# gatewise in front of php-fpm: defaults, no access log.
listeners:
  - address: %[1]s
admin:
  address: "off"
access_log: "off"
limits:
  max_conns_per_ip: 0
pools:
  php:
    targets:
      - url: fastcgi+unix://%[2]s
    fastcgi:
      root: %[3]s
      max_conns: %[4]d
      max_idle_conns: %[4]d
`, s.listen, s.socket, s.root, s.children)
}
