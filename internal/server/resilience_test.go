package server_test

import (
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatewise/gatewise/internal/config"
	"github.com/gatewise/gatewise/internal/faults"
)

// loadResult is what a bounded load run saw from the client's side.
type loadResult struct {
	gets, posts           atomic.Int64
	getErrors, postErrors atomic.Int64
	firstErrors           sync.Map // a few error strings, for the failure message
}

func (r *loadResult) fail(method, what string) {
	if method == http.MethodGet {
		r.getErrors.Add(1)
	} else {
		r.postErrors.Add(1)
	}
	r.firstErrors.LoadOrStore(method+" "+what, true)
}

func (r *loadResult) errorSample() string {
	var out []string
	r.firstErrors.Range(func(k, _ any) bool {
		out = append(out, k.(string))
		return len(out) < 8
	})
	return strings.Join(out, "; ")
}

// runLoad sends total requests from workers goroutines to url, one POST in
// every postEvery (0: none), each with a unique X-Chaos-ID, and calls
// between(i) before request i (to kill a target mid-run, say).
func runLoad(t *testing.T, url string, workers, total, postEvery int, between func(i int)) *loadResult {
	t.Helper()
	res := &loadResult{}
	client := &http.Client{
		Transport: &http.Transport{MaxIdleConnsPerHost: workers, DisableCompression: true},
		Timeout:   10 * time.Second,
	}
	defer client.CloseIdleConnections()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= total {
					return
				}
				if between != nil {
					between(i)
				}
				method := http.MethodGet
				var body io.Reader
				if postEvery > 0 && i%postEvery == 0 {
					method = http.MethodPost
					body = strings.NewReader(fmt.Sprintf(`{"order":%d}`, i))
					res.posts.Add(1)
				} else {
					res.gets.Add(1)
				}
				req, err := http.NewRequest(method, url, body)
				if err != nil {
					t.Error(err)
					return
				}
				req.Header.Set("X-Chaos-ID", fmt.Sprintf("%s-%d", strings.ToLower(method), i))
				resp, err := client.Do(req)
				if err != nil {
					res.fail(method, err.Error())
					continue
				}
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				switch {
				case err != nil:
					res.fail(method, "body: "+err.Error())
				case resp.StatusCode >= 500:
					res.fail(method, fmt.Sprintf("status %d %s", resp.StatusCode, resp.Header.Get("Proxy-Status")))
				}
			}
		}()
	}
	wg.Wait()
	return res
}

// duplicatePOSTs counts the POSTs that reached the upstreams more than
// once, across all of them. (A GET may be sent again: it is idempotent.)
func duplicatePOSTs(servers ...*faults.Server) (dups int, sample []string) {
	total := map[string]int{}
	for _, s := range servers {
		for id, n := range s.Seen() {
			if strings.HasPrefix(id, "post-") {
				total[id] += n
			}
		}
	}
	for id, n := range total {
		if n > 1 {
			dups++
			if len(sample) < 5 {
				sample = append(sample, fmt.Sprintf("%s×%d", id, n))
			}
		}
	}
	return dups, sample
}

