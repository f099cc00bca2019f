package cause

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// rfc9209ErrorTypes are the Proxy-Status error types registered by RFC 9209
// section 2.3.
var rfc9209ErrorTypes = []string{
	"dns_timeout",                        // 2.3.1
	"dns_error",                          // 2.3.2
	"destination_not_found",              // 2.3.3
	"destination_unavailable",            // 2.3.4
	"destination_ip_prohibited",          // 2.3.5
	"destination_ip_unroutable",          // 2.3.6
	"connection_refused",                 // 2.3.7
	"connection_terminated",              // 2.3.8
	"connection_timeout",                 // 2.3.9
	"connection_read_timeout",            // 2.3.10
	"connection_write_timeout",           // 2.3.11
	"connection_limit_reached",           // 2.3.12
	"tls_protocol_error",                 // 2.3.13
	"tls_certificate_error",              // 2.3.14
	"tls_alert_received",                 // 2.3.15
	"http_request_error",                 // 2.3.16
	"http_request_denied",                // 2.3.17
	"http_response_incomplete",           // 2.3.18
	"http_response_header_section_size",  // 2.3.19
	"http_response_header_size",          // 2.3.20
	"http_response_body_size",            // 2.3.21
	"http_response_trailer_section_size", // 2.3.22
	"http_response_trailer_size",         // 2.3.23
	"http_response_transfer_coding",      // 2.3.24
	"http_response_content_coding",       // 2.3.25
	"http_response_timeout",              // 2.3.26
	"http_upgrade_failed",                // 2.3.27
	"http_protocol_error",                // 2.3.28
	"proxy_internal_response",            // 2.3.29
	"proxy_internal_error",               // 2.3.30
	"proxy_configuration_error",          // 2.3.31
	"proxy_loop_detected",                // 2.3.32
}

// hops are the defined hops, in order.
var hops = []Hop{HopVisitor, HopNetwork, HopGateway, HopUpstream, HopApplication, HopDependency}

// signatureServers are the programs Signature.Server may name.
var signatureServers = []string{"nginx", "apache", "haproxy", "caddy", "traefik", "php-fpm", "kernel"}

// noResponse are the causes for which the gateway sends no Proxy-Status
// error: the visitor has gone, or the upstream's response passes through.
var noResponse = []ID{ClientClosed, UpstreamErrorStatus}

var snakeCase = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)

func TestIDsUniqueAndSnakeCase(t *testing.T) {
	t.Parallel()
	seen := map[ID]int{}
	for i, c := range entries() {
		if !snakeCase.MatchString(string(c.ID)) {
			t.Errorf("entry %d: ID %q is not snake_case", i, c.ID)
		}
		if j, dup := seen[c.ID]; dup {
			t.Errorf("entries %d and %d: both have ID %q", j, i, c.ID)
		}
		seen[c.ID] = i
	}
	if got, want := len(NewTable().All()), len(entries()); got != want {
		t.Errorf("len(NewTable().All()) = %d, want %d (one per entry)", got, want)
	}
}

// TestEveryIDConstantHasAnEntry parses the package's files for the
// constants of type ID and checks the table has an entry for each.
func TestEveryIDConstantHasAnEntry(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var decls []ast.Decl
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		decls = append(decls, f.Decls...)
	}
	tab := NewTable()
	var n int
	for _, d := range decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, s := range gd.Specs {
			vs := s.(*ast.ValueSpec)
			if typ, ok := vs.Type.(*ast.Ident); !ok || typ.Name != "ID" {
				continue
			}
			for i, name := range vs.Names {
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok {
					t.Errorf("constant %s: value is not a string literal", name.Name)
					continue
				}
				id, err := strconv.Unquote(lit.Value)
				if err != nil {
					t.Fatal(err)
				}
				n++
				if _, ok := tab.Lookup(ID(id)); !ok {
					t.Errorf("constant %s = %q has no entry in the table", name.Name, id)
				}
			}
		}
	}
	if got, want := n, len(entries()); got != want {
		t.Errorf("the package declares %d ID constants, want %d (one per entry)", got, want)
	}
}

