//go:build !unix

package fastcgi

import "net"

// alive reports whether an idle connection is still open. Without a
// non-blocking peek it assumes so; a dead connection then fails the next
// request's first write, which is retried on a new connection.
func alive(c net.Conn) bool { return true }
