package errorpage

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatewise/gatewise/internal/cause"
)

func fixedNow() time.Time { return time.Date(2026, 3, 1, 12, 30, 45, 123, time.FixedZone("CET", 3600)) }

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// newRenderer returns a Renderer with built-in templates and a fixed clock.
func newRenderer(t *testing.T) *Renderer {
	t.Helper()
	r, err := New(Options{Now: fixedNow})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return r
}

// mustCause returns the cause id from the table.
func mustCause(t *testing.T, id cause.ID) cause.Cause {
	t.Helper()
	c, ok := cause.NewTable().Lookup(id)
	if !ok {
		t.Fatalf("no cause %q", id)
	}
	return c
}

// do writes p for a request with the method and Accept header, and returns
// the recorded response.
func do(r *Renderer, method, accept string, p Problem) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, "http://shop.example/cart", nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	w := httptest.NewRecorder()
	r.Write(w, req, p)
	return w
}

func TestNegotiate(t *testing.T) {
	t.Parallel()
	const (
		chrome  = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7"
		firefox = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
		safari  = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
	)
	tests := []struct {
		desc   string
		accept []string
		want   format
	}{
		{"no Accept field (Go's client, many scripts)", nil, formatText},
		{"empty Accept", []string{""}, formatText},
		{"curl's */*", []string{"*/*"}, formatText},
		{"Chrome navigation", []string{chrome}, formatHTML},
		{"Firefox navigation", []string{firefox}, formatHTML},
		{"Safari navigation", []string{safari}, formatHTML},
		{"text/html alone", []string{"text/html"}, formatHTML},
		{"type and subtype are case-insensitive", []string{"Text/HTML"}, formatHTML},
		{"API client: application/json", []string{"application/json"}, formatJSON},
		{"API client: problem+json", []string{"application/problem+json"}, formatProblemJSON},
		{"problem+json preferred over json by q", []string{"application/json;q=0.5, application/problem+json"}, formatProblemJSON},
		{"json preferred over problem+json by q", []string{"application/json, application/problem+json;q=0.5"}, formatJSON},
		{"application/* gets problem+json", []string{"application/*"}, formatProblemJSON},
		{"explicit json beats */* at the same q", []string{"application/json, */*"}, formatJSON},
		{"explicit json beats text/* at the same q", []string{"text/*, application/json"}, formatJSON},
		{"text/* gets plain text", []string{"text/*"}, formatText},
		{"text/plain explicit", []string{"text/plain"}, formatText},
		{"higher q wins over order", []string{"text/plain;q=0.2, text/html;q=0.9"}, formatHTML},
		{"JSON with a higher q than HTML", []string{"text/html;q=0.5, application/json"}, formatJSON},
		{"q=0 excludes an offer", []string{"text/html;q=0, */*;q=0.1"}, formatText},
		{"q=0 on plain text leaves HTML for */*", []string{"text/plain;q=0, */*"}, formatHTML},
		{"specific q=0 beats the wildcard", []string{"*/*, text/plain;q=0, text/html;q=0"}, formatProblemJSON},
		{"nothing acceptable falls back to text", []string{"image/png"}, formatText},
		{"everything refused falls back to text", []string{"*/*;q=0"}, formatText},
		{"not a substring match: text/htmlx", []string{"text/htmlx"}, formatText},
		{"not a substring match: application/jsonp", []string{"application/jsonp"}, formatText},
		{"parameters other than q are ignored", []string{"application/json;charset=utf-8"}, formatJSON},
		{"quoted parameter with a comma", []string{`text/html;foo="a,b";q=0.1, application/json;q=0.2`}, formatJSON},
		{"spaces around q", []string{"text/html ; q=0.3 , application/json ; q = 0.2"}, formatHTML},
		{"q with three decimals", []string{"text/html;q=0.001, application/json;q=0.002"}, formatJSON},
		{"invalid q drops the range", []string{"application/json;q=2, text/html;q=0.1"}, formatHTML},
		{"invalid q with four decimals drops the range", []string{"application/json;q=0.0001, text/html;q=0.1"}, formatHTML},
		{"malformed range is skipped", []string{"json, text/html"}, formatHTML},
		{"*/html is not a valid range", []string{"*/html"}, formatText},
		{"several Accept fields are combined", []string{"text/plain;q=0.1", "application/json"}, formatJSON},
		{"tie at equal q goes to the server's order", []string{"application/json, text/html"}, formatHTML},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			if got := negotiate(tt.accept); got != tt.want {
				t.Errorf("negotiate(%q) = %v, want %v", tt.accept, got.contentType(), tt.want.contentType())
			}
		})
	}
}

