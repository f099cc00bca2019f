package httpsyntax

import (
	"net/http"
	"net/textproto"
	"strings"
	"testing"
)

func TestIsTokenByte(t *testing.T) {
	const tchar = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	for b := 0; b < 256; b++ {
		want := strings.IndexByte(tchar, byte(b)) >= 0
		if got := IsTokenByte(byte(b)); got != want {
			t.Errorf("IsTokenByte(%q) = %v, want %v", byte(b), got, want)
		}
	}
	if IsToken("") || !IsToken("GET") || IsToken("GE T") {
		t.Error("IsToken")
	}
}

// TestCanonicalizeName: the same names as textproto's, for tokens; the
// rest refused and left alone.
func TestCanonicalizeName(t *testing.T) {
	for _, name := range []string{"content-type", "CONTENT-TYPE", "x-forwarded-for", "Te", "www-authenticate",
		"a", "-x-", "x--y", "accept-encoding", "X_Under_Score", "1-2-3", "é", "bad name", "bad:name", ""} {
		b := []byte(name)
		ok := CanonicalizeName(b)
		if ok != IsToken(name) {
			t.Errorf("%q: ok = %v", name, ok)
		}
		if !ok {
			if string(b) != name {
				t.Errorf("%q refused but changed to %q", name, b)
			}
			continue
		}
		if want := textproto.CanonicalMIMEHeaderKey(name); string(b) != want {
			t.Errorf("%q: got %q, want %q", name, b, want)
		}
	}
}

func TestBreaksField(t *testing.T) {
	for v, want := range map[string]bool{
		"": false, "text/html; charset=utf-8": false, "a\tb": false, "\x7f\x80é": false,
		"a\rb": true, "a\nSet-Cookie: x=1": true, "nul\x00": true, "\r\n": true,
	} {
		if got := BreaksField(v); got != want {
			t.Errorf("BreaksField(%q) = %v, want %v", v, got, want)
		}
	}
}

func TestSameHeader(t *testing.T) {
	a, b := http.Header{"X": {"1"}}, http.Header{"X": {"1"}}
	c := a
	if !SameHeader(a, c) || SameHeader(a, b) || SameHeader(a, nil) || !SameHeader(nil, nil) {
		t.Error("SameHeader tells maps apart by their contents")
	}
}

func TestHeaderValue(t *testing.T) {
	h := http.Header{"X-Request-Id": {"a", "b"}, "Empty": {}, "lower": {"x"}}
	for key, want := range map[string]string{
		"X-Request-Id": "a", // the first value
		"Empty":        "",
		"Missing":      "",
		"lower":        "x", // looked up as given: the caller's key is canonical
	} {
		if got := HeaderValue(h, key); got != want {
			t.Errorf("HeaderValue(%q) = %q, want %q", key, got, want)
		}
	}
	if got := HeaderValue(nil, "X"); got != "" {
		t.Errorf("HeaderValue(nil) = %q", got)
	}
}

func TestListHasToken(t *testing.T) {
	for _, tt := range []struct {
		list, token string
		want        bool
	}{
		{"close", "close", true},
		{"keep-alive, Close", "close", true},
		{"upgrade,\tCLOSE \t", "close", true},
		{"closed", "close", false},
		{"clos", "close", false},
		{"", "close", false},
		{",,", "close", false},
		{"X-Hop, x-other", "X-OTHER", true},
		{"a b", "a", false},
	} {
		if got := ListHasToken([]byte(tt.list), tt.token); got != tt.want {
			t.Errorf("ListHasToken(%q, %q) = %v", tt.list, tt.token, got)
		}
		if got := ListHasToken([]byte(tt.list), []byte(tt.token)); got != tt.want {
			t.Errorf("ListHasToken(%q, []byte %q) = %v", tt.list, tt.token, got)
		}
	}
}
