package loopport

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

func TestFreeIsBelowTheEphemeralRange(t *testing.T) {
	lo, hi := belowEphemeral("/proc/sys/net/ipv4/ip_local_port_range")
	if hi <= lo {
		t.Fatalf("this machine's ephemeral range leaves no ports below it (%d, %d)", lo, hi)
	}
	for range 20 {
		addr, err := Free()
		if err != nil {
			t.Fatal(err)
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatal(err)
		}
		p, _ := strconv.Atoi(port)
		if host != "127.0.0.1" || p < lo || p >= hi {
			t.Fatalf("Free() = %s, want 127.0.0.1 with a port in [%d, %d)", addr, lo, hi)
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("the port Free gave cannot be bound: %v", err)
		}
		l.Close()
	}
}

func TestBelowEphemeral(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		desc, content string
		lo, hi        int
	}{
		{"Debian's default", "32768\t60999\n", floor, 32768},
		{"a range starting low", "1024 65535\n", 0, 0},
		{"starting at the floor", "10000 20000\n", 0, 0},
		{"junk", "many\n", 0, 0},
		{"not a number", "a b\n", 0, 0},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			path := filepath.Join(dir, "range")
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if lo, hi := belowEphemeral(path); lo != tc.lo || hi != tc.hi {
				t.Errorf("got [%d, %d), want [%d, %d)", lo, hi, tc.lo, tc.hi)
			}
		})
	}
	if lo, hi := belowEphemeral(filepath.Join(dir, "missing")); lo != 0 || hi != 0 {
		t.Errorf("a missing file: got [%d, %d), want an empty range", lo, hi)
	}
}
