package check

import (
	"fmt"
	"strings"

	"github.com/gatewise/gatewise/internal/cause"
)

// AtFaultNone is Report.AtFault when the site works.
const AtFaultNone = "none"

// The patterns of Report.Pattern.
const (
	// PatternOK means every attempt worked.
	PatternOK = "ok"
	// PatternPersistent means every attempt failed.
	PatternPersistent = "persistent"
	// PatternIntermittent means some attempts failed and some worked.
	PatternIntermittent = "intermittent"
)

// flushAdvice is how to flush the DNS cache on each system.
func flushAdvice() []string {
	return []string{
		"Flush your DNS cache. Linux: `resolvectl flush-caches` (systemd-resolved) or `sudo systemctl restart nscd`; macOS: `sudo dscacheutil -flushcache; sudo killall -HUP mDNSResponder`; Windows: `ipconfig /flushdns`.",
		"Then restart the browser, which keeps its own DNS cache (in Chrome, chrome://net-internals/#dns has a \"Clear host cache\" button).",
	}
}

// decide fills in the verdict, the fault, the chain, the advice and the
// owner's message from the probes' results.
func (c *checker) decide(r *Report) {
	host := r.DNS.Host
	n, failed := len(r.Attempts), 0
	for _, a := range r.Attempts {
		if a.Failed {
			failed++
		}
	}
	switch {
	case n > 0 && failed == 0:
		r.Pattern = PatternOK
	case failed < n:
		r.Pattern = PatternIntermittent
	default:
		r.Pattern = PatternPersistent
	}
	tried, reached := 0, 0
	for _, ctl := range r.Controls {
		tried++
		if ctl.Reached {
			reached++
		}
	}
	offline := tried > 0 && reached == 0
	connWorks := reached > 0
	variant := func(prefix string) *Result {
		for i := range r.Variants {
			if strings.HasPrefix(r.Variants[i].Label, prefix) {
				return &r.Variants[i]
			}
		}
		return nil
	}
	alt := variant("at ")
	you := Hop{Name: "you", Role: RoleVisitor, State: StateOK}
	c.speed(r)
	defer func() {
		r.Verdict = upperFirst(r.Verdict)
		c.ownerMessage(r)
	}()

	// 1. The system resolver could not resolve the name.
	if r.DNS.System.Outcome != DNSOK && r.DNS.System.Outcome != DNSSkipped {
		r.Cause = cause.DNSError
		sys, sec := r.DNS.System, r.DNS.Second
		switch {
		case sec.Outcome == DNSOK:
			r.AtFault = RoleVisitor
			you.State = StateFailed
			you.Evidence = []string{"system resolver: " + sys.Error, sec.Resolver + ": " + strings.Join(sec.Addrs, ", ")}
			r.Verdict = fmt.Sprintf("Your DNS resolver cannot resolve %s (%s), but %s can", host, sys.Error, sec.Resolver)
			if alt != nil && !alt.Failed {
				r.Verdict += fmt.Sprintf(", and the site answers at that address (%s): your resolver or its cache is at fault.", alt.describe())
			} else if alt != nil {
				r.Verdict += fmt.Sprintf("; the site fails at that address too (%s).", alt.describe())
			} else {
				r.Verdict += "."
			}
			r.Advice = append(flushAdvice(), "If it still fails, use another DNS resolver on your device or router (your provider's, or a public one such as "+sec.Resolver+").")
			r.Hops = []Hop{you, {Name: host, Role: RoleApplication, State: StateUnknown}}
			return
		case sys.Outcome == DNSNXDomain && (sec.Outcome == DNSNXDomain || sec.Outcome == DNSSkipped || sec.Outcome == DNSNoAddress):
			r.AtFault = RoleNetwork
			r.Verdict = fmt.Sprintf("%s does not exist in DNS (NXDOMAIN from %s): the name is misspelt, or the site's domain or DNS records are missing or expired.", host, resolversSaying(sys, sec, DNSNXDomain))
			r.Advice = []string{"Check the spelling of the address.", "If it is right, the site's DNS is broken: nothing on your side can fix it; tell the site's owner (below)."}
		case sys.Outcome == DNSNoAddress:
			r.AtFault = RoleNetwork
			r.Verdict = fmt.Sprintf("%s exists in DNS but has no address (no A or AAAA record): the site's DNS records are incomplete.", host)
			r.Advice = []string{"Nothing on your side can fix it; tell the site's owner (below)."}
		case offline:
			r.AtFault = RoleVisitor
			you.State = StateFailed
			r.Verdict = fmt.Sprintf("Your system cannot resolve %s (%s), and none of the control sites can be reached: your connection or your DNS resolver is down.", host, sys.Error)
			r.Advice = connectionAdvice()
			r.Hops = []Hop{you, {Name: host, Role: RoleApplication, State: StateUnknown}}
			return
		default:
			r.AtFault = RoleNetwork
			r.Verdict = fmt.Sprintf("The DNS lookup of %s failed (%s) while other sites resolve: the site's DNS servers do not answer properly.", host, sys.Error)
			if sec.Outcome != DNSSkipped {
				r.Verdict = strings.TrimSuffix(r.Verdict, ".") + fmt.Sprintf("; %s says: %s.", sec.Resolver, orText(sec.Error, sec.Outcome))
			}
			r.Advice = []string{"Try again in a few minutes: DNS failures are often short.", "If it lasts, tell the site's owner (below)."}
		}
		r.Hops = []Hop{you, {Name: "DNS of " + host, Role: RoleNetwork, State: StateFailed}, {Name: host, Role: RoleApplication, State: StateUnknown}}
		return
	}

	// 2. A stale DNS cache: the system's addresses fail, the second
	// resolver's work.
	if r.DNS.Differ && r.Pattern != PatternOK && alt != nil && !alt.Failed {
		r.AtFault, r.Cause = RoleVisitor, cause.DNSError
		you.State = StateFailed
		you.Evidence = []string{"system resolver: " + strings.Join(r.DNS.System.Addrs, ", "), r.DNS.Second.Resolver + ": " + strings.Join(r.DNS.Second.Addrs, ", ")}
		r.Verdict = fmt.Sprintf("Your DNS cache is stale: your system resolves %s to %s, %s to %s; the old address fails (%s) and the new one answers (%s).",
			host, strings.Join(r.DNS.System.Addrs, ", "), r.DNS.Second.Resolver, strings.Join(r.DNS.Second.Addrs, ", "), r.Attempts[len(r.Attempts)-1].describe(), alt.describe())
		r.Advice = flushAdvice()
		r.Hops = []Hop{you, {Name: host, Role: RoleApplication, State: StateOK}}
		return
	}

	// 3. The site works.
	if r.Pattern == PatternOK {
		last := r.Attempts[n-1]
		r.AtFault = AtFaultNone
		r.Hops = chainOK(you, last.fp)
		r.Verdict = fmt.Sprintf("The site works from here: %d of %d attempts answered %s.", n, n, last.describe())
		r.Advice = []string{
			"If it fails in your browser, reload without the cache (Ctrl+Shift+R, or Cmd+Shift+R on a Mac), then try a private window: if that works, clear this site's cookies and cached files.",
		}
		if r.DNS.Differ {
			r.Advice = append(r.Advice, fmt.Sprintf("Your resolver and %s give different addresses for %s; if the site fails in your browser only, your DNS cache may be stale:", r.DNS.Second.Resolver, host))
			r.Advice = append(r.Advice, flushAdvice()...)
		}
		if nc := variant("with Cache-Control"); nc != nil && nc.Failed {
			r.Verdict += fmt.Sprintf(" But a request that asks for a fresh copy (Cache-Control: no-cache) failed (%s): a cache in front of the site hides a failing server.", nc.describe())
		}
		return
	}

	// The failed attempts: the last one that got a response, or the last.
	var fail *Result
	for i := range r.Attempts {
		a := &r.Attempts[i]
		if a.Failed && (fail == nil || fail.Status == 0 || a.Status != 0) {
			fail = a
		}
	}
	prefix := ""
	if r.Pattern == PatternIntermittent {
		prefix = fmt.Sprintf("Intermittent (%d of %d attempts failed): ", failed, n)
	}

	// 4. Only with the cookies.
	if noCookie := variant("without cookies"); noCookie != nil && !noCookie.Failed && r.Pattern == PatternPersistent {
		r.AtFault = RoleVisitor
		r.Cause = fail.Cause
		if r.Cause == "" && (fail.Status == 400 || fail.Status == 431 || fail.Status == 494) {
			r.Cause = cause.RequestHeaderTooLarge
		}
		by := "the site"
		if fail.AnsweredBy != "" && fail.AnsweredBy != RoleApplication {
			by = "the site's " + fail.AnsweredBy
		}
		r.Verdict = fmt.Sprintf("The site fails only with your cookies: %s answered %s with them (%d bytes) and %s without them.", by, fail.describe(), r.CookieBytes, noCookie.describe())
		if r.Cause == cause.RequestHeaderTooLarge {
			r.Verdict += " Your cookies are too large for its proxy."
		}
		you.State = StateFailed
		you.Evidence = []string{fmt.Sprintf("Cookie header of %d bytes", r.CookieBytes)}
		r.Hops = chainOK(you, noCookie.fp)
		r.Advice = []string{
			"Clear this site's cookies (" + host + ") in your browser's site settings, then reload; or open a private window to confirm.",
			"Oversized cookies break proxies: nginx, for one, refuses a header line over 8 KB by default. If clearing them fixes it but it comes back, tell the site's owner that its cookies grow too large.",
		}
		return
	}

	// 5. No response at all.
	if fail.Status == 0 {
		r.Cause = fail.Cause
		if offline {
			r.AtFault = RoleVisitor
			you.State = StateFailed
			r.Verdict = prefix + fmt.Sprintf("The site cannot be reached (%s), and none of the control sites can either: your connection is down.", fail.describe())
			r.Advice = connectionAdvice()
			r.Hops = []Hop{you, {Name: host, Role: RoleProxy, State: StateUnknown}}
			return
		}
		front := Hop{Name: "the site's server (" + fail.Address + ")", Role: RoleProxy, State: StateFailed}
		if fail.Address == "" {
			front.Name = "the site's server"
		}
		switch fail.Cause {
		case cause.ConnectionTimeout, cause.DestinationUnavailable:
			r.AtFault = RoleNetwork
			r.Hops = []Hop{you, {Name: "network", Role: RoleNetwork, State: StateFailed}, {Name: front.Name, Role: RoleProxy, State: StateUnknown}}
			r.Verdict = prefix + fmt.Sprintf("The site's server cannot be reached (%s): it is down, or a network or firewall between you and it drops the connection.", fail.describe())
		default:
			r.AtFault = RoleProxy
			r.Hops = []Hop{you, front, {Name: RoleApplication, Role: RoleApplication, State: StateUnknown}}
			r.Verdict = prefix + fmt.Sprintf("The site's server did not answer: %s. %s", lowerFirst(fail.describe()), c.visitorText(fail.Cause))
		}
		r.Advice = c.siteAdvice(r, connWorks)
		return
	}

	// 6. An error response: which hop produced it.
	fp := fail.fp
	r.RequestID = fp.RequestID
	r.Cause = fail.Cause
	status := fail.describe()
	if nc := variant("with Cache-Control"); nc != nil && !nc.Failed && r.Pattern == PatternPersistent {
		// A cached error: fresh copies work.
		r.AtFault = RoleCDN
		if !hasRole(fp.Hops, RoleCDN) {
			r.AtFault = RoleProxy
		}
		r.Hops = chainOK(you, nc.fp)
		r.Verdict = fmt.Sprintf("A cache in front of the site keeps serving an old error (%s): a request for a fresh copy (Cache-Control: no-cache) works (%s).", status, nc.describe())
		r.Advice = []string{"Reload without the cache: Ctrl+Shift+R (Cmd+Shift+R on a Mac).", "Tell the site's owner their cache stores error responses (below)."}
		return
	}
	hops := append([]Hop{you}, fp.Hops...)
	app := Hop{Name: RoleApplication, Role: RoleApplication, State: StateUnknown}
	if fp.Answered < 0 {
		// The application's own error, passed through every hop.
		for i := 1; i < len(hops); i++ {
			hops[i].State = StateOK
		}
		app.State = StateFailed
		r.Hops = append(hops, app)
		if fail.Status < 500 {
			r.AtFault = RoleVisitor
			r.Verdict = prefix + fmt.Sprintf("The site's application refused the request: %s.", status)
			r.Advice = []string{"Clear this site's cookies and reload, or try a private window.", "If it keeps failing, tell the site's owner (below)."}
			return
		}
		r.AtFault = RoleApplication
		if r.Cause == "" && (fail.Status == 502 || fail.Status == 503 || fail.Status == 504) {
			r.Cause = cause.UpstreamErrorStatus
		}
		via := ""
		if len(fp.Hops) > 0 {
			via = "; " + joinNames(fp.Hops) + " passed it on"
		}
		r.Verdict = prefix + fmt.Sprintf("The site's application answered %s itself%s.", status, via)
		r.Advice = c.siteAdvice(r, true)
		return
	}
	ans := &hops[fp.Answered+1]
	ans.State = StateAnswered
	ansName := ans.Name
	meaning := fp.Meaning
	if meaning == "" && r.Cause != "" {
		meaning = "reported " + string(r.Cause)
	}
	// What lies behind the answering hop.
	behind := &app
	if ans.Role == RoleCDN && !fp.OwnFault {
		hops = append(hops[:fp.Answered+2], Hop{Name: "the site's server (origin)", Role: RoleProxy, State: StateFailed})
		r.Hops = append(hops, app)
		r.AtFault = RoleProxy
		r.Verdict = prefix + fmt.Sprintf("%s answered %s: it %s. The CDN works; the site's own server behind it is at fault.", ansName, status, meaning)
		r.Advice = c.siteAdvice(r, true)
		r.RequestID = firstNonEmpty(ans.ID, r.RequestID)
		return
	}
	hops = hops[:fp.Answered+2]
	switch {
	case fp.OwnFault:
		ans.State = StateFailed
		r.AtFault = ans.Role
		if isVisitorCause(r.Cause) {
			r.AtFault = RoleVisitor
			you.State = StateFailed
			hops[0] = you
		}
		r.Verdict = prefix + fmt.Sprintf("%s answered %s: it %s.", theSites(ans), status, meaning)
	case r.Cause != "" && ans.Name == "gatewise":
		// gatewise says which hop failed through its cause.
		switch c.causes.Get(r.Cause).Hop {
		case cause.HopVisitor:
			r.AtFault = RoleVisitor
			hops[0].State = StateFailed
		case cause.HopGateway:
			r.AtFault = RoleProxy
			ans.State = StateFailed
		case cause.HopNetwork:
			r.AtFault = RoleNetwork
			hops = append(hops, Hop{Name: "network behind gatewise", Role: RoleNetwork, State: StateFailed})
		default:
			r.AtFault = RoleApplication
			behind.State = StateFailed
		}
		detail := ""
		if fp.Meaning != "" {
			detail = " (" + fp.Meaning + ")"
		}
		r.Verdict = prefix + fmt.Sprintf("The site's gatewise answered %s with cause %s%s: %s", status, r.Cause, detail, lowerFirst(c.causes.Get(r.Cause).Visitor))
	default:
		r.AtFault = RoleApplication
		behind.State = StateFailed
		before := ""
		if fp.Answered > 0 {
			before = joinNames(fp.Hops[:fp.Answered]) + " reached " + theSites(ans) + "; "
		}
		r.Verdict = prefix + fmt.Sprintf("%s%s answered %s: it %s.", before, theSites(ans), status, meaning)
	}
	if ans.ID != "" {
		r.RequestID = firstNonEmpty(r.RequestID, ans.ID)
	}
	r.Hops = append(hops, *behind)
	if r.AtFault == RoleVisitor {
		r.Advice = []string{"Clear this site's cookies and reload, or try a private window.", "Wait a minute before trying again if you reloaded many times."}
		if r.Cause == cause.RequestHeaderTooLarge {
			r.Advice = []string{"Clear this site's cookies (" + host + ") in your browser's site settings, then reload: your request's headers, usually its cookies, are larger than the site's proxy accepts."}
		}
		return
	}
	r.Advice = c.siteAdvice(r, true)
}

