package check

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatewise/gatewise/internal/cause"
)

// want is what a check should conclude.
type want struct {
	atFault  string
	pattern  string
	answered string   // the hop in state "answered" (or "" for none)
	failed   string   // the hop in state "failed"
	cause    cause.ID // "" accepts any
	status   int      // the status of the last attempt (0: none)
	hops     []string // the names of the chain, when set
}

// runCheck checks url and compares the report with w.
func runCheck(t *testing.T, url string, opts Options, w want) *Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep, err := Run(ctx, url, opts)
	if err != nil {
		t.Fatalf("Run(%s): %v", url, err)
	}
	var text strings.Builder
	rep.WriteText(&text)
	defer func() {
		if t.Failed() {
			t.Logf("report:\n%s", text.String())
		}
	}()
	t.Logf("verdict: %s [%s] %s", rep.Verdict, rep.AtFault, rep.Chain())
	if rep.AtFault != w.atFault {
		t.Errorf("at_fault = %q, want %q", rep.AtFault, w.atFault)
	}
	if w.pattern != "" && rep.Pattern != w.pattern {
		t.Errorf("pattern = %q, want %q", rep.Pattern, w.pattern)
	}
	if w.cause != "" && rep.Cause != w.cause {
		t.Errorf("cause = %q, want %q", rep.Cause, w.cause)
	}
	var answered, failed []string
	var names []string
	for _, h := range rep.Hops {
		names = append(names, h.Name)
		switch h.State {
		case StateAnswered:
			answered = append(answered, h.Name)
		case StateFailed:
			failed = append(failed, h.Name)
		}
	}
	if got := strings.Join(answered, ","); got != w.answered {
		t.Errorf("answered hop = %q, want %q (chain %s)", got, w.answered, rep.Chain())
	}
	if got := strings.Join(failed, ","); got != w.failed {
		t.Errorf("failed hop = %q, want %q (chain %s)", got, w.failed, rep.Chain())
	}
	if w.hops != nil && strings.Join(names, " > ") != strings.Join(w.hops, " > ") {
		t.Errorf("chain = %s, want %s", strings.Join(names, " > "), strings.Join(w.hops, " > "))
	}
	if len(rep.Attempts) > 0 {
		if got := rep.Attempts[len(rep.Attempts)-1].Status; got != w.status {
			t.Errorf("last attempt's status = %d, want %d", got, w.status)
		}
	}
	if rep.Verdict == "" || len(rep.Advice) == 0 {
		t.Errorf("empty verdict %q or advice %q", rep.Verdict, rep.Advice)
	}
	if rep.AtFault != AtFaultNone && rep.AtFault != RoleVisitor && rep.OwnerMessage == "" {
		t.Errorf("no message for the owner")
	}
	return rep
}

// bigCookie is a cookie larger than nginx's default 8 KB header buffers.
func bigCookie() string {
	return "session=" + strings.Repeat("x", 12000)
}

func TestRealNginx(t *testing.T) {
	if testing.Short() {
		t.Skip("runs nginx")
	}
	up := startUpstreams(t)
	base := startNginx(t, up)
	tests := []struct {
		name string
		path string
		opts func(*Options)
		want want
	}{
		{"dead upstream", "/refused", nil, want{atFault: "application", pattern: "persistent", answered: "nginx", failed: "application", status: 502, hops: []string{"you", "nginx", "application"}}},
		{"reset by upstream", "/reset", nil, want{atFault: "application", pattern: "persistent", answered: "nginx", failed: "application", status: 502}},
		{"upstream hangs", "/hang", nil, want{atFault: "application", answered: "nginx", failed: "application", cause: cause.HTTPResponseTimeout, status: 504}},
		{"works", "/ok", nil, want{atFault: "none", pattern: "ok", status: 200}},
		{"large cookie", "/ok", func(o *Options) { o.Cookie = bigCookie() }, want{atFault: "visitor", pattern: "persistent", failed: "you", cause: cause.RequestHeaderTooLarge, status: 400}},
		{"every other request fails", "/flaky", func(o *Options) { o.Attempts = 4 }, want{atFault: "application", pattern: "intermittent", answered: "nginx", failed: "application", status: 200}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := testOptions(t)
			if tc.opts != nil {
				tc.opts(&opts)
			}
			rep := runCheck(t, base+tc.path, opts, tc.want)
			if tc.want.answered == "nginx" {
				for _, h := range rep.Hops {
					if h.Name == "nginx" && !strings.HasPrefix(h.Software, "nginx/") {
						t.Errorf("nginx's software = %q, want nginx/VERSION", h.Software)
					}
				}
			}
		})
	}
}

func TestRealApache(t *testing.T) {
	if testing.Short() {
		t.Skip("runs apache2")
	}
	up := startUpstreams(t)
	base := startApache(t, up)
	runCheck(t, base+"/refused", testOptions(t), want{atFault: "application", pattern: "persistent", answered: "Apache", failed: "application", cause: cause.ConnectionRefused, status: 503})
	runCheck(t, base+"/reset", testOptions(t), want{atFault: "application", pattern: "persistent", answered: "Apache", failed: "application", cause: cause.ConnectionTerminated, status: 502})
	runCheck(t, base+"/ok", testOptions(t), want{atFault: "none", pattern: "ok", status: 200})
}

