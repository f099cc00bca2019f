package errorpage

import "strings"

// DefaultProxyName is the name of the gateway in the Proxy-Status header when
// Options.ProxyName is empty.
const DefaultProxyName = "gatewise"

// ProxyStatus returns the value of the Proxy-Status header (RFC 9209) for p,
// as a valid RFC 8941 structured field: a list with one item, the proxy's
// name, with the parameters
//
//   - error: the cause's RFC 9209 error type, a token; omitted when the cause
//     has none (or it is not a valid token);
//   - details: a string naming the cause id, then ": " and p.Detail when
//     the detail is set.
//
// For example: gatewise; error=connection_refused; details="connection_refused: reset".
//
// name is written as a token when it is one (a letter or "*" first, then
// token characters, ":" or "/"), otherwise as a string. An empty name means
// DefaultProxyName. Characters a structured-field string cannot hold
// (anything outside printable ASCII) are replaced with "?". A zero p.Cause
// stands for proxy_internal_error, as in Renderer.Write.
func ProxyStatus(name string, p Problem) string {
	if name == "" {
		name = DefaultProxyName
	}
	c := resolveCause(p.Cause)
	var b strings.Builder
	if isSFToken(name) {
		b.WriteString(name)
	} else {
		writeSFString(&b, name)
	}
	if isSFToken(c.ProxyStatusError) {
		b.WriteString("; error=")
		b.WriteString(c.ProxyStatusError)
	}
	details := string(c.ID)
	if d := cleanText(p.Detail, maxDetail); d != "" {
		details += ": " + d
	}
	b.WriteString("; details=")
	writeSFString(&b, details)
	return b.String()
}

// isSFToken reports whether s is an RFC 8941 sf-token:
// ( ALPHA / "*" ) *( tchar / ":" / "/" ).
func isSFToken(s string) bool {
	if s == "" {
		return false
	}
	if c := s[0]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '*') {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; c != ':' && c != '/' && !isToken(s[i:i+1]) {
			return false
		}
	}
	return true
}

// writeSFString writes s as an RFC 8941 sf-string: in double quotes, with
// '"' and '\' escaped by a backslash, and every byte outside printable ASCII
// (%x20-7E) replaced by '?'.
func writeSFString(b *strings.Builder, s string) {
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r >= 0x20 && r <= 0x7e:
			b.WriteRune(r)
		default:
			b.WriteByte('?')
		}
	}
	b.WriteByte('"')
}