func TestParseQ(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in     string
		want   int
		wantOK bool
	}{
		{"1", 1000, true}, {"1.", 1000, true}, {"1.000", 1000, true}, {"0", 0, true}, {"0.5", 500, true},
		{"0.123", 123, true}, {"1.001", 0, false}, {"0.1234", 0, false}, {"2", 0, false}, {".5", 0, false},
		{"", 0, false}, {"0,5", 0, false}, {"-0.5", 0, false}, {"0.5a", 0, false},
	}
	for _, tt := range tests {
		got, ok := parseQ(tt.in)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("parseQ(%q) = %d, %v, want %d, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestWriteHeaders(t *testing.T) {
	t.Parallel()
	r := newRenderer(t)
	tests := []struct {
		desc           string
		accept         string
		p              Problem
		wantStatus     int
		wantType       string
		wantProxy      string
		wantRetryAfter string
	}{
		{
			desc: "connection refused, browser", accept: "text/html",
			p:          Problem{Cause: mustCause(t, cause.ConnectionRefused), RequestID: "abc123"},
			wantStatus: 502, wantType: "text/html; charset=utf-8",
			wantProxy: `gatewise; error=connection_refused; details="connection_refused"`,
		},
		{
			desc: "connection terminated with a detail, curl", accept: "*/*",
			p:          Problem{Cause: mustCause(t, cause.ConnectionTerminated), Detail: "reset", RequestID: "r1"},
			wantStatus: 502, wantType: "text/plain; charset=utf-8",
			wantProxy: `gatewise; error=connection_terminated; details="connection_terminated: reset"`,
		},
		{
			desc: "no healthy upstream, API client: 503 gets the default Retry-After", accept: "application/json",
			p:          Problem{Cause: mustCause(t, cause.NoHealthyUpstream), RequestID: "r2"},
			wantStatus: 503, wantType: "application/json",
			wantProxy:      `gatewise; error=destination_unavailable; details="no_healthy_upstream"`,
			wantRetryAfter: "5",
		},
		{
			desc: "rate limited: the limiter's Retry-After, rounded up", accept: "application/problem+json",
			p:          Problem{Cause: mustCause(t, cause.RateLimited), RetryAfter: 1500 * time.Millisecond},
			wantStatus: 429, wantType: "application/problem+json",
			wantProxy:      `gatewise; error=http_request_denied; details="rate_limited"`,
			wantRetryAfter: "2",
		},
		{
			desc: "response timeout: 504 retryable gets the default", accept: "",
			p:          Problem{Cause: mustCause(t, cause.HTTPResponseTimeout)},
			wantStatus: 504, wantType: "text/plain; charset=utf-8",
			wantProxy:      `gatewise; error=http_response_timeout; details="http_response_timeout"`,
			wantRetryAfter: "5",
		},
		{
			desc: "retryable 502 gets no default Retry-After", accept: "",
			p:          Problem{Cause: mustCause(t, cause.DNSError)},
			wantStatus: 502, wantType: "text/plain; charset=utf-8",
			wantProxy: `gatewise; error=dns_error; details="dns_error"`,
		},
		{
			desc: "not retryable: no Retry-After", accept: "",
			p:          Problem{Cause: mustCause(t, cause.TLSCertificateError), Status: 503},
			wantStatus: 503, wantType: "text/plain; charset=utf-8",
			wantProxy: `gatewise; error=tls_certificate_error; details="tls_certificate_error"`,
		},
		{
			desc: "explicit RetryAfter on a 502", accept: "",
			p:          Problem{Cause: mustCause(t, cause.ConnectionRefused), RetryAfter: 30 * time.Second},
			wantStatus: 502, wantType: "text/plain; charset=utf-8",
			wantProxy:      `gatewise; error=connection_refused; details="connection_refused"`,
			wantRetryAfter: "30",
		},
		{
			desc: "Status overrides the cause's", accept: "",
			p:          Problem{Cause: mustCause(t, cause.ConnectionRefused), Status: 503},
			wantStatus: 503, wantType: "text/plain; charset=utf-8",
			wantProxy:      `gatewise; error=connection_refused; details="connection_refused"`,
			wantRetryAfter: "5",
		},
		{
			desc: "a cause without a Proxy-Status error type omits error=", accept: "",
			p:          Problem{Cause: mustCause(t, cause.UpstreamErrorStatus)},
			wantStatus: 502, wantType: "text/plain; charset=utf-8",
			wantProxy: `gatewise; details="upstream_error_status"`,
		},
		{
			desc: "client closed: 499", accept: "",
			p:          Problem{Cause: mustCause(t, cause.ClientClosed)},
			wantStatus: 499, wantType: "text/plain; charset=utf-8",
			wantProxy: `gatewise; details="client_closed"`,
		},
		{
			desc: "the zero cause is an internal error", accept: "",
			p:          Problem{},
			wantStatus: 500, wantType: "text/plain; charset=utf-8",
			wantProxy: `gatewise; error=proxy_internal_error; details="proxy_internal_error"`,
		},
		{
			desc: "a status outside 400..599 becomes 502", accept: "",
			p:          Problem{Cause: mustCause(t, cause.ConnectionRefused), Status: 200},
			wantStatus: 502, wantType: "text/plain; charset=utf-8",
			wantProxy: `gatewise; error=connection_refused; details="connection_refused"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			w := do(r, http.MethodGet, tt.accept, tt.p)
			h := w.Result().Header
			if got := w.Code; got != tt.wantStatus {
				t.Errorf("status = %d, want %d", got, tt.wantStatus)
			}
			checks := []struct{ name, want string }{
				{"Content-Type", tt.wantType},
				{"Proxy-Status", tt.wantProxy},
				{"Retry-After", tt.wantRetryAfter},
				{"X-Request-ID", tt.p.RequestID},
				{"Cache-Control", "no-store"},
				{"X-Content-Type-Options", "nosniff"},
				{"Vary", "Accept"},
			}
			for _, c := range checks {
				if got := h.Get(c.name); got != c.want {
					t.Errorf("%s = %q, want %q", c.name, got, c.want)
				}
			}
			if got, want := h.Get("Content-Length"), itoa(w.Body.Len()); got != want {
				t.Errorf("Content-Length = %q, want %q", got, want)
			}
			csp := h.Get("Content-Security-Policy")
			if isHTML := strings.HasPrefix(tt.wantType, "text/html"); isHTML != (csp != "") {
				t.Errorf("Content-Security-Policy = %q for %s, want it set only for HTML", csp, tt.wantType)
			}
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestRetryAfterOption(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc string
		opt  time.Duration
		p    Problem
		want string
	}{
		{"zero option means 5s", 0, Problem{Cause: mustCause(t, cause.NoHealthyUpstream)}, "5"},
		{"option sets the default", 20 * time.Second, Problem{Cause: mustCause(t, cause.NoHealthyUpstream)}, "20"},
		{"negative option disables the default", -1, Problem{Cause: mustCause(t, cause.NoHealthyUpstream)}, ""},
		{"the problem's own value wins over a disabled default", -1, Problem{Cause: mustCause(t, cause.NoHealthyUpstream), RetryAfter: time.Second}, "1"},
		{"sub-second rounds up to 1", 0, Problem{Cause: mustCause(t, cause.ConnectionRefused), RetryAfter: time.Millisecond}, "1"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			r, err := New(Options{RetryAfter: tt.opt})
			if err != nil {
				t.Fatal(err)
			}
			if got := do(r, http.MethodGet, "", tt.p).Header().Get("Retry-After"); got != tt.want {
				t.Errorf("Retry-After = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestWriteReplacesStaleHeaders(t *testing.T) {
	t.Parallel()
	r := newRenderer(t)
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	w := httptest.NewRecorder()
	for k, v := range map[string]string{"Content-Encoding": "gzip", "ETag": `"x"`, "Content-Length": "99999", "Retry-After": "600", "Cache-Control": "max-age=3600"} {
		w.Header().Set(k, v)
	}
	r.Write(w, req, Problem{Cause: mustCause(t, cause.DNSError)})
	h := w.Result().Header
	for _, tt := range []struct{ name, want string }{
		{"Content-Encoding", ""}, {"ETag", ""}, {"Retry-After", ""}, {"Cache-Control", "no-store"}, {"Content-Length", itoa(w.Body.Len())},
	} {
		if got := h.Get(tt.name); got != tt.want {
			t.Errorf("%s = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestHEAD(t *testing.T) {
	t.Parallel()
	r := newRenderer(t)
	p := Problem{Cause: mustCause(t, cause.NoHealthyUpstream), RequestID: "head-1"}
	for _, accept := range []string{"text/html", "application/json", "*/*"} {
		t.Run(accept, func(t *testing.T) {
			t.Parallel()
			get := do(r, http.MethodGet, accept, p)
			head := do(r, http.MethodHead, accept, p)
			if got := head.Body.Len(); got != 0 {
				t.Errorf("HEAD body is %d bytes, want 0", got)
			}
			if got, want := head.Code, get.Code; got != want {
				t.Errorf("HEAD status = %d, want %d as for GET", got, want)
			}
			for _, name := range []string{"Content-Type", "Content-Length", "Proxy-Status", "X-Request-ID", "Retry-After", "Cache-Control", "Content-Security-Policy"} {
				if got, want := head.Header().Get(name), get.Header().Get(name); got != want {
					t.Errorf("HEAD %s = %q, want %q as for GET", name, got, want)
				}
			}
		})
	}
}

func TestHEADOverRealServer(t *testing.T) {
	t.Parallel()
	r := newRenderer(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.Write(w, req, Problem{Cause: mustCause(t, cause.ConnectionRefused), RequestID: "real"})
	}))
	defer srv.Close()
	resp, err := http.Head(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if got, want := resp.StatusCode, 502; got != want {
		t.Errorf("status = %d, want %d", got, want)
	}
	if got := resp.Header.Get("Proxy-Status"); !strings.HasPrefix(got, "gatewise; error=connection_refused") {
		t.Errorf("Proxy-Status = %q", got)
	}
}

func TestProxyStatusIsStructuredField(t *testing.T) {
	t.Parallel()
	odd := []string{"", "reset", `say "hi"`, `back\slash`, "naïve ünïcode", "new\nline\r\n", "tab\there", "\x00\x1f\x7f", "a,b;c=d", "ends with \\"}
	names := []struct {
		name      string
		wantToken bool
	}{
		{"", true}, {"gatewise", true}, {"edge-1.example.com", true}, {"proxy:8080/x", true}, {"*star", true},
		{"my proxy", false}, {"1proxy", false}, {`quo"te`, false}, {"ünï", false}, {"-dash", false},
	}
	for _, c := range cause.NewTable().All() {
		for _, d := range odd {
			for _, n := range names {
				v := ProxyStatus(n.name, Problem{Cause: c, Detail: d})
				items, err := parseSFList(v)
				if err != nil {
					t.Errorf("ProxyStatus(%q, %s, detail %q) = %q: not a structured field list: %v", n.name, c.ID, d, v, err)
					continue
				}
				if len(items) != 1 {
					t.Errorf("%q has %d members, want 1", v, len(items))
					continue
				}
				it := items[0]
				_, isToken := it.value.(sfToken)
				if isToken != n.wantToken {
					t.Errorf("%q: name is a token: %v, want %v", v, isToken, n.wantToken)
				}
				wantName := n.name
				if wantName == "" {
					wantName = "gatewise"
				}
				if got := sfValueString(it.value); n.wantToken && got != wantName {
					t.Errorf("%q: name = %q, want %q", v, got, wantName)
				}
				errType, hasErr := it.param("error")
				if want := c.ProxyStatusError; (want != "") != hasErr || (hasErr && errType != sfToken(want)) {
					t.Errorf("%q: error = %v (present %v), want token %q", v, errType, hasErr, want)
				}
				details, ok := it.param("details")
				s, isString := details.(string)
				if !ok || !isString {
					t.Errorf("%q: details = %#v, want a string", v, details)
					continue
				}
				want := string(c.ID)
				if cd := cleanText(d, maxDetail); cd != "" {
					want += ": " + cd
				}
				if strings.ContainsFunc(want, func(r rune) bool { return r > 0x7e }) {
					want = strings.Map(func(r rune) rune {
						if r > 0x7e {
							return '?'
						}
						return r
					}, want)
				}
				if s != want {
					t.Errorf("%q: details = %q, want %q", v, s, want)
				}
			}
		}
	}
}

func sfValueString(v any) string {
	switch v := v.(type) {
	case sfToken:
		return string(v)
	case string:
		return v
	}
	return ""
}

func TestSFListChecker(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		good bool
	}{
		{`gatewise; error=connection_refused; details="x"`, true},
		{`a, b;c=1;d=?0;e=1.5;f=:YQ==:`, true},
		{`gatewise; details="unterminated`, false},
		{`gatewise; details="bad \n escape"`, false},
		{"gatewise; details=\"raw\nnewline\"", false},
		{`gatewise; Error=x`, false},
		{`gatewise;; error=x`, false},
		{`"quoted name"; details="ok \"q\" \\"`, true},
		{`gatewise,`, false},
		{`1proxy`, false}, // an integer followed by junk
		{`1`, true},
		{`-dash`, false},
		{`a; b=1; b=2`, false},
	}
	for _, tt := range tests {
		_, err := parseSFList(tt.in)
		if (err == nil) != tt.good {
			t.Errorf("parseSFList(%q) error = %v, want valid %v", tt.in, err, tt.good)
		}
	}
}

func TestProblemJSON(t *testing.T) {
	t.Parallel()
	r := newRenderer(t)
	for _, c := range cause.NewTable().All() {
		for _, accept := range []string{"application/json", "application/problem+json"} {
			t.Run(string(c.ID)+" "+accept, func(t *testing.T) {
				t.Parallel()
				p := Problem{Cause: c, RequestID: "req/42", Detail: `odd "detail"`}
				w := do(r, http.MethodGet, accept, p)
				var got struct {
					Type        string `json:"type"`
					Title       string `json:"title"`
					Status      int    `json:"status"`
					Detail      string `json:"detail"`
					Instance    string `json:"instance"`
					Cause       string `json:"cause"`
					CauseDetail string `json:"cause_detail"`
					Hop         string `json:"hop"`
					RequestID   string `json:"request_id"`
					Time        string `json:"time"`
					Retryable   *bool  `json:"retryable"`
					RetryAfter  int    `json:"retry_after"`
					Owner       any    `json:"owner"`
				}
				dec := json.NewDecoder(w.Body)
				dec.DisallowUnknownFields()
				if err := dec.Decode(&got); err != nil {
					t.Fatalf("decode: %v", err)
				}
				st := status(c, p)
				checks := []struct{ name, got, want string }{
					{"type", got.Type, "https://gatewise.dev/causes/" + string(c.ID)},
					{"title", got.Title, c.Title},
					{"status", itoa(got.Status), itoa(st)},
					{"detail", got.Detail, c.Visitor},
					{"instance", got.Instance, "urn:request:req%2F42"},
					{"cause", got.Cause, string(c.ID)},
					{"cause_detail", got.CauseDetail, `odd "detail"`},
					{"hop", got.Hop, string(c.Hop)},
					{"request_id", got.RequestID, "req/42"},
					{"time", got.Time, "2026-03-01T11:30:45Z"},
					{"retry_after", itoa(got.RetryAfter), cmp.Or(w.Header().Get("Retry-After"), "0")},
				}
				for _, ch := range checks {
					if ch.got != ch.want {
						t.Errorf("%s = %q, want %q", ch.name, ch.got, ch.want)
					}
				}
				if got.Retryable == nil || *got.Retryable != c.Retryable {
					t.Errorf("retryable = %v, want %v", got.Retryable, c.Retryable)
				}
				if got.Owner != nil {
					t.Errorf("owner = %v, want none without ShowInternal", got.Owner)
				}
				if _, err := time.Parse(time.RFC3339, got.Time); err != nil {
					t.Errorf("time %q is not RFC 3339: %v", got.Time, err)
				}
			})
		}
	}
}

func TestProblemJSONOwner(t *testing.T) {
	t.Parallel()
	r := newRenderer(t)
	w := do(r, http.MethodGet, "application/json", Problem{
		Cause: mustCause(t, cause.ConnectionRefused), ShowInternal: true,
		Internal: "dial tcp 10.1.2.3:9000: connect: connection refused", Route: "shop", Upstream: "php",
	})
	var got struct {
		RequestID *string `json:"request_id"`
		Instance  *string `json:"instance"`
		Owner     struct {
			Explanation, Internal, Route, Upstream string
			DocPath                                string `json:"doc_path"`
		} `json:"owner"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Instance != nil {
		t.Errorf("instance = %q, want none without a request id", *got.Instance)
	}
	if got.RequestID == nil || *got.RequestID != "" {
		t.Errorf("request_id = %v, want \"\"", got.RequestID)
	}
	want := mustCause(t, cause.ConnectionRefused)
	for _, c := range []struct{ name, got, want string }{
		{"explanation", got.Owner.Explanation, want.Owner},
		{"internal", got.Owner.Internal, "dial tcp 10.1.2.3:9000: connect: connection refused"},
		{"route", got.Owner.Route, "shop"},
		{"upstream", got.Owner.Upstream, "php"},
		{"doc_path", got.Owner.DocPath, "docs/causes/connection_refused.md"},
	} {
		if c.got != c.want {
			t.Errorf("owner.%s = %q, want %q", c.name, c.got, c.want)
		}
	}
}

// TestNoInternalLeak checks that the internal detail, route and upstream
// names appear in no body unless ShowInternal is set, and in every body when
// it is.
func TestNoInternalLeak(t *testing.T) {
	t.Parallel()
	r := newRenderer(t)
	const (
		internal = "dial tcp 10.9.8.7:6543: connect: SECRET-RAW-ERROR"
		route    = "route-SECRET-NAME"
		upstream = "pool-SECRET-NAME"
	)
	secrets := []string{internal, "10.9.8.7", "SECRET"}
	for _, c := range cause.NewTable().All() {
		for _, accept := range []string{"text/html", "application/json", "application/problem+json", "text/plain", "*/*", ""} {
			for _, show := range []bool{false, true} {
				p := Problem{Cause: c, Internal: internal, Route: route, Upstream: upstream, ShowInternal: show, RequestID: "id", Detail: "reset"}
				w := do(r, http.MethodGet, accept, p)
				var all bytes.Buffer
				all.Write(w.Body.Bytes())
				for k, vs := range w.Header() {
					all.WriteString(k + ": " + strings.Join(vs, ",") + "\n")
				}
				body := all.String()
				for _, s := range secrets {
					if got := strings.Contains(body, s); got != show {
						t.Errorf("%s, Accept %q, ShowInternal %v: response contains %q: %v, want %v", c.ID, accept, show, s, got, show)
					}
				}
				for _, s := range []string{route, upstream, c.Owner} {
					if got := strings.Contains(body, htmlish(s, accept)); got != show {
						t.Errorf("%s, Accept %q, ShowInternal %v: response contains %q: %v, want %v", c.ID, accept, show, s, got, show)
					}
				}
			}
		}
	}
}

// htmlish returns s as it appears in a body of the format for accept: the
// HTML page escapes quotes and apostrophes, JSON escapes quotes.
func htmlish(s, accept string) string {
	switch negotiate([]string{accept}) {
	case formatHTML:
		return strings.NewReplacer(`'`, "&#39;", `"`, "&#34;", "&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
	case formatJSON, formatProblemJSON:
		b, _ := json.Marshal(s)
		return string(b[1 : len(b)-1])
	}
	return s
}

func TestEscaping(t *testing.T) {
	t.Parallel()
	r := newRenderer(t)
	hostile := Problem{
		Cause: mustCause(t, cause.ConnectionTerminated), Detail: `<script>alert(1)</script>"'`,
		RequestID: "id<img src=x onerror=alert(1)>\r\nSet-Cookie: a=b", ShowInternal: true,
		Internal: "</pre><script>alert(2)</script>\x1b[31mred", Route: `"><svg onload=alert(3)>`, Upstream: "\u202egnp.exe",
	}
	tests := []struct {
		desc   string
		accept string
		absent []string
	}{
		{"HTML escapes everything", "text/html", []string{"<script>", "<img", "<svg onload", "\x1b", "\u202e", "\r\n"}},
		{"text strips control characters", "text/plain", []string{"\x1b", "\u202e", "\r"}},
		{"JSON has no raw control characters", "application/json", []string{"\x1b", "\u202e", "\r"}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			w := do(r, http.MethodGet, tt.accept, hostile)
			body := w.Body.String()
			for _, s := range tt.absent {
				if strings.Contains(body, s) {
					t.Errorf("body contains %q", s)
				}
			}
			if tt.accept == "application/json" && !json.Valid(w.Body.Bytes()) {
				t.Errorf("body is not valid JSON: %s", body)
			}
			if got, want := w.Header().Get("X-Request-ID"), "id<imgsrc=xonerror=alert(1)>Set-Cookie:a=b"; got != want {
				t.Errorf("X-Request-ID = %q, want %q (visible ASCII only)", got, want)
			}
			if got := w.Header().Get("Set-Cookie"); got != "" {
				t.Errorf("Set-Cookie = %q, want none", got)
			}
		})
	}
}

