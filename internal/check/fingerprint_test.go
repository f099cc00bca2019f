package check

import (
	"bufio"
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatewise/gatewise/internal/cause"
)

// readResponse reads a testdata response: its status, header and body
// (everything after the header, whatever Content-Length says).
func readResponse(t testing.TB, name string) (int, http.Header, []byte) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(raw, []byte("\r\n\r\n"))
	if i < 0 {
		t.Fatalf("%s: no end of header", name)
	}
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(raw[:i+4])), nil)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return resp.StatusCode, resp.Header, raw[i+4:]
}

// TestIdentifyDocumented checks the fingerprints of the servers that do
// not run in the tests, on responses written from their documented
// default pages (see testdata/README.md).
func TestIdentifyDocumented(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file     string
		answered string
		own      bool
		cause    cause.ID
		hops     string
		id       string
	}{
		{"varnish_503.http", "Varnish", false, "", "Varnish", "32770"},
		{"cloudflare_521.http", "Cloudflare", false, cause.ConnectionRefused, "Cloudflare", "8e5f1c2b3a4d5e6f-FRA"},
		{"cloudflare_own_502.http", "Cloudflare", true, "", "Cloudflare", "8e5f1c2b3a4d5e70-AMS"},
		{"alb_502.http", "AWS ELB/ALB", false, "", "AWS ELB/ALB", ""},
		{"alb_503.http", "AWS ELB/ALB", false, cause.NoHealthyUpstream, "AWS ELB/ALB", ""},
		{"cloudfront_502.http", "CloudFront", false, cause.ConnectionRefused, "CloudFront", "Xk2ZyQ9n4vR8mT1pL6wB3cD5eF7gH0jK_aBcDeFgHiJkLmN=="},
		{"traefik_502.http", "Traefik", false, "", "Traefik", ""},
		{"traefik_503.http", "Traefik", false, cause.NoHealthyUpstream, "Traefik", ""},
		{"fastly_503.http", "Fastly", false, cause.HTTPResponseTimeout, "Fastly", ""},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			status, h, body := readResponse(t, tc.file)
			fp := Identify(status, h, body)
			var names []string
			for _, hop := range fp.Hops {
				names = append(names, hop.Name)
			}
			if got := strings.Join(names, ","); got != tc.hops {
				t.Errorf("hops = %q, want %q", got, tc.hops)
			}
			if fp.Answered < 0 {
				t.Fatalf("answered by the application, want %s", tc.answered)
			}
			ans := fp.Hops[fp.Answered]
			if ans.Name != tc.answered || fp.OwnFault != tc.own || fp.Cause != tc.cause {
				t.Errorf("answered %s own=%v cause=%q, want %s own=%v cause=%q", ans.Name, fp.OwnFault, fp.Cause, tc.answered, tc.own, tc.cause)
			}
			if ans.ID != tc.id {
				t.Errorf("ID = %q, want %q", ans.ID, tc.id)
			}
		})
	}
}

// TestIdentifyPassThrough: an application's own error behind known hops is
// not attributed to them.
func TestIdentifyPassThrough(t *testing.T) {
	t.Parallel()
	h := http.Header{}
	h.Set("Server", "nginx/1.22.1")
	h.Add("Via", "1.1 gatewise")
	h.Set("CF-RAY", "8e5f1c2b3a4d5e6f-FRA")
	fp := Identify(500, h, []byte("<h1>Database error</h1>"))
	if fp.Answered != -1 {
		t.Errorf("answered by %s, want the application", fp.Hops[fp.Answered].Name)
	}
	var names []string
	for _, hop := range fp.Hops {
		names = append(names, hop.Name)
	}
	if got := strings.Join(names, ","); got != "Cloudflare,gatewise,nginx" {
		t.Errorf("hops = %s, want Cloudflare,gatewise,nginx", got)
	}
}

func TestParseProxyStatus(t *testing.T) {
	t.Parallel()
	got := parseProxyStatus([]string{`origin-lb; error=http_response_timeout, gatewise; error=connection_refused; details="connection_refused: a \"quoted\", comma"`})
	if len(got) != 2 || got[0].Name != "origin-lb" || got[1].Name != "gatewise" {
		t.Fatalf("members = %+v", got)
	}
	if d := got[1].Params["details"]; d != `connection_refused: a "quoted", comma` {
		t.Errorf("details = %q", d)
	}
}

// FuzzIdentify: any response is read without panic, with the answering
// hop's index in range.
func FuzzIdentify(f *testing.F) {
	for _, name := range []string{"varnish_503.http", "cloudflare_521.http", "alb_502.http", "fastly_503.http"} {
		status, h, body := readResponse(f, name)
		f.Add(status, h.Get("Server"), h.Get("Via"), h.Get("Proxy-Status"), body)
	}
	f.Add(502, "", "", `gatewise; error=x; details="connection_refused: reset"`, []byte{})
	f.Fuzz(func(t *testing.T, status int, server, via, ps string, body []byte) {
		h := http.Header{}
		h.Set("Server", server)
		h.Set("Via", via)
		h.Set("Proxy-Status", ps)
		fp := Identify(status, h, body)
		if fp.Answered < -1 || fp.Answered >= len(fp.Hops) {
			t.Fatalf("Answered = %d with %d hops", fp.Answered, len(fp.Hops))
		}
	})
}

// FuzzCookieHeader: any cookies file gives a header or an error, never a
// header with a line break.
func FuzzCookieHeader(f *testing.F) {
	f.Add([]byte("a=1; b=2"))
	f.Add([]byte("# Netscape HTTP Cookie File\n.example.com\tTRUE\t/\tFALSE\t0\tsid\tabc\n#HttpOnly_example.com\tFALSE\t/\tTRUE\t0\ttok\txyz\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		u, _ := ParseURL("https://www.example.com/a/b")
		s, err := CookieHeader(data, u)
		if err == nil && strings.ContainsAny(s, "\r\n\x00") {
			t.Fatalf("header %q", s)
		}
	})
}

// TestDocumentedVerdicts serves the documented responses from a loopback
// server and checks the verdict drawn from each.
func TestDocumentedVerdicts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file string
		want want
	}{
		{"cloudflare_521.http", want{atFault: "proxy", answered: "Cloudflare", failed: "the site's server (origin)", cause: cause.ConnectionRefused, status: 521}},
		{"cloudflare_own_502.http", want{atFault: "cdn", failed: "Cloudflare", status: 502}},
		{"varnish_503.http", want{atFault: "application", answered: "Varnish", failed: "application", status: 503}},
		{"alb_503.http", want{atFault: "application", answered: "AWS ELB/ALB", failed: "application", cause: cause.NoHealthyUpstream, status: 503}},
		{"cloudfront_502.http", want{atFault: "proxy", answered: "CloudFront", failed: "the site's server (origin)", cause: cause.ConnectionRefused, status: 502}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			status, h, body := readResponse(t, tc.file)
			site := httptestServer(t, func(w http.ResponseWriter, _ *http.Request) {
				for k, v := range h {
					if k != "Content-Length" && k != "Date" {
						w.Header()[k] = v
					}
				}
				w.WriteHeader(status)
				w.Write(body)
			})
			rep := runCheck(t, site, testOptions(t), tc.want)
			if !strings.HasPrefix(tc.file, "alb") && !strings.Contains(rep.OwnerMessage, "ID") {
				t.Errorf("the owner's message quotes no ID: %q", rep.OwnerMessage)
			}
		})
	}
}
