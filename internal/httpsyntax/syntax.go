// Package httpsyntax holds the byte-level rules of HTTP/1.1 message
// syntax (RFC 9110, RFC 9112) that the gateway's own request parser
// (internal/h1server) and response parser (internal/upstream) share.
package httpsyntax

import (
	"net/http"
	"reflect"
)

// SameHeader reports whether a and b are the same map (not merely equal
// ones): a writer's wrappers share their header map with the writer
// beneath them unless one keeps its own.
func SameHeader(a, b http.Header) bool {
	return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}

// HeaderValue returns the first value of the field named key in h, or "".
// key must be in canonical form ("X-Request-Id", as
// textproto.CanonicalMIMEHeaderKey returns it), as the parsers store
// every name: unlike http.Header.Get, it does not canonicalize key on
// every call.
func HeaderValue(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// BreaksField reports whether a field value holds a CR, an LF or a NUL:
// bytes that would end the field early or split it in two (a header
// injection) if written out as they are. A byte loop: strings.ContainsAny
// costs about 2.5 times as much on short values.
func BreaksField(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c == '\r' || c == '\n' || c == 0 {
			return true
		}
	}
	return false
}

// ListHasToken reports whether a comma-separated field value (such as
// Connection's) holds token, in any ASCII case, with optional white space
// (spaces and tabs) around it.
func ListHasToken[L, T string | []byte](list L, token T) bool {
	for start := 0; start <= len(list); {
		end := start
		for end < len(list) && list[end] != ',' {
			end++
		}
		a, b := start, end
		for a < b && (list[a] == ' ' || list[a] == '\t') {
			a++
		}
		for b > a && (list[b-1] == ' ' || list[b-1] == '\t') {
			b--
		}
		if b-a == len(token) && b > a {
			same := true
			for i := range len(token) {
				if lowerASCII(list[a+i]) != lowerASCII(token[i]) {
					same = false
					break
				}
			}
			if same {
				return true
			}
		}
		start = end + 1
	}
	return false
}

// AnyHasToken is ListHasToken over the values of a repeated field.
func AnyHasToken(values []string, token string) bool {
	for _, v := range values {
		if ListHasToken(v, token) {
			return true
		}
	}
	return false
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// IsTokenByte reports whether b may appear in a token (RFC 9110 5.6.2):
// a method or a field name.
func IsTokenByte(b byte) bool {
	switch {
	case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		return true
	}
	switch b {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}

// IsToken reports whether s is a non-empty token.
func IsToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !IsTokenByte(s[i]) {
			return false
		}
	}
	return true
}

// CanonicalizeName puts a field name in canonical form in place, as
// textproto.CanonicalMIMEHeaderKey does for valid names ("content-type"
// becomes "Content-Type"). It reports whether name is a token; a name that
// is not is left as it is.
func CanonicalizeName(name []byte) bool {
	if len(name) == 0 {
		return false
	}
	for _, c := range name {
		if !IsTokenByte(c) {
			return false
		}
	}
	upper := true
	for i, c := range name {
		switch {
		case upper && 'a' <= c && c <= 'z':
			name[i] = c - ('a' - 'A')
		case !upper && 'A' <= c && c <= 'Z':
			name[i] = c + ('a' - 'A')
		}
		upper = c == '-'
	}
	return true
}