func TestContentSecurityPolicy(t *testing.T) {
	t.Parallel()
	r := newRenderer(t)
	w := do(r, http.MethodGet, "text/html", Problem{Cause: mustCause(t, cause.ConnectionRefused)})
	csp := w.Header().Get("Content-Security-Policy")
	m := regexp.MustCompile(`(?s)<style>(.*?)</style>`).FindAllStringSubmatch(w.Body.String(), -1)
	if len(m) != 1 {
		t.Fatalf("the page has %d <style> elements, want 1", len(m))
	}
	sum := sha256.Sum256([]byte(m[0][1]))
	for _, want := range []string{
		"default-src 'none'",
		"style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'",
		"frame-ancestors 'none'", "base-uri 'none'", "form-action 'none'",
	} {
		if !strings.Contains(csp, want) {
			t.Errorf("Content-Security-Policy = %q, want it to contain %q", csp, want)
		}
	}
	for _, bad := range []string{"unsafe-inline", "script-src", "http:", "https:"} {
		if strings.Contains(csp, bad) {
			t.Errorf("Content-Security-Policy = %q, want no %q", csp, bad)
		}
	}
	for _, bad := range []string{"<script", "<link", "<img", "@import", "url(", "src=", "style=\""} {
		if strings.Contains(w.Body.String(), bad) {
			t.Errorf("page contains %q, want a self-contained page with no inline style attributes", bad)
		}
	}
}

