package server_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/gatewise/gatewise/internal/config"
	"github.com/gatewise/gatewise/internal/faults"
)

// echoed is what an echo upstream saw of a request.
type echoed struct {
	Name   string      `json:"name"`
	Proto  string      `json:"proto"`
	Host   string      `json:"host"`
	Path   string      `json:"path"`
	Header http.Header `json:"header"`
}

// startEcho starts an upstream that answers every request with a JSON
// description of what it received (see echoed), naming itself name.
func startEcho(t *testing.T, name string) string {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(echoed{Name: name, Proto: r.Proto, Host: r.Host, Path: r.URL.Path, Header: r.Header})
	}))
	t.Cleanup(s.Close)
	return s.URL
}

// decodeEcho reads an echo upstream's answer.
func decodeEcho(t *testing.T, res *http.Response) echoed {
	t.Helper()
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status: got %d, want 200 (body %q)", res.StatusCode, b)
	}
	var e echoed
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("echo body is not JSON: %v: %q", err, b)
	}
	return e
}

// selfSignedCert writes a self-signed certificate for 127.0.0.1 and its key
// as PEM files in a temporary directory, and returns their paths and a pool
// that trusts the certificate.
func selfSignedCert(t *testing.T) (certFile, keyFile string, roots *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "gatewise test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	roots = x509.NewCertPool()
	roots.AddCert(cert)
	return certFile, keyFile, roots
}

// TestHTTP2OverTLS checks that a TLS listener offers HTTP/2 by ALPN to curl
// and to Go's client, and that the gateway speaks HTTP/1.1 to the upstream
// while telling it the visitor came over HTTPS with HTTP/2.
func TestHTTP2OverTLS(t *testing.T) {
	t.Parallel()
	certFile, keyFile, roots := selfSignedCert(t)
	cfg := oneTargetConfig(startEcho(t, "app"))
	cfg.Listeners[0].TLS = &config.ListenerTLS{Cert: certFile, Key: keyFile}
	g := startGateway(t, cfg)
	if !strings.HasPrefix(g.url, "https://") {
		t.Fatalf("gateway URL: got %q, want https://", g.url)
	}

	checkUpstream := func(t *testing.T, e echoed) {
		t.Helper()
		if got, want := e.Proto, "HTTP/1.1"; got != want {
			t.Errorf("upstream saw protocol %q, want %q", got, want)
		}
		if got, want := e.Header.Get("X-Forwarded-Proto"), "https"; got != want {
			t.Errorf("upstream X-Forwarded-Proto: got %q, want %q", got, want)
		}
		if got, want := e.Header.Get("X-Forwarded-For"), "127.0.0.1"; got != want {
			t.Errorf("upstream X-Forwarded-For: got %q, want %q", got, want)
		}
		if got := strings.Join(e.Header.Values("Via"), ", "); !strings.Contains(got, "2 gatewise") || strings.Contains(got, "1.1 gatewise") {
			t.Errorf("upstream Via: got %q, want one naming \"2 gatewise\" (the visitor's protocol)", got)
		}
		if got, want := e.Path, "/h2/check"; got != want {
			t.Errorf("upstream path: got %q, want %q", got, want)
		}
	}

	t.Run("curl", func(t *testing.T) {
		t.Parallel()
		curl, err := exec.LookPath("curl")
		if err != nil {
			t.Fatalf("curl not found: apt-get install -y curl (%v)", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		const marker = "\nGATEWISE-HTTP-VERSION="
		// -q first: ignore any ~/.curlrc; --noproxy: never a proxy to loopback.
		cmd := exec.CommandContext(ctx, curl, "-q", "--http2", "-sk", "--noproxy", "*", "-o", "-",
			"-w", marker+"%{http_version}", g.url+"/h2/check")
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("curl: %v: %s", err, stderr.String())
		}
		body, version, ok := strings.Cut(string(out), marker)
		if !ok {
			t.Fatalf("curl output lacks the version marker: %q", out)
		}
		if got, want := version, "2"; got != want {
			t.Errorf("curl http_version: got %q, want %q", got, want)
		}
		var e echoed
		if err := json.Unmarshal([]byte(body), &e); err != nil {
			t.Fatalf("body did not arrive whole: %v: %q", err, body)
		}
		if got, want := e.Name, "app"; got != want {
			t.Errorf("answered by %q, want %q", got, want)
		}
		checkUpstream(t, e)
	})

	t.Run("go client", func(t *testing.T) {
		t.Parallel()
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true}
		defer tr.CloseIdleConnections()
		client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		res, err := client.Get(g.url + "/h2/check")
		if err != nil {
			t.Fatalf("GET: %v", err)
		}
		if got, want := res.ProtoMajor, 2; got != want {
			t.Errorf("response protocol: got %s, want HTTP/2", res.Proto)
		}
		if got, want := res.TLS.NegotiatedProtocol, "h2"; got != want {
			t.Errorf("ALPN: got %q, want %q", got, want)
		}
		// The response's Via names the protocol the gateway received it
		// over: HTTP/1.1 from the upstream.
		if got := res.Header.Get("Via"); !strings.Contains(got, "1.1 gatewise") {
			t.Errorf("response Via: got %q, want \"1.1 gatewise\"", got)
		}
		checkUpstream(t, decodeEcho(t, res))
	})
}

