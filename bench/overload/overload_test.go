package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatewise/gatewise/internal/config"
)

var testScenario = scenario{slots: 8, service: 50 * time.Millisecond}

func TestGatewiseConfigsValid(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc  string
		fixed bool
		check func(t *testing.T, cc config.Concurrency)
	}{
		{"the defaults: adaptive", false, func(t *testing.T, cc config.Concurrency) {
			if cc.MaxInFlight != 0 || cc.Adaptive == nil || !*cc.Adaptive {
				t.Errorf("concurrency %+v, want the adaptive default", cc)
			}
		}},
		{"max_in_flight", true, func(t *testing.T, cc config.Concurrency) {
			if got, want := cc.MaxInFlight, testScenario.slots; got != want {
				t.Errorf("max_in_flight %d, want %d", got, want)
			}
		}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			text := gatewiseConfig("127.0.0.1:1", "127.0.0.1:2", testScenario, tc.fixed)
			cfg, err := config.ParseValid("gatewise.yaml", []byte(text))
			if err != nil {
				t.Fatalf("%v\n%s", err, text)
			}
			tc.check(t, cfg.Pools["app"].Concurrency)
			if n := cfg.Limits.MaxConnsPerIP; n == nil || *n != 0 {
				t.Errorf("max_conns_per_ip %v, want 0 (every client is 127.0.0.1)", n)
			}
		})
	}
}

func TestNginxConfigHasItsSettings(t *testing.T) {
	t.Parallel()
	text := nginxConfig("/d", "127.0.0.1:1", "127.0.0.1:2", testScenario)
	for _, want := range []string{
		"limit_conn_zone $server_name zone=inflight:1m;", "limit_req_zone $server_name zone=rate:1m rate=160r/s;",
		"server 127.0.0.1:2 max_conns=8;", "zone app 64k;", "limit_conn inflight 8;", "limit_conn_status 503;",
		"limit_req zone=rate burst=8 nodelay;", "limit_req_status 503;", "error_page 502 503 =503 @overloaded;",
		"add_header Retry-After 1 always;", "keepalive 32;", `proxy_set_header Connection "";`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("nginx config lacks %q", want)
		}
	}
}

// TestUpstreamQueues checks that the upstream serves at most its slots at
// once and queues the rest.
func TestUpstreamQueues(t *testing.T) {
	t.Parallel()
	u, err := startUpstream(2, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer u.stop()
	st := runLoad(context.Background(), loadConfig{url: "http://" + u.addr(), rate: 100, duration: 200 * time.Millisecond,
		clientTimeout: 5 * time.Second})
	if st.Sent != 20 || st.Admitted != 20 {
		t.Fatalf("sent %d, admitted %d, want 20 and 20 (%+v)", st.Sent, st.Admitted, st.Other)
	}
	us := u.stats()
	if us.Served != 20 || us.WaitP99 < 100 {
		t.Errorf("upstream %+v: want 20 served, the last after waiting 100ms or more", us)
	}
	// 20 requests over 2 slots of 45 to 55ms: at least 450ms.
	if st.Elapsed < 0.45 {
		t.Errorf("all answered in %.3fs, want at least 0.45s", st.Elapsed)
	}
}

func TestGetOutcome(t *testing.T) {
	t.Parallel()
	u, err := startUpstream(1, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer u.stop()
	client := &http.Client{Timeout: 5 * time.Second}
	if got, _ := get(context.Background(), client, "http://"+u.addr()); got != "2xx" {
		t.Errorf("outcome %q, want 2xx", got)
	}
	if got, _ := get(context.Background(), client, "http://127.0.0.1:1"); got != "transport" {
		t.Errorf("outcome %q for a refused connection, want transport", got)
	}
}

func TestPercentile(t *testing.T) {
	t.Parallel()
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i))
	}
	for _, tc := range []struct {
		p    int
		want time.Duration
	}{{50, 50}, {99, 99}, {100, 100}} {
		if got := percentile(d, tc.p); got != tc.want {
			t.Errorf("p%d = %d, want %d", tc.p, got, tc.want)
		}
	}
	if got := percentile(nil, 99); got != 0 {
		t.Errorf("p99 of nothing = %d", got)
	}
}
