package proxy

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"strings"
	"time"

	"github.com/gatewise/gatewise/internal/httpsyntax"
)

// forward sends r to its pool and copies the answer to w. A plain request
// (no protocol upgrade, no Expect, no Te, no request trailers: nearly all
// of them) takes the direct path, which edits the visitor's request
// headers in place and copies the upstream's response headers without the
// copies httputil.ReverseProxy makes (a clone of the request and of its
// headers, a second header map for the response); the rest go through
// the ReverseProxy. Both paths run the same attempts, retries, causes,
// error responses and header rules.
//
// start is a reading of the handler's clock taken just before, used as the
// time of the direct path's first attempt.
func (h *Handler) forward(w http.ResponseWriter, r *http.Request, pp *poolProxy, start time.Time) {
	if !directForwardable(r) {
		pp.rp.ServeHTTP(w, r)
		return
	}
	ex := new(exchange)
	ex.interim.w = w
	ex.trace.interim = &ex.interim
	removeHopByHop(r.Header)
	h.forwardingHeaders(r, r.Header, ex.fwd[:])
	r.Close = false
	res, err := pp.attempts.roundTrip(r, ex, start)
	if err != nil {
		h.errorHandler(w, r, err)
		return
	}
	h.modifyResponseOf(res, ex)
	removeHopByHop(res.Header)
	dst := w.Header()
	if len(dst) == 0 && adoptHeader(w, dst, res.Header) {
		dst = res.Header
	} else {
		for k, vv := range res.Header {
			if prior, ok := dst[k]; ok {
				dst[k] = append(prior, vv...)
			} else {
				dst[k] = vv
			}
		}
	}
	announced := len(res.Trailer)
	if announced > 0 {
		names := make([]string, 0, announced)
		for k := range res.Trailer {
			names = append(names, k)
		}
		dst["Trailer"] = []string{strings.Join(names, ", ")}
	}
	w.WriteHeader(res.StatusCode)
	err = h.copyBody(w, res)
	_ = res.Body.Close()
	if err != nil {
		// The answer cannot be completed: the visitor must not take a
		// cut body for a whole one, so the connection is aborted (as
		// httputil.ReverseProxy does).
		panic(http.ErrAbortHandler)
	}
	if len(res.Trailer) > 0 {
		// Headers out first, chunked: net/http must not compute a
		// Content-Length for a short body that has trailers.
		_ = http.NewResponseController(w).Flush()
		for k, vv := range res.Trailer {
			if len(res.Trailer) != announced {
				k = http.TrailerPrefix + k
			}
			for _, v := range vv {
				dst.Add(k, v)
			}
		}
	}
}

// headerAdopter is the gateway's HTTP/1 server's response (h1server),
// which can take a header map whole.
type headerAdopter interface {
	AdoptHeader(old, h http.Header) bool
}

// adoptHeader makes h the header map of w's answer, in place of dst (the
// empty map w.Header returned), when the writer beneath w's wrappers can
// take it (h1server's can; net/http's HTTP/2 writer cannot): the upstream's
// fields then go out without being copied into a second map. It reports
// whether it did; the server keeps h after the handler returns.
func adoptHeader(w http.ResponseWriter, dst, h http.Header) bool {
	for {
		if a, ok := w.(headerAdopter); ok {
			return a.AdoptHeader(dst, h)
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return false
		}
		if w = u.Unwrap(); w == nil {
			return false
		}
	}
}

// exchange is what the direct path allocates for a request, in one piece
// rather than one allocation each: the first attempt's trace, the backing
// arrays of the header values the gateway sets (single values, handed out
// as capacity-limited slices, so an append elsewhere reallocates instead of
// overwriting a neighbour), and the reader of the upstream's body. Nothing
// of it is reused: it lives as long as the longest of its parts.
type exchange struct {
	trace attemptTrace
	// fwd: X-Forwarded-For, X-Forwarded-Host, X-Forwarded-Proto and Via
	// of the request (see forwardingHeaders).
	fwd [4]string
	// res: X-Request-Id and Via of the response (see modifyResponseOf).
	res     [2]string
	body    bodyReader
	interim interimRelay
}

// maxInterim is how many interim responses of one request are relayed to
// the visitor; later ones are dropped (net/http's client takes 5 too).
const maxInterim = 5

// interimRelay writes an upstream's interim responses (103 Early Hints
// with its Link fields, 102 Processing) to the visitor before the final
// answer, as httputil.ReverseProxy does (100 Continue is the gateway's own
// to send: see attemptTrace.Got1xxResponse). Every attempt of a request
// shares it.
type interimRelay struct {
	w    http.ResponseWriter
	sent int
}