// siteAdvice is the advice when the fault is on the site's side.
func (c *checker) siteAdvice(r *Report, connWorks bool) []string {
	var out []string
	if r.Pattern == PatternIntermittent {
		out = append(out, "Reload: the failure comes and goes, so another try may work.")
	} else if r.Cause != "" && c.causes.Get(r.Cause).Retryable {
		out = append(out, "Try again in a few minutes: the site may be restarting or overloaded.")
	} else {
		out = append(out, "Try again later: this failure does not usually go away on its own, so the site's owner has to fix it.")
	}
	if connWorks {
		out = append(out, "Nothing on your side needs fixing: your connection works and the problem is at the site.")
	}
	out = append(out, "Send the message below to the site's owner.")
	return out
}

// connectionAdvice is the advice when the visitor's connection is down.
func connectionAdvice() []string {
	return []string{
		"Check your Wi-Fi or cable, and restart your router.",
		"Turn off a VPN, proxy or firewall you use, then run the check again.",
		"If other devices on the same network work, restart this one.",
	}
}

// speed summarises the timings.
func (c *checker) speed(r *Report) {
	r.Speed.DNS = r.DNS.System.Duration
	for _, a := range append(append([]Result(nil), r.Attempts...), r.Variants...) {
		if r.Speed.Connect == 0 && a.Timings.Connect > 0 {
			r.Speed.Connect, r.Speed.TLS, r.Speed.FirstByte = a.Timings.Connect, a.Timings.TLS, a.Timings.FirstByte
		}
		r.Speed.BytesPerSecond = max(r.Speed.BytesPerSecond, a.Timings.BytesPerSecond)
	}
}

