// Package limit protects the gateway and its upstreams from too much work:
// rate limits (a token bucket per client, header value or route, with the
// IETF RateLimit headers), concurrency limits and load shedding (a fixed or
// learned limit of requests in flight to a pool, a bounded queue, and
// priorities that decide who is shed first), limits on what clients send
// (connections per address, header, URI and body sizes, slow senders), and
// memory self-protection (refusing new work before the process runs out of
// memory).
package limit
