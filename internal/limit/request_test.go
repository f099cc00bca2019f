package limit

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatewise/gatewise/internal/cause"
)

func TestCheckRequest(t *testing.T) {
	t.Parallel()
	limits := RequestLimits{MaxHeaderCount: 3, MaxURIBytes: 20, MaxBodyBytes: 100}
	withHeaders := func(n int, sameName bool) http.Header {
		h := http.Header{}
		for i := range n {
			name := "X-H" + strconv.Itoa(i)
			if sameName {
				name = "Cookie"
			}
			h.Add(name, "v")
		}
		return h
	}
	tests := []struct {
		desc     string
		uri      string
		header   http.Header
		length   int64
		limits   RequestLimits
		want     cause.ID // "" for no error
		wantErr  error
		wantNote string // the Detail
	}{
		{desc: "within every limit", uri: "/a?b=c", header: withHeaders(3, false), length: 100, limits: limits},
		{desc: "zero limits: no limit", uri: "/" + strings.Repeat("a", 10000), header: withHeaders(500, false), length: 1 << 40},
		{desc: "unknown length (chunked) is for LimitBody", uri: "/", length: -1, limits: limits},
		{desc: "URI at the limit", uri: "/" + strings.Repeat("a", 19), limits: limits},
		{desc: "URI over the limit", uri: "/" + strings.Repeat("a", 20), limits: limits, want: cause.URITooLong, wantErr: ErrURITooLong},
		{desc: "query counts in the URI", uri: "/a?" + strings.Repeat("q", 18), limits: limits, want: cause.URITooLong, wantErr: ErrURITooLong},
		{desc: "absolute form (to a proxy) counts as sent", uri: "http://example.com/abc", limits: limits, want: cause.URITooLong, wantErr: ErrURITooLong},
		{desc: "too many header fields", uri: "/", header: withHeaders(4, false), limits: limits, want: cause.RequestHeaderTooLarge, wantErr: ErrTooManyHeaders, wantNote: "too many fields"},
		{desc: "each value of a repeated field counts", uri: "/", header: withHeaders(4, true), limits: limits, want: cause.RequestHeaderTooLarge, wantErr: ErrTooManyHeaders, wantNote: "too many fields"},
		// "POST / HTTP/1.1\r\n", "Host: example.com\r\n" and the final CRLF are
		// 38 bytes; "X-Big: " + value + CRLF is 9 more than the value.
		{desc: "header section at its size limit", uri: "/", header: http.Header{"X-Big": {strings.Repeat("a", 53)}},
			limits: RequestLimits{MaxHeaderBytes: 100}},
		{desc: "header section over its size limit", uri: "/", header: http.Header{"X-Big": {strings.Repeat("a", 54)}},
			limits: RequestLimits{MaxHeaderBytes: 100}, want: cause.RequestHeaderTooLarge, wantErr: ErrHeaderTooLarge, wantNote: "too large"},
		{desc: "announced body over the limit", uri: "/", length: 101, limits: limits, want: cause.RequestBodyTooLarge, wantErr: ErrBodyTooLarge, wantNote: "announced"},
		{desc: "URI checked first", uri: "/" + strings.Repeat("a", 30), header: withHeaders(10, false), length: 1000, limits: limits, want: cause.URITooLong, wantErr: ErrURITooLong},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(http.MethodPost, tt.uri, nil) // origin form: RequestURI is tt.uri
			if tt.header != nil {
				r.Header = tt.header
			}
			r.ContentLength = tt.length
			ce := CheckRequest(r, tt.limits)
			var got cause.ID
			if ce != nil {
				got = ce.ID
			}
			if got != tt.want {
				t.Fatalf("CheckRequest = %v, want cause %q", ce, tt.want)
			}
			if ce == nil {
				return
			}
			if !errors.Is(ce, tt.wantErr) {
				t.Errorf("error %v does not wrap %v", ce, tt.wantErr)
			}
			if ce.Detail != tt.wantNote {
				t.Errorf("Detail = %q, want %q", ce.Detail, tt.wantNote)
			}
		})
	}
}

func TestCheckRequestWithoutRequestURI(t *testing.T) {
	t.Parallel()
	// A request built in code (not by the server) has no RequestURI: the
	// URL's is measured.
	r, err := http.NewRequest(http.MethodGet, "http://example.com/"+strings.Repeat("a", 30)+"?q=1", nil)
	if err != nil {
		t.Fatal(err)
	}
	ce := CheckRequest(r, RequestLimits{MaxURIBytes: 20})
	if ce == nil || ce.ID != cause.URITooLong {
		t.Errorf("CheckRequest = %v, want %s", ce, cause.URITooLong)
	}
}

