package proxy

import (
	"net"
	"sort"
	"strings"
)

// route is one compiled route.
type route struct {
	name     string
	host     string // lower case; "" any; "*.example.com" a wildcard
	wildcard bool
	path     string
	pool     *poolProxy
	limits   routeLimits
}

// routeTable picks the most specific route for a request, like nginx: an
// exact host before a wildcard host before any host, then the longest path
// prefix. Path prefixes match whole segments: "/api" matches "/api" and
// "/api/x", not "/apix"; a prefix ending in "/" matches anything under it.
type routeTable struct {
	routes []*route
}

func newRouteTable(routes []*route) *routeTable {
	sorted := append([]*route(nil), routes...)
	rank := func(r *route) int {
		switch {
		case r.host == "":
			return 2
		case r.wildcard:
			return 1
		default:
			return 0
		}
	}
	sort.SliceStable(sorted, func(i, j int) bool {
		ri, rj := rank(sorted[i]), rank(sorted[j])
		if ri != rj {
			return ri < rj
		}
		if sorted[i].wildcard && sorted[j].wildcard && len(sorted[i].host) != len(sorted[j].host) {
			return len(sorted[i].host) > len(sorted[j].host)
		}
		return len(sorted[i].path) > len(sorted[j].path)
	})
	return &routeTable{routes: sorted}
}

// match returns the route for host and path, or nil.
func (t *routeTable) match(host, path string) *route {
	host = normalizeHost(host)
	for _, r := range t.routes {
		if r.host != "" {
			if r.wildcard {
				if !strings.HasSuffix(host, r.host[1:]) || len(host) <= len(r.host)-1 {
					continue
				}
			} else if host != r.host {
				continue
			}
		}
		if pathMatches(r.path, path) {
			return r
		}
	}
	return nil
}

func normalizeHost(host string) string {
	if strings.IndexByte(host, ':') >= 0 {
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	return strings.Trim(host, "[]")
}

func pathMatches(prefix, path string) bool {
	if prefix == "" || prefix == "/" {
		return true
	}
	if !strings.HasPrefix(path, prefix) {
		return false
	}
	return len(path) == len(prefix) || strings.HasSuffix(prefix, "/") || path[len(prefix)] == '/'
}
