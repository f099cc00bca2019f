// Package errorpage writes the responses the gateway makes when it fails: a
// status, a Proxy-Status header (RFC 9209) naming the cause, a request ID,
// and a body chosen by content negotiation: a calm, self-contained HTML page
// for browsers, RFC 9457 problem JSON for API clients, and a few lines of
// plain text for everyone else (curl).
//
// The bodies come from three templates embedded in the binary (templates/):
// page.html, problem.json and page.txt. A site owner may replace any of them
// with a file of the same name in Options.TemplatesDir; the template data is
// Data, documented with an example in docs/error-pages.md.
//
// Nothing internal (an upstream's address, a raw error, route and pool
// names) reaches a body unless Problem.ShowInternal is set.
package errorpage

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	texttemplate "text/template"
	"time"

	"github.com/gatewise/gatewise/internal/cause"
)

// builtin holds the built-in templates.
//
//go:embed templates
var builtin embed.FS

// The file names of the templates, in the built-in set and in
// Options.TemplatesDir.
const (
	FileHTML = "page.html"    // the HTML page, an html/template
	FileJSON = "problem.json" // the problem+json body, a text/template
	FileText = "page.txt"     // the text/plain body, a text/template
)

// DefaultRetryAfter is the Retry-After sent with a retryable cause answered
// with 429, 503 or 504 when Problem.RetryAfter is not set, and
// Options.RetryAfter is zero.
const DefaultRetryAfter = 5 * time.Second

// Options configures a Renderer. The zero value is valid: built-in
// templates, the name "gatewise", the system clock.
type Options struct {
	// TemplatesDir is a directory of the owner's replacement templates:
	// page.html (html/template), problem.json and page.txt (text/template),
	// any subset. A file missing from it falls back to the built-in
	// template. If empty, the built-in templates are used; if set, the
	// directory must exist.
	TemplatesDir string
	// ProxyName is the gateway's name in the Proxy-Status header. If empty,
	// DefaultProxyName ("gatewise").
	ProxyName string
	// RetryAfter is the Retry-After sent with a retryable cause answered
	// with 429, 503 or 504 when the Problem does not set its own. If zero,
	// DefaultRetryAfter (5s); if negative, no default is sent.
	RetryAfter time.Duration
	// Now returns the current time, for the page's timestamp. If nil,
	// time.Now.
	Now func() time.Time
}

// Problem is one failure to answer.
type Problem struct {
	// Cause is the cause of the failure. The zero Cause stands for
	// proxy_internal_error.
	Cause cause.Cause
	// Detail says more about the cause in words safe to show to anyone, such
	// as "reset"; it goes into Proxy-Status details and the bodies. May be
	// empty.
	Detail string
	// RequestID is the request's id, echoed in X-Request-ID and the bodies.
	// May be empty.
	RequestID string
	// Status is the response's status. If zero, Cause.Status; if that is
	// zero too, or either is outside 400..599, 502.
	Status int
	// RetryAfter, when positive, sets the Retry-After header (rounded up to
	// whole seconds). See Options.RetryAfter for the default.
	RetryAfter time.Duration
	// Internal is internal detail (upstream address, raw error) for the
	// site owner. It is rendered only when ShowInternal is set.
	Internal string
	// ShowInternal adds a block of details for the site owner to every body:
	// Internal, Route, Upstream and the cause's owner sentence. Leave it off
	// for the public.
	ShowInternal bool
	// Route and Upstream name the route and the upstream pool. They are
	// rendered only when ShowInternal is set.
	Route, Upstream string
}

// Renderer writes error responses. It is safe for concurrent use.
type Renderer struct {
	html, builtinHTML *htmltemplate.Template
	json, builtinJSON *texttemplate.Template
	text, builtinText *texttemplate.Template
	proxyName         string
	retryAfter        time.Duration
	now               func() time.Time
}

