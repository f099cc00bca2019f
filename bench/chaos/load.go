package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// loadConfig is the fixed mix every proxy gets.
type loadConfig struct {
	url           string        // the proxy, http://127.0.0.1:PORT
	run           string        // prefix of the request ids, such as "nginx"
	duration      time.Duration // how long requests are started
	workers       int           // concurrent keep-alive clients
	postPercent   int           // share of POSTs, 0 to 100
	clientTimeout time.Duration // bound of one request, body included
	// atThird is called once at a third of the duration (the kill).
	atThird func()
}

// loadStats is what the clients saw.
type loadStats struct {
	Requests   int64 `json:"requests"`
	GETs       int64 `json:"gets"`
	POSTs      int64 `json:"posts"`
	GETErrors  int64 `json:"get_errors"`
	POSTErrors int64 `json:"post_errors"`
	// Outcomes counts each answer: a status code ("200", "502"), or
	// "transport" (connection error, reset, bad response, body cut) or
	// "client_timeout" (no full answer within the client's bound).
	Outcomes map[string]int64 `json:"outcomes"`
	// ErrorsBySecond counts client-visible errors by the second of the
	// run in which their request started.
	ErrorsBySecond []int64 `json:"errors_by_second"`
	P50            float64 `json:"p50_ms"`
	P90            float64 `json:"p90_ms"`
	P99            float64 `json:"p99_ms"`
	Max            float64 `json:"max_ms"`
	Elapsed        float64 `json:"elapsed_s"`
	PerSecond      float64 `json:"successes_per_second"`

	latencies []time.Duration // of successful requests
}

// successes is how many requests the clients saw succeed.
func (s *loadStats) successes() int64 { return s.Requests - s.GETErrors - s.POSTErrors }

func (s *loadStats) merge(o *loadStats) {
	s.Requests += o.Requests
	s.GETs += o.GETs
	s.POSTs += o.POSTs
	s.GETErrors += o.GETErrors
	s.POSTErrors += o.POSTErrors
	for k, v := range o.Outcomes {
		s.Outcomes[k] += v
	}
	for i, v := range o.ErrorsBySecond {
		s.ErrorsBySecond[i] += v
	}
	s.latencies = append(s.latencies, o.latencies...)
}

func newLoadStats(seconds int) *loadStats {
	return &loadStats{Outcomes: make(map[string]int64), ErrorsBySecond: make([]int64, seconds)}
}

// runLoad runs the mix against cfg.url and returns what the clients saw.
// Workers start requests until cfg.duration has passed or ctx is done; a
// request in flight then finishes within cfg.clientTimeout.
func runLoad(ctx context.Context, cfg loadConfig) *loadStats {
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		MaxIdleConns:          cfg.workers,
		MaxIdleConnsPerHost:   cfg.workers,
		IdleConnTimeout:       30 * time.Second,
		DisableCompression:    true,
		ResponseHeaderTimeout: cfg.clientTimeout,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: cfg.clientTimeout}

	seconds := int((cfg.duration+cfg.clientTimeout)/time.Second) + 2
	start := time.Now()
	deadline := start.Add(cfg.duration)
	if cfg.atThird != nil {
		t := time.AfterFunc(cfg.duration/3, cfg.atThird)
		defer t.Stop()
	}
	results := make(chan *loadStats, cfg.workers)
	for w := range cfg.workers {
		go func() {
			results <- worker(ctx, client, cfg, w, start, deadline, seconds)
		}()
	}
	total := newLoadStats(seconds)
	for range cfg.workers {
		total.merge(<-results)
	}
	elapsed := time.Since(start)
	total.Elapsed = elapsed.Seconds()
	slices.Sort(total.latencies)
	total.P50 = ms(percentile(total.latencies, 50))
	total.P90 = ms(percentile(total.latencies, 90))
	total.P99 = ms(percentile(total.latencies, 99))
	if n := len(total.latencies); n > 0 {
		total.Max = ms(total.latencies[n-1])
		total.PerSecond = float64(n) / elapsed.Seconds()
	}
	// Trim the trailing seconds nobody used.
	last := len(total.ErrorsBySecond)
	for last > 0 && total.ErrorsBySecond[last-1] == 0 && float64(last-1) >= elapsed.Seconds() {
		last--
	}
	total.ErrorsBySecond = total.ErrorsBySecond[:last]
	return total
}

// worker is one keep-alive client sending the mix until the deadline. Its
// GET/POST sequence depends only on its number, so every proxy gets the
// same sequence.
func worker(ctx context.Context, client *http.Client, cfg loadConfig, w int, start, deadline time.Time, seconds int) *loadStats {
	st := newLoadStats(seconds)
	rng := rand.New(rand.NewPCG(0xC4A05, uint64(w)))
	for seq := 0; ctx.Err() == nil && time.Now().Before(deadline); seq++ {
		post := rng.IntN(100) < cfg.postPercent
		id := cfg.run + "-" + strconv.Itoa(w) + "-" + strconv.Itoa(seq)
		began := time.Now()
		outcome, ok := do(ctx, client, cfg.url, id, post)
		took := time.Since(began)
		st.Requests++
		st.Outcomes[outcome]++
		if post {
			st.POSTs++
		} else {
			st.GETs++
		}
		if ok {
			st.latencies = append(st.latencies, took)
			continue
		}
		if post {
			st.POSTErrors++
		} else {
			st.GETErrors++
		}
		sec := min(int(began.Sub(start)/time.Second), seconds-1)
		st.ErrorsBySecond[sec]++
	}
	return st
}

// do sends one request and reports its outcome and whether the client saw
// a success: a full answer with a status below 500.
func do(ctx context.Context, client *http.Client, url, id string, post bool) (string, bool) {
	var req *http.Request
	var err error
	if post {
		body := `{"chaos_id":"` + id + `","items":[1,2,3],"note":"order"}`
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, url+"/orders", strings.NewReader(body))
		if err == nil {
			req.Header.Set("Content-Type", "application/json")
		}
	} else {
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, url+"/items?id="+id, nil)
	}
	if err != nil {
		return "transport", false
	}
	req.Header.Set(chaosHeader, id)
	resp, err := client.Do(req)
	if err != nil {
		return errOutcome(err), false
	}
	_, err = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return errOutcome(err), false
	}
	return strconv.Itoa(resp.StatusCode), resp.StatusCode < 500
}

func errOutcome(err error) string {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return "client_timeout"
	}
	return "transport"
}

// percentile returns the pth percentile (nearest rank) of sorted.
func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p + 99) / 100
	return sorted[max(i-1, 0)]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// fmtMS formats milliseconds for the table.
func fmtMS(v float64, ok bool) string {
	if !ok {
		return "—"
	}
	switch {
	case v < 10:
		return fmt.Sprintf("%.2f ms", v)
	case v < 100:
		return fmt.Sprintf("%.1f ms", v)
	}
	return fmt.Sprintf("%.0f ms", v)
}