// ownerMessage writes the message for the site's owner.
func (c *checker) ownerMessage(r *Report) {
	if r.AtFault == AtFaultNone || r.AtFault == RoleVisitor {
		return
	}
	var b strings.Builder
	n, failed := len(r.Attempts), 0
	var last *Result
	for i := range r.Attempts {
		if r.Attempts[i].Failed {
			failed++
			last = &r.Attempts[i]
		}
	}
	fmt.Fprintf(&b, "Hello, %s fails for me", r.URL)
	if last != nil {
		fmt.Fprintf(&b, " with %s", last.describe())
		if last.AnsweredBy != "" && last.AnsweredBy != RoleApplication {
			fmt.Fprintf(&b, " (from %s)", last.AnsweredBy)
		}
	}
	if n > 0 {
		fmt.Fprintf(&b, " on %d of %d tries", failed, n)
	}
	fmt.Fprintf(&b, ", at %s UTC.", r.Time.Format("2006-01-02 15:04"))
	if r.RequestID != "" {
		fmt.Fprintf(&b, " Request ID: %s.", r.RequestID)
	}
	for _, h := range r.Hops {
		if h.ID != "" && h.ID != r.RequestID {
			fmt.Fprintf(&b, " %s ID: %s.", h.Name, h.ID)
		}
	}
	var tried []string
	if n > 1 {
		tried = append(tried, "reloading with pauses")
	}
	if r.CookieBytes > 0 {
		tried = append(tried, "without cookies")
	}
	if len(r.Variants) > 0 {
		tried = append(tried, "with Cache-Control: no-cache")
	}
	if r.DNS.Second.Outcome == DNSOK {
		tried = append(tried, "another DNS resolver ("+sameOrNot(r.DNS)+")")
	}
	reached := 0
	for _, ctl := range r.Controls {
		if ctl.Reached {
			reached++
		}
	}
	if reached > 0 {
		tried = append(tried, "other sites, which load")
	}
	if len(tried) > 0 {
		fmt.Fprintf(&b, " I tried %s.", strings.Join(tried, ", "))
	}
	fmt.Fprintf(&b, " gatewise check says: %s", r.Verdict)
	if r.Cause != "" {
		fmt.Fprintf(&b, " (cause %s: https://gatewise.dev/causes/%s)", r.Cause, r.Cause)
	}
	r.OwnerMessage = b.String()
}

