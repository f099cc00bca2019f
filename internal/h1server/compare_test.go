package h1server

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

// compareHandlers are handlers whose answers this server must frame as
// net/http's server does.
var compareHandlers = map[string]http.HandlerFunc{
	"empty":   func(w http.ResponseWriter, r *http.Request) {},
	"small":   func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "small body") },
	"status":  func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) },
	"created": func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(201); _, _ = io.WriteString(w, "made") },
	"cl": func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "4")
		_, _ = io.WriteString(w, "four")
	},
	"big": func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, strings.Repeat("0123456789", 1000))
	},
	"flush": func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "a")
		w.(http.Flusher).Flush()
		_, _ = io.WriteString(w, "b")
	},
	"flush-empty": func(w http.ResponseWriter, r *http.Request) {
		w.(http.Flusher).Flush()
	},
	"204": func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) },
	"304": func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Etag", `"v1"`)
		w.WriteHeader(http.StatusNotModified)
	},
	"304-cl": func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		w.WriteHeader(http.StatusNotModified)
	},
	"trailer": func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-T")
		_, _ = io.WriteString(w, "body")
		w.Header().Set("X-T", "tv")
	},
	"trailer-prefix": func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "body")
		w.Header().Set(http.TrailerPrefix+"X-P", "pv")
	},
	"close": func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		_, _ = io.WriteString(w, "bye")
	},
	"multi": func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Set-Cookie", "a=1")
		w.Header().Add("Set-Cookie", "b=2")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = io.WriteString(w, "cookies")
	},
	"conn-keepalive": func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "keep-alive")
		_, _ = io.WriteString(w, strings.Repeat("k", 3000))
	},
	"early-hints": func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</a.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		_, _ = io.WriteString(w, "final")
	},
}

// answer is what a visitor sees of one exchange.
type answer struct {
	Status           int
	Proto            string
	Header           http.Header
	Body             string
	ContentLength    int64
	TransferEncoding []string
	Close            bool
	Trailer          http.Header
}

// exchange sends req on a new connection to addr and reads the final
// answer.
func exchange(t *testing.T, addr, req string) answer {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	method, _, _ := strings.Cut(req, " ")
	br := bufio.NewReader(c)
	for {
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode >= 100 && resp.StatusCode <= 199 {
			continue
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatal(err)
		}
		h := resp.Header.Clone()
		h.Del("Date")
		if len(resp.Trailer) == 0 {
			resp.Trailer = nil
		}
		body := string(b)
		if len(body) > 40 {
			body = body[:20] + fmt.Sprintf("...(%d bytes)", len(body))
		}
		return answer{resp.StatusCode, resp.Proto, h, body, resp.ContentLength, resp.TransferEncoding, resp.Close, resp.Trailer}
	}
}

// The same handlers answer the same requests through this server and
// through net/http's: the visitor sees the same status, framing, fields,
// body and trailers (net/http's sniffed Content-Type aside).
func TestAnswersMatchNetHTTP(t *testing.T) {
	mux := http.NewServeMux()
	for name, h := range compareHandlers {
		mux.Handle("/"+name, h)
	}
	ours := start(t, mux)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	std := &http.Server{Handler: mux}
	go func() { _ = std.Serve(ln) }()
	defer std.Close()

	forms := []struct{ name, line, rest string }{
		{"get11", "GET /%s HTTP/1.1", "Host: h\r\n"},
		{"head11", "HEAD /%s HTTP/1.1", "Host: h\r\n"},
		{"get11close", "GET /%s HTTP/1.1", "Host: h\r\nConnection: close\r\n"},
		{"get10", "GET /%s HTTP/1.0", ""},
		{"get10keepalive", "GET /%s HTTP/1.0", "Connection: keep-alive\r\n"},
		{"post11unread", "POST /%s HTTP/1.1", "Host: h\r\nContent-Length: 5\r\n\r\nhello"},
		{"post11expect", "POST /%s HTTP/1.1", "Host: h\r\nExpect: 100-continue\r\nContent-Length: 5\r\n"},
	}
	for name, h := range compareHandlers {
		_ = h
		for _, f := range forms {
			t.Run(name+"/"+f.name, func(t *testing.T) {
				req := strings.Replace(f.line, "%s", name, 1) + "\r\n" + f.rest
				if !strings.Contains(f.rest, "\r\n\r\n") {
					req += "\r\n"
				}
				a := exchange(t, ours.addr, req)
				b := exchange(t, ln.Addr().String(), req)
				if _, set := a.Header["Content-Type"]; !set {
					// net/http sniffs one; this server does not.
					b.Header.Del("Content-Type")
				}
				if strings.HasPrefix(req, "HEAD ") && a.ContentLength >= 0 && b.ContentLength < 0 {
					// Deliberate: a HEAD answer says the length of
					// what the handler wrote, however long (net/http
					// only when it fits its buffer and no trailer
					// is declared).
					b.ContentLength = a.ContentLength
					b.Header["Content-Length"] = a.Header["Content-Length"]
				}
				if name == "trailer-prefix" && f.name != "head11" && a.Trailer.Get("X-P") == "pv" && b.Trailer == nil {
					// Deliberate: net/http drops a trailer set with
					// http.TrailerPrefix after a short body's first
					// write; this server sends it, in chunks.
					return
				}
				if strings.HasPrefix(name, "trailer") && strings.HasPrefix(f.name, "get10") && b.ContentLength < 0 {
					// Deliberate: an HTTP/1.0 answer cannot carry
					// trailers, so this server frames it by its
					// length (and may keep the connection) where
					// net/http ends it with a close.
					if a.ContentLength != int64(len(a.Body)) || a.Body != b.Body {
						t.Errorf("HTTP/1.0 answer with trailers: %+v", a)
					}
					return
				}
				if !reflect.DeepEqual(a, b) {
					t.Errorf("answers differ for %q:\nours    %+v\nnet/http %+v", req, a, b)
				}
			})
		}
	}
}
