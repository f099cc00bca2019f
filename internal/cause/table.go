package cause

// entries is the taxonomy itself. Edit it here and only here; run
// `go generate ./internal/cause` to rewrite the generated parts of the
// docs/causes pages, their index, and the cause table in README.md (a test
// fails when any of them is stale).
func entries() []Cause {
	return []Cause{
		{
			ID: DNSError, Title: "Upstream name does not resolve", Status: 502, ProxyStatusError: "dns_error", Hop: HopNetwork, Retryable: true,
			Visitor: "The site's server could not find the address of the service behind it.",
			Owner:   "The upstream's host name did not resolve (NXDOMAIN, SERVFAIL or a DNS timeout). Check the name in the config, the resolvers in /etc/resolv.conf, and the DNS record itself, or use an IP address.",
			Signatures: []Signature{
				{Server: "nginx", Pattern: `could not be resolved|host not found in upstream`},
				{Server: "apache", Pattern: `AH00898|DNS lookup failure`},
				{Server: "caddy", Pattern: `dial tcp: lookup .*: (no such host|i/o timeout)`},
				{Server: "traefik", Pattern: `dial tcp: lookup .*no such host`},
			},
		},
		{
			ID: ConnectionRefused, Title: "Connection refused", Status: 502, ProxyStatusError: "connection_refused", Hop: HopUpstream, Retryable: true,
			Visitor: "The site's application server is not accepting connections right now.",
			Owner:   "Nothing listens on the upstream's address and port: the service is stopped, crashed, restarting, or listens elsewhere. Start it (systemctl status NAME), and check the port in the config against the one it listens on (ss -ltnp).",
			Signatures: []Signature{
				{Server: "nginx", Pattern: `connect\(\) failed \(111: `},
				{Server: "apache", Pattern: `AH00957|AH01102|\(111\)Connection refused`},
				{Server: "haproxy", Pattern: `Connection refused|SC--`},
				{Server: "caddy", Pattern: `connect: connection refused`},
				{Server: "traefik", Pattern: `connect: connection refused`},
			},
		},
		{
			ID: ConnectionTimeout, Title: "Connection timed out", Status: 504, ProxyStatusError: "connection_timeout", Hop: HopNetwork, Retryable: true,
			Visitor: "The site's application server did not answer the connection in time.",
			Owner:   "The TCP connection to the upstream was not established within the dial timeout: a firewall drops packets, the host is down or overloaded, or its listen backlog is full. Check the host is up, the firewall, and the upstream's load; raise timeouts.dial only if the network is known to be slow.",
			Signatures: []Signature{
				{Server: "nginx", Pattern: `connect\(\) failed \(110: |upstream timed out \(110: .*while connecting to upstream`},
				{Server: "apache", Pattern: `\(110\)Connection timed out`},
				{Server: "haproxy", Pattern: `sC--|Connection timeout`},
				{Server: "caddy", Pattern: `dial tcp .*: i/o timeout`},
			},
		},
		{
			ID: DestinationUnavailable, Title: "Upstream host unreachable", Status: 502, ProxyStatusError: "destination_unavailable", Hop: HopNetwork, Retryable: true,
			Visitor: "The site's application server cannot be reached from the site's gateway.",
			Owner:   "The network reported the upstream's host or network unreachable (EHOSTUNREACH or ENETUNREACH): a route, an interface or the host itself is down. Check `ip route get ADDRESS` from the gateway host and that the upstream host is up.",
			Signatures: []Signature{
				{Server: "nginx", Pattern: `connect\(\) failed \((113|101): `},
				{Server: "apache", Pattern: `\((113|101)\)`},
				{Server: "caddy", Pattern: `connect: (no route to host|network is unreachable)`},
			},
		},
		{
			ID: LocalPortsExhausted, Title: "Gateway out of local ports", Status: 502, ProxyStatusError: "proxy_internal_error", Hop: HopGateway, Retryable: true,
			Visitor: "The site's gateway could not open another connection to its application server just now.",
			Owner:   "The gateway host had no local port left for another connection to the upstream's address (EADDRNOTAVAIL on connect): as many connections to it are open, or closed and waiting a minute in TIME_WAIT, as the kernel's ephemeral port range holds (about 28,000 by default). Reuse connections rather than open new ones: keep the upstream's keep-alive on, and max_idle_per_target above the requests usually in flight (compare gatewise_upstream_connections_opened_total with gatewise_upstream_attempts_total). Then widen net.ipv4.ip_local_port_range, or add upstream addresses, each with ports of its own.",
			Signatures: []Signature{
				{Server: "nginx", Pattern: `connect\(\) (to .* )?failed \(99: `},
				{Server: "apache", Pattern: `\(99\)Cannot assign requested address`},
				{Server: "haproxy", Pattern: `[Nn]o free ports`},
				{Server: "caddy", Pattern: `connect: cannot assign requested address`},
				{Server: "traefik", Pattern: `connect: cannot assign requested address`},
			},
		},
		{
			ID: FileDescriptorsExhausted, Title: "Gateway out of file descriptors", Status: 502, ProxyStatusError: "proxy_internal_error", Hop: HopGateway, Retryable: true,
			Visitor: "The site's gateway could not open another connection to its application server just now.",
			Owner:   "The gateway could not open a socket for a connection to the upstream: the process has as many files open as its limit allows (EMFILE, details process limit: `ulimit -n`, systemd's LimitNOFILE) or the host as many as fs.file-max (ENFILE, details system limit). Every visitor connection and every upstream connection is a file, so the limit caps the two together, idle keep-alive connections included. Compare the open files (`ls /proc/$(pidof gatewise)/fd | wc -l`) with the limit (`grep 'open files' /proc/$(pidof gatewise)/limits`), then raise the limit (LimitNOFILE=65536 in the unit), or cap the visitors' connections below it with limits.max_conns.",
			Signatures: []Signature{
				{Server: "nginx", Pattern: `(socket|accept4?)\(\) failed \((24|23): `},
				{Server: "apache", Pattern: `\((24|23)\)Too many open files`},
				{Server: "haproxy", Pattern: `reached (process|system) FD limit`},
				{Server: "caddy", Pattern: `socket: too many open files`},
				{Server: "traefik", Pattern: `socket: too many open files`},
			},
		},
		{
			ID: ConnectionTerminated, Title: "Upstream closed the connection", Status: 502, ProxyStatusError: "connection_terminated", Hop: HopUpstream, Retryable: true,
			Visitor: "The site's application server hung up before it answered.",
			Owner:   "The upstream closed or reset the connection before sending any byte of a response: it crashed or was killed while handling the request, hit its own limit, or closed a keep-alive connection the gateway was reusing. The details say reset or closed. Look for crashes and OOM kills in the upstream's log (`gatewise logs`), and keep the upstream's keep-alive timeout longer than the gateway's idle timeout.",
			Signatures: []Signature{
				{Server: "nginx", Pattern: `upstream prematurely closed connection while reading response header|recv\(\) failed \(104: `},
				{Server: "apache", Pattern: `AH01102|\(104\)Connection reset by peer|AH00898.*Error reading from remote server`},
				{Server: "haproxy", Pattern: `SH--`},
				{Server: "caddy", Pattern: `connection reset by peer|EOF`},
				{Server: "traefik", Pattern: `connection reset by peer|EOF`},
			},
		},
		{
			ID: TLSProtocolError, Title: "TLS handshake with upstream failed", Status: 502, ProxyStatusError: "tls_protocol_error", Hop: HopUpstream, Retryable: false,
			Visitor: "The site's gateway could not set up a secure connection to its application server.",
			Owner:   "The TLS handshake with the upstream failed: it speaks plain HTTP on a port the config names with https://, or no protocol version or cipher is shared. Use http:// for a plain port, or fix the upstream's TLS settings.",
			Signatures: []Signature{
				{Server: "nginx", Pattern: `SSL_do_handshake\(\) failed`},
				{Server: "apache", Pattern: `AH01961|AH02003`},
				{Server: "caddy", Pattern: `tls: first record does not look like a TLS handshake`},
			},
		},
		{
			ID: TLSCertificateError, Title: "Upstream certificate rejected", Status: 502, ProxyStatusError: "tls_certificate_error", Hop: HopUpstream, Retryable: false,
			Visitor: "The site's gateway did not trust the certificate of its application server.",
			Owner:   "The upstream's certificate failed verification: self-signed, issued by an authority the gateway does not trust, expired, or for another name. Give the pool its CA file (tls.ca), fix the server name (tls.server_name), or renew the certificate.",
			Signatures: []Signature{
				{Server: "nginx", Pattern: `upstream SSL certificate verify error`},
				{Server: "apache", Pattern: `AH02039|AH02040`},
				{Server: "caddy", Pattern: `x509: certificate`},
				{Server: "traefik", Pattern: `x509: certificate`},
			},
		},
		{
			ID: HTTPResponseTimeout, Title: "Upstream response timed out", Status: 504, ProxyStatusError: "http_response_timeout", Hop: HopApplication, Retryable: true,
			Visitor: "The site's application took too long to answer.",
			Owner:   "The upstream accepted the request but sent no response headers within the response header timeout: a slow query, a lock, an exhausted worker pool or a dependency that hangs. Find the slow requests in the upstream's log and fix them; raise timeouts.response_header only for requests known to be slow.",
			Signatures: []Signature{
				{Server: "nginx", Pattern: `upstream timed out \(110: .*while reading response header`},
				{Server: "apache", Pattern: `AH01102.*timed out|\(70007\)The timeout specified has expired`},
				{Server: "haproxy", Pattern: `sH--`},
				{Server: "caddy", Pattern: `timeout awaiting response headers`},
			},
		},
		{
			ID: HTTPProtocolError, Title: "Upstream sent an invalid response", Status: 502, ProxyStatusError: "http_protocol_error", Hop: HopUpstream, Retryable: false,
			Visitor: "The site's application server sent an answer the gateway could not understand.",
			Owner:   "The upstream's response was not valid HTTP/1.1: it speaks another protocol on that port (Redis, MySQL, FastCGI, TLS), or a script printed output before its headers. Check the upstream's address and scheme in the config.",
			Signatures: []Signature{
				{Server: "nginx", Pattern: `upstream sent (invalid|no valid) HTTP|upstream sent invalid header`},
				{Server: "apache", Pattern: `AH01102.*(status line|bad header)`},
				{Server: "haproxy", Pattern: `PH--`},
				{Server: "caddy", Pattern: `malformed HTTP`},
			},
		},
		{
			ID: HTTPResponseHeaderSectionSize, Title: "Upstream response headers too large", Status: 502, ProxyStatusError: "http_response_header_section_size", Hop: HopApplication, Retryable: false,
			Visitor: "The site's application sent an answer too large for the gateway to accept.",
			Owner:   "The upstream's response header section exceeded the gateway's limit (limits.response_header_bytes): often huge or many Set-Cookie headers, or debug headers. Trim them in the application, or raise the limit.",
			Signatures: []Signature{
				{Server: "nginx", Pattern: `upstream sent too big header`},
				{Server: "apache", Pattern: `AH10124|header .* too long`},
				{Server: "haproxy", Pattern: `PH--.*`},
				{Server: "caddy", Pattern: `server response headers exceeded`},
			},
		},
		{
			ID: HTTPResponseIncomplete, Title: "Upstream response cut short", Status: 502, ProxyStatusError: "http_response_incomplete", Hop: HopUpstream, Retryable: true,
			Visitor: "The site's application server stopped in the middle of its answer.",
			Owner:   "The upstream closed the connection partway through a response: in its header section, or before the body's announced length. When the body was being streamed the visitor's connection is closed so the truncation is visible. Look for crashes, OOM kills and timeouts on the upstream.",
			Signatures: []Signature{
				{Server: "nginx", Pattern: `upstream prematurely closed connection while reading upstream`},
				{Server: "apache", Pattern: `AH01110|AH10019`},
				{Server: "haproxy", Pattern: `SD--`},
				{Server: "caddy", Pattern: `unexpected EOF`},
			},
		},
		// The PHP-FPM causes. Their signatures are more specific than the
		// generic ones above (an nginx line about a unix socket refusing a
		// connection also matches connection_refused), so a log reader
		// should try these first; php_memory_exhausted and php_timeout come
		// before php_fatal_error because PHP logs both as a "Fatal error".
		{
			ID: FPMNotRunning, Title: "PHP-FPM not running", Status: 502, ProxyStatusError: "connection_refused", Hop: HopUpstream, Retryable: true,
			Visitor: "The site's application server is not running right now.",
			Owner:   "The PHP-FPM pool's socket file is missing (ENOENT) or nothing accepts on its address (ECONNREFUSED): php-fpm is stopped, failed to start, or listens elsewhere after an upgrade (the socket's name carries the PHP version, as in /run/php/php8.2-fpm.sock). Start it (systemctl status php8.2-fpm), and check the pool's listen setting against the address in the config.",
			Signatures: []Signature{
				{Server: "nginx", Pattern: `connect\(\) to unix:\S+ failed \((2|111): `},
				{Server: "apache", Pattern: `\((2|111)\)(No such file or directory|Connection refused): AH02454`},
				{Server: "php-fpm", Pattern: `FPM initialization failed|unable to bind listening socket`},
			},
		},
		{
			ID: FPMPoolExhausted, Title: "PHP-FPM pool exhausted", Status: 503, ProxyStatusError: "connection_refused", Hop: HopUpstream, Retryable: true,
			Visitor: "The site is busier than it can handle right now.",
			Owner:   "Every PHP-FPM worker was busy and the pool's listen queue was full, so the connection was turned away (EAGAIN on the unix socket, or no accept in time): slow scripts, a slow database, or pm.max_children too low for the traffic. Find the slow requests (the pool's slowlog, `gatewise logs`), then raise pm.max_children if memory allows (workers × memory per worker must fit in RAM) or listen.backlog for short bursts.",
			Signatures: []Signature{
				{Server: "nginx", Pattern: `connect\(\) to unix:\S+ failed \(11: `},
				{Server: "apache", Pattern: `\(11\)Resource temporarily unavailable: AH02454`},
				{Server: "php-fpm", Pattern: `server reached (pm\.)?max_children setting|seems busy \(you may need to increase`},
			},
		},
		{
			ID: FPMWorkerCrashed, Title: "PHP-FPM worker crashed", Status: 502, ProxyStatusError: "connection_terminated", Hop: HopUpstream, Retryable: true,
			Visitor: "The site's application server stopped while it was building this page.",
			Owner:   "The PHP-FPM worker closed the connection before it finished the request, without a PHP error: it crashed (a segfault, often in an extension such as opcache or a profiler), was killed (the kernel's OOM killer, kill -9), or pm.max_requests recycled it. Look for \"exited on signal\" in the PHP-FPM log and for OOM kills (journalctl -k); update or disable the extension that crashes, and size the pool to the host's memory.",
			Signatures: []Signature{
				{Server: "nginx", Pattern: `upstream prematurely closed FastCGI stdout`},
				{Server: "apache", Pattern: `AH01067|AH01075`},
				{Server: "php-fpm", Pattern: `child \d+ exited on signal (4|6|7|8|9|11) \(`},
			},
		},
		{
			ID: PHPMemoryExhausted, Title: "PHP script out of memory", Status: 500, ProxyStatusError: "http_response_incomplete", Hop: HopApplication, Retryable: false,
			Visitor: "The site's application ran out of memory while building this page.",
			Owner:   "A PHP script went past its memory_limit (\"Allowed memory size of N bytes exhausted\"); the log line names the file and line where it happened. Fix the code that loads too much (a query without a limit, a huge array, a plugin), or raise memory_limit for the pool (php_admin_value[memory_limit]) if the page legitimately needs it.",
			Signatures: []Signature{
				{Server: "nginx", Pattern: `FastCGI sent in stderr: .*Allowed memory size of \d+ bytes exhausted`},
				{Server: "apache", Pattern: `AH01071: Got error .*Allowed memory size of \d+ bytes exhausted`},
				{Server: "php-fpm", Pattern: `PHP Fatal error:\s+Allowed memory size of \d+ bytes exhausted`},
			},
		},
		{
			ID: PHPTimeout, Title: "PHP script timed out", Status: 504, ProxyStatusError: "http_response_timeout", Hop: HopApplication, Retryable: true,
			Visitor: "The site's application took too long to build this page and was stopped.",
			Owner:   "A PHP script ran past max_execution_time (PHP stopped it with \"Maximum execution time of N seconds exceeded\", naming the file and line) or past the pool's request_terminate_timeout (PHP-FPM killed the worker). Find what the script waits for (a slow query, an external API, a lock) with the pool's slowlog, and fix it; raise the limits only for scripts known to be slow.",
			Signatures: []Signature{
				{Server: "nginx", Pattern: `FastCGI sent in stderr: .*Maximum execution time of \d+ seconds? exceeded`},
				{Server: "apache", Pattern: `AH01071: Got error .*Maximum execution time of \d+ seconds? exceeded`},
				{Server: "php-fpm", Pattern: `Maximum execution time of \d+ seconds? exceeded|execution timed out \([0-9.]+ sec\), terminating`},
			},
		},
		{
			ID: PHPFatalError, Title: "PHP fatal error", Status: 500, ProxyStatusError: "http_response_incomplete", Hop: HopApplication, Retryable: false,
			Visitor: "The site's application failed with an error while building this page.",
			Owner:   "A PHP script stopped on a fatal error (an uncaught exception, a call to an undefined function, a parse error), often after a plugin, theme or PHP update; the log line names the file and line. Fix or roll back the code at that line, or disable the plugin it belongs to (`gatewise bisect` finds which one).",
			Signatures: []Signature{
				{Server: "nginx", Pattern: `FastCGI sent in stderr: "PHP message: PHP (Fatal|Parse) error:`},
				{Server: "apache", Pattern: `AH01071: Got error '(PHP message: )?PHP (Fatal|Parse) error:`},
				{Server: "php-fpm", Pattern: `PHP (Fatal|Parse) error:`},
			},
		},
		{
			ID: NoHealthyUpstream, Title: "No healthy upstream", Status: 503, ProxyStatusError: "destination_unavailable", Hop: HopUpstream, Retryable: true,
			Visitor: "None of the site's application servers is available right now.",
			Owner:   "Every target of the pool is down or ejected, or the pool has no target. See the dashboard's upstream health and each target's last failure; start or fix the targets.",
			Signatures: []Signature{
				{Server: "nginx", Pattern: `no live upstreams`},
				{Server: "haproxy", Pattern: `no server available|SC--.*<NOSRV>|/<NOSRV> .* SC--`},
				{Server: "caddy", Pattern: `no upstreams available`},
				{Server: "traefik", Pattern: `no servers? (available|in the pool)`},
			},
		},
		{
			ID: ConnectionLimitReached, Title: "Too many requests in flight", Status: 503, ProxyStatusError: "connection_limit_reached", Hop: HopGateway, Retryable: true,
			Visitor: "The site is busier than it can handle right now.",
			Owner:   "The pool's concurrency limit and its queue were full, so the gateway turned the request away rather than overload the upstream. Add capacity, or raise the limit if the upstream can take more.",
			Signatures: []Signature{
				{Server: "haproxy", Pattern: `sQ--|maxconn`},
				{Server: "nginx", Pattern: `limiting connections by zone`},
			},
		},
		{
			ID: RateLimited, Title: "Rate limit exceeded", Status: 429, ProxyStatusError: "http_request_denied", Hop: HopVisitor, Retryable: true,
			Visitor: "Too many requests came from your connection in a short time.",
			Owner:   "The client exceeded a rate limit of the route. If legitimate clients hit it, raise the limit or key it differently (behind a proxy, list it in trusted_proxies).",
			Signatures: []Signature{
				{Server: "nginx", Pattern: `limiting requests, excess`},
			},
		},
		{
			ID: MemoryPressure, Title: "Gateway short of memory", Status: 503, ProxyStatusError: "proxy_internal_response", Hop: HopGateway, Retryable: true,
			Visitor: "The site is busier than it can handle right now.",
			Owner:   "The gateway stopped admitting new requests because its own memory (limits.memory_limit) or the host's available memory (limits.min_host_available_percent) crossed its threshold, before the kernel's OOM killer would pick a victim. Find what uses the memory (`gatewise doctor`, `free -m`, `ps aux --sort=-rss`), add memory, or lower the load.",
		},
		{
			ID: RequestHeaderTooLarge, Title: "Request headers too large", Status: 431, ProxyStatusError: "http_request_error", Hop: HopVisitor, Retryable: false,
			Visitor: "Your browser sent more or larger headers than this site accepts, often because of too many or too large cookies.",
			Owner:   "The request had more header fields than limits.max_header_count or a header section larger than limits.request_header_bytes. Oversized cookies are the usual cause: clear them, or raise the limit if such requests are legitimate.",
			Signatures: []Signature{
				{Server: "nginx", Pattern: `client sent too (long|large) header|400 Request Header Or Cookie Too Large`},
				{Server: "apache", Pattern: `AH00561|Request header exceeds LimitRequestFieldSize`},
			},
		},
		{
			ID: URITooLong, Title: "Address too long", Status: 414, ProxyStatusError: "http_request_error", Hop: HopVisitor, Retryable: false,
			Visitor: "The address you asked for is longer than this site accepts.",
			Owner:   "The request target (path and query) was longer than limits.max_uri_bytes. A link that piles up query parameters, or a scanner, is the usual cause; raise the limit only if such addresses are legitimate.",
			Signatures: []Signature{
				{Server: "nginx", Pattern: `client sent too long URI`},
				{Server: "apache", Pattern: `AH00565|Request-URI Too Long`},
			},
		},
		{
			ID: RequestBodyTooLarge, Title: "Upload too large", Status: 413, ProxyStatusError: "http_request_error", Hop: HopVisitor, Retryable: false,
			Visitor: "What you sent is larger than this site accepts.",
			Owner:   "The request body was larger than limits.max_body_bytes (or the route's max_body_bytes). Raise the limit for the route that takes uploads if they are legitimate.",
			Signatures: []Signature{
				{Server: "nginx", Pattern: `client intended to send too large body`},
				{Server: "apache", Pattern: `AH02018|Request body is larger than`},
			},
		},
		{
			ID: ClientTimeout, Title: "Visitor too slow", Status: 408, ProxyStatusError: "http_request_error", Hop: HopVisitor, Retryable: true,
			Visitor: "Your connection sent the request too slowly, so the site stopped waiting.",
			Owner:   "The visitor sent no byte of the request body for limits.body_read_timeout (a slow POST, a stalled mobile connection, or a slowloris attack). The attempt was abandoned: the upstream got at most the request's head and part of its body. Raise the timeout only if legitimate clients are that slow.",
			Signatures: []Signature{
				{Server: "nginx", Pattern: `client timed out \(110: .*while reading client request`},
				{Server: "apache", Pattern: `AH01382|Request header read timeout`},
			},
		},
		{
			ID: ClientClosed, Title: "Visitor closed the connection", Status: 499, ProxyStatusError: "", Hop: HopVisitor, Retryable: true,
			Visitor: "You closed the connection before the site answered.",
			Owner:   "The visitor's client went away before the response was complete; nothing was sent. Many of these on one route mean it is slow enough that visitors give up.",
			Signatures: []Signature{
				{Server: "nginx", Pattern: `" 499 |client prematurely closed connection`},
				{Server: "haproxy", Pattern: `CD--|CH--|CR--`},
			},
		},
		{
			ID: UpstreamErrorStatus, Title: "Upstream answered with an error", Status: 0, ProxyStatusError: "", Hop: HopUpstream, Retryable: true,
			Visitor: "The site's application server reported an error of its own.",
			Owner:   "The upstream itself answered 502, 503 or 504; the gateway passed its response through untouched. The failure is behind the upstream: another proxy, its application, or a dependency. Read that server's own logs.",
			Signatures: []Signature{
				{Server: "nginx", Pattern: `upstream_status=50[234]`},
			},
		},
		{
			ID: NoRoute, Title: "No route for this address", Status: 404, ProxyStatusError: "destination_not_found", Hop: HopGateway, Retryable: false,
			Visitor: "This site's gateway does not serve this address.",
			Owner:   "No route matched the request's host and path, so the gateway had nowhere to send it. Add a route (or a catch-all route with no host and path /) if the address should be served; scanners asking for other hosts land here too.",
		},
		{
			ID: ProxyConfigurationError, Title: "Gateway misconfigured", Status: 500, ProxyStatusError: "proxy_configuration_error", Hop: HopGateway, Retryable: false,
			Visitor: "The site's gateway is not set up to serve this address.",
			Owner:   "The request's route names a pool that cannot serve it, or the gateway could not build the request to the upstream from its config. Check routes and pools with `gatewise config validate`.",
		},
		{
			ID: ProxyInternalError, Title: "Gateway internal error", Status: 500, ProxyStatusError: "proxy_internal_error", Hop: HopGateway, Retryable: true,
			Visitor: "The site's gateway ran into a problem of its own.",
			Owner:   "gatewise failed for a reason outside the taxonomy. The warning log line has the error; please report it with the request ID.",
		},
	}
}
