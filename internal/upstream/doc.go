// Package upstream holds the pools of upstream targets: each target's
// address, weight and state, the choice of a target for each request, and
// the HTTP transport that keeps connections to them.
//
// # Choosing a target
//
// Pool.Pick chooses among the eligible targets: the primaries that are
// healthy (by active checks, reported with Pool.SetHealthy), not ejected
// (by passive outlier detection) and not already tried by the request;
// when there is none, the backups that are so; when no target at all is
// healthy and not ejected and panic mode is on, every target not tried.
// The pool's policy then decides:
//
//   - p2c_ewma (the default): two distinct eligible targets drawn at random
//     in proportion to their effective weights; the one of lower cost wins,
//     cost being the latency average times (outstanding requests + 1). A
//     target with no latency sample yet counts at the mean of those that
//     have one (or all alike when none has), so a new target gets its share
//     at once and is measured, and its cost still grows with its
//     outstanding requests if its first answers are slow.
//   - round_robin: nginx's smooth weighted round robin.
//   - least_requests: the fewest outstanding requests relative to the
//     effective weight; ties (such as every target idle) go to a random
//     one in proportion to the weights, so light traffic still follows the
//     weights.
//   - hash: weighted rendezvous hashing of the request's client IP, header
//     or cookie. A target leaving (ejected, unhealthy, or tried by this
//     request) moves only its own keys, to their next choice. A request
//     without the key is chosen for by p2c_ewma.
//
// # Latency average
//
// Each target keeps a peak EWMA of its time to response headers, as
// Finagle and linkerd do: a sample above the average replaces it at once
// (a target that slows down is avoided at once); a lower one is blended
// in with the weight 1 - exp(-Δt/10s), Δt being the time since the
// previous sample, so the average forgets at the same pace whatever the
// request rate. Read, it decays towards zero with the same 10s time
// constant, so a target avoided for being slow is tried again. A failure
// counts as at least twice the average: failing fast never makes a target
// look fast. Outcomes that say nothing about the target (client_closed,
// the gateway's own causes) are not counted.
//
// # Passive outlier detection
//
// Connection failures and timeouts in a row (dns_error,
// connection_refused, connection_timeout, destination_unavailable,
// connection_terminated, tls_protocol_error, tls_certificate_error,
// http_response_timeout) count towards Outlier.ConsecutiveFailures; 5xx
// answers and broken responses (http_protocol_error,
// http_response_header_section_size, http_response_incomplete) towards
// Outlier.Consecutive5xx. An answer below 500 resets both counts; a failure
// of one kind does not reset the other's. Reaching a threshold ejects the
// target for BaseEjection × n, n being its ejections in a row, up to
// MaxEjection. n goes back to 0 when the target answers successfully at
// least BaseEjection after it returned, so a target that fails again soon
// after returning stays out longer each time. At most MaxEjectedPercent of
// the targets, rounded up (Envoy's rule), are ejected at once; a pool of
// one target never ejects it. An ejected target returns when its time is
// over (checked by a timer and on each pick), with its counts at 0.
//
// # Slow start
//
// A target that returns to service (its ejection over, or healthy again
// by active checks) but not one present when the pool was built, ramps its
// effective weight linearly from 10% to 100% of its weight over the
// pool's slow_start (config.Pool.SlowStart). The effective weight is what
// every policy weighs by, hash included (a returning target gets its keys
// back gradually).
package upstream