// TestChaos runs steady load through three misbehaving targets: one killed
// a third of the way through, one resetting every third connection, one
// hanging. No GET may fail, no POST may reach the upstreams twice, and the
// hanging target must be ejected.
func TestChaos(t *testing.T) {
	// Not parallel: on a 2-core machine running the other integration
	// tests at the same time, starved healthy targets would time out too.
	start := func(name string, modes ...faults.Mode) *faults.Server {
		s, err := faults.Start(name, modes...)
		if err != nil {
			t.Fatal(err)
		}
		s.IDHeader = "X-Chaos-ID"
		t.Cleanup(s.Close)
		return s
	}
	killed := start("killed", faults.OK)
	resetting := start("resetting", faults.OK)
	resetting.ResetEveryNthConn = 3
	hanging := start("hanging", faults.Hang)

	cfg := oneTargetConfig(killed.URL(), resetting.URL(), hanging.URL())
	p := cfg.Pools["app"]
	p.Timeouts.ResponseHeader.Duration = time.Second
	p.Retry.PerTryTimeout.Duration = time.Second
	// Four tries in all (HAProxy's "retries 3"): with two of three targets
	// broken and the third resetting now and then, three tries can all
	// land on a failure about once in a few thousand requests.
	p.Retry.Attempts = 4
	cfg.AccessLog = "off"
	g := startGateway(t, cfg)

	const total = 3000
	var once sync.Once
	res := runLoad(t, g.url+"/orders", 8, total, 5, func(i int) {
		if i == total/3 {
			once.Do(killed.Close)
		}
	})
	t.Logf("%d GETs (%d failed), %d POSTs (%d failed); upstreams served: killed %d, resetting %d, hanging %d",
		res.gets.Load(), res.getErrors.Load(), res.posts.Load(), res.postErrors.Load(), killed.Served(), resetting.Served(), hanging.Served())
	if n := res.getErrors.Load(); n != 0 {
		t.Errorf("client-visible GET errors: got %d, want 0 (%s)", n, res.errorSample())
	}
	if dups, sample := duplicatePOSTs(killed, resetting, hanging); dups != 0 {
		t.Errorf("POSTs delivered twice: got %d, want 0 (%v)", dups, sample)
	}
	m := g.metrics(t)
	if !strings.Contains(m, fmt.Sprintf(`gatewise_upstream_ejections_total{cause="http_response_timeout",pool="app",target=%q}`, hanging.Addr())) {
		t.Errorf("the hanging target was not ejected for timeouts; metrics:\n%s", grepLines(m, "gatewise_upstream_ejections_total"))
	}
	if !strings.Contains(m, "gatewise_retries_total") {
		t.Errorf("no retries counted")
	}
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// idleClosingUpstream is a server that closes keep-alive connections after
// idle of d without announcing it (no Keep-Alive header), as Node's
// default keepAliveTimeout does after 5s.
func idleClosingUpstream(t *testing.T, d time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		IdleTimeout: d,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			_, _ = io.WriteString(w, "ok\n")
		}),
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}

// idleGapLoad sends total requests (POSTs with a body, or GETs) from
// workers goroutines, each worker pausing a gap within 3ms of idle
// between its requests, so connections are reused just as the upstream
// closes them.
func idleGapLoad(t *testing.T, method, url string, workers, total int, idle time.Duration, client *http.Client) (errs int64, sample string) {
	t.Helper()
	var failed atomic.Int64
	var first atomic.Value
	var wg sync.WaitGroup
	per := total / workers
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				// Within 3ms either side of the timeout: the request
				// reaches the upstream just as it closes the connection.
				gap := idle - 3*time.Millisecond + time.Duration((w*7919+i*104729)%6000)*time.Microsecond
				time.Sleep(gap)
				var resp *http.Response
				var err error
				if method == http.MethodGet {
					resp, err = client.Get(url)
				} else {
					resp, err = client.Post(url, "application/json", strings.NewReader(`{"n":1}`))
				}
				if err != nil {
					failed.Add(1)
					first.CompareAndSwap(nil, err.Error())
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
					first.CompareAndSwap(nil, resp.Status+" "+resp.Header.Get("Proxy-Status"))
				}
			}
		}()
	}
	wg.Wait()
	s, _ := first.Load().(string)
	return failed.Load(), s
}