func TestStyleElements(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc string
		in   string
		want []string
	}{
		{"none", "<p>hi</p>", nil},
		{"one", "<style>a{}</style>", []string{"a{}"}},
		{"attributes and case", `<STYLE media="all">b{}</Style><style>c{}</style>`, []string{"b{}", "c{}"}},
		{"not a style element", "<styles>x</styles><style>d</style>", []string{"d"}},
		{"unterminated", "<style>e", nil},
	}
	for _, tt := range tests {
		var got []string
		for _, b := range styleElements([]byte(tt.in)) {
			got = append(got, string(b))
		}
		if strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("%s: styleElements(%q) = %q, want %q", tt.desc, tt.in, got, tt.want)
		}
	}
}

// TestHTMLPage checks the page's structure for each hop: the failing node,
// the steps and the request ID.
func TestHTMLPage(t *testing.T) {
	t.Parallel()
	r := newRenderer(t)
	failed := regexp.MustCompile(`class="(box|link) failed" data-hop="([a-z]+)"`)
	tests := []struct {
		desc      string
		id        cause.ID
		wantHop   string
		wantSteps []string
		wantRetry bool
	}{
		{"visitor: slow down", cause.RateLimited, "visitor", []string{"Wait 5 seconds", "Slow down", "share your connection"}, false},
		{"visitor: check the connection", cause.ClientClosed, "visitor", []string{"Check your internet connection", "your own connection"}, false},
		{"network: the link is marked", cause.DNSError, "network", []string{"Reload the page in a few seconds", "your connection works"}, true},
		{"gateway: busy", cause.ConnectionLimitReached, "gateway", []string{"Reload the page in 5 seconds", "the site is busy"}, true},
		{"upstream", cause.ConnectionRefused, "upstream", []string{"try again in a minute"}, true},
		{"application", cause.HTTPResponseTimeout, "application", []string{"Reload the page in 5 seconds"}, true},
		{"not retryable", cause.TLSCertificateError, "upstream", []string{"Reloading is unlikely to help", "quote the request ID"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			body := do(r, http.MethodGet, "text/html", Problem{Cause: mustCause(t, tt.id), RequestID: "RID-77"}).Body.String()
			m := failed.FindAllStringSubmatch(body, -1)
			if len(m) != 1 || m[0][2] != tt.wantHop {
				t.Errorf("failed nodes = %q, want exactly one with data-hop %q", m, tt.wantHop)
			}
			for _, s := range tt.wantSteps {
				if !strings.Contains(body, htmlish(s, "text/html")) {
					t.Errorf("page lacks %q", s)
				}
			}
			for _, s := range []string{`<code class="rid">RID-77</code>`, "quote this request ID", `<html lang="en">`, `<meta name="viewport"`, "<title>"} {
				if !strings.Contains(body, s) {
					t.Errorf("page lacks %q", s)
				}
			}
			if got := strings.Contains(body, `class="button"`); got != tt.wantRetry {
				t.Errorf("page has a Try again button: %v, want %v", got, tt.wantRetry)
			}
		})
	}
}