// framing is how a request reached the upstream: its Transfer-Encoding,
// Content-Length and body.
type framing struct {
	Method           string   `json:"method"`
	TransferEncoding []string `json:"transfer_encoding"`
	ContentLength    int64    `json:"content_length"`
	Body             string   `json:"body"`
}

// TestHTTP2RequestBodies checks how requests from HTTP/2 visitors are
// framed to the upstream: one whose stream ends with its headers has no
// body there (no Transfer-Encoding, and Content-Length: 0 only for a
// method that expects a body, as from HTTP/1.1 visitors), while a body of
// known or unknown length arrives whole. net/http's HTTP/2 server gives
// every request a Body, and the gateway once sent each HTTP/2 GET on
// chunked with an empty body.
func TestHTTP2RequestBodies(t *testing.T) {
	t.Parallel()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(framing{Method: r.Method, TransferEncoding: r.TransferEncoding, ContentLength: r.ContentLength, Body: string(body)})
	}))
	t.Cleanup(up.Close)
	certFile, keyFile, roots := selfSignedCert(t)
	cfg := oneTargetConfig(up.URL)
	cfg.Listeners[0].TLS = &config.ListenerTLS{Cert: certFile, Key: keyFile}
	g := startGateway(t, cfg)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}

	unknownLength := func() io.Reader {
		pr, pw := io.Pipe()
		go func() {
			_, _ = io.WriteString(pw, "streamed")
			_ = pw.Close()
		}()
		return pr
	}
	for _, tc := range []struct {
		name   string
		method string
		body   func() io.Reader
		want   framing
	}{
		{"GET", http.MethodGet, nil, framing{Method: "GET"}},
		{"DELETE", http.MethodDelete, nil, framing{Method: "DELETE"}},
		{"POST without a body", http.MethodPost, nil, framing{Method: "POST"}},
		{"POST with a body of known length", http.MethodPost, func() io.Reader { return strings.NewReader("hello") },
			framing{Method: "POST", ContentLength: 5, Body: "hello"}},
		{"PUT with a body of unknown length", http.MethodPut, unknownLength,
			framing{Method: "PUT", TransferEncoding: []string{"chunked"}, ContentLength: -1, Body: "streamed"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader
			if tc.body != nil {
				body = tc.body()
			}
			req, err := http.NewRequest(tc.method, g.url+"/framing", body)
			if err != nil {
				t.Fatal(err)
			}
			res, err := client.Do(req)
			if err != nil {
				t.Fatalf("%s: %v", tc.method, err)
			}
			defer res.Body.Close()
			if res.ProtoMajor != 2 || res.StatusCode != http.StatusOK {
				t.Fatalf("got %s %d, want HTTP/2 200", res.Proto, res.StatusCode)
			}
			var got framing
			if err := json.NewDecoder(res.Body).Decode(&got); err != nil {
				t.Fatal(err)
			}
			if got.Method != tc.want.Method || strings.Join(got.TransferEncoding, ",") != strings.Join(tc.want.TransferEncoding, ",") ||
				got.ContentLength != tc.want.ContentLength || got.Body != tc.want.Body {
				t.Errorf("upstream got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestWebSocketEcho checks that a WebSocket upgrade is passed through and
// that text and large binary messages travel both ways intact.
func TestWebSocketEcho(t *testing.T) {
	t.Parallel()
	const maxMessage = 2 << 20
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ws" {
			http.Error(w, "not here", http.StatusNotFound)
			return
		}
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return // Accept has answered the error
		}
		defer c.CloseNow()
		c.SetReadLimit(maxMessage)
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		for range 100 { // bounded: the test sends 4
			typ, data, err := c.Read(ctx)
			if err != nil {
				return // the client closed, normally or not
			}
			if err := c.Write(ctx, typ, data); err != nil {
				return
			}
		}
	}))
	t.Cleanup(up.Close)
	g := startGateway(t, oneTargetConfig(up.URL))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	wsURL := "ws://" + strings.TrimPrefix(g.url, "http://") + "/ws"
	c, res, err := websocket.Dial(ctx, wsURL, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", wsURL, err)
	}
	defer c.CloseNow()
	if got, want := res.StatusCode, http.StatusSwitchingProtocols; got != want {
		t.Errorf("handshake status: got %d, want %d", got, want)
	}
	c.SetReadLimit(maxMessage)

	big := make([]byte, 1<<20)
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	msgs := []struct {
		typ  websocket.MessageType
		data []byte
	}{
		{websocket.MessageText, []byte("hello")},
		{websocket.MessageText, []byte("héllo, wörld ✓")},
		{websocket.MessageText, []byte(strings.Repeat("x", 4096))},
		{websocket.MessageBinary, big},
	}
	for i, m := range msgs {
		if err := c.Write(ctx, m.typ, m.data); err != nil {
			t.Fatalf("message %d: write: %v", i, err)
		}
		typ, data, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("message %d: read the echo: %v", i, err)
		}
		if got, want := typ, m.typ; got != want {
			t.Errorf("message %d: type: got %v, want %v", i, got, want)
		}
		if len(data) != len(m.data) || sha256.Sum256(data) != sha256.Sum256(m.data) {
			t.Errorf("message %d: echo differs: got %d bytes, want %d identical bytes", i, len(data), len(m.data))
		}
	}
	if err := c.Close(websocket.StatusNormalClosure, "done"); err != nil {
		t.Errorf("close: %v", err)
	}
}

