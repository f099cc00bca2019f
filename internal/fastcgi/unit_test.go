package fastcgi

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/gatewise/gatewise/internal/cause"
)

func TestSplitScript(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		path, script, info string
		ok                 bool
	}{
		{"/index.php", "/index.php", "", true},
		{"/index.php/a/b", "/index.php", "/a/b", true},
		{"/a.php/b.php/c", "/a.php", "/b.php/c", true},
		{"/uploads/image.jpg/x.php", "/uploads/image.jpg/x.php", "", true},
		{"/x.php.bak", "", "", false},
		{"/x.phpx/y", "", "", false},
		{"/blog/2024/", "", "", false},
		{"/x.phps/y.php", "/x.phps/y.php", "", true},
	} {
		script, info, ok := splitScript(tc.path)
		if script != tc.script || info != tc.info || ok != tc.ok {
			t.Errorf("splitScript(%q) = %q, %q, %v; want %q, %q, %v", tc.path, script, info, ok, tc.script, tc.info, tc.ok)
		}
	}
}

func TestHiddenAndSourceLike(t *testing.T) {
	t.Parallel()
	for p, want := range map[string]bool{
		"/.env": true, "/a/.git/config": true, "/.well-known/x": false, "/a/b.c": false, "/": false, "/..x": true,
	} {
		if got := hidden(p); got != want {
			t.Errorf("hidden(%q) = %v, want %v", p, got, want)
		}
	}
	for n, want := range map[string]bool{
		"x.php": true, "X.PHP": true, "wp-config.php.bak": true, "a.php~": true, "x.phtml": true, "x.phar": true,
		"db.inc": true, "notes~": true, "style.css": false, "image.jpg": false, "phpinfo.txt": false,
	} {
		if got := sourceLike(n); got != want {
			t.Errorf("sourceLike(%q) = %v, want %v", n, got, want)
		}
	}
}

func TestPairsRoundTrip(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("v", 300)
	var b []byte
	in := [][2]string{{"A", "1"}, {"EMPTY", ""}, {"LONG", long}, {strings.Repeat("N", 130), "x"}}
	for _, p := range in {
		b = appendPair(b, p[0], p[1])
	}
	var out [][2]string
	if err := parsePairs(b, func(n, v string) { out = append(out, [2]string{n, v}) }); err != nil {
		t.Fatal(err)
	}
	if len(out) != len(in) {
		t.Fatalf("got %d pairs, want %d", len(out), len(in))
	}
	for i := range in {
		if out[i] != in[i] {
			t.Errorf("pair %d = %q, want %q", i, out[i], in[i])
		}
	}
	for _, bad := range [][]byte{{5}, {0x80, 0}, {3, 3, 'a'}} {
		if err := parsePairs(bad, func(string, string) {}); !errors.Is(err, errProtocol) {
			t.Errorf("parsePairs(%v) = %v, want errProtocol", bad, err)
		}
	}
}

func TestAppendStreamSplitsRecords(t *testing.T) {
	t.Parallel()
	content := bytes.Repeat([]byte{'x'}, maxContent+10)
	b := appendStream(nil, typeParams, content)
	// Records: 65535 (+1 padding), 10 (+6), then the empty one.
	if want := 8 + maxContent + 1 + 8 + 10 + 6 + 8; len(b) != want {
		t.Fatalf("stream of %d bytes, want %d", len(b), want)
	}
}