// bodyResult is what the test handler read of a limited body.
type bodyResult struct {
	n       int64
	err     error
	elapsed time.Duration
	ctxErr  error // the request context's error after the read
}

// limitedBodyServer runs a real server whose handler limits the body,
// reads it all, answers with the cause's status (200 when none) and sends
// what it read on results.
func limitedBodyServer(t *testing.T, l RequestLimits, afterRead time.Duration) (*httptest.Server, chan bodyResult) {
	t.Helper()
	results := make(chan bodyResult, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		LimitBody(w, r, l)
		start := time.Now()
		n, err := io.Copy(io.Discard, r.Body)
		elapsed := time.Since(start)
		time.Sleep(afterRead)
		results <- bodyResult{n: n, err: err, elapsed: elapsed, ctxErr: r.Context().Err()}
		if ce, ok := cause.Of(err); ok {
			w.Header().Set("Connection", "close")
			w.WriteHeader(cause.NewTable().Get(ce.ID).Status)
			return
		}
		if err != nil {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "%d", n)
	}))
	t.Cleanup(srv.Close)
	return srv, results
}

// onlyReader hides a reader's type so the client sends it chunked.
type onlyReader struct{ io.Reader }

func TestLimitBodySize(t *testing.T) {
	t.Parallel()
	const max = 1000
	tests := []struct {
		desc    string
		size    int
		chunked bool
		want    cause.ID
		status  int
	}{
		{desc: "announced, within", size: max, status: 200},
		{desc: "announced, over", size: max + 1, want: cause.RequestBodyTooLarge, status: 413},
		{desc: "chunked, within", size: max, chunked: true, status: 200},
		{desc: "chunked, over", size: max + 1, chunked: true, want: cause.RequestBodyTooLarge, status: 413},
		{desc: "chunked, far over", size: 10 << 20, chunked: true, want: cause.RequestBodyTooLarge, status: 413},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			srv, results := limitedBodyServer(t, RequestLimits{MaxBodyBytes: max, BodyReadTimeout: 5 * time.Second}, 0)
			var body io.Reader = strings.NewReader(strings.Repeat("x", tt.size))
			if tt.chunked {
				body = onlyReader{body}
			}
			req, err := http.NewRequest(http.MethodPost, srv.URL, body)
			if err != nil {
				t.Fatal(err)
			}
			res, err := srv.Client().Do(req)
			var got bodyResult
			select {
			case got = <-results:
			case <-time.After(connTestTimeout):
				t.Fatal("handler did not finish")
			}
			if err == nil {
				res.Body.Close()
				if res.StatusCode != tt.status {
					t.Errorf("status = %d, want %d", res.StatusCode, tt.status)
				}
			} else if tt.want == "" {
				// The server may close before the client has sent all of
				// an oversized body; a body within the limit must get
				// its answer.
				t.Fatalf("request: %v", err)
			}
			ce, _ := cause.Of(got.err)
			var gotID cause.ID
			if ce != nil {
				gotID = ce.ID
			}
			if gotID != tt.want {
				t.Fatalf("read error = %v, want cause %q", got.err, tt.want)
			}
			if tt.want == "" {
				if got.n != int64(tt.size) {
					t.Errorf("read %d bytes, want %d", got.n, tt.size)
				}
				return
			}
			if got.n != max {
				t.Errorf("read %d bytes before the error, want the %d allowed", got.n, max)
			}
			if !errors.Is(got.err, ErrBodyTooLarge) {
				t.Errorf("error %v does not wrap ErrBodyTooLarge", got.err)
			}
			var mbe *http.MaxBytesError
			if !errors.As(got.err, &mbe) || mbe.Limit != max {
				t.Errorf("error %v does not wrap *http.MaxBytesError with limit %d", got.err, max)
			}
		})
	}
}

// slowClient sends a request head announcing length bytes of body, then
// the body as chunks with pauses between them (a pause after a chunk: the
// last pause is a stall), and returns the response's status line.
func slowClient(t *testing.T, addr string, length int, chunks []string, pauses []time.Duration) (string, error) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * connTestTimeout))
	if _, err := fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: test\r\nContent-Length: %d\r\n\r\n", length); err != nil {
		return "", err
	}
	status := make(chan string, 1)
	go func() {
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			line = "error: " + err.Error()
		}
		status <- strings.TrimSpace(line)
	}()
	for i, chunk := range chunks {
		if _, err := io.WriteString(c, chunk); err != nil {
			break // the server gave up on us: read its answer
		}
		select {
		case s := <-status:
			return s, nil
		case <-time.After(pauses[i]):
		}
	}
	return <-status, nil
}

