package check

import (
	"bufio"
	"bytes"
	"fmt"
	"net/url"
	"strings"
)

// MaxCookieFileBytes bounds the size of a cookies file.
const MaxCookieFileBytes = 4 << 20

// CookieHeader parses the cookies of a file for a request to u and returns
// them as one Cookie header value ("a=1; b=2"). The file is either the
// Netscape cookies.txt format that browser extensions and curl export
// (seven tab-separated fields per line; lines starting with "#HttpOnly_"
// are cookies, other "#" lines comments), of which only the cookies whose
// domain and path match u are kept, or one line of "name=value; ..."
// pairs, with or without a leading "Cookie:". The error wraps
// ErrBadOption and names the line.
func CookieHeader(data []byte, u *url.URL) (string, error) {
	if len(data) > MaxCookieFileBytes {
		return "", fmt.Errorf("%w: cookies file larger than %d bytes", ErrBadOption, MaxCookieFileBytes)
	}
	if bytes.IndexByte(data, 0) >= 0 {
		return "", fmt.Errorf("%w: the cookies file is not text", ErrBadOption)
	}
	netscape := bytes.Contains(data, []byte("\t"))
	if !netscape {
		s := strings.TrimSpace(string(data))
		if i := strings.IndexAny(s, "\r\n"); i >= 0 {
			return "", fmt.Errorf("%w: cookies file: line 2: want one line of name=value pairs, or the tab-separated cookies.txt format", ErrBadOption)
		}
		if len(s) >= 7 && strings.EqualFold(s[:7], "cookie:") {
			s = strings.TrimSpace(s[7:])
		}
		return JoinCookies([]string{s})
	}
	host := strings.ToLower(u.Hostname())
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	var pairs []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), MaxCookieFileBytes)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimRight(sc.Text(), "\r")
		if strings.HasPrefix(text, "#HttpOnly_") {
			text = strings.TrimPrefix(text, "#HttpOnly_")
		} else if strings.HasPrefix(text, "#") || strings.TrimSpace(text) == "" {
			continue
		}
		f := strings.Split(text, "\t")
		if len(f) != 7 {
			return "", fmt.Errorf("%w: cookies file: line %d: %d tab-separated fields, want 7 (domain, subdomains, path, secure, expiry, name, value)", ErrBadOption, line, len(f))
		}
		domain := strings.ToLower(strings.TrimPrefix(f[0], "."))
		subdomains := strings.EqualFold(f[1], "TRUE") || strings.HasPrefix(f[0], ".")
		if host != domain && !(subdomains && strings.HasSuffix(host, "."+domain)) {
			continue
		}
		if cp := f[2]; cp != "" && cp != "/" && path != cp && !strings.HasPrefix(path, strings.TrimSuffix(cp, "/")+"/") {
			continue
		}
		if strings.EqualFold(f[3], "TRUE") && u.Scheme != "https" {
			continue
		}
		pairs = append(pairs, f[5]+"="+f[6])
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("%w: cookies file: line %d: %w", ErrBadOption, line+1, err)
	}
	return JoinCookies(pairs)
}

// JoinCookies joins --cookie values (each "name=value", or several joined
// by "; ") into one Cookie header value, checking each pair. The error
// wraps ErrBadOption.
func JoinCookies(values []string) (string, error) {
	var pairs []string
	for _, v := range values {
		for _, p := range strings.Split(v, ";") {
			p = strings.TrimSpace(p)
			if p == "" {
				continue
			}
			name, _, ok := strings.Cut(p, "=")
			if !ok || strings.TrimSpace(name) == "" {
				return "", fmt.Errorf("%w: cookie %q: want name=value", ErrBadOption, clip(p, 40))
			}
			if strings.ContainsAny(p, "\r\n\x00") {
				return "", fmt.Errorf("%w: cookie %q: contains a line break or NUL", ErrBadOption, clip(p, 40))
			}
			pairs = append(pairs, p)
		}
	}
	s := strings.Join(pairs, "; ")
	if len(s) > MaxCookieBytes {
		return "", fmt.Errorf("%w: the cookies are %d bytes: at most %d", ErrBadOption, len(s), MaxCookieBytes)
	}
	return s, nil
}