func TestCGIHeaderName(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"X-Real-Ip": "HTTP_X_REAL_IP", "Accept": "HTTP_ACCEPT", "If-None-Match": "HTTP_IF_NONE_MATCH"} {
		if got := cgiHeaderName(in); got != want {
			t.Errorf("cgiHeaderName(%q) = %q, want %q", in, got, want)
		}
	}
	for name, want := range map[string]bool{"Proxy": false, "X_Real_IP": false, "Content-Type": false, "Host": false, "Accept": true} {
		if got := headerToCGI(name); got != want {
			t.Errorf("headerToCGI(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestCGIStatus(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		header http.Header
		code   int
		bad    bool
	}{
		{http.Header{}, 200, false},
		{http.Header{"Status": {"404 Not Found"}}, 404, false},
		{http.Header{"Status": {"503"}}, 503, false},
		{http.Header{"Location": {"/x"}}, 302, false},
		{http.Header{"Location": {"/x"}, "Status": {"301 Moved"}}, 301, false},
		{http.Header{"Status": {"abc"}}, 0, true},
		{http.Header{"Status": {"99 Low"}}, 0, true},
		{http.Header{"Status": {"100 Continue"}}, 0, true},
	} {
		code, _, err := cgiStatus(tc.header)
		if code != tc.code || (err != nil) != tc.bad {
			t.Errorf("cgiStatus(%v) = %d, %v; want %d, error %v", tc.header, code, err, tc.code, tc.bad)
		}
		if tc.header.Get("Status") != "" {
			t.Errorf("Status header left in %v", tc.header)
		}
	}
}

func TestParseMessages(t *testing.T) {
	t.Parallel()
	text := "PHP message: PHP Warning:  Undefined variable $x in /www/a.php on line 2\n" +
		"PHP message: PHP Fatal error:  Uncaught Exception: failed in step two in /www/b.php:7\nStack trace:\n#0 {main}\n  thrown in /www/b.php on line 7\n" +
		"PHP Parse error:  syntax error, unexpected end of file in /www/c d.php on line 9"
	got := parseMessages([]byte(text))
	want := []PHPError{
		{Kind: "Warning", Message: "Undefined variable $x", File: "/www/a.php", Line: 2},
		{Kind: "Fatal error", Message: "Uncaught Exception: failed in step two", File: "/www/b.php", Line: 7},
		{Kind: "Parse error", Message: "syntax error, unexpected end of file", File: "/www/c d.php", Line: 9},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d messages, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if *got[i] != want[i] {
			t.Errorf("message %d = %+v, want %+v", i, *got[i], want[i])
		}
	}
	if got[0].Fatal() || !got[1].Fatal() || !got[2].Fatal() {
		t.Error("Fatal() wrong")
	}
	for msg, id := range map[string]cause.ID{
		"Allowed memory size of 1 bytes exhausted (tried to allocate 2 bytes)": cause.PHPMemoryExhausted,
		"Out of memory (allocated 2) (tried to allocate 3 bytes)":              cause.PHPMemoryExhausted,
		"Maximum execution time of 30 seconds exceeded":                        cause.PHPTimeout,
		"Uncaught Error: x": cause.PHPFatalError,
	} {
		if got, _ := (&PHPError{Kind: "Fatal error", Message: msg}).Cause(); got != id {
			t.Errorf("Cause(%q) = %s, want %s", msg, got, id)
		}
	}
}

// TestStderrCaptureSplit feeds a message split across two records.
func TestStderrCaptureSplit(t *testing.T) {
	t.Parallel()
	c := stderrCapture{max: 1 << 10}
	if c.write([]byte("PHP message: PHP Fatal err")) {
		t.Fatal("fatal found in half a message")
	}
	if !c.write([]byte("or:  boom in /x.php on line 3\n")) || c.fatal.Line != 3 {
		t.Fatalf("fatal not found once whole: %+v", c.fatal)
	}
	small := stderrCapture{max: 10}
	small.write(bytes.Repeat([]byte("y"), 100))
	if len(small.buf) != 10 || !small.truncated {
		t.Errorf("capture kept %d bytes, want 10", len(small.buf))
	}
}

func TestOptionsErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, o := range []Options{
		{Root: dir},
		{Address: "relative.sock", Network: "unix", Root: dir},
		{Address: "127.0.0.1", Root: dir},
		{Address: "127.0.0.1:9000", Network: "udp", Root: dir},
		{Address: "127.0.0.1:9000", Root: "relative"},
		{Address: "127.0.0.1:9000", Root: dir + "/missing"},
		{Address: "127.0.0.1:9000", Root: dir, Index: "../x.php"},
		{Address: "127.0.0.1:9000", Root: dir, DialTimeout: -1},
		{Address: "127.0.0.1:9000", Root: dir, Params: map[string]string{"A=B": "x"}},
	} {
		if _, err := New(o); !errors.Is(err, ErrOptions) {
			t.Errorf("New(%+v) = %v, want ErrOptions", o, err)
		}
	}
	tr, err := New(Options{Address: "/run/php/php8.2-fpm.sock", Root: dir, TerminateTimeout: 10e9})
	if err != nil {
		t.Fatal(err)
	}
	o := tr.Options()
	if o.Network != "unix" || o.Index != DefaultIndex || o.IdleConnTimeout != 5e9 || o.MaxIdleConns != DefaultMaxIdleConns {
		t.Errorf("defaults: %+v", o)
	}
}