func TestEntryFields(t *testing.T) {
	t.Parallel()
	for _, c := range entries() {
		t.Run(string(c.ID), func(t *testing.T) {
			t.Parallel()
			if c.Title == "" {
				t.Error("Title is empty")
			}
			if c.Visitor == "" {
				t.Error("Visitor is empty")
			} else if first := c.Visitor[0]; first < 'A' || first > 'Z' || !strings.HasSuffix(c.Visitor, ".") {
				t.Errorf("Visitor = %q, want a sentence: a capital first, a period last", c.Visitor)
			}
			if c.Owner == "" {
				t.Error("Owner is empty")
			} else if !strings.HasSuffix(c.Owner, ".") {
				t.Errorf("Owner = %q, want it to end with a period", c.Owner)
			}

			switch {
			case c.ID == UpstreamErrorStatus:
				if c.Status != 0 {
					t.Errorf("Status = %d, want 0: the upstream's response passes through", c.Status)
				}
			case c.Status < 400 || c.Status > 599:
				t.Errorf("Status = %d, want a 4xx or 5xx status (0 is only for %s)", c.Status, UpstreamErrorStatus)
			}

			if c.ProxyStatusError == "" {
				if !slices.Contains(noResponse, c.ID) {
					t.Errorf("ProxyStatusError is empty, want one of RFC 9209's types (empty only for %v)", noResponse)
				}
			} else if !slices.Contains(rfc9209ErrorTypes, c.ProxyStatusError) {
				t.Errorf("ProxyStatusError = %q, want one of RFC 9209 section 2.3's types", c.ProxyStatusError)
			}

			if !slices.Contains(hops, c.Hop) {
				t.Errorf("Hop = %q, want one of %v", c.Hop, hops)
			}
		})
	}
}

func TestSignatures(t *testing.T) {
	t.Parallel()
	for _, c := range entries() {
		for i, s := range c.Signatures {
			name := fmt.Sprintf("%s/%d_%s", c.ID, i, s.Server)
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				if !slices.Contains(signatureServers, s.Server) {
					t.Errorf("Server = %q, want one of %v", s.Server, signatureServers)
				}
				re, err := regexp.Compile(s.Pattern)
				if err != nil {
					t.Fatalf("Pattern %q does not compile: %v", s.Pattern, err)
				}
				if re.MatchString("") {
					t.Errorf("Pattern %q matches the empty string, so it would match every log line", s.Pattern)
				}
			})
		}
	}
}

// visitorJargon matches words a visitor's sentence must not hold: internal
// detail, or words that mean nothing to a visitor.
var visitorJargon = regexp.MustCompile(`(?i)\b(errno|econn\w*|ehost\w*|enet\w*|nxdomain|servfail|syscall|x509|tcp|dial\w*|socket|eof|upstreams?|localhost|pool|stack trace|panic)\b`)

var (
	digitsWithDots = regexp.MustCompile(`\d+\.\d+`) // addresses and versions
	port           = regexp.MustCompile(`:\d+`)
)

func TestVisitorSentencesHoldNoInternalDetail(t *testing.T) {
	t.Parallel()
	for _, c := range entries() {
		t.Run(string(c.ID), func(t *testing.T) {
			t.Parallel()
			if m := digitsWithDots.FindString(c.Visitor); m != "" {
				t.Errorf("Visitor = %q holds %q, which looks like an address", c.Visitor, m)
			}
			if m := port.FindString(c.Visitor); m != "" {
				t.Errorf("Visitor = %q holds %q, which looks like a port", c.Visitor, m)
			}
			if m := visitorJargon.FindString(c.Visitor); m != "" {
				t.Errorf("Visitor = %q holds the jargon %q", c.Visitor, m)
			}
		})
	}
}

func TestTableLookupAndGet(t *testing.T) {
	t.Parallel()
	tab := NewTable()
	tests := []struct {
		desc   string
		id     ID
		wantOK bool
		// wantGet is the ID Get returns.
		wantGet ID
	}{
		{"a known cause", ConnectionRefused, true, ConnectionRefused},
		{"the last cause", ProxyInternalError, true, ProxyInternalError},
		{"an unknown ID falls back to proxy_internal_error", "no_such_cause", false, ProxyInternalError},
		{"the empty ID falls back to proxy_internal_error", "", false, ProxyInternalError},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			got, ok := tab.Lookup(tt.id)
			if ok != tt.wantOK {
				t.Errorf("Lookup(%q) ok = %v, want %v", tt.id, ok, tt.wantOK)
			}
			if ok && got.ID != tt.id {
				t.Errorf("Lookup(%q).ID = %q, want %q", tt.id, got.ID, tt.id)
			}
			if !ok && got.ID != "" {
				t.Errorf("Lookup(%q) = %+v, want the zero Cause", tt.id, got)
			}
			if got, want := tab.Get(tt.id).ID, tt.wantGet; got != want {
				t.Errorf("Get(%q).ID = %q, want %q", tt.id, got, want)
			}
		})
	}
}

