package errorpage

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gatewise/gatewise/internal/cause"
)

// TypeURIBase is the start of every problem type URI: the type of a cause is
// TypeURIBase + its ID, and the page at that address documents the cause
// (its source is docs/causes/ID.md in the repository).
const TypeURIBase = "https://gatewise.dev/causes/"

// TypeURI returns the RFC 9457 problem type URI of the cause id, such as
// "https://gatewise.dev/causes/connection_refused".
func TypeURI(id cause.ID) string { return TypeURIBase + url.PathEscape(string(id)) }

// Limits on the length of the strings a page shows, in bytes; longer ones are
// cut and end with "…".
const (
	maxDetail    = 200
	maxRequestID = 128
	maxName      = 256
	maxInternal  = 4096
)

// Data is what a template is executed with, for all three bodies. Every
// string in it has had its control characters removed and its length
// limited; the HTML template escapes it (html/template), the JSON template
// must quote it with the json function, and the text template prints it as
// is.
type Data struct {
	// Status is the HTTP status of the response, such as 502.
	Status int
	// StatusText is its reason phrase, such as "Bad Gateway".
	StatusText string
	// ID is the cause's stable id, such as "connection_refused".
	ID cause.ID
	// Title is the cause's short title, such as "Connection refused".
	Title string
	// Hop is the part of the chain at fault: visitor, network, gateway,
	// upstream, application or dependency.
	Hop cause.Hop
	// Where says in words where the failure is, such as "the site's server
	// behind its gateway".
	Where string
	// Visitor is the cause's sentence for the visitor.
	Visitor string
	// Detail is the safe detail of the failure, such as "reset"; may be
	// empty.
	Detail string
	// Retryable reports whether trying again later may help.
	Retryable bool
	// RetryAfter is the Retry-After header's value in seconds, 0 when the
	// response has none.
	RetryAfter int
	// Type is the problem type URI (see TypeURI).
	Type string
	// RequestID is the request's id; may be empty.
	RequestID string
	// Instance is "urn:request:" and the escaped request id, empty when
	// there is no request id.
	Instance string
	// Time is when the response was made, in UTC.
	Time time.Time
	// TimeISO is Time as RFC 3339 in UTC, such as "2026-03-01T12:00:00Z".
	TimeISO string
	// Host is the host the visitor asked for (the request's Host), may be
	// empty.
	Host string
	// ProxyName is the gateway's name, as in the Proxy-Status header.
	ProxyName string
	// ProxyStatus is the Proxy-Status header's value.
	ProxyStatus string
	// CanReload reports whether reloading the page is safe and may help:
	// the request was a GET (or HEAD), the cause is retryable, and the
	// visitor is not the one at fault.
	CanReload bool
	// Chain is the chain from the visitor to the failing part, in order, for
	// drawing: boxes alternate with the links between them.
	Chain []Node
	// Steps are what the visitor can do, one sentence each, tailored to the
	// hop and whether the cause is retryable.
	Steps []string
	// Owner holds the details for the site owner. It is nil unless
	// Problem.ShowInternal is set; a template must show no internal detail
	// otherwise (it has none to show).
	Owner *OwnerDetails
}

// Node is one element of Data.Chain: a box (a hop) or the link between two
// boxes.
type Node struct {
	// Kind is "box" or "link".
	Kind string
	// Hop is the hop the node stands for, used as its data-hop attribute:
	// visitor, gateway, upstream, application or dependency for a box;
	// "network" for the link between the gateway and the upstream; empty
	// for the other links.
	Hop string
	// Label names the node for the visitor: "You", "Gateway", "Server",
	// "Application", "Data store", "Network" (empty for the other links).
	Label string
	// State is "ok" (it worked), "failed" (the failure is here; exactly one
	// node) or "unknown" (the request did not get this far).
	State string
	// StateText says the state in words: "Working", "Problem here", "Not
	// reached".
	StateText string
}

// Failed reports whether the failure is at this node.
func (n Node) Failed() bool { return n.State == stateFailed }

// OwnerDetails are the details for the site owner, shown only when
// Problem.ShowInternal is set.
type OwnerDetails struct {
	// Explanation is the cause's sentence for the owner, ending with the fix.
	Explanation string
	// Internal is the internal detail (upstream address, raw error).
	Internal string
	// Route and Upstream name the route and the upstream pool; may be empty.
	Route, Upstream string
	// DocPath is the cause's page in the repository, "docs/causes/ID.md".
	DocPath string
}