// TestIdleTimeoutRace sends POSTs with idle gaps close to the upstream's
// silent idle timeout: the gateway learns the timeout and retires pooled
// connections before it, so no request is sent on a connection being
// closed; a plain httputil.ReverseProxy in the same conditions fails some.
// 500 clients with gaps of about a second send the 10,000 requests in
// about 20 seconds.
func TestIdleTimeoutRace(t *testing.T) {
	// Not parallel: 1,000 clients; it would starve the other tests.
	const idle = time.Second
	const workers, total = 500, 10_000

	plainUp := idleClosingUpstream(t, idle)
	u, _ := url.Parse(plainUp)
	// Both proxies keep an idle connection per client, so every request
	// reuses one.
	plain := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(u) }, ErrorLog: discardLog(),
		Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	plainLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	plainSrv := &http.Server{Handler: plain}
	go func() { _ = plainSrv.Serve(plainLn) }()
	t.Cleanup(func() { _ = plainSrv.Close() })

	cfg := oneTargetConfig(idleClosingUpstream(t, idle))
	cfg.AccessLog = "off"
	cfg.Pools["app"].MaxIdlePerTarget = workers
	noLimit := 0
	cfg.Limits.MaxConnsPerIP = &noLimit // 500 clients share 127.0.0.1
	// The adaptive concurrency limit starts low and queues the first
	// bursts of 500 for a few milliseconds; that delay pushes some of the
	// first reuses past the upstream's close before anything is learned.
	// This test is about the keep-alive race alone.
	fixed := false
	cfg.Pools["app"].Concurrency.Adaptive = &fixed
	g := startGateway(t, cfg)

	client := func() *http.Client {
		return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}, Timeout: 10 * time.Second}
	}
	var wg sync.WaitGroup
	var plainErrs, gwErrs int64
	var plainSample, gwSample string
	wg.Add(2)
	go func() {
		defer wg.Done()
		plainErrs, plainSample = idleGapLoad(t, http.MethodPost, "http://"+plainLn.Addr().String()+"/", workers, total, idle, client())
	}()
	go func() {
		defer wg.Done()
		gwErrs, gwSample = idleGapLoad(t, http.MethodPost, g.url+"/", workers, total, idle, client())
	}()
	wg.Wait()
	t.Logf("errors over %d POSTs with idle gaps near %s: plain ReverseProxy %d (%s), gatewise %d", total, idle, plainErrs, plainSample, gwErrs)
	if gwErrs != 0 {
		t.Errorf("gatewise: got %d errors, want 0 (first: %s)", gwErrs, gwSample)
	}
	if plainErrs == 0 {
		t.Errorf("the plain proxy saw no error: the test did not produce the keep-alive race, so it proves nothing")
	}
	m := g.metrics(t)
	if !strings.Contains(m, "gatewise_upstream_learned_idle_timeout_seconds") {
		t.Errorf("no learned idle timeout exported")
	}
}

// TestKeepAliveRaceGETs sends GETs that reuse pooled connections just as
// the upstream closes them, with the learning of its idle timeout and the
// retries off: the transport sends each GET that met a closed connection
// again on a new one, so every GET is answered, and the resends are
// counted. 50 clients send 1,500 GETs in about 3 seconds.
func TestKeepAliveRaceGETs(t *testing.T) {
	t.Parallel()
	const idle = 100 * time.Millisecond
	const workers, total = 50, 1500
	cfg := oneTargetConfig(idleClosingUpstream(t, idle))
	cfg.AccessLog = "off"
	p := cfg.Pools["app"]
	p.MaxIdlePerTarget = workers
	learn, adaptive := false, false
	p.LearnIdleTimeout = &learn
	p.Concurrency.Adaptive = &adaptive
	p.Retry.Attempts = 1 // no retries: only the resend can save a GET
	noLimit := 0
	cfg.Limits.MaxConnsPerIP = &noLimit
	g := startGateway(t, cfg)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}, Timeout: 10 * time.Second}
	errs, sample := idleGapLoad(t, http.MethodGet, g.url+"/", workers, total, idle, client)
	resends := metricValue(t, g.metrics(t), "gatewise_upstream_resends_total")
	t.Logf("%d GETs with idle gaps near the upstream's %s: %d errors, %v resends", total, idle, errs, resends)
	if errs != 0 {
		t.Errorf("got %d errors, want 0 (first: %s)", errs, sample)
	}
	if resends == 0 {
		t.Errorf("no resend counted: the test did not produce the keep-alive race, so it proves nothing")
	}
}