// New returns a Renderer for opts. It parses the built-in templates and the
// owner's ones in opts.TemplatesDir, and tries each owner template with
// every cause, so that a template that fails to parse or to execute, or a
// problem.json that does not make valid JSON, is reported now: the error
// names the file and, from the template package, the line.
func New(opts Options) (*Renderer, error) {
	r := &Renderer{proxyName: opts.ProxyName, retryAfter: opts.RetryAfter, now: opts.Now}
	if r.proxyName == "" {
		r.proxyName = DefaultProxyName
	}
	if r.retryAfter == 0 {
		r.retryAfter = DefaultRetryAfter
	}
	if r.now == nil {
		r.now = time.Now
	}

	var err error
	builtinFile := func(name string) (string, []byte, error) {
		b, err := fs.ReadFile(builtin, "templates/"+name)
		return "built-in " + name, b, err
	}
	if r.builtinHTML, err = parseHTML(builtinFile(FileHTML)); err != nil {
		return nil, err
	}
	if r.builtinJSON, err = parseText(builtinFile(FileJSON)); err != nil {
		return nil, err
	}
	if r.builtinText, err = parseText(builtinFile(FileText)); err != nil {
		return nil, err
	}
	r.html, r.json, r.text = r.builtinHTML, r.builtinJSON, r.builtinText
	if opts.TemplatesDir == "" {
		return r, nil
	}

	fi, err := os.Stat(opts.TemplatesDir)
	if err != nil {
		return nil, fmt.Errorf("errorpage: templates directory: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("errorpage: templates directory %s: not a directory", opts.TemplatesDir)
	}
	ownerFile := func(name string) (string, []byte, error) {
		path := filepath.Join(opts.TemplatesDir, name)
		b, err := os.ReadFile(path)
		return path, b, err
	}
	if path, b, err := ownerFile(FileHTML); !errors.Is(err, fs.ErrNotExist) {
		if r.html, err = parseHTML(path, b, err); err != nil {
			return nil, err
		}
		if err := r.try(path, formatHTML); err != nil {
			return nil, err
		}
	}
	if path, b, err := ownerFile(FileJSON); !errors.Is(err, fs.ErrNotExist) {
		if r.json, err = parseText(path, b, err); err != nil {
			return nil, err
		}
		if err := r.try(path, formatProblemJSON); err != nil {
			return nil, err
		}
	}
	if path, b, err := ownerFile(FileText); !errors.Is(err, fs.ErrNotExist) {
		if r.text, err = parseText(path, b, err); err != nil {
			return nil, err
		}
		if err := r.try(path, formatText); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// funcs are the functions templates may call:
//
//	json: the JSON encoding of its argument, for problem.json.
func funcs() map[string]any {
	return map[string]any{
		"json": func(v any) (string, error) {
			b, err := json.Marshal(v)
			return string(b), err
		},
	}
}

// parseHTML parses the html/template in b, read from path with readErr.
func parseHTML(path string, b []byte, readErr error) (*htmltemplate.Template, error) {
	if readErr != nil {
		return nil, fmt.Errorf("errorpage: %w", readErr)
	}
	t, err := htmltemplate.New(filepath.Base(path)).Funcs(funcs()).Parse(string(b))
	if err != nil {
		return nil, fmt.Errorf("errorpage: %s: %w", path, err)
	}
	return t, nil
}

// parseText parses the text/template in b, read from path with readErr.
func parseText(path string, b []byte, readErr error) (*texttemplate.Template, error) {
	if readErr != nil {
		return nil, fmt.Errorf("errorpage: %w", readErr)
	}
	t, err := texttemplate.New(filepath.Base(path)).Funcs(funcs()).Parse(string(b))
	if err != nil {
		return nil, fmt.Errorf("errorpage: %s: %w", path, err)
	}
	return t, nil
}

// try executes the owner's template for format f with every cause, with and
// without the owner's details, and reports the first failure as an error
// naming path.
func (r *Renderer) try(path string, f format) error {
	req, _ := http.NewRequest(http.MethodGet, "http://example.com/", nil)
	causes := cause.NewTable().All()
	// No cause of the table is at the dependency hop yet; try one anyway,
	// as a template may draw that hop.
	causes = append(causes, cause.Cause{ID: "dependency_example", Title: "Dependency failed", Status: 503,
		Hop: cause.HopDependency, Visitor: "A service the site needs failed.", Owner: "Fix it.", Retryable: true})
	for _, c := range causes {
		for _, show := range []bool{false, true} {
			d := r.buildData(req, Problem{Cause: c, Detail: "reset", RequestID: "try", ShowInternal: show,
				Internal: "10.0.0.1:8080: connection refused", Route: "route", Upstream: "pool"})
			body, err := r.execute(f, d, false)
			if err != nil {
				return fmt.Errorf("errorpage: %s: %w", path, err)
			}
			if (f == formatProblemJSON || f == formatJSON) && !json.Valid(body) {
				return fmt.Errorf("errorpage: %s: cause %s: the output is not valid JSON", path, c.ID)
			}
		}
	}
	return nil
}

// execute renders the body of format f for d, with the owner's template, or
// the built-in one when builtinOnly is set.
func (r *Renderer) execute(f format, d Data, builtinOnly bool) ([]byte, error) {
	var buf bytes.Buffer
	var err error
	switch f {
	case formatHTML:
		t := r.html
		if builtinOnly {
			t = r.builtinHTML
		}
		err = t.Execute(&buf, d)
	case formatProblemJSON, formatJSON:
		t := r.json
		if builtinOnly {
			t = r.builtinJSON
		}
		err = t.Execute(&buf, d)
	default:
		t := r.text
		if builtinOnly {
			t = r.builtinText
		}
		err = t.Execute(&buf, d)
	}
	return buf.Bytes(), err
}

// Write writes the error response for p to w. req is the visitor's request;
// its Accept header picks the body and its method HEAD omits the body. Call
// it before anything of the response has been written.
//
// It sets the status (see Problem.Status), and these headers:
//
//   - Proxy-Status: see ProxyStatus;
//   - X-Request-ID: p.RequestID, when set;
//   - Cache-Control: no-store, and Vary: Accept;
//   - Content-Type, Content-Length and X-Content-Type-Options: nosniff;
//   - for HTML, a Content-Security-Policy that allows no script and no
//     external resource: only the page's own <style> elements (by hash) and
//     data: images; and Referrer-Policy: no-referrer;
//   - Retry-After: p.RetryAfter when positive, else Options.RetryAfter when
//     the cause is retryable and the status is 429, 503 or 504.
//
// It removes headers left from an earlier attempt that would contradict the
// body (Content-Encoding, Content-Range, ETag, Last-Modified, ...). If an
// owner's template fails to execute, the built-in one is used.
func (r *Renderer) Write(w http.ResponseWriter, req *http.Request, p Problem) {
	d := r.buildData(req, p)
	f := formatText
	if req != nil {
		f = negotiate(req.Header.Values("Accept"))
	}
	body, err := r.execute(f, d, false)
	if err != nil {
		body, _ = r.execute(f, d, true) // the built-in templates are tested
	}

	h := w.Header()
	for _, k := range []string{"Content-Encoding", "Content-Range", "Content-Disposition", "Content-Language",
		"Content-Location", "ETag", "Last-Modified", "Expires", "Accept-Ranges", "Transfer-Encoding"} {
		h.Del(k)
	}
	h.Set("Proxy-Status", d.ProxyStatus)
	if d.RequestID != "" {
		h.Set("X-Request-ID", d.RequestID)
	}
	h.Set("Cache-Control", "no-store")
	h.Set("Vary", "Accept")
	h.Set("Content-Type", f.contentType())
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("X-Content-Type-Options", "nosniff")
	if f == formatHTML {
		h.Set("Content-Security-Policy", contentSecurityPolicy(body))
		h.Set("Referrer-Policy", "no-referrer")
	} else {
		h.Del("Content-Security-Policy")
	}
	if d.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(d.RetryAfter))
	} else {
		h.Del("Retry-After")
	}
	w.WriteHeader(d.Status)
	if req != nil && req.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(body) // the visitor may have gone; nothing to do about it
}

// contentSecurityPolicy returns the policy for an HTML page: nothing is
// allowed but the inline <style> elements of this very page, by their
// SHA-256 hashes, and data: images. Hashing the output rather than using a
// nonce keeps the page byte-for-byte reproducible, and works for an owner's
// template too. The template escapes all data, so the only <style> elements
// are the template's own.
func contentSecurityPolicy(page []byte) string {
	var b strings.Builder
	b.WriteString("default-src 'none'; style-src")
	n := 0
	for _, css := range styleElements(page) {
		sum := sha256.Sum256(css)
		b.WriteString(" 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'")
		n++
	}
	if n == 0 {
		b.WriteString(" 'none'")
	}
	b.WriteString("; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	return b.String()
}

// styleElements returns the contents of the <style> elements of an HTML page.
func styleElements(page []byte) [][]byte {
	var out [][]byte
	lower := bytes.ToLower(page)
	for i := 0; ; {
		start := bytes.Index(lower[i:], []byte("<style"))
		if start < 0 {
			return out
		}
		start += i
		if c := lower[start+len("<style"):]; len(c) == 0 || !(c[0] == '>' || c[0] == ' ' || c[0] == '\t' || c[0] == '\n' || c[0] == '\r' || c[0] == '\f' || c[0] == '/') {
			i = start + len("<style")
			continue
		}
		open := bytes.IndexByte(lower[start:], '>')
		if open < 0 {
			return out
		}
		open += start + 1
		end := bytes.Index(lower[open:], []byte("</style"))
		if end < 0 {
			return out
		}
		out = append(out, page[open:open+end])
		i = open + end
	}
}
