package fastcgi

import (
	"net"
	"net/http"
	"strconv"
	"strings"
)

// cgiRequest is what the CGI variables are built from.
type cgiRequest struct {
	req *http.Request
	// root is the resolved document root, without a trailing slash.
	root string
	// script and pathInfo are SCRIPT_NAME and PATH_INFO.
	script, pathInfo string
	// contentLength is the request body's length; -1 for none.
	contentLength int64
}

// https reports whether the visitor's request came over TLS: the request
// itself has TLS state, or it carries X-Forwarded-Proto: https. gatewise's
// proxy sets that header itself on the outbound request (from its own
// listener, or from a trusted proxy in front of it) and removes a
// visitor's, so the Transport trusts it.
func https(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

// appendParams appends the CGI/1.1 variables PHP applications expect, as
// name-value pairs, followed by the options' extra Params.
func (t *Transport) appendParams(b []byte, c cgiRequest) []byte {
	r := c.req
	set := func(name, value string) {
		if _, ok := t.opts.Params[name]; ok {
			return
		}
		b = appendPair(b, name, value)
	}
	scheme, defaultPort := "http", "80"
	if https(r) {
		scheme, defaultPort = "https", "443"
		set("HTTPS", "on")
	}
	set("GATEWAY_INTERFACE", "CGI/1.1")
	set("SERVER_SOFTWARE", t.opts.ServerSoftware)
	set("REDIRECT_STATUS", "200")
	set("REQUEST_SCHEME", scheme)
	set("REQUEST_METHOD", r.Method)
	set("REQUEST_URI", r.URL.RequestURI())
	set("QUERY_STRING", r.URL.RawQuery)
	set("DOCUMENT_ROOT", c.root)
	set("SCRIPT_NAME", c.script)
	set("SCRIPT_FILENAME", c.root+c.script)
	set("DOCUMENT_URI", c.script+c.pathInfo)
	set("PATH_INFO", c.pathInfo)
	if c.pathInfo != "" {
		set("PATH_TRANSLATED", c.root+c.pathInfo)
	}
	if c.contentLength >= 0 {
		set("CONTENT_LENGTH", strconv.FormatInt(c.contentLength, 10))
	} else {
		set("CONTENT_LENGTH", "")
	}
	set("CONTENT_TYPE", r.Header.Get("Content-Type"))

	proto := r.Proto
	if proto == "" {
		proto = "HTTP/1.1"
	}
	set("SERVER_PROTOCOL", proto)
	host, hostPort := r.Host, ""
	if h, p, err := net.SplitHostPort(host); err == nil {
		host, hostPort = h, p
	}
	set("SERVER_NAME", host)
	serverAddr, serverPort := "", hostPort
	if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if h, p, err := net.SplitHostPort(la.String()); err == nil {
			serverAddr, serverPort = h, p
		}
	}
	if serverPort == "" {
		serverPort = defaultPort
	}
	set("SERVER_ADDR", serverAddr)
	set("SERVER_PORT", serverPort)
	remoteAddr, remotePort := r.RemoteAddr, ""
	if h, p, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		remoteAddr, remotePort = h, p
	}
	set("REMOTE_ADDR", remoteAddr)
	set("REMOTE_PORT", remotePort)

	if r.Host != "" {
		set("HTTP_HOST", r.Host)
	}
	for name, values := range r.Header {
		if !headerToCGI(name) {
			continue
		}
		sep := ", "
		if name == "Cookie" {
			sep = "; "
		}
		set(cgiHeaderName(name), strings.Join(values, sep))
	}
	for name, value := range t.opts.Params {
		b = appendPair(b, name, value)
	}
	return b
}

// headerToCGI reports whether a request header becomes an HTTP_ variable.
// Content-Type and Content-Length have their own variables; Host comes
// from the request's Host; Proxy never goes (httpoxy: PHP's HTTP_PROXY
// would be taken for the proxy setting); names with an underscore are
// dropped, since "X_Real_IP" and "X-Real-IP" would both become
// HTTP_X_REAL_IP and let a visitor spoof a header a proxy sets (nginx's
// underscores_in_headers off).
func headerToCGI(name string) bool {
	switch name {
	case "Content-Type", "Content-Length", "Host", "Proxy":
		return false
	}
	return name != "" && !strings.ContainsAny(name, "_\x00=")
}

// cgiHeaderName returns the CGI variable of a header: "X-Real-Ip" becomes
// "HTTP_X_REAL_IP".
func cgiHeaderName(name string) string {
	b := make([]byte, 0, len("HTTP_")+len(name))
	b = append(b, "HTTP_"...)
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '-':
			c = '_'
		case 'a' <= c && c <= 'z':
			c -= 'a' - 'A'
		}
		b = append(b, c)
	}
	return string(b)
}
