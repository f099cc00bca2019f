package server_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gatewise/gatewise/internal/config"
)

// tlsGateway starts a gateway whose one listener is TLS, in front of
// upstream, and returns it with a pool that trusts its certificate.
func tlsGateway(t *testing.T, upstream string, edit func(*config.Config)) (*gateway, *tls.Config) {
	t.Helper()
	certFile, keyFile, roots := selfSignedCert(t)
	cfg := oneTargetConfig(upstream)
	cfg.Listeners[0].TLS = &config.ListenerTLS{Cert: certFile, Key: keyFile}
	if edit != nil {
		edit(cfg)
	}
	return startGateway(t, cfg), &tls.Config{RootCAs: roots}
}

// TestHTTP1OverTLS checks that HTTP/1.1 over TLS (chosen by ALPN, or with
// no ALPN at all) is served by h1server, as plain listeners are: keep-alive
// works, the request counts as HTTPS (X-Forwarded-Proto), and the answer
// gets no Content-Type the upstream did not send, where net/http's server
// would sniff one.
func TestHTTP1OverTLS(t *testing.T) {
	t.Parallel()
	up := rawUpstream(t, "HTTP/1.1 200 OK\r\nContent-Length: 6\r\nX-Seen: yes\r\n\r\nhello\n", false)
	g, tlsConfig := tlsGateway(t, up, nil)
	echo := startEcho(t, "app")
	gEcho, echoTLS := tlsGateway(t, echo, nil)

	t.Run("ALPN http/1.1", func(t *testing.T) {
		t.Parallel()
		cfg := tlsConfig.Clone()
		cfg.NextProtos = []string{"http/1.1"}
		tr := &http.Transport{TLSClientConfig: cfg, MaxConnsPerHost: 1}
		defer tr.CloseIdleConnections()
		client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		for i := range 3 {
			res, err := client.Get(g.url + "/tls")
			if err != nil {
				t.Fatalf("GET %d: %v", i, err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK || string(body) != "hello\n" {
				t.Fatalf("GET %d: got %d %q, want 200 \"hello\\n\"", i, res.StatusCode, body)
			}
			if res.ProtoMajor != 1 || res.TLS == nil || res.TLS.NegotiatedProtocol != "http/1.1" {
				t.Fatalf("GET %d: got %s with ALPN %v, want HTTP/1.1 chosen by ALPN", i, res.Proto, res.TLS)
			}
			if ct, ok := res.Header["Content-Type"]; ok {
				t.Errorf("GET %d: the answer has Content-Type %q, which the upstream did not send (net/http's server sniffs one; h1server does not)", i, ct)
			}
			if res.Header.Get("X-Seen") != "yes" {
				t.Errorf("GET %d: the upstream's field is missing", i)
			}
		}
	})

	t.Run("X-Forwarded-Proto", func(t *testing.T) {
		t.Parallel()
		cfg := echoTLS.Clone()
		cfg.NextProtos = []string{"http/1.1"}
		tr := &http.Transport{TLSClientConfig: cfg}
		defer tr.CloseIdleConnections()
		client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		res, err := client.Get(gEcho.url + "/proto")
		if err != nil {
			t.Fatal(err)
		}
		e := decodeEcho(t, res)
		if got := e.Header.Get("X-Forwarded-Proto"); got != "https" {
			t.Errorf("upstream X-Forwarded-Proto: got %q, want \"https\" (the request must carry its TLS state)", got)
		}
		if got := e.Header.Get("Via"); got != "1.1 gatewise" {
			t.Errorf("upstream Via: got %q, want \"1.1 gatewise\"", got)
		}
	})

	t.Run("no ALPN", func(t *testing.T) {
		t.Parallel()
		c, err := tls.Dial("tcp", strings.TrimPrefix(g.url, "https://"), tlsConfig)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if p := c.ConnectionState().NegotiatedProtocol; p != "" {
			t.Fatalf("negotiated %q without offering ALPN", p)
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(c)
		for i := range 2 {
			if _, err := io.WriteString(c, "GET /noalpn HTTP/1.1\r\nHost: site.example\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			res, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("answer %d: %v", i, err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK || string(body) != "hello\n" {
				t.Fatalf("answer %d: got %d %q", i, res.StatusCode, body)
			}
		}
	})
}

// TestTLSHandshakes checks the handshakes the TLS listener refuses: a
// client that sends nothing is closed after limits.read_header_timeout, a
// client that speaks plain HTTP gets a 400 that says so (as from net/http)
// and is closed with the failure logged at DEBUG, and the listener goes on
// serving.
func TestTLSHandshakes(t *testing.T) {
	t.Parallel()
	g, tlsConfig := tlsGateway(t, startEcho(t, "app"), func(c *config.Config) {
		c.Limits.ReadHeaderTimeout = config.Duration{Duration: 300 * time.Millisecond}
	})
	addr := strings.TrimPrefix(g.url, "https://")

	t.Run("silent", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// Far longer than the timeout: a read that ends before it is the
		// gateway's close.
		_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
		var b [1]byte
		if _, err := c.Read(b[:]); err == nil || errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
			t.Fatalf("read on a silent connection: got %v, want the gateway to close it", err)
		}
	})

	t.Run("plain HTTP", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(c)
		if isTimeout(err) {
			t.Fatalf("the gateway did not close a connection that sent plain HTTP (got %q)", b)
		}
		if !strings.HasPrefix(string(b), "HTTP/1.0 400 Bad Request\r\n") || !strings.Contains(string(b), "Client sent an HTTP request to an HTTPS server.") {
			t.Errorf("answer to plain HTTP on the TLS listener: got %q, want a 400 that says so", b)
		}
		waitFor(t, "the handshake failure logged", func() bool {
			return strings.Contains(g.log.String(), "TLS handshake error")
		})
	})

	res, err := (&http.Client{Transport: &http.Transport{TLSClientConfig: tlsConfig}, Timeout: 10 * time.Second}).Get(g.url + "/after")
	if err != nil {
		t.Fatalf("GET after the refused handshakes: %v", err)
	}
	if e := decodeEcho(t, res); e.Path != "/after" {
		t.Errorf("upstream path: got %q", e.Path)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestTLSShutdown checks that Shutdown lets a request in flight over TLS
// finish, over HTTP/1.1 and over HTTP/2, and then stops the listener.
func TestTLSShutdown(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	arrived := make(chan struct{}, 2)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		_, _ = io.WriteString(w, "done\n")
	}))
	t.Cleanup(up.Close)
	certFile, keyFile, roots := selfSignedCert(t)
	cfg := oneTargetConfig(up.URL)
	cfg.Listeners[0].TLS = &config.ListenerTLS{Cert: certFile, Key: keyFile}
	srv := startOwnShutdown(t, cfg)
	url := "https://" + srv.Addrs()[0].String()

	type result struct {
		proto string
		body  string
		err   error
	}
	results := make(chan result, 2)
	for _, h2 := range []bool{false, true} {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: h2}
		if !h2 {
			tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
		}
		t.Cleanup(tr.CloseIdleConnections)
		go func() {
			res, err := (&http.Client{Transport: tr, Timeout: 20 * time.Second}).Get(url + "/slow")
			if err != nil {
				results <- result{err: err}
				return
			}
			b, err := io.ReadAll(res.Body)
			res.Body.Close()
			results <- result{proto: res.Proto, body: string(b), err: err}
		}()
	}
	<-arrived
	<-arrived
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		done <- srv.Shutdown(ctx)
	}()
	// The listener stops taking connections while the requests run.
	waitFor(t, "the listener to close", func() bool {
		c, err := net.DialTimeout("tcp", strings.TrimPrefix(url, "https://"), time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	close(release)
	protos := map[string]bool{}
	for range 2 {
		r := <-results
		if r.err != nil || r.body != "done\n" {
			t.Errorf("request in flight at shutdown: got %q, %v; want \"done\\n\"", r.body, r.err)
		}
		protos[r.proto] = true
	}
	if !protos["HTTP/1.1"] || !protos["HTTP/2.0"] {
		t.Errorf("protocols of the requests: got %v, want HTTP/1.1 and HTTP/2.0", protos)
	}
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}