func TestLimitBodySlow(t *testing.T) {
	t.Parallel()
	const timeout = 300 * time.Millisecond
	tests := []struct {
		desc       string
		length     int
		chunks     []string
		pauses     []time.Duration
		want       cause.ID
		wantStatus string
		wantN      int64
	}{
		{
			desc: "a few bytes then a stall", length: 100,
			chunks: []string{"abc"}, pauses: []time.Duration{2 * connTestTimeout},
			want: cause.ClientTimeout, wantStatus: "HTTP/1.1 408 Request Timeout", wantN: 3,
		},
		{
			desc: "nothing at all", length: 100,
			chunks: []string{""}, pauses: []time.Duration{2 * connTestTimeout},
			want: cause.ClientTimeout, wantStatus: "HTTP/1.1 408 Request Timeout", wantN: 0,
		},
		{
			desc: "slow but steady: each byte within the timeout", length: 8,
			chunks:     strings.Split("abcdefgh", ""),
			pauses:     []time.Duration{timeout / 3, timeout / 3, timeout / 3, timeout / 3, timeout / 3, timeout / 3, timeout / 3, 2 * connTestTimeout},
			wantStatus: "HTTP/1.1 200 OK", wantN: 8,
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			srv, results := limitedBodyServer(t, RequestLimits{MaxBodyBytes: 1 << 20, BodyReadTimeout: timeout}, 0)
			status, err := slowClient(t, srv.Listener.Addr().String(), tt.length, tt.chunks, tt.pauses)
			if err != nil {
				t.Fatalf("client: %v", err)
			}
			got := <-results
			ce, _ := cause.Of(got.err)
			var gotID cause.ID
			if ce != nil {
				gotID = ce.ID
			}
			if gotID != tt.want {
				t.Fatalf("read error = %v, want cause %q", got.err, tt.want)
			}
			if got.n != tt.wantN {
				t.Errorf("read %d bytes, want %d", got.n, tt.wantN)
			}
			if status != tt.wantStatus {
				t.Errorf("client got %q, want %q", status, tt.wantStatus)
			}
			if tt.want == "" {
				return
			}
			if !errors.Is(got.err, ErrBodyTimeout) {
				t.Errorf("error %v does not wrap ErrBodyTimeout", got.err)
			}
			var ne net.Error
			if !errors.As(got.err, &ne) || !ne.Timeout() {
				t.Errorf("error %v does not wrap a timeout net.Error", got.err)
			}
			// Bounded: the stall is noticed one timeout after the last
			// byte, not at the end of the client's pause.
			if got.elapsed < timeout || got.elapsed > timeout+2*time.Second {
				t.Errorf("the stall was noticed after %s, want about %s", got.elapsed, timeout)
			}
		})
	}
}

// TestLimitBodyDeadlineClearedAtEnd checks that the read deadline does not
// outlive a body read to its end: net/http then watches the connection
// for the visitor going away, and a deadline left set would look like it
// and cancel the request while the handler still works (waiting on a slow
// upstream).
func TestLimitBodyDeadlineClearedAtEnd(t *testing.T) {
	t.Parallel()
	const timeout = 100 * time.Millisecond
	srv, results := limitedBodyServer(t, RequestLimits{BodyReadTimeout: timeout}, 4*timeout)
	res, err := srv.Client().Post(srv.URL, "text/plain", strings.NewReader("hello"))
	if err != nil {
		t.Fatalf("POST: %v", err)
	}
	res.Body.Close()
	got := <-results
	if got.err != nil || got.n != 5 {
		t.Fatalf("read %d bytes, %v; want 5, no error", got.n, got.err)
	}
	if got.ctxErr != nil {
		t.Errorf("request context %v after the body ended and %s passed, want alive", got.ctxErr, 4*timeout)
	}
	if res.StatusCode != 200 {
		t.Errorf("status = %d, want 200", res.StatusCode)
	}
}

