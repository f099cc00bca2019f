package main

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatewise/gatewise/internal/config"
)

// send writes one request with id on a new connection to addr and returns
// the response, or the error of reading it.
func send(t *testing.T, addr, method, id string) (*http.Response, error) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(300 * time.Millisecond))
	body := ""
	if method == http.MethodPost {
		body = `{"x":1}`
	}
	req := method + " /x HTTP/1.1\r\nHost: t\r\n" + chaosHeader + ": " + id + "\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body
	if _, err := io.WriteString(c, req); err != nil {
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp, nil
}

func TestTargets(t *testing.T) {
	t.Parallel()
	led := newLedger()
	reset, err := startTarget("t2", faultReset, led)
	if err != nil {
		t.Fatal(err)
	}
	defer reset.kill()
	// Connections 1 and 2 are served, 3 is reset, 4 is served.
	for i, wantReset := range []bool{false, false, true, false} {
		resp, err := send(t, reset.addr(), http.MethodPost, "p"+strconv.Itoa(i))
		if wantReset {
			if !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("connection %d: got %v, want a reset", i+1, err)
			}
			continue
		}
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("connection %d: %v", i+1, err)
		}
	}
	if got := reset.resets.Load(); got != 1 {
		t.Errorf("resets = %d, want 1", got)
	}

	hang, err := startTarget("t3", faultHang, led)
	if err != nil {
		t.Fatal(err)
	}
	defer hang.kill()
	if _, err := send(t, hang.addr(), http.MethodPost, "p0"); err == nil {
		t.Error("the hanging target answered")
	}

	killed, err := startTarget("t1", faultKilled, led)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := send(t, killed.addr(), http.MethodGet, "g0"); err != nil {
		t.Fatal(err)
	}
	if _, err := send(t, killed.addr(), http.MethodGet, "g0"); err != nil {
		t.Fatal(err)
	}
	killed.kill()
	if _, err := send(t, killed.addr(), http.MethodGet, "g1"); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("after kill: got %v, want connection refused", err)
	}

	// p0 reached t2 and t3: one duplicate POST, one extra copy. g0 was
	// sent twice: a retried GET, not a duplicate POST.
	s := led.summary()
	want := ledgerSummary{DuplicatePOSTs: 1, ExtraPOSTCopies: 1, RetriedGETs: 1, MaxCopies: 2, Distinct: 5}
	if s != want {
		t.Errorf("summary = %+v, want %+v", s, want)
	}
}

func TestGatewiseConfigValid(t *testing.T) {
	t.Parallel()
	text := gatewiseConfig("/tmp", "127.0.0.1:1", []string{"127.0.0.1:2", "127.0.0.1:3", "127.0.0.1:4"})
	if _, err := config.ParseValid("gatewise.yaml", []byte(text)); err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
}

func TestConfigsHaveTheirSettings(t *testing.T) {
	t.Parallel()
	targets := []string{"127.0.0.1:2", "127.0.0.1:3", "127.0.0.1:4"}
	for name, tc := range map[string]struct {
		text string
		want []string
	}{
		"nginx": {nginxConfig("/d", "127.0.0.1:1", targets), []string{
			"server 127.0.0.1:4 max_fails=3 fail_timeout=10s;", "keepalive 32;", "proxy_http_version 1.1;",
			`proxy_set_header Connection "";`, "proxy_next_upstream error timeout http_502 http_503 http_504;",
			"proxy_next_upstream_tries 3;", "proxy_connect_timeout 1s;", "proxy_read_timeout 1s;", "user root;",
		}},
		"haproxy": {haproxyConfig("/d", "127.0.0.1:1", targets), []string{
			"timeout connect 1s", "timeout server 1s", "timeout client 30s", "retries 3", "option redispatch",
			"retry-on conn-failure empty-response response-timeout", "http-reuse safe", "balance roundrobin",
			"server t3 127.0.0.1:4 check inter 1s fall 3 rise 2",
		}},
	} {
		for _, w := range tc.want {
			if !strings.Contains(tc.text, w) {
				t.Errorf("%s config lacks %q", name, w)
			}
		}
	}
}

func TestPercentile(t *testing.T) {
	t.Parallel()
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i))
	}
	if p := percentile(d, 50); p != 50 {
		t.Errorf("p50 = %d", p)
	}
	if p := percentile(d, 99); p != 99 {
		t.Errorf("p99 = %d", p)
	}
	if p := percentile(nil, 99); p != 0 {
		t.Errorf("p99 of nothing = %d", p)
	}
}
