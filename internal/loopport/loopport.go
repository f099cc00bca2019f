// Package loopport picks loopback TCP ports for servers that a test or a
// benchmark starts as another process, which must be told their port
// before they bind it, and for addresses where nothing must listen (the
// dead upstream of faults.DeadAddr).
//
// A port from binding "127.0.0.1:0" comes from the kernel's ephemeral range
// (ip_local_port_range, 32768 to 60999 on Debian), the range that outgoing
// connections take their source ports from. Between closing that probe and
// the server binding the port, any connection made beside it (another
// test's, or a load generator's ten thousand) can take the port, and the
// server fails with "address already in use". Free picks below that range
// instead, where only another explicit bind can collide.
package loopport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// floor is the lowest port Free picks: above the well-known and most
// registered service ports that a developer's machine may run.
const floor = 10000

// tries bounds how many random ports below the ephemeral range Free probes
// before it lets the kernel pick one.
const tries = 100

// Free returns a loopback address ("127.0.0.1:port") that was free a moment
// ago, with a port from 10000 up to the start of the kernel's ephemeral
// range, picked at random. Where that range cannot be read or leaves no room
// below it, or 100 picks are taken, the kernel picks the port.
func Free() (string, error) {
	lo, hi := belowEphemeral("/proc/sys/net/ipv4/ip_local_port_range")
	for range tries {
		if hi <= lo {
			break
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(lo+rand.IntN(hi-lo)))
		if probe(addr) == nil {
			return addr, nil
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("finding a free loopback port: %w", err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		return "", fmt.Errorf("finding a free loopback port: %w", err)
	}
	return addr, nil
}

// probe binds addr and closes it.
func probe(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return l.Close()
}

// belowEphemeral returns the ports [lo, hi) below the ephemeral range that
// the file (ip_local_port_range's format: "32768\t60999") gives, or an empty
// range when it cannot be read or starts at or below floor.
func belowEphemeral(path string) (lo, hi int) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, 0
	}
	start, err := strconv.Atoi(f[0])
	if err != nil || start <= floor {
		return 0, 0
	}
	return floor, start
}