// fuzzResponse runs the response reader over data sent by a fake PHP-FPM.
func fuzzResponse(t *testing.T, data []byte) {
	dir := t.TempDir()
	tr, err := New(Options{Address: "127.0.0.1:9", Root: dir, MaxHeaderBytes: 4096, MaxStderrBytes: 512})
	if err != nil {
		t.Fatal(err)
	}
	client, server := net.Pipe()
	go func() {
		server.Write(data)
		server.Close()
	}()
	req, _ := http.NewRequest("GET", "http://example.com/x.php", nil)
	a := &attempt{t: tr, req: req, conn: client, script: "/x.php", writeDone: make(chan struct{})}
	close(a.writeDone)
	res, err := a.readResponse()
	if err != nil {
		if _, ok := cause.Of(err); !ok {
			t.Fatalf("error without a cause: %v", err)
		}
		client.Close()
		return
	}
	_, err = io.Copy(io.Discard, res.Body)
	if err != nil {
		if _, ok := cause.Of(err); !ok {
			t.Fatalf("body error without a cause: %v", err)
		}
	}
	res.Body.Close()
	tr.Close()
}

func FuzzResponse(f *testing.F) {
	ok := appendStream(nil, typeStdout, []byte("Status: 404 Not Found\r\nContent-Type: text/html\r\n\r\nnope"))
	ok = appendRecord(ok, typeEndRequest, make([]byte, 8))
	f.Add(ok)
	fatal := appendRecord(nil, typeStderr, []byte("PHP message: PHP Fatal error:  x in /a.php on line 2"))
	fatal = append(fatal, ok...)
	f.Add(fatal)
	f.Add(appendRecord(nil, typeStdout, []byte("Bad Header\r\n\r\n")))
	f.Add([]byte{1, 6, 0, 1, 0xff, 0xff, 0, 0, 'a'})
	f.Add([]byte{})
	f.Fuzz(fuzzResponse)
}

func FuzzPairs(f *testing.F) {
	f.Add(appendPair(appendPair(nil, "A", "b"), strings.Repeat("N", 200), "v"))
	f.Add([]byte{0x80, 0, 0, 1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		n := 0
		if err := parsePairs(b, func(name, value string) { n += len(name) + len(value) }); err == nil && n > len(b) {
			t.Fatalf("pairs hold %d bytes from %d", n, len(b))
		}
	})
}

func FuzzParseMessages(f *testing.F) {
	f.Add([]byte("PHP message: PHP Fatal error:  Uncaught Exception: x in /a.php:3\nStack trace:\n  thrown in /a.php on line 3"))
	f.Add([]byte("PHP Warning:  a in  on line \n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, m := range parseMessages(b) {
			if m.Kind == "" || m.Line < 0 {
				t.Fatalf("message %+v", m)
			}
			_ = m.Error()
		}
	})
}