func TestChain(t *testing.T) {
	t.Parallel()
	tests := []struct {
		hop  cause.Hop
		want string // kind:hop:state per node
	}{
		{cause.HopVisitor, "box:visitor:failed link::ok box:gateway:ok link:network:unknown box:upstream:unknown"},
		{cause.HopNetwork, "box:visitor:ok link::ok box:gateway:ok link:network:failed box:upstream:unknown"},
		{cause.HopGateway, "box:visitor:ok link::ok box:gateway:failed link:network:unknown box:upstream:unknown"},
		{cause.HopUpstream, "box:visitor:ok link::ok box:gateway:ok link:network:ok box:upstream:failed"},
		{cause.HopApplication, "box:visitor:ok link::ok box:gateway:ok link:network:ok box:upstream:ok link::ok box:application:failed"},
		{cause.HopDependency, "box:visitor:ok link::ok box:gateway:ok link:network:ok box:upstream:ok link::ok box:application:ok link::ok box:dependency:failed"},
		{"martian", "box:visitor:ok link::ok box:gateway:failed link:network:unknown box:upstream:unknown"},
	}
	for _, tt := range tests {
		var parts []string
		for _, n := range chain(tt.hop) {
			parts = append(parts, n.Kind+":"+n.Hop+":"+n.State)
		}
		if got := strings.Join(parts, " "); got != tt.want {
			t.Errorf("chain(%q) =\n  %s\nwant\n  %s", tt.hop, got, tt.want)
		}
	}
}

