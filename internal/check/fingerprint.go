package check

import (
	"bytes"
	"net/http"
	"regexp"
	"strings"

	"github.com/gatewise/gatewise/internal/cause"
)

// Roles of the hops in a chain, as in Report.AtFault.
const (
	// RoleVisitor is the visitor's device and connection.
	RoleVisitor = "visitor"
	// RoleNetwork is what lies between the visitor and the site: DNS,
	// routing.
	RoleNetwork = "network"
	// RoleCDN is a content delivery network in front of the site
	// (Cloudflare, CloudFront, Fastly).
	RoleCDN = "cdn"
	// RoleProxy is a reverse proxy or load balancer of the site (nginx,
	// Apache, HAProxy, Varnish, Caddy, Traefik, an AWS load balancer,
	// gatewise), or the site's front server when nothing more is known.
	RoleProxy = "proxy"
	// RoleApplication is the site's application behind its proxies.
	RoleApplication = "application"
)

// States of a hop in a chain.
const (
	// StateOK means the hop worked: it passed the request on, or answered
	// normally.
	StateOK = "ok"
	// StateAnswered means the hop produced the error response itself,
	// because a hop behind it failed.
	StateAnswered = "answered"
	// StateFailed means the hop is where the failure is.
	StateFailed = "failed"
	// StateUnknown means nothing is known about the hop (it is behind the
	// failure).
	StateUnknown = "unknown"
)

// Hop is one part of the chain from the visitor to the site's application.
type Hop struct {
	// Name is the hop's name for people: "you", "Cloudflare", "nginx",
	// "application".
	Name string `json:"name"`
	// Role is one of the Role constants.
	Role string `json:"role"`
	// State is one of the State constants.
	State string `json:"state"`
	// Software is the software and version the hop announced, such as
	// "nginx/1.22.1". May be empty.
	Software string `json:"software,omitempty"`
	// ID is the request ID the hop gave the request (a Cloudflare Ray ID,
	// a CloudFront request ID, an X-Request-ID). May be empty.
	ID string `json:"id,omitempty"`
	// Evidence lists what identified the hop: header fields and body
	// marks, such as "CF-RAY header" or "nginx's default error page".
	Evidence []string `json:"evidence,omitempty"`
}

// Fingerprint is what one response says about the hops that carried it.
type Fingerprint struct {
	// Hops are the intermediaries found, nearest the visitor first; the
	// visitor and the application are not included.
	Hops []Hop
	// Answered is the index in Hops of the hop that produced the response
	// itself (a default error page, a Proxy-Status error), or -1 when the
	// response came from behind every hop found: the application.
	Answered int
	// OwnFault reports whether the answering hop failed itself (a CDN's own
	// error, a proxy's 500, a rejected request), rather than a hop behind
	// it.
	OwnFault bool
	// Cause is the taxonomy's cause the response names or implies, or "".
	Cause cause.ID
	// Meaning says in words what the answering hop's response usually
	// means, such as "could not connect to its application". May be empty.
	Meaning string
	// RequestID is the response's X-Request-ID (or a similar header).
	RequestID string
}

// maxScanBody is how much of a body the fingerprints look at.
const maxScanBody = 64 << 10

// marks are the regular expressions that recognise default error pages,
// matched against the first maxScanBody bytes of a body. They are built per
// Identify call (a few microseconds), so no state is shared.
type marks struct {
	nginxPage       *regexp.Regexp
	cfOwnPage       *regexp.Regexp
	barePage        *regexp.Regexp
	fastlyError     *regexp.Regexp
	apachePage      *regexp.Regexp
	apacheReason    *regexp.Regexp
	apacheAddr      *regexp.Regexp
	haproxyPage     *regexp.Regexp
	varnishPage     *regexp.Regexp
	varnishXID      *regexp.Regexp
	cfOriginPage    *regexp.Regexp
	cfRayInPage     *regexp.Regexp
	cloudFront      *regexp.Regexp
	cloudFrontReqID *regexp.Regexp
}

