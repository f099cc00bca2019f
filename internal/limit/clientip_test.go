package limit

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestClientIP(t *testing.T) {
	t.Parallel()
	trusted := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("192.168.1.1/32"),
		netip.MustParsePrefix("2001:db8:ffff::/48"),
		netip.MustParsePrefix("::ffff:172.16.0.0/108"), // IPv4-mapped form of 172.16.0.0/12
	}
	tests := []struct {
		desc    string
		remote  string
		xff     []string // one element per header line; nil: no header
		trusted []netip.Prefix
		want    string // "" for the zero Addr
	}{
		{
			desc:   "no trusted proxies: X-Forwarded-For is never read",
			remote: "10.0.0.1:1234", xff: []string{"198.51.100.7"},
			want: "10.0.0.1",
		},
		{
			desc:   "untrusted connection: X-Forwarded-For is ignored",
			remote: "203.0.113.5:1234", xff: []string{"198.51.100.7"}, trusted: trusted,
			want: "203.0.113.5",
		},
		{
			desc:   "trusted connection without X-Forwarded-For: the connection's address",
			remote: "10.0.0.1:1234", trusted: trusted,
			want: "10.0.0.1",
		},
		{
			desc:   "trusted connection with an empty X-Forwarded-For",
			remote: "10.0.0.1:1234", xff: []string{""}, trusted: trusted,
			want: "10.0.0.1",
		},
		{
			desc:   "one trusted proxy: the address it appended",
			remote: "10.0.0.1:1234", xff: []string{"198.51.100.7"}, trusted: trusted,
			want: "198.51.100.7",
		},
		{
			desc:   "a chain of trusted proxies is walked from the right",
			remote: "10.0.0.1:1234", xff: []string{"198.51.100.7, 192.168.1.1, 10.0.0.2"}, trusted: trusted,
			want: "198.51.100.7",
		},
		{
			desc:   "spoofed entries left of the first untrusted address are ignored",
			remote: "10.0.0.1:1234", xff: []string{"10.9.9.9, 6.6.6.6, 198.51.100.7, 10.0.0.2"}, trusted: trusted,
			want: "198.51.100.7",
		},
		{
			desc:   "a spoofed trusted address left of the client does not matter",
			remote: "10.0.0.1:1234", xff: []string{"10.0.0.99, 198.51.100.7"}, trusted: trusted,
			want: "198.51.100.7",
		},
		{
			desc:   "multiple header lines are one list, the last line last",
			remote: "10.0.0.1:1234", xff: []string{"6.6.6.6, 198.51.100.7", "10.0.0.3", "10.0.0.2"}, trusted: trusted,
			want: "198.51.100.7",
		},
		{
			desc:   "multiple header lines: the client in the last line",
			remote: "10.0.0.1:1234", xff: []string{"6.6.6.6", "198.51.100.7"}, trusted: trusted,
			want: "198.51.100.7",
		},
		{
			desc:   "every entry trusted: the left-most one",
			remote: "10.0.0.1:1234", xff: []string{"10.0.0.3, 10.0.0.2"}, trusted: trusted,
			want: "10.0.0.3",
		},
		{
			desc:   "a malformed entry stops the walk at the last good address",
			remote: "10.0.0.1:1234", xff: []string{"198.51.100.7, garbage, 10.0.0.2"}, trusted: trusted,
			want: "10.0.0.2",
		},
		{
			desc:   "a malformed right-most entry: the connection's address",
			remote: "10.0.0.1:1234", xff: []string{"198.51.100.7, unknown"}, trusted: trusted,
			want: "10.0.0.1",
		},
		{
			desc:   "a malformed last line stops the walk before earlier lines",
			remote: "10.0.0.1:1234", xff: []string{"198.51.100.7", "1.2.3"}, trusted: trusted,
			want: "10.0.0.1",
		},
		{
			desc:   "a bracketed IPv4 address is malformed",
			remote: "10.0.0.1:1234", xff: []string{"198.51.100.7, [10.0.0.2]"}, trusted: trusted,
			want: "10.0.0.1",
		},
		{
			desc:   "an address with a bad port is malformed",
			remote: "10.0.0.1:1234", xff: []string{"198.51.100.7:http"}, trusted: trusted,
			want: "10.0.0.1",
		},
		{
			desc:   "empty list elements and blanks are skipped",
			remote: "10.0.0.1:1234", xff: []string{" \t198.51.100.7 ,, 10.0.0.2 ,"}, trusted: trusted,
			want: "198.51.100.7",
		},
		{
			desc:   "IPv4 with a port",
			remote: "10.0.0.1:1234", xff: []string{"198.51.100.7:4711"}, trusted: trusted,
			want: "198.51.100.7",
		},
		{
			desc:   "IPv6 behind an IPv6 proxy",
			remote: "[2001:db8:ffff::1]:443", xff: []string{"2001:db8:1::5"}, trusted: trusted,
			want: "2001:db8:1::5",
		},
		{
			desc:   "IPv6 in brackets with a port",
			remote: "10.0.0.1:1234", xff: []string{"[2001:db8:1::5]:4711"}, trusted: trusted,
			want: "2001:db8:1::5",
		},
		{
			desc:   "IPv6 in brackets without a port",
			remote: "10.0.0.1:1234", xff: []string{"[2001:db8:1::5]"}, trusted: trusted,
			want: "2001:db8:1::5",
		},
		{
			desc:   "a trusted IPv6 proxy in the chain",
			remote: "10.0.0.1:1234", xff: []string{"2001:db8:1::5, 2001:db8:ffff:1::9"}, trusted: trusted,
			want: "2001:db8:1::5",
		},
		{
			desc:   "the zone of an IPv6 entry is dropped",
			remote: "10.0.0.1:1234", xff: []string{"fe80::1%eth0"}, trusted: trusted,
			want: "fe80::1",
		},
		{
			desc:   "an IPv4-mapped connection address matches an IPv4 prefix",
			remote: "[::ffff:10.0.0.1]:1234", xff: []string{"198.51.100.7"}, trusted: trusted,
			want: "198.51.100.7",
		},
		{
			desc:   "an IPv4-mapped entry is returned as IPv4",
			remote: "10.0.0.1:1234", xff: []string{"::ffff:198.51.100.7"}, trusted: trusted,
			want: "198.51.100.7",
		},
		{
			desc:   "an IPv4-mapped untrusted connection is returned as IPv4",
			remote: "[::ffff:203.0.113.5]:1234", xff: []string{"198.51.100.7"}, trusted: trusted,
			want: "203.0.113.5",
		},
		{
			desc:   "an IPv4 proxy matches a prefix written in IPv4-mapped form",
			remote: "172.16.0.1:1234", xff: []string{"198.51.100.7"}, trusted: trusted,
			want: "198.51.100.7",
		},
		{
			desc:   "an IPv4-mapped trusted entry is skipped",
			remote: "10.0.0.1:1234", xff: []string{"198.51.100.7, ::ffff:10.0.0.2"}, trusted: trusted,
			want: "198.51.100.7",
		},
		{
			desc:   "a remote address without a port",
			remote: "10.0.0.1", xff: []string{"198.51.100.7"}, trusted: trusted,
			want: "198.51.100.7",
		},
		{
			desc:   "a unix socket has no address, and its X-Forwarded-For is not believed",
			remote: "@", xff: []string{"198.51.100.7"}, trusted: trusted,
			want: "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tt.remote
			if tt.xff != nil {
				r.Header["X-Forwarded-For"] = tt.xff
			}
			got := ClientIP(r, tt.trusted)
			var want netip.Addr
			if tt.want != "" {
				want = netip.MustParseAddr(tt.want)
			}
			if got != want {
				t.Errorf("ClientIP(RemoteAddr %q, X-Forwarded-For %q) = %v, want %v", tt.remote, tt.xff, got, want)
			}
		})
	}
}

func TestClientIPDoesNotAllocate(t *testing.T) {
	// Not parallel: AllocsPerRun counts allocations of the whole process.
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = "10.0.0.1:1234"
	r.Header["X-Forwarded-For"] = []string{"6.6.6.6, 198.51.100.7:80, 10.0.0.3", "[2001:db8::1]:8080, 10.0.0.2"}
	var got netip.Addr
	allocs := testing.AllocsPerRun(1000, func() { got = ClientIP(r, trusted) })
	if want := netip.MustParseAddr("2001:db8::1"); got != want {
		t.Errorf("ClientIP = %v, want %v", got, want)
	}
	if allocs != 0 {
		t.Errorf("ClientIP allocates %v times per call, want 0", allocs)
	}
}
