package check

import "strings"

// proxyStatusMember is one member of a Proxy-Status header (RFC 9209): the
// intermediary's name and its parameters.
type proxyStatusMember struct {
	Name   string
	Params map[string]string
}

// maxProxyStatus bounds the part of a Proxy-Status header that is read.
const maxProxyStatus = 8 << 10

// parseProxyStatus reads a Proxy-Status header value leniently: members
// separated by commas, each a token or a quoted string followed by
// ";key=value" parameters whose values are tokens, numbers or quoted
// strings. Malformed pieces are skipped; it never fails. The members are in
// the header's order: the first was added by the hop nearest the origin.
func parseProxyStatus(values []string) []proxyStatusMember {
	s := strings.Join(values, ",")
	if len(s) > maxProxyStatus {
		s = s[:maxProxyStatus]
	}
	var out []proxyStatusMember
	for _, raw := range splitOutsideQuotes(s, ',') {
		parts := splitOutsideQuotes(raw, ';')
		name := unquote(strings.TrimSpace(parts[0]))
		if name == "" {
			continue
		}
		m := proxyStatusMember{Name: name, Params: map[string]string{}}
		for _, p := range parts[1:] {
			k, v, ok := strings.Cut(p, "=")
			k = strings.ToLower(strings.TrimSpace(k))
			if k == "" {
				continue
			}
			if !ok {
				m.Params[k] = "?1"
				continue
			}
			m.Params[k] = unquote(strings.TrimSpace(v))
		}
		out = append(out, m)
		if len(out) >= 16 {
			break
		}
	}
	return out
}

// splitOutsideQuotes splits s at sep where sep is not inside a quoted
// string (with backslash escapes).
func splitOutsideQuotes(s string, sep byte) []string {
	var out []string
	start, inQuote, escaped := 0, false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case escaped:
			escaped = false
		case inQuote && c == '\\':
			escaped = true
		case c == '"':
			inQuote = !inQuote
		case !inQuote && c == sep:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// unquote removes the quotes and backslash escapes of a structured-field
// string; anything else is returned as it is.
func unquote(s string) string {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return s
	}
	s = s[1 : len(s)-1]
	var b strings.Builder
	escaped := false
	for i := 0; i < len(s); i++ {
		if !escaped && s[i] == '\\' {
			escaped = true
			continue
		}
		escaped = false
		b.WriteByte(s[i])
	}
	return b.String()
}
