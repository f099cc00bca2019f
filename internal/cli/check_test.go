package cli

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gatewise/gatewise/internal/check"
)

// checkRun runs `gatewise check` with args and returns the exit code,
// stdout and stderr.
func checkRun(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut strings.Builder
	code := Run(context.Background(), append([]string{"check"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestCheckBadCommandLine(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		desc string
		args []string
		want string
	}{
		{"no URL", nil, "missing URL"},
		{"bad scheme", []string{"ftp://example.com"}, "the scheme must be http or https"},
		{"no host", []string{"http://"}, "no host"},
		{"bad port", []string{"http://example.com:70000/"}, "port"},
		{"two URLs", []string{"http://a.example", "http://b.example"}, "one URL at a time"},
		{"attempts", []string{"--attempts", "0", "http://127.0.0.1:1/"}, "--attempts 0"},
		{"too many attempts", []string{"--attempts", "99", "http://127.0.0.1:1/"}, "must be 1 to 10"},
		{"resolver", []string{"--resolver", "dns.google", "http://127.0.0.1:1/"}, "--resolver"},
		{"control", []string{"--control", "gopher://x", "http://127.0.0.1:1/"}, "--control"},
		{"cookie", []string{"--cookie", "novalue", "http://127.0.0.1:1/"}, "want name=value"},
		{"both cookie flags", []string{"--cookie", "a=1", "--cookies", "f", "http://127.0.0.1:1/"}, "exclude each other"},
		{"missing cookies file", []string{"--cookies", filepath.Join(dir, "nope"), "http://127.0.0.1:1/"}, "no such file"},
		{"unknown flag", []string{"--frobnicate", "http://127.0.0.1:1/"}, "frobnicate"},
	}
	for _, tc := range tests {
		code, out, errOut := checkRun(t, tc.args...)
		if code == ExitOK {
			t.Errorf("%s: exit 0", tc.desc)
		}
		if strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%s: stderr %q, want one line with %q", tc.desc, errOut, tc.want)
		}
		if out != "" {
			t.Errorf("%s: stdout %q", tc.desc, out)
		}
	}
}

// TestCheckJSON checks a loopback site that fails, then one that works,
// through the command line, with --json.
func TestCheckJSON(t *testing.T) {
	t.Parallel()
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Proxy-Status", `gatewise; error=connection_refused; details="connection_refused"`)
		w.Header().Set("X-Request-ID", "req-123")
		w.WriteHeader(http.StatusBadGateway)
	}))
	defer failing.Close()
	var withCookie atomic.Int64
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Cookie") == "a=1; b=2" {
			withCookie.Add(1)
		}
		w.Write([]byte("hello"))
	}))
	defer ok.Close()
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := "http://" + l.Addr().String()
	l.Close()
	cookies := filepath.Join(t.TempDir(), "cookies.txt")
	os.WriteFile(cookies, []byte("a=1; b=2\n"), 0o644)

	common := []string{"--json", "--attempts", "2", "--resolver", "off", "--timeout", "3s"}
	code, out, errOut := checkRun(t, append([]string{failing.URL + "/x", "--control", ok.URL}, common...)...)
	if code != ExitFailure {
		t.Errorf("failing site: exit %d, want %d (stderr %q)", code, ExitFailure, errOut)
	}
	var rep struct {
		Verdict string        `json:"verdict"`
		AtFault string        `json:"at_fault"`
		Cause   string        `json:"cause"`
		Hops    []check.Hop   `json:"hops"`
		Advice  []string      `json:"advice"`
		ReqID   string        `json:"request_id"`
		Other   []interface{} `json:"attempts"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("--json output: %v\n%s", err, out)
	}
	if rep.AtFault != "application" || rep.Cause != "connection_refused" || rep.ReqID != "req-123" || rep.Verdict == "" || len(rep.Advice) == 0 || len(rep.Other) != 2 {
		t.Errorf("report: %+v", rep)
	}
	if len(rep.Hops) != 3 || rep.Hops[1].Name != "gatewise" || rep.Hops[1].State != check.StateAnswered || rep.Hops[2].State != check.StateFailed {
		t.Errorf("hops: %+v", rep.Hops)
	}

	code, out, errOut = checkRun(t, append([]string{ok.URL, "--cookies", cookies, "--control", dead}, common...)...)
	if code != ExitOK {
		t.Errorf("working site: exit %d (stderr %q, out %s)", code, errOut, out)
	}
	if !strings.Contains(out, `"at_fault": "none"`) || !strings.Contains(out, `"cookie_bytes": 8`) {
		t.Errorf("working site: %s", out)
	}

	if withCookie.Load() != 3 {
		t.Errorf("%d requests with the cookies, want 3 (the 2 attempts and the no-cache request)", withCookie.Load())
	}

	code, out, _ = checkRun(t, ok.URL, "--attempts", "1", "--resolver", "off", "--control", "none")
	if code != ExitOK || !strings.Contains(out, "Verdict:  The site works from here") || !strings.Contains(out, "you -> application") {
		t.Errorf("text output (exit %d):\n%s", code, out)
	}
}
