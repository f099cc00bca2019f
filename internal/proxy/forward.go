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
	"github.com/gatewise/gatewise/internal/obs"
	"github.com/gatewise/gatewise/internal/upstream"
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
// id is the request's ID (its record's), sent upstream as X-Request-Id in
// place of the visitor's. start is a reading of the handler's clock taken
// just before, used as the time of the direct path's first attempt.
func (h *Handler) forward(w http.ResponseWriter, r *http.Request, pp *poolProxy, id string, start time.Time) {
	if !directForwardable(r) {
		setRequestID(r.Header, id)
		pp.rp.ServeHTTP(w, r)
		return
	}
	ex := new(exchange)
	ex.interim.w = w
	ex.trace.interim = &ex.interim
	removeHopByHop(r.Header)
	if _, ok := pp.pool.Transport.(observedRoundTripper); ok {
		// The gateway's transport writes them after the map's fields
		// (fieldsTrace.AddedFields): no insertions into the map.
		added := h.forwardingFields(r, r.Header, ex.fwd[:0])
		if httpsyntax.HeaderValue(r.Header, obs.RequestIDHeader) != id {
			delete(r.Header, obs.RequestIDHeader)
			added = append(added, obs.RequestIDHeader, id)
		}
		ex.added = added
	} else {
		setRequestID(r.Header, id)
		h.setForwardingHeaders(r, r.Header)
	}
	r.Close = false
	res, err := pp.attempts.roundTrip(r, ex, start)
	if err != nil {
		h.errorHandler(w, r, err)
		return
	}
	dst := w.Header()
	var eventStream bool
	if res.Header == nil && h.relayFields(w, res, ex) {
		ct, _ := ex.fields.Get("Content-Type")
		eventStream = isEventStream(ct)
	} else {
		if res.Header == nil {
			res.Header = ex.fields.Header()
		}
		h.modifyResponseOf(res, ex)
		removeHopByHop(res.Header)
		if hr := h1ResponseOf(w); hr != nil && len(dst) == 0 && hr.AdoptHeader(dst, res.Header) {
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
		eventStream = isEventStream(httpsyntax.HeaderValue(res.Header, "Content-Type"))
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
	err = h.copyBody(w, res, eventStream)
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

// h1Response is the response of the gateway's HTTP/1 server (h1server):
// it takes a header map whole and header fields without a map, so that
// the upstream's fields reach the visitor without the copies a plain
// http.ResponseWriter needs (net/http's HTTP/2 writer has neither).
type h1Response interface {
	http.ResponseWriter
	// AdoptHeader makes h the answer's header map in place of old.
	AdoptHeader(old, h http.Header) bool
	// AddField and AddFieldString add a field after the map's.
	AddField(name, value []byte)
	AddFieldString(name, value string)
	// SetContentLength declares the answer's length without a map entry.
	SetContentLength(n int64)
}

// h1ResponseOf returns the h1Response beneath w's wrappers, when every
// wrapper shares its header map (none keeps one of its own), else nil.
func h1ResponseOf(w http.ResponseWriter) h1Response {
	for u := w; ; {
		if r, ok := u.(h1Response); ok {
			if !httpsyntax.SameHeader(r.Header(), w.Header()) {
				return nil
			}
			return r
		}
		uw, ok := u.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return nil
		}
		if u = uw.Unwrap(); u == nil {
			return nil
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
	// fwd: the fields added to the request, as name, value pairs: the
	// forwarding fields (see forwardingFields) and X-Request-Id.
	fwd   [maxForwardingFields]string
	added []string // fwd's pairs in use
	// res: X-Request-Id and Via of the response (see modifyResponseOf).
	res [2]string
	// fields: the response's header fields, when the transport gave them
	// raw (see fieldsTrace).
	fields  *upstream.Fields
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
func (h *Handler) copyBody(w http.ResponseWriter, res *http.Response, eventStream bool) error {
	flush := res.ContentLength == -1 || eventStream
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

// isEventStream reports whether a Content-Type value is
// text/event-stream, parameters and white space around it aside.
func isEventStream[T string | []byte](ct T) bool {
	const want = "text/event-stream"
	end := len(ct)
	for i := range len(ct) {
		if ct[i] == ';' {
			end = i
			break
		}
	}
	start := 0
	for start < end && (ct[start] == ' ' || ct[start] == '\t') {
		start++
	}
	for end > start && (ct[end-1] == ' ' || ct[end-1] == '\t') {
		end--
	}
	if end-start != len(want) {
		return false
	}
	for i := range len(want) {
		c := ct[start+i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != want[i] {
			return false
		}
	}
	return true
}

// relayFields writes the upstream's header fields to w as they came
// (ex.fields), without the header maps the other way builds, copies and
// writes out again: hop-by-hop fields and those the Connection field
// names are left out (Transfer-Encoding among them), and so is
// Content-Length: the server frames the answer by the response's length,
// which goes in w's map. The gateway's
// X-Request-Id, Via and Proxy-Status are added as modifyResponseOf adds
// them. It reports false, having done nothing, when the answer needs the
// map way: w's server cannot take fields so, the answer has trailers, or
// a status without a body (whose fields the server edits).
func (h *Handler) relayFields(w http.ResponseWriter, res *http.Response, ex *exchange) bool {
	f := ex.fields
	if f == nil || len(res.Trailer) > 0 || res.StatusCode < 200 || res.StatusCode == http.StatusNoContent || res.StatusCode == http.StatusNotModified {
		return false
	}
	fa := h1ResponseOf(w)
	if fa == nil {
		return false
	}
	rec, passedError := h.noteResponse(res, ex)
	// The Connection fields, whose values name more hop-by-hop fields.
	var connArr [4]int
	conns := connArr[:0]
	for i := range f.Len() {
		if string(f.Name(i)) == "Connection" {
			conns = append(conns, i)
		}
	}
	hasID, hasCL := false, false
	for i := range f.Len() {
		name, value := f.Name(i), f.Value(i)
		switch {
		case isHopHeader(string(name)) || connectionNames(f, conns, name):
			continue
		case string(name) == "Content-Length":
			hasCL = true
			continue
		case string(name) == obs.RequestIDHeader:
			if len(value) == 0 {
				continue // replaced by the request's below, as modifyResponseOf does
			}
			hasID = true
		}
		fa.AddField(name, value)
	}
	if rec != nil && !hasID {
		fa.AddFieldString(obs.RequestIDHeader, rec.ID)
	}
	if h.via {
		fa.AddFieldString("Via", viaValue(res.ProtoMajor, res.ProtoMinor))
	}
	if passedError {
		fa.AddFieldString("Proxy-Status", proxyStatusReceived(res.StatusCode))
	}
	if hasCL {
		fa.SetContentLength(res.ContentLength)
	}
	return true
}

// connectionNames reports whether name is among the field names that the
// Connection fields at conns (indexes into f) list.
func connectionNames(f *upstream.Fields, conns []int, name []byte) bool {
	for _, i := range conns {
		if httpsyntax.ListHasToken(f.Value(i), name) {
			return true
		}
	}
	return false
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

// forwardingFields returns dst with the fields that tell the upstream who
// the visitor is and that the request went through the gateway appended
// as name, value pairs: X-Forwarded-For, -Host and -Proto (from trusted
// proxies, the prior values are kept and appended to; from anyone else
// they are replaced, and when x_forwarded is off they are removed),
// Forwarded when configured, and Via. It deletes from out, which may be
// in.Header itself, the visitor's fields they replace; those the pairs
// add to (a trusted proxy's Forwarded, a prior Via) stay in out, and the
// pairs come after them. The values are substrings of the request's or
// constants (Forwarded's excepted), so with room in dst nothing is
// allocated.
func (h *Handler) forwardingFields(in *http.Request, out http.Header, dst []string) []string {
	trusted := inPrefixes(in.RemoteAddr, h.trusted)
	xff := in.Header["X-Forwarded-For"]
	xfh, xfp := httpsyntax.HeaderValue(in.Header, "X-Forwarded-Host"), httpsyntax.HeaderValue(in.Header, "X-Forwarded-Proto")
	delete(out, "X-Forwarded-For")
	delete(out, "X-Forwarded-Host")
	delete(out, "X-Forwarded-Proto")
	if h.xForwarded {
		if ip, _, err := net.SplitHostPort(in.RemoteAddr); err == nil {
			if trusted && len(xff) > 0 {
				ip = strings.Join(xff, ", ") + ", " + ip
			}
			dst = append(dst, "X-Forwarded-For", ip)
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
		dst = append(dst, "X-Forwarded-Host", host, "X-Forwarded-Proto", proto)
	}
	if h.forwarded {
		if !trusted {
			delete(out, "Forwarded")
		}
		dst = append(dst, "Forwarded", forwardedElement(in))
	}
	if h.via {
		dst = append(dst, "Via", viaValue(in.ProtoMajor, in.ProtoMinor))
	}
	return dst
}

// setForwardingHeaders puts the forwarding fields (forwardingFields) into
// out, after the values it keeps.
func (h *Handler) setForwardingHeaders(in *http.Request, out http.Header) {
	var arr [maxForwardingFields]string
	pairs := h.forwardingFields(in, out, arr[:0])
	for i := 0; i+1 < len(pairs); i += 2 {
		out[pairs[i]] = append(out[pairs[i]], pairs[i+1])
	}
}

// maxForwardingFields is the room the fields the direct path adds need:
// forwardingFields' five pairs and X-Request-Id.
const maxForwardingFields = 12

// setRequestID makes id the request's X-Request-Id in h, in place of the
// visitor's (which is id itself when the visitor's was kept).
func setRequestID(h http.Header, id string) {
	if httpsyntax.HeaderValue(h, obs.RequestIDHeader) != id {
		h[obs.RequestIDHeader] = []string{id} // as Header.Set, canonical already
	}
}
