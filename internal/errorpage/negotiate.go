package errorpage

import "strings"

// format is one of the bodies a Renderer can write.
type format int

// The formats, in the server's order of preference for a tie.
const (
	formatText        format = iota // text/plain
	formatHTML                      // text/html
	formatProblemJSON               // application/problem+json
	formatJSON                      // application/json (same body as problem+json)
)

// contentType returns the Content-Type header value of the format.
func (f format) contentType() string {
	switch f {
	case formatHTML:
		return "text/html; charset=utf-8"
	case formatProblemJSON:
		return "application/problem+json"
	case formatJSON:
		return "application/json"
	default:
		return "text/plain; charset=utf-8"
	}
}

// offer is a media type the Renderer can produce.
type offer struct {
	typ, sub string
	f        format
}

// offers returns the media types a Renderer can produce, in the server's order
// of preference, used only to break ties: text/plain first so that a bare
// "Accept: */*" (curl, wget, fetch's default) gets readable lines.
func offers() [4]offer {
	return [4]offer{
		{"text", "plain", formatText},
		{"text", "html", formatHTML},
		{"application", "problem+json", formatProblemJSON},
		{"application", "json", formatJSON},
	}
}

// mediaRange is one element of an Accept header.
type mediaRange struct {
	typ, sub string // lower case; "*" for a wildcard
	q        int    // quality in thousandths, 0..1000
}

// specificity of a range that matches an offer: 2 for type/subtype, 1 for
// type/*, 0 for */*.
func (m mediaRange) specificity() int {
	switch {
	case m.typ == "*":
		return 0
	case m.sub == "*":
		return 1
	default:
		return 2
	}
}

func (m mediaRange) matches(o offer) bool {
	return (m.typ == "*" || m.typ == o.typ) && (m.sub == "*" || m.sub == o.sub)
}

// negotiate picks the body format for the values of the request's Accept
// header fields (RFC 9110 §12.5.1):
//
//   - Each offer takes the quality of the most specific media range that
//     matches it (type/subtype over type/* over */*); parameters other than q
//     are ignored. An offer with quality 0 is not acceptable.
//   - The offer with the highest quality wins; a tie goes to the offer
//     matched by the more specific range (so "application/json, */*" gets
//     JSON), then to the server's order: text/plain, text/html,
//     application/problem+json, application/json.
//   - No Accept field, or one that accepts none of the offers, gets
//     text/plain: an error response may disregard Accept, and plain text
//     is readable everywhere.
//
// So a browser (text/html explicit, */* at q=0.8) gets HTML, curl (*/*) gets
// text, and an API client (application/json or application/problem+json)
// gets problem JSON.
func negotiate(accept []string) format {
	var ranges []mediaRange
	for _, v := range accept {
		ranges = append(ranges, parseAccept(v)...)
	}
	best, bestQ, bestSpec := formatText, 0, -1
	for _, o := range offers() {
		q, spec := -1, -1
		for _, m := range ranges {
			if !m.matches(o) {
				continue
			}
			s := m.specificity()
			if s > spec || (s == spec && m.q > q) {
				q, spec = m.q, s
			}
		}
		if q <= 0 {
			continue
		}
		if q > bestQ || (q == bestQ && spec > bestSpec) {
			best, bestQ, bestSpec = o.f, q, spec
		}
	}
	return best
}

// parseAccept parses one Accept field value into its media ranges. Elements
// that are not a valid media range, or whose q is not a valid qvalue, are
// skipped.
func parseAccept(v string) []mediaRange {
	var out []mediaRange
	for _, elem := range splitQuoted(v, ',') {
		parts := splitQuoted(elem, ';')
		typ, sub, ok := strings.Cut(strings.TrimSpace(parts[0]), "/")
		typ, sub = strings.ToLower(strings.TrimSpace(typ)), strings.ToLower(strings.TrimSpace(sub))
		if !ok || !isToken(typ) || !isToken(sub) || (typ == "*" && sub != "*") {
			continue
		}
		m := mediaRange{typ: typ, sub: sub, q: 1000}
		valid := true
		for _, p := range parts[1:] {
			name, val, _ := strings.Cut(p, "=")
			if !strings.EqualFold(strings.TrimSpace(name), "q") {
				continue
			}
			q, ok := parseQ(strings.TrimSpace(val))
			if !ok {
				valid = false
			}
			m.q = q
			break // parameters after q are accept-ext, irrelevant here
		}
		if valid {
			out = append(out, m)
		}
	}
	return out
}

// parseQ parses an RFC 9110 qvalue ("0", "0.5", "1.000") into thousandths.
func parseQ(s string) (int, bool) {
	if s == "" || len(s) > 5 || (s[0] != '0' && s[0] != '1') {
		return 0, false
	}
	q := int(s[0]-'0') * 1000
	if len(s) == 1 {
		return q, true
	}
	if s[1] != '.' {
		return 0, false
	}
	scale := 100
	for _, c := range s[2:] {
		if c < '0' || c > '9' {
			return 0, false
		}
		q += int(c-'0') * scale
		scale /= 10
	}
	if q > 1000 {
		return 0, false
	}
	return q, true
}

// splitQuoted splits s at sep, except inside a quoted-string (with
// backslash escapes), as Accept parameters may be quoted.
func splitQuoted(s string, sep byte) []string {
	var out []string
	start, quoted := 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case !quoted && c == sep:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// isToken reports whether s is a non-empty RFC 9110 token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}