// TestSSEStreamsEventByEvent proves that the gateway passes each
// server-sent event on as soon as the upstream flushes it: the upstream
// writes event N+1 only after the client has read event N, so a gateway
// that buffered would leave the client waiting forever (bounded here by a
// 10s context: a failure, not a timing measurement).
func TestSSEStreamsEventByEvent(t *testing.T) {
	t.Parallel()
	const events = 5
	next := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		rc := http.NewResponseController(w)
		for i := 1; i <= events; i++ {
			if _, err := fmt.Fprintf(w, "data: event %d\n\n", i); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
			if i == events {
				return
			}
			select {
			case <-next:
			case <-r.Context().Done():
				return
			}
		}
	}))
	t.Cleanup(up.Close)
	g := startGateway(t, oneTargetConfig(up.URL))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.url+"/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET: %v (the gateway held back the headers and first event)", err)
	}
	defer res.Body.Close()
	if got, want := res.StatusCode, http.StatusOK; got != want {
		t.Fatalf("status: got %d, want %d", got, want)
	}
	if got, want := res.Header.Get("Content-Type"), "text/event-stream"; got != want {
		t.Errorf("Content-Type: got %q, want %q", got, want)
	}
	br := bufio.NewReader(res.Body)
	for i := 1; i <= events; i++ {
		// An event is its data line and a blank line.
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("event %d: read: %v (the gateway held the event back: it reached the client only with a later one, or never)", i, err)
		}
		if got, want := line, fmt.Sprintf("data: event %d\n", i); got != want {
			t.Fatalf("event %d: got %q, want %q", i, got, want)
		}
		if blank, err := br.ReadString('\n'); err != nil || blank != "\n" {
			t.Fatalf("event %d: got %q, %v after the data line, want a blank line", i, blank, err)
		}
		if i == events {
			break
		}
		select {
		case next <- struct{}{}: // let the upstream write the next event
		case <-ctx.Done():
			t.Fatalf("event %d: the upstream never asked for the go-ahead: %v", i, ctx.Err())
		}
	}
	if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
		t.Errorf("after the last event: got %q, %v; want a clean end", rest, err)
	}
}

