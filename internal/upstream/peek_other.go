//go:build !unix

package upstream

import "net"

// peekNoWait cannot look at a socket without reading on this system.
func peekNoWait(net.Conn) peekResult { return peekUnknown }