func TestCleanText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc, in string
		max      int
		want     string
	}{
		{"plain", "reset", 10, "reset"},
		{"newlines to spaces", "a\nb\r\nc\td", 20, "a b  c d"},
		{"controls dropped", "a\x00b\x1b[0mc\x7f\u0085d", 20, "ab[0mcd"},
		{"bidi override dropped", "a\u202eb", 10, "ab"},
		{"invalid UTF-8 replaced", "a\xffb", 10, "a\uFFFDb"},
		{"cut at a rune boundary", "ééééé", 7, "éé…"},
		{"trimmed", "  x  ", 10, "x"},
	}
	for _, tt := range tests {
		if got := cleanText(tt.in, tt.max); got != tt.want {
			t.Errorf("%s: cleanText(%q, %d) = %q, want %q", tt.desc, tt.in, tt.max, got, tt.want)
		}
	}
}

// writeFiles writes name -> content into a new directory and returns it.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestOwnerTemplates(t *testing.T) {
	t.Parallel()
	builtin := newRenderer(t)
	p := Problem{Cause: mustCause(t, cause.ConnectionRefused), RequestID: "own-1"}
	tests := []struct {
		desc     string
		files    map[string]string
		accept   string
		want     string // a substring of the body
		sameAsBI bool   // the body equals the built-in one
	}{
		{"owner page.html overrides", map[string]string{FileHTML: `<!doctype html><title>{{.Status}} {{.Title}}</title><style>p{}</style><p>Our shop is down. Ref {{.RequestID}}</p>`},
			"text/html", "Our shop is down. Ref own-1", false},
		{"owner page.txt overrides", map[string]string{FileText: "Sorry! {{.ID}} {{.RequestID}}\n"}, "", "Sorry! connection_refused own-1\n", false},
		{"owner problem.json overrides", map[string]string{FileJSON: `{"error": {{json .ID}}, "id": {{json .RequestID}}}`}, "application/json", `{"error": "connection_refused", "id": "own-1"}`, false},
		{"missing page.txt falls back", map[string]string{FileHTML: "<p>x</p>"}, "", "", true},
		{"missing problem.json falls back", map[string]string{FileText: "x"}, "application/problem+json", "", true},
		{"missing page.html falls back", map[string]string{FileJSON: "{}"}, "text/html", "", true},
		{"an empty directory falls back everywhere", map[string]string{}, "text/html", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			r, err := New(Options{TemplatesDir: writeFiles(t, tt.files), Now: fixedNow})
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			got := do(r, http.MethodGet, tt.accept, p)
			if tt.sameAsBI {
				if want := do(builtin, http.MethodGet, tt.accept, p).Body.String(); got.Body.String() != want {
					t.Errorf("body differs from the built-in one:\n%s", got.Body.String())
				}
				return
			}
			if !strings.Contains(got.Body.String(), tt.want) {
				t.Errorf("body = %q, want it to contain %q", got.Body.String(), tt.want)
			}
			if tt.accept == "text/html" {
				sum := sha256.Sum256([]byte("p{}"))
				if csp, want := got.Header().Get("Content-Security-Policy"), "'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'"; !strings.Contains(csp, want) {
					t.Errorf("Content-Security-Policy = %q, want the hash of the owner's style %s", csp, want)
				}
			}
		})
	}
}

func TestOwnerTemplateErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc  string
		files map[string]string
		file  string // the file the error must name
		want  string // and another part of the message
	}{
		{"page.html does not parse", map[string]string{FileHTML: "<p>\n\n{{.Status}\n</p>"}, FileHTML, ":3:"},
		{"page.txt does not parse", map[string]string{FileText: "line one\nline two\n{{if}}{{end}}\n"}, FileText, ":3:"},
		{"problem.json does not parse", map[string]string{FileJSON: "{\n  \"a\": 1,\n  \"b\": {{json .ID}\n}"}, FileJSON, ":3:"},
		{"page.html names a field Data lacks", map[string]string{FileHTML: "<p>\n{{.NoSuchField}}</p>"}, FileHTML, "NoSuchField"},
		{"page.txt calls an unknown function", map[string]string{FileText: "{{shout .Title}}"}, FileText, "shout"},
		{"problem.json makes invalid JSON", map[string]string{FileJSON: `{"cause": {{.ID}}}`}, FileJSON, "not valid JSON"},
		{"a good file does not hide a bad one", map[string]string{FileText: "ok", FileHTML: "{{end}}"}, FileHTML, "unexpected"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			dir := writeFiles(t, tt.files)
			_, err := New(Options{TemplatesDir: dir})
			if err == nil {
				t.Fatal("New returned no error")
			}
			for _, want := range []string{filepath.Join(dir, tt.file), tt.want} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error = %q, want it to contain %q", err, want)
				}
			}
		})
	}
	t.Run("missing directory", func(t *testing.T) {
		t.Parallel()
		_, err := New(Options{TemplatesDir: filepath.Join(t.TempDir(), "nope")})
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("error = %v, want one wrapping fs.ErrNotExist", err)
		}
	})
	t.Run("a file, not a directory", func(t *testing.T) {
		t.Parallel()
		dir := writeFiles(t, map[string]string{"f": ""})
		_, err := New(Options{TemplatesDir: filepath.Join(dir, "f")})
		if err == nil || !strings.Contains(err.Error(), "not a directory") {
			t.Errorf("error = %v, want \"not a directory\"", err)
		}
	})
}