// TestSteadyLoadReusesConnections keeps more requests in flight to one
// target than max_idle_per_target: the connections past the count come
// back to the pool as a surplus and are reused, instead of being closed
// after each request and dialled again for the next (a socket left in
// TIME_WAIT per request). 24 clients send 960 GETs to an upstream that
// takes 2ms each, with 4 idle connections kept.
func TestSteadyLoadReusesConnections(t *testing.T) {
	t.Parallel()
	const workers, total, kept = 24, 960, 4
	var accepted atomic.Int64
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	up := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(2 * time.Millisecond)
			_, _ = io.WriteString(w, "ok\n")
		}),
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				accepted.Add(1)
			}
		},
	}
	go func() { _ = up.Serve(ln) }()
	t.Cleanup(func() { _ = up.Close() })

	cfg := oneTargetConfig("http://" + ln.Addr().String())
	cfg.AccessLog = "off"
	cfg.Pools["app"].MaxIdlePerTarget = kept
	noLimit := 0
	cfg.Limits.MaxConnsPerIP = &noLimit
	g := startGateway(t, cfg)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}, Timeout: 10 * time.Second}
	errs, sample := idleGapLoad(t, http.MethodGet, g.url+"/", workers, total, 0, client)
	if errs != 0 {
		t.Fatalf("got %d errors, want 0 (first: %s)", errs, sample)
	}
	opened := metricValue(t, g.metrics(t), "gatewise_upstream_connections_opened_total")
	t.Logf("%d GETs from %d clients, %d idle kept: %v connections opened, %d accepted by the upstream",
		total, workers, kept, opened, accepted.Load())
	if opened > 2*workers || accepted.Load() > 2*workers {
		t.Errorf("%v connections opened (%d accepted) for %d clients: want at most %d, the surplus reused",
			opened, accepted.Load(), workers, 2*workers)
	}
	if opened < kept+1 || float64(accepted.Load()) != opened {
		t.Errorf("%v connections opened, %d accepted: want more than the %d kept (the load needs them), and the same count",
			opened, accepted.Load(), kept)
	}
}

// metricValue sums the samples of the metric name in a Prometheus text
// exposition.
func metricValue(t *testing.T, exposition, name string) float64 {
	t.Helper()
	var sum float64
	for _, l := range strings.Split(exposition, "\n") {
		if !strings.HasPrefix(l, name+"{") && !strings.HasPrefix(l, name+" ") {
			continue
		}
		f := strings.Fields(l)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", l, err)
		}
		sum += v
	}
	return sum
}

func discardLog() *log.Logger { return log.New(io.Discard, "", 0) }

