package config

import (
	"errors"
	"io/fs"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// The schemes of PHP-FPM targets.
const (
	// SchemeFastCGI is a PHP-FPM target on TCP: fastcgi://host:port.
	SchemeFastCGI = "fastcgi"
	// SchemeFastCGIUnix is a PHP-FPM target on a unix socket:
	// fastcgi+unix:///run/php/php8.2-fpm.sock.
	SchemeFastCGIUnix = "fastcgi+unix"
)

// IsFastCGIURL reports whether a target URL names PHP-FPM (fastcgi:// or
// fastcgi+unix://) rather than an HTTP server.
func IsFastCGIURL(s string) bool {
	return strings.HasPrefix(s, SchemeFastCGI+"://") || strings.HasPrefix(s, SchemeFastCGIUnix+"://")
}

// IsFastCGI reports whether the pool's targets are PHP-FPM: its first
// target's URL is fastcgi:// or fastcgi+unix:// (Validate refuses a pool
// that mixes them with http:// targets).
func (p *Pool) IsFastCGI() bool {
	return p != nil && len(p.Targets) > 0 && IsFastCGIURL(p.Targets[0].URL)
}

// targetKinds remembers the first HTTP and the first FastCGI target of a
// pool, to refuse a pool that mixes them.
type targetKinds struct {
	http, fastcgi string // the field of the first target of each kind
	mixed         bool   // reported already
}

// targetKind records the kind of the valid target at field, whose
// normalized URL is key, and reports the first one of the other kind than
// the pool's first target.
func (v *validator) targetKind(field, key string, k *targetKinds) {
	fast := IsFastCGIURL(key)
	if fast && k.fastcgi == "" {
		k.fastcgi = field
	}
	if !fast && k.http == "" {
		k.http = field
	}
	if k.mixed || k.http == "" || k.fastcgi == "" {
		return
	}
	k.mixed = true
	if fast {
		v.errorf(field, "a fastcgi target in a pool of http targets (%s): put PHP-FPM in a pool of its own, with a route to it", k.http)
	} else {
		v.errorf(field, "an http target in a pool of fastcgi targets (%s): put it in a pool of its own, with a route to it", k.fastcgi)
	}
}

// unixTargetURL checks a fastcgi+unix:// target URL, already parsed as u,
// and returns its key: the scheme and the cleaned socket path.
func (v *validator) unixTargetURL(field string, u *url.URL) (string, bool) {
	ok := true
	problem := func(format string, args ...any) {
		v.errorf(field, format, args...)
		ok = false
	}
	switch {
	case u.User != nil:
		problem("has user info (user@): credentials in target URLs are not supported")
	case u.Host != "" || u.Opaque != "" || u.Path == "":
		problem("want the socket's absolute path after three slashes, such as fastcgi+unix:///run/php/php8.2-fpm.sock")
	case u.RawQuery != "" || u.ForceQuery:
		problem("has a query (?%s): write the socket path only", u.RawQuery)
	case u.Fragment != "":
		problem("has a fragment (#%s): write the socket path only", u.Fragment)
	case strings.ContainsRune(u.Path, 0):
		problem("the socket path holds a NUL byte")
	}
	if !ok {
		return "", false
	}
	return SchemeFastCGIUnix + "://" + filepath.Clean(u.Path), true
}

// fastcgi checks a pool's fastcgi settings against its targets.
func (v *validator) fastcgi(pp string, p *Pool, kinds targetKinds) {
	fp := pp + ".fastcgi"
	f := p.FastCGI
	switch {
	case f == nil && kinds.fastcgi != "" && kinds.http == "":
		v.errorf(fp+".root", "required for fastcgi targets: the document root PHP-FPM sees, such as /var/www/html")
		return
	case f == nil:
		return
	case kinds.http != "" && kinds.fastcgi == "":
		v.errorf(fp, "set for a pool of http targets: remove it, or use fastcgi:// or fastcgi+unix:// targets")
		return
	}
	if kinds.fastcgi != "" {
		if p.MaxIdlePerTarget != 0 && v.c.isSet(pp+".max_idle_per_target") {
			v.errorf(pp+".max_idle_per_target", "has no effect on fastcgi targets: use fastcgi.max_idle_conns")
		}
		if p.TLS != (UpstreamTLS{}) {
			v.errorf(pp+".tls", "has no effect on fastcgi targets: FastCGI to PHP-FPM is never TLS")
		}
	}
	v.documentRoot(fp+".root", f.Root)
	switch {
	case f.Index == "":
		v.errorf(fp+".index", "empty: leave the key out for %s", DefaultFastCGIIndex)
	case strings.ContainsAny(f.Index, "/\\\x00") || strings.HasPrefix(f.Index, "."):
		v.errorf(fp+".index", "want a plain file name such as index.php, got %q", f.Index)
	}
	v.nonNegative(fp+".terminate_timeout", f.TerminateTimeout)
	if f.MaxConns < 0 || f.MaxConns > 100000 {
		v.errorf(fp+".max_conns", "must be 0 (no cap) to 100000, got %d", f.MaxConns)
	}
	if n := f.MaxIdleConns; n != nil && (*n < 0 || *n > 10000) {
		v.errorf(fp+".max_idle_conns", "must be 0 (keep none) to 10000, got %d", *n)
	}
	v.positive(fp+".idle_timeout", f.IdleTimeout, DefaultFastCGIIdleTimeout)
	if f.StatusPath != "" && (!strings.HasPrefix(f.StatusPath, "/") || strings.ContainsAny(f.StatusPath, "?# \t\x00")) {
		v.errorf(fp+".status_path", "want a path such as /fpm-status (the pool's pm.status_path, without a query), got %q", f.StatusPath)
	}
	v.positive(fp+".status_interval", f.StatusInterval, DefaultFastCGIStatusInterval)
	v.positive(fp+".status_timeout", f.StatusTimeout, DefaultFastCGIStatusTimeout)
	if f.StatusTimeout.Duration > f.StatusInterval.Duration && f.StatusInterval.Duration > 0 {
		v.errorf(fp+".status_timeout", "%s is longer than status_interval %s: reads would overlap",
			fmtDuration(f.StatusTimeout.Duration), fmtDuration(f.StatusInterval.Duration))
	}
	for _, name := range slices.Sorted(maps.Keys(f.Params)) {
		value := f.Params[name]
		pf := fp + ".params." + name
		if !cgiName(name) {
			v.errorf(pf, "want a variable name of letters, digits and _, such as APP_ENV, got %q", name)
		}
		if strings.ContainsRune(value, 0) {
			v.errorf(pf, "the value holds a NUL byte")
		}
	}
}

// cgiName reports whether s is a CGI variable name: ASCII letters, digits
// and '_'.
func cgiName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '_') {
			return false
		}
	}
	return true
}

// documentRoot checks a FastCGI document root: an absolute path to a
// directory that exists (when files are looked at).
func (v *validator) documentRoot(field, root string) {
	switch {
	case root == "":
		v.errorf(field, "required: the document root PHP-FPM sees, such as /var/www/html")
		return
	case !filepath.IsAbs(root):
		v.errorf(field, "must be an absolute path (PHP-FPM is given root + script), got %q", root)
		return
	}
	if !v.files {
		return
	}
	fi, err := os.Stat(root)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		v.errorf(field, "directory %q does not exist", root)
	case err != nil:
		v.errorf(field, "cannot use %q: %v", root, unwrapPath(err))
	case !fi.IsDir():
		v.errorf(field, "%q is not a directory", root)
	}
}
