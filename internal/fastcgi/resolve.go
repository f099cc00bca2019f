package fastcgi

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"
)

// routeKind says what the Transport does with a request.
type routeKind uint8

const (
	// routeScript runs a PHP script through PHP-FPM.
	routeScript routeKind = iota
	// routeStatic serves a file from disk.
	routeStatic
	// routeRedirect answers 301 to the directory's path with a slash.
	routeRedirect
	// routeNotFound answers 404: missing, refused, or outside the root.
	routeNotFound
)

// route is where a request's path leads under the document root.
type route struct {
	kind routeKind
	// script is the script's path under the root, such as "/index.php"
	// (SCRIPT_NAME), for routeScript.
	script string
	// pathInfo is the part of the path after the script (PATH_INFO), for
	// routeScript; empty when none.
	pathInfo string
	// file is the file's path relative to the root ("a/b.css"), for
	// routeStatic.
	file string
	// location is the redirect's path, for routeRedirect.
	location string
}

// splitScript splits a cleaned path at its first segment ending in ".php",
// like nginx's fastcgi_split_path_info ^(.+?\.php)(/.*)$: "/index.php/a/b"
// gives "/index.php" and "/a/b". ok is false when no segment ends in
// ".php". A path such as "/upload/image.jpg/x.php" gives the script
// "/upload/image.jpg/x.php", never "/upload/image.jpg" (the
// cgi.fix_pathinfo problem).
func splitScript(p string) (script, pathInfo string, ok bool) {
	for i := 0; ; {
		j := strings.Index(p[i:], ".php")
		if j < 0 {
			return "", "", false
		}
		end := i + j + len(".php")
		if end == len(p) || p[end] == '/' {
			return p[:end], p[end:], true
		}
		i = end
	}
}

// hidden reports whether a cleaned path has a segment starting with a dot
// (.env, .git, .htaccess), other than .well-known (ACME challenges and
// other RFC 8615 resources).
func hidden(p string) bool {
	for seg := range strings.SplitSeq(p, "/") {
		if strings.HasPrefix(seg, ".") && seg != ".well-known" {
			return true
		}
	}
	return false
}

// sourceLike reports whether a file name must never be served from disk
// because it may hold PHP source: any name holding ".php" (x.php, x.PHP,
// wp-config.php.bak, x.php~, x.php5), .phtml, .phar, .inc, or an editor's
// backup ending in "~".
func sourceLike(name string) bool {
	n := strings.ToLower(name)
	return strings.Contains(n, ".php") || strings.Contains(n, ".phtml") || strings.Contains(n, ".phar") ||
		strings.HasSuffix(n, ".inc") || strings.HasSuffix(n, "~")
}

// missing reports whether a stat error means there is no such file (as
// opposed to a refusal: a link out of the root, a permission error).
func missing(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// resolve maps a URL path onto the root, like nginx's
//
//	location / { try_files $uri $uri/ /index.php?$args; }
//	location ~ [^/]\.php(/|$) { fastcgi_split_path_info ^(.+?\.php)(/.*)$; try_files $fastcgi_script_name =404; ... }
//	location ~ /\. { deny all; }
//
// All lookups go through root (an *os.Root), so neither ".." nor a
// symbolic link leads out of the document root.
func resolve(root *os.Root, urlPath, index string, frontController bool) route {
	notFound := route{kind: routeNotFound}
	if urlPath == "" {
		urlPath = "/"
	}
	if urlPath[0] != '/' || strings.ContainsRune(urlPath, 0) {
		return notFound
	}
	p := path.Clean(urlPath)
	trailing := strings.HasSuffix(urlPath, "/") && p != "/"
	if hidden(p) {
		return notFound
	}
	if script, info, ok := splitScript(p); ok {
		if trailing {
			info += "/"
		}
		fi, err := root.Stat(strings.TrimPrefix(script, "/"))
		if err != nil || !fi.Mode().IsRegular() {
			return notFound
		}
		return route{kind: routeScript, script: script, pathInfo: info}
	}
	rel := strings.TrimPrefix(p, "/")
	if rel == "" {
		rel = "."
	}
	fi, err := root.Stat(rel)
	switch {
	case err == nil && fi.Mode().IsRegular():
		if sourceLike(fi.Name()) || (trailing) {
			return notFound
		}
		return route{kind: routeStatic, file: rel}
	case err == nil && fi.IsDir():
		if !trailing && p != "/" {
			return route{kind: routeRedirect, location: p + "/"}
		}
		dir := strings.TrimSuffix(p, "/") + "/"
		if fi, err := root.Stat(path.Join(rel, index)); err == nil && fi.Mode().IsRegular() {
			if strings.HasSuffix(index, ".php") {
				return route{kind: routeScript, script: dir + index}
			}
			return route{kind: routeStatic, file: path.Join(rel, index)}
		}
		if fi, err := root.Stat(path.Join(rel, "index.html")); err == nil && fi.Mode().IsRegular() {
			return route{kind: routeStatic, file: path.Join(rel, "index.html")}
		}
	case err == nil || !missing(err):
		// A device, a socket, a link out of the root, no permission.
		return notFound
	}
	if !frontController || !strings.HasSuffix(index, ".php") {
		return notFound
	}
	if fi, err := root.Stat(index); err != nil || !fi.Mode().IsRegular() {
		return notFound
	}
	return route{kind: routeScript, script: "/" + index}
}