func TestTableAllAndIDs(t *testing.T) {
	t.Parallel()
	tab := NewTable()
	var wantOrder []ID
	for _, c := range entries() {
		wantOrder = append(wantOrder, c.ID)
	}
	var gotOrder []ID
	for _, c := range tab.All() {
		gotOrder = append(gotOrder, c.ID)
	}
	if !slices.Equal(gotOrder, wantOrder) {
		t.Errorf("All() order = %v, want the entries' order %v", gotOrder, wantOrder)
	}

	ids := tab.IDs()
	if !slices.IsSorted(ids) {
		t.Errorf("IDs() = %v, want them sorted", ids)
	}
	sortedWant := slices.Clone(wantOrder)
	slices.Sort(sortedWant)
	if !slices.Equal(ids, sortedWant) {
		t.Errorf("IDs() = %v, want %v", ids, sortedWant)
	}

	// Callers may change what they get without changing the table.
	ids[0] = "changed"
	all := tab.All()
	all[0].Title = "changed"
	if got := tab.IDs()[0]; got == "changed" {
		t.Error("changing the slice IDs returned changed the table")
	}
	if got := tab.All()[0].Title; got == "changed" {
		t.Error("changing the slice All returned changed the table")
	}
}

func TestZeroTable(t *testing.T) {
	t.Parallel()
	var tab Table
	if got := tab.All(); len(got) != 0 {
		t.Errorf("zero Table: All() = %v, want empty", got)
	}
	if got := tab.IDs(); len(got) != 0 {
		t.Errorf("zero Table: IDs() = %v, want empty", got)
	}
	if _, ok := tab.Lookup(ConnectionRefused); ok {
		t.Error("zero Table: Lookup(connection_refused) ok = true, want false")
	}
}

func TestDocPath(t *testing.T) {
	t.Parallel()
	c := NewTable().Get(DNSError)
	if got, want := c.DocPath(), "docs/causes/dns_error.md"; got != want {
		t.Errorf("DocPath() = %q, want %q", got, want)
	}
}

func TestOf(t *testing.T) {
	t.Parallel()
	ce := New(ConnectionTerminated, "reset", io.EOF)
	tests := []struct {
		desc   string
		err    error
		want   *Error
		wantOK bool
	}{
		{"the *Error itself", ce, ce, true},
		{"wrapped once with %w", fmt.Errorf("attempt: %w", ce), ce, true},
		{"wrapped twice with %w", fmt.Errorf("proxy: %w", fmt.Errorf("attempt: %w", ce)), ce, true},
		{"joined with another error", errors.Join(errors.New("other"), ce), ce, true},
		{"wrapped with %v loses it", fmt.Errorf("attempt: %v", ce), nil, false},
		{"a plain error", errors.New("plain"), nil, false},
		{"nil", nil, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			got, ok := Of(tt.err)
			if ok != tt.wantOK || got != tt.want {
				t.Errorf("Of(%v) = %p, %v, want %p, %v", tt.err, got, ok, tt.want, tt.wantOK)
			}
		})
	}
	if !errors.Is(fmt.Errorf("x: %w", ce), io.EOF) {
		t.Error("errors.Is(wrapped *Error, io.EOF) = false, want true: Unwrap returns the underlying error")
	}
}

func TestPhase(t *testing.T) {
	t.Parallel()
	tests := []struct {
		phase       Phase
		want        string
		mayHaveSent bool
	}{
		{PhaseNone, "none", false},
		{PhaseDNS, "dns", false},
		{PhaseConnect, "connect", false},
		{PhaseTLS, "tls", false},
		{PhaseConnected, "connected", true},
		{PhaseRequestWritten, "request_written", true},
		{PhaseFirstByte, "first_byte", true},
		{PhaseHeaders, "headers", true},
		{Phase(200), "phase(200)", true},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			t.Parallel()
			if got := tt.phase.String(); got != tt.want {
				t.Errorf("Phase(%d).String() = %q, want %q", tt.phase, got, tt.want)
			}
			if got := tt.phase.RequestMayHaveReached(); got != tt.mayHaveSent {
				t.Errorf("Phase(%d).RequestMayHaveReached() = %v, want %v", tt.phase, got, tt.mayHaveSent)
			}
		})
	}
}

func TestErrorError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc string
		err  *Error
		want string
	}{
		{"the ID alone", &Error{ID: ConnectionRefused}, "connection_refused"},
		{"with a detail", &Error{ID: ConnectionTerminated, Detail: "reset"}, "connection_terminated (reset)"},
		{"with a target", &Error{ID: ConnectionRefused, Target: "10.0.0.1:80"}, "connection_refused to 10.0.0.1:80"},
		{"with an underlying error", &Error{ID: ConnectionTerminated, Err: io.EOF}, "connection_terminated: EOF"},
		{
			"with everything",
			&Error{ID: ConnectionTerminated, Detail: "closed", Phase: PhaseRequestWritten, Target: "app:8080", Err: io.ErrUnexpectedEOF},
			"connection_terminated (closed) to app:8080: unexpected EOF",
		},
		{"New sets the ID, detail and error", New(DNSError, "not found", errors.New("no such host")), "dns_error (not found): no such host"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}