func (ir *interimRelay) relay(code int, header http.Header) error {
	if ir.sent >= maxInterim {
		return nil
	}
	ir.sent++
	h := ir.w.Header()
	// The interim response carries its own fields only: those already
	// set for the final answer are put back after it.
	var saved http.Header
	if len(h) > 0 {
		saved = h.Clone()
		clear(h)
	}
	for k, vv := range header {
		if !isHopHeader(k) {
			h[k] = vv
		}
	}
	ir.w.WriteHeader(code)
	clear(h)
	for k, vv := range saved {
		h[k] = vv
	}
	return nil
}

// directForwardable reports whether r may take the direct path.
func directForwardable(r *http.Request) bool {
	hd := r.Header
	return hd["Upgrade"] == nil && hd["Expect"] == nil && hd["Te"] == nil && len(r.Trailer) == 0
}

// copyBody copies the upstream's body to the visitor, flushing after each
// write when the body's length is unknown or it is an event stream (as
// httputil.ReverseProxy does), so that streamed answers reach the visitor
// as they come; a write that ends the body is not flushed.
func (h *Handler) copyBody(w http.ResponseWriter, res *http.Response) error {
	flush := res.ContentLength == -1 || isEventStream(httpsyntax.HeaderValue(res.Header, "Content-Type"))
	var rc *http.ResponseController
	if flush {
		rc = http.NewResponseController(w)
	}
	bp := h.buffers.get()
	defer h.buffers.put(bp)
	buf := *bp
	for {
		n, rerr := res.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
			// No flush with the last bytes (a reader may return them
			// with io.EOF, as the FastCGI client does with a response it
			// holds whole): the end of the answer sends them, and the
			// server can then frame a short answer by its length rather
			// than in chunks.
			if flush && rerr == nil {
				if err := rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
					return err
				}
			}
		}
		if rerr == io.EOF { //nolint:errorlint // io.EOF is returned unwrapped by contract
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

func isEventStream(ct string) bool {
	base, _, _ := strings.Cut(ct, ";")
	return strings.EqualFold(strings.TrimSpace(base), "text/event-stream")
}

// hopHeaders are the hop-by-hop headers of RFC 9110 7.6.1 and the older
// ones proxies drop too, in canonical form.
func isHopHeader(k string) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
		"Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

// removeHopByHop deletes from h the hop-by-hop headers and the ones its
// Connection header names.
func removeHopByHop(h http.Header) {
	for _, v := range h["Connection"] {
		for name := range strings.SplitSeq(v, ",") {
			if name = textproto.TrimString(name); name != "" {
				delete(h, http.CanonicalHeaderKey(name))
			}
		}
	}
	for k := range h {
		if isHopHeader(k) {
			delete(h, k)
		}
	}
}

// forwardingHeaders sets, in out, the headers that tell the upstream who
// the visitor is and that the request went through the gateway:
// X-Forwarded-For, -Host and -Proto (from trusted proxies, the prior
// values are kept and appended to; from anyone else they are replaced, and
// when x_forwarded is off they are removed), Forwarded when configured,
// and Via. out may be in.Header itself. The single values are set as
// capacity-limited slices of vals, which needs room for four (nil: one is
// allocated when needed).
func (h *Handler) forwardingHeaders(in *http.Request, out http.Header, vals []string) {
	if vals == nil && (h.xForwarded || h.via) {
		vals = make([]string, 4)
	}
	trusted := inPrefixes(in.RemoteAddr, h.trusted)
	xff, fwd := in.Header["X-Forwarded-For"], in.Header["Forwarded"]
	xfh, xfp := httpsyntax.HeaderValue(in.Header, "X-Forwarded-Host"), httpsyntax.HeaderValue(in.Header, "X-Forwarded-Proto")
	delete(out, "X-Forwarded-For")
	delete(out, "X-Forwarded-Host")
	delete(out, "X-Forwarded-Proto")
	if h.xForwarded {
		if ip, _, err := net.SplitHostPort(in.RemoteAddr); err == nil {
			if trusted && len(xff) > 0 {
				ip = strings.Join(xff, ", ") + ", " + ip
			}
			vals[0] = ip
			out["X-Forwarded-For"] = vals[0:1:1]
		}
		host, proto := in.Host, "http"
		if in.TLS != nil {
			proto = "https"
		}
		if trusted && xfh != "" {
			host = xfh
		}
		if trusted && xfp != "" {
			proto = xfp
		}
		vals[1], vals[2] = host, proto
		out["X-Forwarded-Host"] = vals[1:2:2]
		out["X-Forwarded-Proto"] = vals[2:3:3]
	}
	if h.forwarded {
		var prior []string
		if trusted {
			prior = fwd
		}
		out["Forwarded"] = append(append([]string(nil), prior...), forwardedElement(in))
	}
	if h.via {
		if prior := out["Via"]; len(prior) > 0 {
			out["Via"] = append(prior, viaValue(in.ProtoMajor, in.ProtoMinor))
		} else {
			vals[3] = viaValue(in.ProtoMajor, in.ProtoMinor)
			out["Via"] = vals[3:4:4]
		}
	}
}