func sameOrNot(d DNSReport) string {
	if d.Differ {
		return "a different address"
	}
	return "the same address"
}

// chainOK is the chain of a response that worked.
func chainOK(you Hop, fp Fingerprint) []Hop {
	hops := []Hop{you}
	for _, h := range fp.Hops {
		h.State = StateOK
		hops = append(hops, h)
	}
	return append(hops, Hop{Name: RoleApplication, Role: RoleApplication, State: StateOK})
}

// visitorText is the cause's sentence for the visitor, or "".
func (c *checker) visitorText(id cause.ID) string {
	if id == "" {
		return ""
	}
	if cs, ok := c.causes.Lookup(id); ok {
		return strings.Replace(cs.Visitor, "The site's application server", "The site's server", 1)
	}
	return ""
}

func isVisitorCause(id cause.ID) bool {
	switch id {
	case cause.RequestHeaderTooLarge, cause.RateLimited, cause.URITooLong, cause.RequestBodyTooLarge, cause.ClientTimeout:
		return true
	}
	return false
}

func hasRole(hops []Hop, role string) bool {
	for _, h := range hops {
		if h.Role == role {
			return true
		}
	}
	return false
}

// theSites names a hop in a sentence: "The site's nginx", "Cloudflare".
func theSites(h *Hop) string {
	if h.Role == RoleCDN {
		return h.Name
	}
	return "the site's " + h.Name
}

func joinNames(hops []Hop) string {
	names := make([]string, len(hops))
	for i, h := range hops {
		names[i] = h.Name
	}
	return strings.Join(names, ", then ")
}

func resolversSaying(a, b Lookup, outcome string) string {
	if b.Outcome == outcome {
		return "your system's resolver and " + b.Resolver
	}
	return "your system's resolver"
}

func orText(s, alt string) string {
	if s != "" {
		return s
	}
	return alt
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}

// upperFirst capitalises a sentence.
func upperFirst(s string) string {
	if !strings.HasPrefix(s, "the ") {
		return s // a name keeps its case: "gatewise", "example.com"
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