func TestRealHAProxy(t *testing.T) {
	if testing.Short() {
		t.Skip("runs haproxy")
	}
	up := startUpstreams(t)
	base := startHAProxy(t, up)
	runCheck(t, base+"/refused", testOptions(t), want{atFault: "application", pattern: "persistent", answered: "HAProxy", failed: "application", cause: cause.NoHealthyUpstream, status: 503})
	runCheck(t, base+"/reset", testOptions(t), want{atFault: "application", answered: "HAProxy", failed: "application", status: 502})
	runCheck(t, base+"/hang", testOptions(t), want{atFault: "application", answered: "HAProxy", failed: "application", cause: cause.HTTPResponseTimeout, status: 504})
}

func TestRealCaddy(t *testing.T) {
	if testing.Short() {
		t.Skip("runs caddy")
	}
	up := startUpstreams(t)
	base := startCaddy(t, up)
	runCheck(t, base+"/", testOptions(t), want{atFault: "application", answered: "Caddy", failed: "application", status: 502})
}

func TestSiteDown(t *testing.T) {
	t.Parallel()
	dead := "http://" + freePort(t) + "/"
	t.Run("your connection works", func(t *testing.T) {
		runCheck(t, dead, testOptions(t), want{atFault: "proxy", pattern: "persistent", failed: "the site's server (" + strings.TrimSuffix(strings.TrimPrefix(dead, "http://"), "/") + ")", cause: cause.ConnectionRefused})
	})
	t.Run("your connection is down", func(t *testing.T) {
		opts := testOptions(t)
		opts.Controls = []string{"http://" + freePort(t) + "/", "http://" + freePort(t) + "/"}
		rep := runCheck(t, dead, opts, want{atFault: "visitor", failed: "you", cause: cause.ConnectionRefused})
		if rep.OwnerMessage != "" {
			t.Errorf("a message for the owner when the visitor is at fault: %q", rep.OwnerMessage)
		}
	})
}

func TestDNS(t *testing.T) {
	site := controlServer(t) // a site on 127.0.0.1 that answers 204
	port := site[strings.LastIndex(site, ":")+1:]
	sys := startDNS(t, map[string]dnsAnswer{
		"fresh.test": {a: []string{"127.0.0.1"}},
		"stale.test": {a: []string{"127.0.0.2"}}, // the old address: nothing listens there
		"gone.test":  {nx: true},
		"slow.test":  {silent: true},
		"new.test":   {nx: true}, // a cached NXDOMAIN of a name that now exists
	})
	second := startDNS(t, map[string]dnsAnswer{
		"fresh.test": {a: []string{"127.0.0.1"}},
		"stale.test": {a: []string{"127.0.0.1"}},
		"gone.test":  {nx: true},
		"slow.test":  {a: []string{"127.0.0.1"}},
		"new.test":   {a: []string{"127.0.0.1"}},
	})
	tests := []struct {
		name, host string
		want       want
		sys, sec   string
	}{
		{"fresh", "fresh.test", want{atFault: "none", pattern: "ok", status: 204}, DNSOK, DNSOK},
		{"stale cache", "stale.test", want{atFault: "visitor", failed: "you", cause: cause.DNSError}, DNSOK, DNSOK},
		{"nxdomain", "gone.test", want{atFault: "network", failed: "DNS of gone.test", cause: cause.DNSError}, DNSNXDomain, DNSNXDomain},
		{"system resolver times out", "slow.test", want{atFault: "visitor", failed: "you", cause: cause.DNSError}, DNSTimeout, DNSOK},
		{"cached nxdomain", "new.test", want{atFault: "visitor", failed: "you", cause: cause.DNSError}, DNSNXDomain, DNSOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := testOptions(t)
			opts.Timeout = time.Second
			opts.SystemResolver = resolverAt(sys)
			opts.Resolver = second
			rep := runCheck(t, "http://"+tc.host+":"+port+"/", opts, tc.want)
			if rep.DNS.System.Outcome != tc.sys || rep.DNS.Second.Outcome != tc.sec {
				t.Errorf("DNS outcomes = %s, %s; want %s, %s", rep.DNS.System.Outcome, rep.DNS.Second.Outcome, tc.sys, tc.sec)
			}
			if tc.name == "stale cache" {
				if !rep.DNS.Differ {
					t.Errorf("the answers should differ")
				}
				if !strings.Contains(strings.Join(rep.Advice, "\n"), "ipconfig /flushdns") {
					t.Errorf("no flush commands in the advice: %q", rep.Advice)
				}
			}
		})
	}
}

// TestNoCache: a cache in front of the site serves an old error; a fresh
// copy works.
func TestNoCache(t *testing.T) {
	t.Parallel()
	site := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Cache-Control") == "no-cache" {
			w.Write([]byte("fresh"))
			return
		}
		w.Header().Set("X-Cache", "HIT")
		w.Header().Set("Via", "1.1 varnish (Varnish/7.1)")
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte("old error"))
	})
	runCheck(t, site, testOptions(t), want{atFault: "proxy", pattern: "persistent", status: 503})
}
