package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"
)

// loadConfig is the open-loop load of one run.
type loadConfig struct {
	url           string        // http://127.0.0.1:PORT
	rate          float64       // requests started per second
	duration      time.Duration // how long requests are started
	warmup        time.Duration // the start left out of the steady p99
	clientTimeout time.Duration // bound of one request, body included
}

// loadStats is what the clients saw.
type loadStats struct {
	Sent     int `json:"sent"`
	Admitted int `json:"admitted"`
	// Refused counts the 429 and 503 answers; WithRetryAfter those of them
	// with a Retry-After header of 1 second or more.
	Refused        int `json:"refused"`
	WithRetryAfter int `json:"refused_with_retry_after"`
	// Other counts every other outcome: other statuses ("502"),
	// "transport" (refused, reset, cut) and "client_timeout".
	Other     map[string]int `json:"other"`
	Goodput   float64        `json:"goodput_per_second"`
	P50       float64        `json:"p50_ms"`
	P99       float64        `json:"p99_ms"`
	SteadyP99 float64        `json:"steady_p99_ms"`
	Max       float64        `json:"max_ms"`
	Elapsed   float64        `json:"elapsed_s"`
}

func (s *loadStats) others() int {
	n := 0
	for _, v := range s.Other {
		n += v
	}
	return n
}

// runLoad starts cfg.rate requests per second for cfg.duration, each on
// schedule whatever the answers before it (an open loop, as visitors
// arrive), and waits for every answer.
func runLoad(ctx context.Context, cfg loadConfig) *loadStats {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		MaxIdleConns:        8192,
		MaxIdleConnsPerHost: 8192,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: cfg.clientTimeout}
	st := &loadStats{Other: map[string]int{}}
	var all, steady []time.Duration
	var mu sync.Mutex
	n := int(cfg.rate * cfg.duration.Seconds())
	every := time.Duration(float64(time.Second) / cfg.rate)
	start := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < n && ctx.Err() == nil; i++ {
		at := start.Add(time.Duration(i) * every)
		if wait := time.Until(at); wait > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(wait):
			}
		}
		st.Sent++
		wg.Go(func() {
			began := time.Now()
			outcome, retryAfter := get(ctx, client, cfg.url)
			took := time.Since(began)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case outcome == "2xx":
				st.Admitted++
				all = append(all, took)
				if at.Sub(start) >= cfg.warmup {
					steady = append(steady, took)
				}
			case outcome == "429" || outcome == "503":
				st.Refused++
				if retryAfter >= 1 {
					st.WithRetryAfter++
				}
			default:
				st.Other[outcome]++
			}
		})
	}
	wg.Wait()
	st.Elapsed = time.Since(start).Seconds()
	slices.Sort(all)
	slices.Sort(steady)
	st.Goodput = float64(st.Admitted) / cfg.duration.Seconds()
	st.P50 = ms(percentile(all, 50))
	st.P99 = ms(percentile(all, 99))
	st.SteadyP99 = ms(percentile(steady, 99))
	st.Max = ms(percentile(all, 100))
	return st
}

// get sends one GET and returns its outcome ("2xx", a status code, or
// "transport" or "client_timeout") and its Retry-After in seconds.
func get(ctx context.Context, client *http.Client, url string) (string, int) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/work", nil)
	if err != nil {
		return "transport", 0
	}
	resp, err := client.Do(req)
	if err != nil {
		return errOutcome(err), 0
	}
	_, err = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return errOutcome(err), 0
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return "2xx", 0
	}
	ra, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
	return strconv.Itoa(resp.StatusCode), ra
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
func fmtMS(v float64) string {
	switch {
	case v < 0.005:
		return "0 ms"
	case v < 10:
		return fmt.Sprintf("%.2f ms", v)
	case v < 1000:
		return fmt.Sprintf("%.0f ms", v)
	}
	return fmt.Sprintf("%.2f s", v/1000)
}