// TestLimitBodyHTTP2 runs the slow-body and size checks over HTTP/2, where
// the read deadline is per stream.
func TestLimitBodyHTTP2(t *testing.T) {
	t.Parallel()
	const timeout = 300 * time.Millisecond
	results := make(chan bodyResult, 1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		LimitBody(w, r, RequestLimits{MaxBodyBytes: 10, BodyReadTimeout: timeout})
		start := time.Now()
		n, err := io.Copy(io.Discard, r.Body)
		results <- bodyResult{n: n, err: err, elapsed: time.Since(start)}
		if ce, ok := cause.Of(err); ok {
			w.WriteHeader(cause.NewTable().Get(ce.ID).Status)
		}
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)

	tests := []struct {
		desc  string
		body  func(w *io.PipeWriter)
		want  cause.ID
		wantN int64
	}{
		{desc: "stall", want: cause.ClientTimeout, wantN: 3, body: func(w *io.PipeWriter) {
			_, _ = io.WriteString(w, "abc")
		}},
		{desc: "too large", want: cause.RequestBodyTooLarge, wantN: 10, body: func(w *io.PipeWriter) {
			_, _ = io.WriteString(w, strings.Repeat("x", 11))
		}},
		{desc: "within", wantN: 5, body: func(w *io.PipeWriter) {
			_, _ = io.WriteString(w, "hello")
			_ = w.Close()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			// Not parallel: the subtests share the server's results.
			pr, pw := io.Pipe()
			defer pw.Close()
			go tt.body(pw)
			req, err := http.NewRequest(http.MethodPost, srv.URL, pr)
			if err != nil {
				t.Fatal(err)
			}
			res, err := srv.Client().Do(req)
			if err == nil {
				if res.ProtoMajor != 2 {
					t.Fatalf("protocol %s, want HTTP/2", res.Proto)
				}
				res.Body.Close()
			}
			var got bodyResult
			select {
			case got = <-results:
			case <-time.After(connTestTimeout):
				t.Fatal("handler did not finish")
			}
			ce, _ := cause.Of(got.err)
			var gotID cause.ID
			if ce != nil {
				gotID = ce.ID
			}
			if gotID != tt.want || got.n != tt.wantN {
				t.Errorf("read %d bytes, %v; want %d, cause %q", got.n, got.err, tt.wantN, tt.want)
			}
		})
	}
}

// stallingWriter is a ResponseWriter that cannot set read deadlines (no
// Unwrap, no SetReadDeadline), so LimitBody falls back to a timer.
type stallingWriter struct{ http.ResponseWriter }

func TestLimitBodyTimerFallback(t *testing.T) {
	t.Parallel()
	const timeout = 100 * time.Millisecond
	tests := []struct {
		desc  string
		feed  func(w *io.PipeWriter)
		want  cause.ID
		wantN int64
	}{
		{desc: "stall", want: cause.ClientTimeout, wantN: 2, feed: func(w *io.PipeWriter) {
			_, _ = io.WriteString(w, "ab")
		}},
		{desc: "slow but steady", wantN: 3, feed: func(w *io.PipeWriter) {
			for _, s := range []string{"a", "b", "c"} {
				time.Sleep(timeout / 2)
				_, _ = io.WriteString(w, s)
			}
			_ = w.Close()
		}},
		{desc: "too large", want: cause.RequestBodyTooLarge, wantN: 5, feed: func(w *io.PipeWriter) {
			_, _ = io.WriteString(w, "abcdefgh")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			pr, pw := io.Pipe()
			defer pw.Close()
			r := httptest.NewRequest(http.MethodPost, "/", pr)
			w := stallingWriter{httptest.NewRecorder()}
			LimitBody(w, r, RequestLimits{MaxBodyBytes: 5, BodyReadTimeout: timeout})
			go tt.feed(pw)
			n, err := io.Copy(io.Discard, r.Body)
			ce, _ := cause.Of(err)
			var got cause.ID
			if ce != nil {
				got = ce.ID
			}
			if got != tt.want || n != tt.wantN {
				t.Errorf("read %d bytes, %v; want %d, cause %q", n, err, tt.wantN, tt.want)
			}
			// Close must not wait on the read still blocked on the stall.
			closed := make(chan error, 1)
			go func() { closed <- r.Body.Close() }()
			select {
			case <-closed:
			case <-time.After(connTestTimeout):
				t.Fatal("Close blocked")
			}
			if _, err := r.Body.Read(make([]byte, 1)); err == nil {
				t.Errorf("Read after Close: no error")
			}
		})
	}
}

func TestLimitBodyLeavesAlone(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc string
		body io.ReadCloser
		l    RequestLimits
	}{
		{desc: "no body", body: http.NoBody, l: RequestLimits{MaxBodyBytes: 1, BodyReadTimeout: time.Second}},
		{desc: "no limits", body: io.NopCloser(strings.NewReader("x"))},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(http.MethodPost, "/", nil)
			r.Body = tt.body
			LimitBody(httptest.NewRecorder(), r, tt.l)
			if r.Body != tt.body {
				t.Errorf("body replaced by %T, want it left alone", r.Body)
			}
		})
	}
}
