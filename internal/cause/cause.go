// Package cause holds gatewise's one failure taxonomy: every failure the
// gateway sees, and every log line it reads from another server, maps to one
// Cause from the table in this package. The proxy, the error pages, the
// access log, the metrics, `gatewise logs`, `check` and `doctor` all read the
// same entry, so a cause reads the same everywhere.
//
// A cause travels through the code as an *Error (see errors.go) and is
// recovered with errors.As, never by matching a string.
package cause

import "sort"

// ID is the stable identifier of a cause, such as "connection_refused". IDs
// appear in logs, metric labels, Proxy-Status details and URLs of the docs,
// so they never change once released.
type ID string

// The cause IDs. Each has one entry in the table returned by All.
const (
	DNSError                      ID = "dns_error"
	ConnectionRefused             ID = "connection_refused"
	ConnectionTimeout             ID = "connection_timeout"
	DestinationUnavailable        ID = "destination_unavailable"
	LocalPortsExhausted           ID = "local_ports_exhausted"
	FileDescriptorsExhausted      ID = "file_descriptors_exhausted"
	ConnectionTerminated          ID = "connection_terminated"
	TLSProtocolError              ID = "tls_protocol_error"
	TLSCertificateError           ID = "tls_certificate_error"
	HTTPResponseTimeout           ID = "http_response_timeout"
	HTTPProtocolError             ID = "http_protocol_error"
	HTTPResponseHeaderSectionSize ID = "http_response_header_section_size"
	HTTPResponseIncomplete        ID = "http_response_incomplete"
	FPMNotRunning                 ID = "fpm_not_running"
	FPMPoolExhausted              ID = "fpm_pool_exhausted"
	FPMWorkerCrashed              ID = "fpm_worker_crashed"
	PHPMemoryExhausted            ID = "php_memory_exhausted"
	PHPTimeout                    ID = "php_timeout"
	PHPFatalError                 ID = "php_fatal_error"
	NoHealthyUpstream             ID = "no_healthy_upstream"
	ConnectionLimitReached        ID = "connection_limit_reached"
	RateLimited                   ID = "rate_limited"
	MemoryPressure                ID = "memory_pressure"
	RequestHeaderTooLarge         ID = "request_header_too_large"
	URITooLong                    ID = "uri_too_long"
	RequestBodyTooLarge           ID = "request_body_too_large"
	ClientTimeout                 ID = "client_timeout"
	ClientClosed                  ID = "client_closed"
	UpstreamErrorStatus           ID = "upstream_error_status"
	NoRoute                       ID = "no_route"
	ProxyConfigurationError       ID = "proxy_configuration_error"
	ProxyInternalError            ID = "proxy_internal_error"
)

// Hop names the part of the chain that is at fault for a cause.
type Hop string

// The hops, from the visitor to the services behind the application.
const (
	// HopVisitor is the visitor's browser or client, or their own connection.
	HopVisitor Hop = "visitor"
	// HopNetwork is what lies between the gateway and the upstream: DNS,
	// routing, firewalls.
	HopNetwork Hop = "network"
	// HopGateway is gatewise itself or its configuration.
	HopGateway Hop = "gateway"
	// HopUpstream is the server the gateway forwards to (an application
	// server, another proxy, PHP-FPM).
	HopUpstream Hop = "upstream"
	// HopApplication is the code running on the upstream (a PHP script, a
	// plugin).
	HopApplication Hop = "application"
	// HopDependency is a service the application needs (MySQL, Memcached,
	// Redis).
	HopDependency Hop = "dependency"
)

// OwnResource reports whether id is the gateway running out of a resource
// of its own, a local port or a file descriptor, while connecting to an
// upstream: a failure that says nothing of the upstream, so health checks
// that fail with it are inconclusive and it counts against no target.
// A new cause of that kind belongs here.
func (id ID) OwnResource() bool {
	return id == LocalPortsExhausted || id == FileDescriptorsExhausted
}

// Signature is a log pattern by which another server reports the same
// cause. Pattern is a Go regular expression matched against one log line.
type Signature struct {
	// Server names the program whose log uses the pattern: nginx, apache,
	// haproxy, caddy, traefik, php-fpm, kernel.
	Server string
	// Pattern is a regular expression (RE2 syntax) that matches the line.
	Pattern string
}

// Cause is one entry of the taxonomy.
type Cause struct {
	// ID is the stable identifier.
	ID ID
	// Title is a short name for headings, such as "Connection refused".
	Title string
	// Status is the HTTP status the gateway answers with. Zero means the
	// gateway does not answer for this cause (the visitor has left, or the
	// upstream's own response is passed through).
	Status int
	// ProxyStatusError is the RFC 9209 Proxy-Status error type sent with the
	// response. Empty when no response is generated (client_closed) or the
	// upstream's response is passed through (upstream_error_status).
	ProxyStatusError string
	// Hop is the part of the chain at fault.
	Hop Hop
	// Visitor is one sentence for the visitor, free of internal detail.
	Visitor string
	// Owner is one or two sentences for the site owner, ending with the fix.
	Owner string
	// Retryable reports whether the visitor trying again later may help.
	Retryable bool
	// Signatures are the log patterns of other servers that mean this cause.
	Signatures []Signature
}

// DocPath returns the path of the cause's page in the repository, relative
// to its root: "docs/causes/ID.md".
func (c Cause) DocPath() string { return "docs/causes/" + string(c.ID) + ".md" }

// Table is the set of causes, indexed by ID. The zero value is empty; build
// one with NewTable.
type Table struct {
	byID  map[ID]Cause
	order []ID
}

// NewTable returns the table of every cause gatewise knows. It builds a new
// value on each call, so callers may keep it without sharing state.
func NewTable() *Table {
	all := entries()
	t := &Table{byID: make(map[ID]Cause, len(all)), order: make([]ID, 0, len(all))}
	for _, c := range all {
		t.byID[c.ID] = c
		t.order = append(t.order, c.ID)
	}
	return t
}

// Lookup returns the cause with the given ID and whether it exists.
func (t *Table) Lookup(id ID) (Cause, bool) {
	c, ok := t.byID[id]
	return c, ok
}

// Get returns the cause with the given ID, or the proxy_internal_error entry
// when the ID is unknown, so a caller always has a page and a status.
func (t *Table) Get(id ID) Cause {
	if c, ok := t.byID[id]; ok {
		return c
	}
	return t.byID[ProxyInternalError]
}

// All returns every cause in the table's order (the order of the entries in
// the source, grouped from the network outwards).
func (t *Table) All() []Cause {
	out := make([]Cause, 0, len(t.order))
	for _, id := range t.order {
		out = append(out, t.byID[id])
	}
	return out
}

// IDs returns every cause ID, sorted alphabetically.
func (t *Table) IDs() []ID {
	ids := append([]ID(nil), t.order...)
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}