// Node states.
const (
	stateOK      = "ok"
	stateFailed  = "failed"
	stateUnknown = "unknown"
)

// resolveCause returns c, or the proxy_internal_error cause when c is the
// zero Cause, so that every response names a cause.
func resolveCause(c cause.Cause) cause.Cause {
	if c.ID == "" {
		return cause.NewTable().Get(cause.ProxyInternalError)
	}
	return c
}

// status returns the response's status: p.Status, else the cause's, else
// 502; a value outside 400..599 becomes 502, as a failure is never a success.
func status(c cause.Cause, p Problem) int {
	s := p.Status
	if s == 0 {
		s = c.Status
	}
	if s < 400 || s > 599 {
		return http.StatusBadGateway
	}
	return s
}

// statusText returns the reason phrase of s, including nginx's 499.
func statusText(s int) string {
	if s == 499 {
		return "Client Closed Request"
	}
	if t := http.StatusText(s); t != "" {
		return t
	}
	return "Error"
}

// retryAfterSeconds returns the Retry-After value in seconds, or 0 for none:
// p.RetryAfter rounded up to a whole second when set; otherwise def when the
// cause is retryable and the status is 429, 503 or 504.
func retryAfterSeconds(c cause.Cause, st int, p Problem, def time.Duration) int {
	d := p.RetryAfter
	if d <= 0 {
		if !c.Retryable || (st != http.StatusTooManyRequests && st != http.StatusServiceUnavailable && st != http.StatusGatewayTimeout) {
			return 0
		}
		d = def
	}
	if d <= 0 {
		return 0
	}
	return int((d + time.Second - 1) / time.Second)
}

// buildData builds the template data for p. req may be nil.
func (r *Renderer) buildData(req *http.Request, p Problem) Data {
	c := resolveCause(p.Cause)
	st := status(c, p)
	now := r.now().UTC().Truncate(time.Second)
	d := Data{
		Status:     st,
		StatusText: statusText(st),
		ID:         cause.ID(cleanText(string(c.ID), maxName)),
		Title:      cleanText(c.Title, maxName),
		Hop:        c.Hop,
		Where:      where(c.Hop),
		Visitor:    cleanText(c.Visitor, maxInternal),
		Detail:     cleanText(p.Detail, maxDetail),
		Retryable:  c.Retryable,
		RetryAfter: retryAfterSeconds(c, st, p, r.retryAfter),
		Type:       TypeURI(c.ID),
		RequestID:  cleanRequestID(p.RequestID),
		Time:       now,
		TimeISO:    now.Format(time.RFC3339),
		ProxyName:  cleanText(r.proxyName, maxName),
	}
	if d.RequestID != "" {
		d.Instance = "urn:request:" + url.PathEscape(d.RequestID)
	}
	if req != nil {
		d.Host = cleanText(req.Host, maxName)
		d.CanReload = c.Retryable && (req.Method == http.MethodGet || req.Method == http.MethodHead) && c.Hop != cause.HopVisitor
	}
	pp := p
	pp.Cause = c
	d.ProxyStatus = ProxyStatus(r.proxyName, pp)
	d.Chain = chain(c.Hop)
	d.Steps = steps(c, st, d.RetryAfter)
	if p.ShowInternal {
		d.Owner = &OwnerDetails{
			Explanation: cleanText(c.Owner, maxInternal),
			Internal:    cleanText(p.Internal, maxInternal),
			Route:       cleanText(p.Route, maxName),
			Upstream:    cleanText(p.Upstream, maxName),
			DocPath:     c.DocPath(),
		}
	}
	return d
}

// where says in words where a failure at hop h is.
func where(h cause.Hop) string {
	switch h {
	case cause.HopVisitor:
		return "your browser or your connection"
	case cause.HopNetwork:
		return "the network between the site's gateway and its server"
	case cause.HopUpstream:
		return "the site's server, behind its gateway"
	case cause.HopApplication:
		return "the site's application, running on its server"
	case cause.HopDependency:
		return "a service the site's application needs, such as its database"
	default:
		return "the site's gateway"
	}
}