func newMarks() *marks {
	return &marks{
		nginxPage:       regexp.MustCompile(`<hr><center>((?:nginx|openresty)[^<]{0,64})</center>`),
		cfOwnPage:       regexp.MustCompile(`<hr><center>cloudflare[^<]{0,32}</center>`),
		barePage:        regexp.MustCompile(`^<html>\r?\n(?:<head><title>\d{3} [^<]*</title></head>\r?\n)?<body>\r?\n<center><h1>\d{3} [^<]*</h1></center>\r?\n</body>\r?\n</html>`),
		fastlyError:     regexp.MustCompile(`^Error (\d{3}) ([^\n<]{1,100})`),
		apachePage:      regexp.MustCompile(`<!DOCTYPE HTML PUBLIC "-//(?:IETF//DTD HTML 2\.0|W3C//DTD HTML 4\.01)//EN"[^>]{0,80}>\s*<html><head>\s*<title>\d{3} [^<]*</title>`),
		apacheReason:    regexp.MustCompile(`Reason: <strong>([^<]{1,200})</strong>`),
		apacheAddr:      regexp.MustCompile(`<address>(Apache[^<]{0,100}?) Server at`),
		haproxyPage:     regexp.MustCompile(`^<html><body><h1>\d{3} [^<]*</h1>\r?\n`),
		varnishPage:     regexp.MustCompile(`(?s)Guru Meditation.*Varnish cache server`),
		varnishXID:      regexp.MustCompile(`XID: (\d{1,20})`),
		cfOriginPage:    regexp.MustCompile(`cf-error-code|Cloudflare Ray ID|cf-error-details`),
		cfRayInPage:     regexp.MustCompile(`Ray ID: (?:<[^>]{1,64}>)?([0-9a-f]{16})`),
		cloudFront:      regexp.MustCompile(`Generated by cloudfront \(CloudFront\)|The request could not be satisfied`),
		cloudFrontReqID: regexp.MustCompile(`Request ID: ([A-Za-z0-9_=-]{10,100})`),
	}
}

// hopSet collects hops without duplicates, keeping a rank that orders the
// chain: CDNs, then load balancers, then proxies named by Via (nearest the
// visitor first), then the proxies the Server header or the body name.
type hopSet struct {
	hops  []Hop
	ranks []int
}

