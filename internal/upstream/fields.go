package upstream

import (
	"bufio"
	"bytes"
	"net/http"
	"strings"

	"github.com/gatewise/gatewise/internal/httpsyntax"
)

// fieldsInline is how many header fields a Fields holds without another
// allocation.
const fieldsInline = 24

// Fields is a response's header section as the upstream sent it: its
// fields in order, each name in canonical form, without a header map. A
// proxy relaying the answer writes them out as they are, skipping and
// adding what it must (see FieldsObserver), rather than building a map and
// writing the map out again.
//
// It lives in the connection's header buffer: it is valid until the
// response's body is closed or read to its end, and a caller that needs it
// longer copies what it needs (Header builds a map of copies).
type Fields struct {
	block     []byte        // the status line and the fields, line ends removed
	statusLen int           // the status line is block[:statusLen]
	at        []headerField // where each field's name and value sit in block
	// chunked: the body is chunked, so the Transfer-Encoding fields, and
	// any Content-Length, are not the answer's (Header leaves them out,
	// as the map readHead builds does).
	chunked bool
	inline  [fieldsInline]headerField
}

// Len returns the number of fields.
func (f *Fields) Len() int { return len(f.at) }

// Name returns the i-th field's name, in canonical form.
func (f *Fields) Name(i int) []byte { return f.block[f.at[i].k0:f.at[i].k1] }

// Value returns the i-th field's value, without surrounding white space.
func (f *Fields) Value(i int) []byte { return f.block[f.at[i].v0:f.at[i].v1] }

// Get returns the value of the first field named name (in canonical
// form), and whether there is one.
func (f *Fields) Get(name string) ([]byte, bool) {
	for i := range f.at {
		if string(f.Name(i)) == name {
			return f.Value(i), true
		}
	}
	return nil, false
}

// framing reports whether the i-th field is one of the answer's framing
// fields that frame has dealt with and that are not the answer's as such:
// Transfer-Encoding, and a Content-Length when the body is chunked or the
// field repeats an earlier one (the header map leaves them out).
func (f *Fields) framing(i int) bool {
	switch string(f.Name(i)) {
	case "Transfer-Encoding":
		return true
	case "Content-Length":
		if f.chunked {
			return true
		}
		for j := range i {
			if string(f.Name(j)) == "Content-Length" {
				return true // the values are equal (see frame): one is kept
			}
		}
	}
	return false
}

// Header returns the fields as a header map, the one readHead would have
// returned: framing fields left out (Transfer-Encoding, a Content-Length
// beside it or repeated), each value a copy.
func (f *Fields) Header() http.Header {
	return f.header(string(f.block), nil)
}

// read reads the status line and the header fields from br into f,
// canonicalizing the names in place; at is the storage for their
// positions. The bytes read, line ends included, are taken from *budget.
// The buffer is *scratch's, given back to it afterwards unless it grew
// past maxScratch: the caller must be done with f before the next read
// into *scratch.
func (f *Fields) read(br *bufio.Reader, budget *int64, scratch *[]byte, at []headerField) error {
	block := (*scratch)[:0]
	defer func() {
		if cap(block) <= maxScratch {
			*scratch = block[:0]
		}
	}()
	f.statusLen = -1
	for {
		line, err := readLine(br, &block, budget)
		if err != nil {
			return err
		}
		if f.statusLen < 0 {
			if len(line) == 0 {
				return malformed("empty status line")
			}
			f.statusLen = len(line)
			continue
		}
		if len(line) == 0 {
			break
		}
		hf, err := parseField(line, len(block)-len(line))
		if err != nil {
			return err
		}
		at = append(at, hf)
	}
	f.block, f.at = block, at
	return nil
}

// header builds the map of f's fields, after frame, from s, a string of
// f.block, the values being capacity-limited slices of vals when it has
// room for one per field (else of an array it allocates). Framing fields
// are left out.
func (f *Fields) header(s string, vals []string) http.Header {
	h := make(http.Header, len(f.at))
	if len(vals) >= len(f.at) {
		vals = vals[:len(f.at)]
	} else {
		vals = make([]string, len(f.at))
	}
	for i, hf := range f.at {
		if f.framing(i) {
			continue
		}
		k, v := s[hf.k0:hf.k1], s[hf.v0:hf.v1]
		if prior, ok := h[k]; ok {
			h[k] = append(prior, v)
			continue
		}
		vals[i] = v
		h[k] = vals[i : i+1 : i+1]
	}
	return h
}

// frame sets res's body framing from f's fields (chunked, a length, or
// until the connection closes) and whether the connection closes after:
// res.Close, ContentLength, TransferEncoding and Trailer; and f.chunked.
func (f *Fields) frame(res *http.Response) error {
	var keepAlive, hasCL, hasTE bool
	var cl, te []byte
	nTE := 0
	for i := range f.at {
		v := f.Value(i)
		switch string(f.Name(i)) {
		case "Connection":
			if httpsyntax.ListHasToken(v, "close") {
				res.Close = true
			}
			if httpsyntax.ListHasToken(v, "keep-alive") {
				keepAlive = true
			}
		case "Transfer-Encoding":
			hasTE, te = true, v
			nTE++
		case "Content-Length":
			if hasCL && !bytes.Equal(v, cl) {
				// A conflict, reported below unless a Transfer-Encoding
				// makes every length moot.
				cl = nil
				continue
			}
			if !hasCL {
				cl = v
			}
			hasCL = true
		}
	}
	if res.ProtoMajor == 1 && res.ProtoMinor == 0 && !keepAlive {
		res.Close = true
	}
	if hasTE {
		if nTE != 1 || !strings.EqualFold(string(te), "chunked") {
			return malformed("unsupported transfer encoding")
		}
		f.chunked = true
		res.TransferEncoding = []string{"chunked"}
		if res.ProtoMinor == 0 {
			// HTTP/1.0 has no transfer codings: a chunked body is read as
			// sent, but its framing is not trusted for another response
			// (RFC 9112 6.1).
			res.Close = true
		}
		if hasCL {
			// Both: the length is ignored and the connection not reused
			// (RFC 9112 6.3), as a request smuggling defence.
			res.Close = true
		}
		for i := range f.at {
			if string(f.Name(i)) != "Trailer" {
				continue
			}
			if res.Trailer == nil {
				res.Trailer = make(http.Header)
			}
			for name := range strings.SplitSeq(string(f.Value(i)), ",") {
				if name = strings.Trim(name, " \t"); validHeaderName(name) {
					res.Trailer[http.CanonicalHeaderKey(name)] = nil
				}
			}
		}
		return nil
	}
	if hasCL {
		if cl == nil {
			return malformed("conflicting Content-Length")
		}
		n, ok := parseLength(cl)
		if !ok {
			return malformed("bad Content-Length")
		}
		res.ContentLength = n
	}
	return nil
}

// parseLength parses a Content-Length value: ASCII digits only, within
// int64.
func parseLength(b []byte) (int64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := int64(c - '0')
		if n > (1<<63-1-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}
