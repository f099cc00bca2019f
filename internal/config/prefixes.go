package config

import (
	"fmt"
	"net/netip"
)

// ParsePrefixes parses a list of networks as the config writes them (CIDR,
// or a bare address for a one-address network), such as
// forwarding.trusted_proxies, into masked prefixes.
func ParsePrefixes(cidrs []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(cidrs))
	for _, s := range cidrs {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, fmt.Errorf("%q: %w", s, err)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}