// add records a hop (or adds evidence to it) and returns its index.
func (s *hopSet) add(name, role string, rank int, evidence string) int {
	for i := range s.hops {
		if strings.EqualFold(s.hops[i].Name, name) {
			if evidence != "" && !contains(s.hops[i].Evidence, evidence) {
				s.hops[i].Evidence = append(s.hops[i].Evidence, evidence)
			}
			return i
		}
	}
	h := Hop{Name: name, Role: role, State: StateOK}
	if evidence != "" {
		h.Evidence = []string{evidence}
	}
	s.hops = append(s.hops, h)
	s.ranks = append(s.ranks, rank)
	return len(s.hops) - 1
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Ranks of hops in the chain.
const (
	rankCDN   = 10
	rankLB    = 20
	rankVia   = 30 // + position
	rankProxy = 80
)

// Identify reads a response's status, header and body (its first bytes
// are enough) and says which hops carried it and which one produced it.
// It never fails: an unknown response gives no hops and Answered -1.
func Identify(status int, h http.Header, body []byte) Fingerprint {
	if len(body) > maxScanBody {
		body = body[:maxScanBody]
	}
	mk := newMarks()
	var s hopSet
	fp := Fingerprint{Answered: -1}
	server := strings.TrimSpace(h.Get("Server"))
	serverLower := strings.ToLower(server)
	via := h.Values("Via")
	viaText := strings.ToLower(strings.Join(via, ","))
	xcache := strings.ToLower(strings.Join(h.Values("X-Cache"), ","))

	// CDNs.
	if ray := h.Get("CF-RAY"); ray != "" || serverLower == "cloudflare" {
		i := s.add("Cloudflare", RoleCDN, rankCDN, "")
		if ray != "" {
			s.hops[i].ID = clip(ray, 64)
			s.hops[i].Evidence = append(s.hops[i].Evidence, "CF-RAY header")
		}
		if serverLower == "cloudflare" {
			s.hops[i].Evidence = append(s.hops[i].Evidence, "Server: cloudflare")
		}
	}
	if id := h.Get("X-Amz-Cf-Id"); id != "" || strings.Contains(viaText, "cloudfront") || strings.Contains(xcache, "cloudfront") || serverLower == "cloudfront" {
		i := s.add("CloudFront", RoleCDN, rankCDN+1, "")
		if id != "" {
			s.hops[i].ID = clip(id, 100)
			s.hops[i].Evidence = append(s.hops[i].Evidence, "X-Amz-Cf-Id header")
		}
		if strings.Contains(viaText, "cloudfront") {
			s.hops[i].Evidence = append(s.hops[i].Evidence, "Via names CloudFront")
		}
		if strings.Contains(xcache, "cloudfront") {
			s.hops[i].Evidence = append(s.hops[i].Evidence, "X-Cache: "+clip(h.Get("X-Cache"), 64))
		}
	}
	fastly := false
	if sb := h.Get("X-Served-By"); strings.HasPrefix(strings.ToLower(sb), "cache-") || h.Get("Fastly-Debug-Digest") != "" {
		fastly = true
		i := s.add("Fastly", RoleCDN, rankCDN+2, "X-Served-By: "+clip(sb, 64))
		if xcache != "" {
			s.hops[i].Evidence = append(s.hops[i].Evidence, "X-Cache: "+clip(h.Get("X-Cache"), 64))
		}
	}
	// Load balancers.
	if strings.HasPrefix(serverLower, "awselb") {
		i := s.add("AWS ELB/ALB", RoleProxy, rankLB, "Server: "+clip(server, 32))
		s.hops[i].Software = clip(server, 32)
	}
	// Via: the first entry was added by the hop nearest the origin, so the
	// last one is nearest the visitor.
	viaEntries := splitVia(via)
	for n, e := range viaEntries {
		name := e
		lower := strings.ToLower(e)
		switch {
		case strings.Contains(lower, "cloudfront"):
			continue
		case strings.Contains(lower, "varnish"):
			if fastly {
				continue
			}
			name = "Varnish"
		case strings.Contains(lower, "gatewise"):
			name = "gatewise"
		}
		s.add(name, RoleProxy, rankVia+len(viaEntries)-n, "Via: "+clip(e, 64))
	}
	if xv := h.Get("X-Varnish"); xv != "" && !fastly {
		i := s.add("Varnish", RoleProxy, rankVia+len(viaEntries)+1, "X-Varnish header")
		if s.hops[i].ID == "" {
			s.hops[i].ID = clip(xv, 64)
		}
	}
	// Proxy-Status: the member with an error produced the response.
	for n, m := range parseProxyStatus(h.Values("Proxy-Status")) {
		name := clip(m.Name, 64)
		if strings.EqualFold(name, "gatewise") {
			name = "gatewise"
		}
		i := s.add(name, RoleProxy, rankVia-1-n, "Proxy-Status member "+name)
		if errType, ok := m.Params["error"]; ok {
			s.hops[i].Evidence = append(s.hops[i].Evidence, "Proxy-Status error="+clip(errType, 64))
			fp.Answered = i
			id, detail, _ := strings.Cut(m.Params["details"], ":")
			if _, known := cause.NewTable().Lookup(cause.ID(strings.TrimSpace(id))); known {
				fp.Cause = cause.ID(strings.TrimSpace(id))
				fp.Meaning = strings.TrimSpace(detail)
			} else {
				fp.Meaning = "reported error " + clip(errType, 64)
			}
		}
	}
	// The request ID.
	for _, k := range []string{"X-Request-ID", "X-Request-Id", "X-Correlation-ID", "X-Amzn-RequestId"} {
		if v := h.Get(k); v != "" {
			fp.RequestID = clip(v, 100)
			break
		}
	}

	// The Server header names the software of the last hop that set it.
	proxyServer := ""
	switch {
	case strings.HasPrefix(serverLower, "nginx"), strings.HasPrefix(serverLower, "openresty"):
		proxyServer = "nginx"
	case strings.HasPrefix(serverLower, "apache"):
		proxyServer = "Apache"
	case serverLower == "caddy":
		proxyServer = "Caddy"
	case strings.HasPrefix(serverLower, "haproxy"):
		proxyServer = "HAProxy"
	case strings.HasPrefix(serverLower, "varnish") && !fastly:
		proxyServer = "Varnish"
	case strings.HasPrefix(serverLower, "traefik"):
		proxyServer = "Traefik"
	}
	if proxyServer != "" {
		i := s.add(proxyServer, RoleProxy, rankProxy, "Server: "+clip(server, 64))
		s.hops[i].Software = clip(server, 64)
	}

	// The body: a default error page names the hop that wrote it.
	answered := func(name, role string, rank int, evidence string) int {
		i := s.add(name, role, rank, evidence)
		fp.Answered = i
		return i
	}
	trimmed := bytes.TrimSpace(body)
	switch {
	case fp.Answered >= 0:
		// Proxy-Status already said who produced the response.
	case mk.cfOwnPage.Match(body):
		answered("Cloudflare", RoleCDN, rankCDN, "Cloudflare's own error page")
		fp.OwnFault = true
		fp.Meaning = "failed itself"
	case mk.cfOriginPage.Match(body):
		i := answered("Cloudflare", RoleCDN, rankCDN, "Cloudflare's origin error page")
		if m := mk.cfRayInPage.FindSubmatch(body); m != nil && s.hops[i].ID == "" {
			s.hops[i].ID = string(m[1])
		}
		fp.Cause, fp.Meaning = cloudflareMeaning(status)
		if fp.Cause == "" && status < 520 {
			fp.OwnFault = true
		}
	case mk.cloudFront.Match(body):
		i := answered("CloudFront", RoleCDN, rankCDN+1, "CloudFront's error page")
		if m := mk.cloudFrontReqID.FindSubmatch(body); m != nil && s.hops[i].ID == "" {
			s.hops[i].ID = string(m[1])
		}
		fp.Cause, fp.Meaning = cloudfrontMeaning(status, body)
	case fastly && mk.fastlyError.Match(trimmed):
		m := mk.fastlyError.FindSubmatch(trimmed)
		answered("Fastly", RoleCDN, rankCDN+2, "Fastly's synthetic error (\""+clip(string(m[0]), 80)+"\")")
		reason := strings.ToLower(string(m[2]))
		switch {
		case strings.Contains(reason, "first byte timeout"), strings.Contains(reason, "between bytes timeout"):
			fp.Cause, fp.Meaning = cause.HTTPResponseTimeout, "connected, but the site's server did not answer in time ("+clip(string(m[2]), 60)+")"
		case strings.Contains(reason, "connection timeout"):
			fp.Cause, fp.Meaning = cause.ConnectionTimeout, "could not connect to the site's server in time"
		case strings.Contains(reason, "connection refused"):
			fp.Cause, fp.Meaning = cause.ConnectionRefused, "could not connect: the site's server refused the connection"
		default:
			fp.Meaning = "could not get the page from the site's server (" + clip(string(m[2]), 60) + ")"
		}
	case mk.varnishPage.Match(body):
		i := answered("Varnish", RoleProxy, rankVia+len(viaEntries)+1, "Varnish's default error page")
		if m := mk.varnishXID.FindSubmatch(body); m != nil && s.hops[i].ID == "" {
			s.hops[i].ID = string(m[1])
		}
		fp.Cause, fp.Meaning = "", "could not fetch the page from its backend"
		if status == 503 {
			fp.Meaning = "could not fetch the page from its backend (\"Backend fetch failed\")"
		}
	case mk.nginxPage.Match(body):
		m := mk.nginxPage.FindSubmatch(body)
		i := answered("nginx", RoleProxy, rankProxy, "nginx's default error page")
		if s.hops[i].Software == "" {
			s.hops[i].Software = string(m[1])
		}
		fp.Cause, fp.Meaning, fp.OwnFault = proxyMeaning(mk, "nginx", status, body)
	case strings.HasPrefix(serverLower, "awselb") && (len(trimmed) == 0 || mk.barePage.Match(trimmed)):
		answered("AWS ELB/ALB", RoleProxy, rankLB, "the AWS load balancer's default error page")
		fp.Cause, fp.Meaning, fp.OwnFault = proxyMeaning(mk, "elb", status, body)
	case mk.apachePage.Match(body):
		i := answered("Apache", RoleProxy, rankProxy, "Apache's default error page")
		if m := mk.apacheAddr.FindSubmatch(body); m != nil && s.hops[i].Software == "" {
			s.hops[i].Software = string(m[1])
		}
		fp.Cause, fp.Meaning, fp.OwnFault = proxyMeaning(mk, "apache", status, body)
	case mk.haproxyPage.Match(body):
		answered("HAProxy", RoleProxy, rankProxy, "HAProxy's default error page")
		fp.Cause, fp.Meaning, fp.OwnFault = proxyMeaning(mk, "haproxy", status, body)
	case serverLower == "caddy" && len(trimmed) == 0 && status >= 500:
		answered("Caddy", RoleProxy, rankProxy, "Caddy's empty error response")
		fp.Cause, fp.Meaning, fp.OwnFault = proxyMeaning(mk, "caddy", status, body)
	case status >= 500 && string(body) == http.StatusText(status) && h.Get("X-Content-Type-Options") == "":
		// Traefik writes the bare status text, with no newline and no
		// header of its own; net/http's Error adds a newline and nosniff.
		answered("Traefik", RoleProxy, rankProxy, "Traefik's default error text (\""+http.StatusText(status)+"\")")
		fp.Cause, fp.Meaning, fp.OwnFault = proxyMeaning(mk, "traefik", status, body)
	}

	// Order the chain by rank, keeping the answering hop's index right.
	order := make([]int, len(s.hops))
	for i := range order {
		order[i] = i
	}
	for i := 1; i < len(order); i++ {
		for j := i; j > 0 && s.ranks[order[j]] < s.ranks[order[j-1]]; j-- {
			order[j], order[j-1] = order[j-1], order[j]
		}
	}
	for newIdx, old := range order {
		fp.Hops = append(fp.Hops, s.hops[old])
		if old == fp.Answered {
			fp.Answered = newIdx
		}
	}
	if fp.Answered >= 0 && len(fp.Hops) == 0 {
		fp.Answered = -1
	}
	return fp
}

// cloudflareMeaning maps Cloudflare's 52x origin errors to causes.
func cloudflareMeaning(status int) (cause.ID, string) {
	switch status {
	case 520:
		return cause.HTTPProtocolError, "got an empty or unexpected answer from the site's server (error 520)"
	case 521:
		return cause.ConnectionRefused, "could not connect: the site's server refused the connection (error 521, web server is down)"
	case 522:
		return cause.ConnectionTimeout, "could not connect to the site's server in time (error 522)"
	case 523:
		return cause.DestinationUnavailable, "could not reach the site's server (error 523, origin is unreachable)"
	case 524:
		return cause.HTTPResponseTimeout, "connected, but the site's server did not answer in time (error 524)"
	case 525:
		return cause.TLSProtocolError, "could not set up TLS with the site's server (error 525)"
	case 526:
		return cause.TLSCertificateError, "rejected the site's server certificate (error 526)"
	case 530:
		return cause.DNSError, "could not resolve or reach the site's origin (error 530)"
	}
	return "", ""
}

// cloudfrontMeaning reads CloudFront's "could not be satisfied" page.
func cloudfrontMeaning(status int, body []byte) (cause.ID, string) {
	switch {
	case bytes.Contains(body, []byte("wasn't able to connect to the origin")), bytes.Contains(body, []byte("can't connect to the server")):
		if status == 504 {
			return cause.ConnectionTimeout, "could not connect to the site's server in time"
		}
		return cause.ConnectionRefused, "could not connect to the site's server"
	case status == 504:
		return cause.HTTPResponseTimeout, "the site's server did not answer in time"
	case status == 502:
		return "", "got no valid answer from the site's server"
	}
	return "", "could not get the page from the site's server"
}

// proxyMeaning says what a proxy's default error page with this status
// usually means, from each program's documented behaviour.
func proxyMeaning(mk *marks, server string, status int, body []byte) (id cause.ID, meaning string, own bool) {
	switch status {
	case 400, 431, 494:
		if bytes.Contains(body, []byte("Cookie Too Large")) || bytes.Contains(body, []byte("Header Too Large")) || bytes.Contains(body, []byte("exceeds server limit")) || status != 400 {
			return cause.RequestHeaderTooLarge, "rejected the request: its headers (usually cookies) are too large", true
		}
		return "", "rejected the request as malformed", true
	case 408:
		return cause.ClientTimeout, "gave up waiting for the request", true
	case 413:
		return cause.RequestBodyTooLarge, "rejected the request body as too large", true
	case 414:
		return cause.URITooLong, "rejected the address as too long", true
	case 429:
		return cause.RateLimited, "limited the rate of requests from your address", true
	case 500:
		return "", "failed itself (an internal error of the proxy)", true
	case 504:
		return cause.HTTPResponseTimeout, "did not get an answer from its application in time", false
	case 503:
		switch server {
		case "haproxy":
			if bytes.Contains(body, []byte("No server is available")) {
				return cause.NoHealthyUpstream, "has no server available for the site (all are down or none is configured)", false
			}
		case "apache":
			return cause.ConnectionRefused, "could not connect to its application (Apache's mod_proxy answers 503 when the backend refuses)", false
		case "elb":
			return cause.NoHealthyUpstream, "has no healthy target registered", false
		case "traefik":
			return cause.NoHealthyUpstream, "has no healthy server for the site", false
		}
		return "", "says the service behind it is unavailable", false
	case 502:
		switch server {
		case "apache":
			if m := mk.apacheReason.FindSubmatch(body); m != nil {
				reason := string(m[1])
				switch {
				case strings.Contains(reason, "DNS lookup failure"):
					return cause.DNSError, "could not resolve its application's address (\"" + reason + "\")", false
				case strings.Contains(reason, "Error reading from remote server"):
					return cause.ConnectionTerminated, "got no answer from its application (\"" + reason + "\")", false
				}
				return "", "got an invalid answer from its application (\"" + clip(reason, 100) + "\")", false
			}
		case "haproxy":
			return cause.HTTPProtocolError, "got an invalid or incomplete answer from its application", false
		}
		return "", "could not connect to its application, or got no valid answer from it", false
	}
	if status >= 500 {
		return "", "reported an error", false
	}
	return "", "", false
}

// splitVia returns the entries of Via headers without their protocol
// version ("1.1 varnish (Varnish/7.1)" gives "varnish (Varnish/7.1)").
func splitVia(values []string) []string {
	var out []string
	for _, v := range values {
		for _, e := range splitOutsideQuotes(v, ',') {
			e = strings.TrimSpace(e)
			if _, rest, ok := strings.Cut(e, " "); ok {
				e = strings.TrimSpace(rest)
			}
			if e != "" {
				out = append(out, clip(e, 64))
			}
			if len(out) >= 16 {
				return out
			}
		}
	}
	return out
}

// clip bounds s to n bytes and removes control characters.
func clip(s string, n int) string {
	if len(s) > n {
		s = s[:n]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
}
