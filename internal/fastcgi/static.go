package fastcgi

import (
	"io"
	"net/http"
	"os"
	"path"
	"strconv"
	"sync"
)

// serveStatic answers req with the file rel under root, through
// http.ServeContent (Content-Type, Last-Modified, ETag, Range, conditional
// requests and HEAD), streaming it from a goroutine through a pipe. Only
// GET and HEAD are allowed. root is closed.
func serveStatic(req *http.Request, root *os.Root, rel string) (*http.Response, error) {
	defer root.Close()
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		if req.Body != nil {
			req.Body.Close()
		}
		return plainResponse(req, http.StatusMethodNotAllowed, http.Header{"Allow": {"GET, HEAD"}}), nil
	}
	if req.Body != nil {
		req.Body.Close()
	}
	f, err := root.Open(rel)
	if err != nil {
		return plainResponse(req, http.StatusNotFound, nil), nil
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return plainResponse(req, http.StatusNotFound, nil), nil
	}
	pr, pw := io.Pipe()
	w := &pipeWriter{header: http.Header{}, pw: pw, ready: make(chan struct{})}
	// A weak validator from the modification time and size, like nginx's.
	w.header.Set("Etag", `W/"`+strconv.FormatInt(fi.ModTime().UnixNano(), 16)+"-"+strconv.FormatInt(fi.Size(), 16)+`"`)
	go func() {
		defer f.Close()
		http.ServeContent(w, req, path.Base(rel), fi.ModTime(), f)
		w.WriteHeader(http.StatusOK) // no-op unless ServeContent wrote nothing
		pw.Close()
	}()
	<-w.ready
	res := &http.Response{
		Status: strconv.Itoa(w.status) + " " + http.StatusText(w.status), StatusCode: w.status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: w.sent, Body: pr, ContentLength: -1, Request: req,
	}
	if n, err := strconv.ParseInt(w.sent.Get("Content-Length"), 10, 64); err == nil {
		res.ContentLength = n
	}
	if req.Method == http.MethodHead || w.status == http.StatusNotModified {
		pr.Close()
		res.Body = http.NoBody
	}
	return res, nil
}

// pipeWriter is the http.ResponseWriter ServeContent writes to: the status
// and a copy of the header when the header is written, the body into a
// pipe.
type pipeWriter struct {
	header http.Header
	sent   http.Header
	status int
	pw     *io.PipeWriter
	once   sync.Once
	ready  chan struct{}
}

func (w *pipeWriter) Header() http.Header { return w.header }

func (w *pipeWriter) WriteHeader(code int) {
	w.once.Do(func() {
		w.status = code
		w.sent = w.header.Clone()
		close(w.ready)
	})
}

func (w *pipeWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.pw.Write(p)
}