// TestFullOutage checks a pool whose every target is down: answers are 503
// no_healthy_upstream with Retry-After, retries stay within the budget,
// and recovery is noticed within a health interval or so.
func TestFullOutage(t *testing.T) {
	t.Parallel()
	var addrs []string
	for range 3 {
		a, err := faults.DeadAddr()
		if err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, a)
	}
	cfg := oneTargetConfig("http://"+addrs[0], "http://"+addrs[1], "http://"+addrs[2])
	p := cfg.Pools["app"]
	interval := 200 * time.Millisecond
	p.Health = &config.HealthCheck{Path: "/", Interval: config.Duration{Duration: interval}, Timeout: config.Duration{Duration: 100 * time.Millisecond},
		ExpectStatus: []string{"2xx"}, Rise: 1, Fall: 1}
	cfg.AccessLog = "off"
	g := startGateway(t, cfg)

	const requests = 400
	var statuses sync.Map
	var retryAfterMissing atomic.Int64
	var wg sync.WaitGroup
	var next atomic.Int64
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= requests {
				resp, err := http.Get(g.url + "/")
				if err != nil {
					statuses.Store("error: "+err.Error(), true)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				statuses.Store(fmt.Sprintf("%d %s", resp.StatusCode, resp.Header.Get("Proxy-Status")), true)
				if resp.Header.Get("Retry-After") == "" {
					retryAfterMissing.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	statuses.Range(func(k, _ any) bool {
		if !strings.HasPrefix(k.(string), "503 ") || !strings.Contains(k.(string), "no_healthy_upstream") {
			t.Errorf("answer during the outage: got %q, want 503 no_healthy_upstream", k)
		}
		return true
	})
	if n := retryAfterMissing.Load(); n != 0 {
		t.Errorf("%d answers without Retry-After", n)
	}
	m := g.metrics(t)
	retries := sumMetric(m, "gatewise_retries_total{")
	// The budget: 20% of requests plus 3 per second over its 10s window.
	if limit := requests*20/100 + 3*10; retries > float64(limit) {
		t.Errorf("retries during the outage: got %v, want at most %d (the budget)", retries, limit)
	}
	t.Logf("retries during the outage of %d requests: %v", requests, retries)

	// Recovery: one target comes back on its old address.
	ln, err := net.Listen("tcp", addrs[1])
	if err != nil {
		t.Fatalf("could not rebind %s to bring a target back (another process took the port?): %v", addrs[1], err)
	}
	up := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "back\n") })}
	go func() { _ = up.Serve(ln) }()
	t.Cleanup(func() { _ = up.Close() })
	back := time.Now()
	deadline := back.Add(5 * interval)
	for {
		resp, err := http.Get(g.url + "/")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("recovery not noticed within %s of the target's return", 5*interval)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("recovery noticed %s after the target came back (health interval %s)", time.Since(back).Round(time.Millisecond), interval)
}

// sumMetric adds the values of every sample line starting with prefix.
func sumMetric(m, prefix string) float64 {
	var sum float64
	for _, l := range strings.Split(m, "\n") {
		if strings.HasPrefix(l, prefix) {
			var v float64
			if i := strings.LastIndexByte(l, ' '); i > 0 {
				_, _ = fmt.Sscan(l[i+1:], &v)
			}
			sum += v
		}
	}
	return sum
}

// resetFirstListener resets the first connection it accepts (a restarting
// upstream) and hands over the rest.
type resetFirstListener struct {
	net.Listener
	once sync.Once
}

func (l *resetFirstListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		first := false
		l.once.Do(func() { first = true })
		if !first {
			return c, nil
		}
		// Read the request, then reset: the gateway sees its request
		// cut, a failure worth another try over a new connection.
		_, _ = c.Read(make([]byte, 4096))
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		_ = c.Close()
	}
}

// TestRetryBackToCutTarget: a GET whose first try was cut by one target
// and whose second timed out on the only other goes back to the first (it
// is up, and its failure was a cut connection) rather than failing with
// every target tried.
func TestRetryBackToCutTarget(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	restarting := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "served\n")
	})}
	go func() { _ = restarting.Serve(&resetFirstListener{Listener: ln}) }()
	t.Cleanup(func() { _ = restarting.Close() })
	hanging, err := faults.Start("hanging", faults.Hang)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hanging.Close)

	cfg := oneTargetConfig("http://"+ln.Addr().String(), hanging.URL())
	p := cfg.Pools["app"]
	p.Policy = "round_robin" // the first pick is the first target
	p.Timeouts.ResponseHeader.Duration = 300 * time.Millisecond
	g := startGateway(t, cfg)
	res, err := http.Get(g.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || string(body) != "served\n" {
		t.Fatalf("got %d %q (%s), want 200 from the restarted target", res.StatusCode, body, res.Header.Get("Proxy-Status"))
	}
	if n := hanging.Served(); n != 1 {
		t.Errorf("the hanging target got %d requests, want 1 (the second try)", n)
	}
}