// patternReader produces n bytes without holding them: a 1 MiB random
// block repeated, each repetition stamped with its index in its first 8
// bytes so that a lost, repeated or reordered chunk changes the hash.
type patternReader struct {
	block []byte
	off   int64
	n     int64
}

func newPatternReader(block []byte, n int64) *patternReader {
	return &patternReader{block: block, n: n}
}

func (p *patternReader) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	size := int64(len(p.block))
	idx, in := p.off/size, p.off%size
	n := min(int64(len(b)), size-in, p.n-p.off)
	copy(b[:n], p.block[in:in+n])
	if in < 8 {
		var stamp [8]byte
		binary.BigEndian.PutUint64(stamp[:], uint64(idx))
		for j := in; j < 8 && j < in+n; j++ {
			b[j-in] = stamp[j]
		}
	}
	p.off += n
	return int(n), nil
}

// sha256Hex hashes r.
func sha256Hex(r io.Reader) (string, int64, error) {
	h := sha256.New()
	n, err := io.Copy(h, r)
	return hex.EncodeToString(h.Sum(nil)), n, err
}

// heapPeak samples the heap in use until stop is closed and returns the
// highest HeapAlloc seen.
func heapPeak(stop <-chan struct{}) <-chan uint64 {
	out := make(chan uint64, 1)
	go func() {
		var peak uint64
		var ms runtime.MemStats
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
			select {
			case <-stop:
				out <- peak
				return
			case <-tick.C:
			}
		}
	}()
	return out
}

