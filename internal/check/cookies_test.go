package check

import (
	"errors"
	"testing"
)

func TestCookieHeader(t *testing.T) {
	t.Parallel()
	netscape := "# Netscape HTTP Cookie File\n" +
		".example.com\tTRUE\t/\tFALSE\t0\tsid\tabc\n" +
		"#HttpOnly_www.example.com\tFALSE\t/\tTRUE\t0\ttok\txyz\n" +
		"other.org\tFALSE\t/\tFALSE\t0\tno\tpe\n" +
		"www.example.com\tFALSE\t/admin\tFALSE\t0\tadm\tin\n"
	tests := []struct {
		desc, url, file, want string
		bad                   bool
	}{
		{"one line", "https://example.com/", "a=1; b=2\n", "a=1; b=2", false},
		{"Cookie: prefix", "https://example.com/", "Cookie: a=1", "a=1", false},
		{"netscape over https", "https://www.example.com/", netscape, "sid=abc; tok=xyz", false},
		{"netscape over http drops secure", "http://www.example.com/", netscape, "sid=abc", false},
		{"netscape path", "http://www.example.com/admin/x", netscape, "sid=abc; adm=in", false},
		{"no pair", "https://example.com/", "novalue", "", true},
		{"two plain lines", "https://example.com/", "a=1\nb=2", "", true},
		{"short netscape line", "https://example.com/", "example.com\tTRUE\t/\n", "", true},
	}
	for _, tc := range tests {
		u, err := ParseURL(tc.url)
		if err != nil {
			t.Fatal(err)
		}
		got, err := CookieHeader([]byte(tc.file), u)
		if tc.bad {
			if !errors.Is(err, ErrBadOption) {
				t.Errorf("%s: err = %v, want ErrBadOption", tc.desc, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: got %q, %v; want %q", tc.desc, got, err, tc.want)
		}
	}
}

func TestParseURLAndResolver(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"", "ftp://example.com", "http://", "http://ex ample.com", "https://user:pw@example.com/", "http://example.com:99999/", "http://[::1", "%zz"} {
		if _, err := ParseURL(bad); !errors.Is(err, ErrBadURL) {
			t.Errorf("ParseURL(%q) = %v, want ErrBadURL", bad, err)
		}
	}
	u, err := ParseURL("example.com/path#frag")
	if err != nil || u.String() != "https://example.com/path" {
		t.Errorf("ParseURL(example.com/path) = %v, %v", u, err)
	}
	for in, want := range map[string]string{"1.1.1.1": "1.1.1.1:53", "127.0.0.1:5353": "127.0.0.1:5353", "::1": "[::1]:53", "off": "off"} {
		if got, err := ParseResolver(in); err != nil || got != want {
			t.Errorf("ParseResolver(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"dns.google", "1.1.1.1:0", "1.2.3"} {
		if _, err := ParseResolver(bad); !errors.Is(err, ErrBadOption) {
			t.Errorf("ParseResolver(%q) = %v, want ErrBadOption", bad, err)
		}
	}
}