// chain returns the nodes to draw for a failure at hop h: visitor → gateway
// → upstream, then → application (and → data store) when the failure is
// there. Nodes before the failing one worked; nodes after it were not
// reached, except that the gateway works when the visitor's side failed
// (it answered).
func chain(h cause.Hop) []Node {
	type spec struct{ kind, hop, label string }
	specs := []spec{
		{"box", string(cause.HopVisitor), "You"},
		{"link", "", ""},
		{"box", string(cause.HopGateway), "Gateway"},
		{"link", string(cause.HopNetwork), "Network"},
		{"box", string(cause.HopUpstream), "Server"},
	}
	if h == cause.HopApplication || h == cause.HopDependency {
		specs = append(specs, spec{"link", "", ""}, spec{"box", string(cause.HopApplication), "Application"})
	}
	if h == cause.HopDependency {
		specs = append(specs, spec{"link", "", ""}, spec{"box", string(cause.HopDependency), "Data store"})
	}
	failed := -1
	for i, s := range specs {
		if s.hop == string(h) {
			failed = i
		}
	}
	if failed < 0 { // an unknown hop: blame the gateway, which made this page
		failed = 2
	}
	nodes := make([]Node, len(specs))
	for i, s := range specs {
		n := Node{Kind: s.kind, Hop: s.hop, Label: s.label}
		switch {
		case i == failed:
			n.State, n.StateText = stateFailed, "Problem here"
		case i < failed || (failed == 0 && i <= 2):
			n.State, n.StateText = stateOK, "Working"
		default:
			n.State, n.StateText = stateUnknown, "Not reached"
		}
		if n.Kind == "link" && n.State == stateOK {
			n.StateText = "Connected"
		}
		nodes[i] = n
	}
	return nodes
}

// steps returns what the visitor can do, tailored to the cause's hop, its
// status and whether it is retryable. retryAfter is in seconds, 0 for none.
func steps(c cause.Cause, st, retryAfter int) []string {
	wait := "a few seconds"
	if retryAfter > 0 {
		wait = humanSeconds(retryAfter)
	}
	const siteSide = "This page came from the site's own gateway, so your connection works: the problem is on the site's side, and nothing on your device needs fixing."
	const quote = "If it keeps happening, let the site's owner know and quote the request ID below, so they can find this error."
	switch {
	case c.Hop == cause.HopVisitor && st == http.StatusTooManyRequests:
		return []string{
			"Wait " + waitLonger(retryAfter) + ", then reload the page.",
			"Slow down: open fewer pages at once, and pause any tool or script that sends requests to this site.",
			"If you share your connection (an office, a school, a VPN), others on it count too; another network may help.",
		}
	case c.Hop == cause.HopVisitor:
		return []string{
			"Check your internet connection, then reload the page.",
			"If other sites fail or are slow too, the problem is your own connection or network, not this site.",
			"If only this site fails, wait " + waitLonger(retryAfter) + " and try again.",
		}
	case c.Retryable:
		again := "If it still fails, try again in a minute: the site may be restarting or briefly overloaded."
		if c.Hop == cause.HopGateway {
			again = "If it still fails, try again in a minute: the site is busy and turns some visitors away to stay up."
		}
		return []string{"Reload the page in " + wait + ".", again, siteSide, quote}
	default:
		return []string{
			"Reloading is unlikely to help: the site needs a fix from its owner.",
			"Let the site's owner know, and quote the request ID below so they can find this error.",
			siteSide,
			"Try again later, once the owner has had a chance to fix it.",
		}
	}
}

// waitLonger is how long a visitor at fault should wait: the Retry-After
// when there is one, else a minute.
func waitLonger(retryAfter int) string {
	if retryAfter > 0 {
		return humanSeconds(retryAfter)
	}
	return "a minute"
}

// humanSeconds says n seconds in words: "1 second", "30 seconds",
// "2 minutes".
func humanSeconds(n int) string {
	switch {
	case n == 1:
		return "1 second"
	case n < 120:
		return fmt.Sprintf("%d seconds", n)
	default:
		return fmt.Sprintf("%d minutes", (n+59)/60)
	}
}

// cleanText makes s safe to show anywhere: valid UTF-8, newlines and tabs
// turned into spaces, other control characters (C0, DEL, C1, and bidi
// overrides) removed, surrounding space trimmed, and at most max bytes (cut
// at a rune boundary, ending with "…").
func cleanText(s string, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\n' || r == '\r' || r == '\t':
			b.WriteByte(' ')
		case unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r):
		default:
			b.WriteRune(r)
		}
	}
	s = strings.TrimSpace(b.String())
	if len(s) <= max {
		return s
	}
	cut := max - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// cleanRequestID keeps only the visible ASCII characters of a request id
// (it may come from a client's X-Request-ID header, and it is echoed in a
// header), at most maxRequestID of them.
func cleanRequestID(s string) string {
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < maxRequestID; i++ {
		if c := s[i]; c > 0x20 && c < 0x7f {
			b.WriteByte(c)
		}
	}
	return b.String()
}