// TestLargeBodiesStreamed sends 64 MiB up and 64 MiB down through the
// gateway, generated and hashed on the fly at both ends, and checks the
// hashes and that the heap never grew by anything near 64 MiB.
//
// It does not call t.Parallel: a top-level test that is not parallel runs
// alone, so the heap it samples holds only this test's client, upstream and
// gateway (all in this process) and not other tests' work.
func TestLargeBodiesStreamed(t *testing.T) {
	const size = 64 << 20
	block := make([]byte, 1<<20)
	if _, err := rand.Read(block); err != nil {
		t.Fatal(err)
	}
	want, _, err := sha256Hex(newPatternReader(block, size))
	if err != nil {
		t.Fatal(err)
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/upload":
			sum, n, err := sha256Hex(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			fmt.Fprintf(w, "%s %d", sum, n)
		case "/download":
			w.Header().Set("Content-Type", "application/octet-stream")
			_, _ = io.Copy(w, newPatternReader(block, size))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(up.Close)
	g := startGateway(t, oneTargetConfig(up.URL))
	client := &http.Client{Timeout: 60 * time.Second}

	// The heap is measured from here: what the gateway, client and upstream
	// hold while 128 MiB passes through them.
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	stop := make(chan struct{})
	peakc := heapPeak(stop)

	t.Run("upload", func(t *testing.T) {
		// The body is an io.Reader of unknown length: sent chunked, so the
		// gateway cannot know its size in advance.
		req, err := http.NewRequest(http.MethodPost, g.url+"/upload", io.NopCloser(newPatternReader(block, size)))
		if err != nil {
			t.Fatal(err)
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatalf("POST: %v", err)
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatalf("read answer: %v", err)
		}
		if got, want := res.StatusCode, http.StatusOK; got != want {
			t.Fatalf("status: got %d, want %d (%s)", got, want, b)
		}
		if got, want := string(b), fmt.Sprintf("%s %d", want, size); got != want {
			t.Errorf("upstream received: got %q, want %q", got, want)
		}
	})
	t.Run("download", func(t *testing.T) {
		res, err := client.Get(g.url + "/download")
		if err != nil {
			t.Fatalf("GET: %v", err)
		}
		defer res.Body.Close()
		if got, want := res.StatusCode, http.StatusOK; got != want {
			t.Fatalf("status: got %d, want %d", got, want)
		}
		got, n, err := sha256Hex(res.Body)
		if err != nil {
			t.Fatalf("read body: %v after %d bytes", err, n)
		}
		if n != size || got != want {
			t.Errorf("downloaded: got %d bytes with sha256 %s, want %d bytes with %s", n, got, size, want)
		}
	})
	close(stop)
	peak := <-peakc
	grew := int64(peak) - int64(base.HeapAlloc)
	t.Logf("heap: baseline %d MiB, peak %d MiB during 2 x %d MiB", base.HeapAlloc>>20, peak>>20, size>>20)
	// Holding either body whole would add at least 64 MiB; streaming adds a
	// few copy buffers plus garbage not yet collected.
	if limit := int64(size / 2); grew > limit {
		t.Errorf("heap grew by %d MiB while streaming, want under %d MiB: a body is being held whole", grew>>20, limit>>20)
	}
}

// TestForwardingHeaders checks the headers that tell the upstream who the
// visitor is, for trusted and untrusted clients, and the request ID in both
// directions.
func TestForwardingHeaders(t *testing.T) {
	t.Parallel()
	upURL := startEcho(t, "app")
	trusted := func(cfg *config.Config) { cfg.Forwarding.TrustedProxies = []string{"127.0.0.0/8"} }
	enableForwarded := func(cfg *config.Config) { on := true; cfg.Forwarding.Forwarded = &on }
	const absent = "<absent>"
	cases := []struct {
		desc   string
		tune   func(cfg *config.Config)
		host   string
		header map[string]string // sent by the client
		// want are the headers the upstream must see (joined with ", "),
		// absent for none; "Host" is the request's Host.
		want map[string]string
		// wantRes are the response headers the client must see.
		wantRes map[string]string
	}{
		{
			desc: "plain request: X-Forwarded-*, Via and Host",
			host: "app.example.test",
			want: map[string]string{
				"Host":              "app.example.test",
				"X-Forwarded-For":   "127.0.0.1",
				"X-Forwarded-Host":  "app.example.test",
				"X-Forwarded-Proto": "http",
				"Via":               "1.1 gatewise",
				"Forwarded":         absent,
			},
			wantRes: map[string]string{"Via": "1.1 gatewise"},
		},
		{
			desc:   "untrusted client: spoofed X-Forwarded-* replaced",
			host:   "app.example.test",
			header: map[string]string{"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Host": "evil.test", "X-Forwarded-Proto": "https"},
			want: map[string]string{
				"X-Forwarded-For":   "127.0.0.1",
				"X-Forwarded-Host":  "app.example.test",
				"X-Forwarded-Proto": "http",
			},
		},
		{
			desc:   "trusted client: X-Forwarded-For appended, Host and Proto kept",
			tune:   trusted,
			host:   "app.example.test",
			header: map[string]string{"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Host": "www.example.test", "X-Forwarded-Proto": "https"},
			want: map[string]string{
				"X-Forwarded-For":   "203.0.113.9, 127.0.0.1",
				"X-Forwarded-Host":  "www.example.test",
				"X-Forwarded-Proto": "https",
			},
		},
		{
			desc:   "incoming Via kept, this hop appended",
			host:   "app.example.test",
			header: map[string]string{"Via": "1.0 fred"},
			want:   map[string]string{"Via": "1.0 fred, 1.1 gatewise"},
		},
		{
			desc: "Forwarded enabled",
			tune: enableForwarded,
			host: "app.example.test",
			want: map[string]string{"Forwarded": `for=127.0.0.1;host="app.example.test";proto=http`},
		},
		{
			desc:   "Forwarded from an untrusted client replaced",
			tune:   enableForwarded,
			host:   "app.example.test",
			header: map[string]string{"Forwarded": "for=203.0.113.9"},
			want:   map[string]string{"Forwarded": `for=127.0.0.1;host="app.example.test";proto=http`},
		},
		{
			desc:   "Forwarded from a trusted client appended",
			tune:   func(cfg *config.Config) { trusted(cfg); enableForwarded(cfg) },
			host:   "app.example.test",
			header: map[string]string{"Forwarded": "for=203.0.113.9"},
			want:   map[string]string{"Forwarded": `for=203.0.113.9, for=127.0.0.1;host="app.example.test";proto=http`},
		},
		{
			desc:    "X-Request-ID forwarded and echoed",
			host:    "app.example.test",
			header:  map[string]string{"X-Request-ID": "req-abc-123"},
			want:    map[string]string{"X-Request-ID": "req-abc-123"},
			wantRes: map[string]string{"X-Request-ID": "req-abc-123"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			cfg := oneTargetConfig(upURL)
			if tc.tune != nil {
				tc.tune(cfg)
			}
			g := startGateway(t, cfg)
			req, err := http.NewRequest(http.MethodGet, g.url+"/fwd", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Host = tc.host
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("GET: %v", err)
			}
			resHeader := res.Header
			e := decodeEcho(t, res)
			for k, want := range tc.want {
				got := strings.Join(e.Header.Values(k), ", ")
				if k == "Host" {
					got = e.Host
				}
				if got == "" {
					got = absent
				}
				if got != want {
					t.Errorf("upstream %s: got %q, want %q", k, got, want)
				}
			}
			for k, want := range tc.wantRes {
				if got := strings.Join(resHeader.Values(k), ", "); got != want {
					t.Errorf("response %s: got %q, want %q", k, got, want)
				}
			}
		})
	}

	t.Run("X-Request-ID generated when missing or unsafe", func(t *testing.T) {
		t.Parallel()
		g := startGateway(t, oneTargetConfig(upURL))
		for _, sent := range []string{"", "bad id <script>", strings.Repeat("a", 200)} {
			req, err := http.NewRequest(http.MethodGet, g.url+"/fwd", nil)
			if err != nil {
				t.Fatal(err)
			}
			if sent != "" {
				req.Header.Set("X-Request-ID", sent)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("GET: %v", err)
			}
			gotRes := res.Header.Get("X-Request-ID")
			e := decodeEcho(t, res)
			gotUp := e.Header.Get("X-Request-ID")
			if len(gotUp) != 20 || gotUp == sent {
				t.Errorf("sent %q: upstream X-Request-ID: got %q, want a generated 20-character ID", sent, gotUp)
			}
			if gotRes != gotUp {
				t.Errorf("sent %q: response X-Request-ID: got %q, want the one the upstream saw, %q", sent, gotRes, gotUp)
			}
		}
	})
}

// TestRouting checks that the most specific route wins: an exact host
// before a wildcard host before any host, then the longest path prefix,
// whose segments must match whole. It checks which upstream answered and
// the route named in the access log.
func TestRouting(t *testing.T) {
	t.Parallel()
	cfg := &config.Config{
		Listeners: []config.Listener{{Address: "127.0.0.1:0"}},
		Admin:     config.Admin{Address: "127.0.0.1:0"},
		Pools: map[string]*config.Pool{
			"a": {Targets: []config.Target{{URL: startEcho(t, "A"), Weight: 1}}},
			"b": {Targets: []config.Target{{URL: startEcho(t, "B"), Weight: 1}}},
		},
		// Declared with the less specific routes first: the most specific
		// route wins whatever the order.
		Routes: []config.Route{
			{Name: "any-api", Path: "/api", Pool: "b"},
			{Name: "wild-root", Host: "*.example.test", Path: "/", Pool: "a"},
			{Name: "exact-root", Host: "app.example.test", Path: "/", Pool: "b"},
			{Name: "any-api-v2", Path: "/api/v2", Pool: "a"},
			{Name: "wild-api", Host: "*.example.test", Path: "/api", Pool: "b"},
			{Name: "exact-api", Host: "app.example.test", Path: "/api", Pool: "a"},
			{Name: "any-static", Path: "/static/", Pool: "a"},
		},
	}
	cfg.ApplyDefaults()
	g := startGateway(t, cfg)

	cases := []struct {
		desc      string
		host      string
		path      string
		wantRoute string // "" means no route: 404
		wantPool  string // the upstream's name
	}{
		{"exact host, prefix itself", "app.example.test", "/api", "exact-api", "A"},
		{"exact host, under the prefix", "app.example.test", "/api/x", "exact-api", "A"},
		{"exact host, prefix is not a whole segment", "app.example.test", "/apix", "exact-root", "B"},
		{"exact host, root", "app.example.test", "/", "exact-root", "B"},
		{"exact host beats a longer any-host prefix", "app.example.test", "/api/v2/x", "exact-api", "A"},
		{"host matching ignores case and port", "APP.Example.TEST:8080", "/api", "exact-api", "A"},
		{"wildcard host, under the prefix", "shop.example.test", "/api/x", "wild-api", "B"},
		{"wildcard host, not a whole segment", "shop.example.test", "/apix", "wild-root", "A"},
		{"wildcard matches deeper subdomains", "deep.shop.example.test", "/", "wild-root", "A"},
		{"wildcard beats a longer any-host prefix", "shop.example.test", "/api/v2", "wild-api", "B"},
		{"wildcard does not match the bare domain", "example.test", "/api", "any-api", "B"},
		{"wildcard needs a dot before the suffix", "notexample.test", "/api/x", "any-api", "B"},
		{"any host, longest prefix wins", "example.test", "/api/v2", "any-api-v2", "A"},
		{"any host, longest prefix under it", "other.test", "/api/v2/users", "any-api-v2", "A"},
		{"any host, /api/v2x is not under /api/v2", "other.test", "/api/v2x", "any-api", "B"},
		{"prefix with a trailing slash", "other.test", "/static/app.css", "any-static", "A"},
		{"prefix with a trailing slash does not match without it", "other.test", "/static", "", ""},
		{"nothing matches", "other.test", "/", "", ""},
	}
	for i, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			id := fmt.Sprintf("route-case-%d", i)
			req, err := http.NewRequest(http.MethodGet, g.url+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Host = tc.host
			req.Header.Set("X-Request-ID", id)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("GET: %v", err)
			}
			if tc.wantRoute == "" {
				res.Body.Close()
				if got, want := res.StatusCode, http.StatusNotFound; got != want {
					t.Errorf("status: got %d, want %d", got, want)
				}
				if got := res.Header.Get("Proxy-Status"); !strings.Contains(got, "error=destination_not_found") {
					t.Errorf("Proxy-Status: got %q, want error=destination_not_found", got)
				}
				return
			}
			e := decodeEcho(t, res)
			if got, want := e.Name, tc.wantPool; got != want {
				t.Errorf("answered by upstream %s, want %s", got, want)
			}
			if got, want := e.Path, tc.path; got != want {
				t.Errorf("upstream path: got %q, want %q (unchanged)", got, want)
			}
			var access map[string]any
			waitFor(t, "access log line", func() bool {
				access = findLine(g.access.lines(t), map[string]any{"request_id": id})
				return access != nil
			})
			if got, want := access["route"], tc.wantRoute; got != want {
				t.Errorf("route: got %v, want %s", got, want)
			}
		})
	}
}