// TestOwnerTemplateRuntimeFallback checks that when an owner's template fails
// while a response is written, the built-in one answers.
func TestOwnerTemplateRuntimeFallback(t *testing.T) {
	t.Parallel()
	r := newRenderer(t)
	broken, err := parseText("page.txt", []byte(`{{index .Steps 99}}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	r.text = broken
	w := do(r, http.MethodGet, "", Problem{Cause: mustCause(t, cause.ConnectionRefused)})
	if got, want := w.Body.String(), do(newRenderer(t), http.MethodGet, "", Problem{Cause: mustCause(t, cause.ConnectionRefused)}).Body.String(); got != want {
		t.Errorf("body = %q, want the built-in one %q", got, want)
	}
}

func TestNilRequest(t *testing.T) {
	t.Parallel()
	r := newRenderer(t)
	w := httptest.NewRecorder()
	r.Write(w, nil, Problem{Cause: mustCause(t, cause.ConnectionRefused)})
	if got, want := w.Header().Get("Content-Type"), "text/plain; charset=utf-8"; got != want {
		t.Errorf("Content-Type = %q, want %q", got, want)
	}
	if w.Body.Len() == 0 {
		t.Error("empty body")
	}
}

// TestDocsExample runs the example templates of docs/error-pages.md, so the
// documentation cannot drift from the template data.
func TestDocsExample(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "error-pages.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, example, ok := strings.Cut(string(doc), "### Example: a branded page")
	if !ok {
		t.Fatal("docs/error-pages.md has no example section")
	}
	blocks := regexp.MustCompile("(?s)```([a-z]*)\n(.*?)```").FindAllStringSubmatch(example, -1)
	if len(blocks) != 2 {
		t.Fatalf("the example has %d code blocks, want 2 (page.html, page.txt)", len(blocks))
	}
	dir := writeFiles(t, map[string]string{FileHTML: blocks[0][2], FileText: blocks[1][2]})
	r, err := New(Options{TemplatesDir: dir, Now: fixedNow})
	if err != nil {
		t.Fatalf("New with the documented example: %v", err)
	}
	p := Problem{Cause: mustCause(t, cause.ConnectionRefused), RequestID: "doc-1", ShowInternal: true, Internal: "10.0.0.1:80"}
	for _, tt := range []struct{ accept, want string }{
		{"text/html", `<span class="failed">Server</span>`},
		{"*/*", "502 Bad Gateway - Example Shop\n"},
	} {
		if body := do(r, http.MethodGet, tt.accept, p).Body.String(); !strings.Contains(body, tt.want) {
			t.Errorf("Accept %s: body = %q, want it to contain %q", tt.accept, body, tt.want)
		}
	}
}