// TestForwardingHeadersOnRetry checks that a request retried on another
// target carries the forwarding fields and its X-Request-Id there too,
// once each: the direct path adds them at each write, not in the
// visitor's header map.
func TestForwardingHeadersOnRetry(t *testing.T) {
	t.Parallel()
	dead, err := faults.DeadAddr()
	if err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, oneTargetConfig("http://"+dead, startEcho(t, "app")))
	for i := range 10 {
		req, err := http.NewRequest(http.MethodGet, g.url+"/retried", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = "app.example.test"
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET %d: %v", i, err)
		}
		e := decodeEcho(t, res)
		for k, want := range map[string]string{
			"X-Forwarded-For":   "127.0.0.1",
			"X-Forwarded-Host":  "app.example.test",
			"X-Forwarded-Proto": "http",
			"Via":               "1.1 gatewise",
			"X-Request-Id":      res.Header.Get("X-Request-Id"),
		} {
			if got := e.Header.Values(k); len(got) != 1 || got[0] != want {
				t.Errorf("GET %d: upstream %s: got %q, want [%q]", i, k, got, want)
			}
		}
	}
	if n := sumMetric(g.metrics(t), "gatewise_retries_total{"); n < 1 {
		t.Fatalf("retries: got %v, want at least 1 (the dead target was never tried first)", n)
	}
}
