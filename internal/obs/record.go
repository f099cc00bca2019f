// Package obs is gatewise's observability: the per-request record that the
// proxy fills in, the JSON access log and warning lines written from it
// (log/slog), and the Prometheus metrics (with an injected registry, never
// the global one).
package obs

import (
	"context"
	"sync"
	"time"

	"github.com/gatewise/gatewise/internal/cause"
)

// Record is what the gateway learns about one request. The access-log
// middleware creates it and logs it when the request ends; the proxy fills it
// in. Its methods are safe for concurrent use (httptrace callbacks run on the
// transport's goroutines).
type Record struct {
	// ID is the request ID (X-Request-ID). Set once at creation.
	ID string
	// Start is when the gateway began reading the request. Set once.
	Start time.Time

	mu             sync.Mutex
	route          string
	pool           string
	target         string
	attempts       int
	upstreamStatus int
	err            *cause.Error
	phases         Phases
}

// Phases holds the time spent in each phase of the last attempt to an
// upstream. A zero value means the phase did not happen (a reused
// connection has no DNS, connect or TLS time).
type Phases struct {
	// DNS is the time to resolve the target's name.
	DNS time.Duration
	// Connect is the time to establish the TCP connection.
	Connect time.Duration
	// TLS is the time of the TLS handshake.
	TLS time.Duration
	// FirstByte is the time from the request written to the first byte of
	// the response. For a request without a body on a reused connection
	// it runs from the attempt's start, microseconds before the write
	// (a clock reading fewer).
	FirstByte time.Duration
	// Reused reports whether the attempt used a pooled keep-alive connection.
	Reused bool
}

// NewRecord returns a record for a request with the given ID that started at
// start.
func NewRecord(id string, start time.Time) *Record {
	return &Record{ID: id, Start: start}
}

// SetRoute records the route and pool that serve the request.
func (r *Record) SetRoute(route, pool string) {
	r.mu.Lock()
	r.route, r.pool = route, pool
	r.mu.Unlock()
}

// StartAttempt records a new attempt to target and returns its number,
// starting at 1. The phases of the previous attempt are discarded.
func (r *Record) StartAttempt(target string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.attempts++
	r.target = target
	r.phases = Phases{}
	return r.attempts
}

// SetPhases stores the phase timings of the current attempt.
func (r *Record) SetPhases(p Phases) {
	r.mu.Lock()
	r.phases = p
	r.mu.Unlock()
}

// SetUpstreamStatus records the status the upstream answered with.
func (r *Record) SetUpstreamStatus(code int) {
	r.mu.Lock()
	r.upstreamStatus = code
	r.mu.Unlock()
}

// Fail records the cause of the request's failure. A later call replaces an
// earlier one, except that a client_closed never hides the upstream failure
// that came first.
func (r *Record) Fail(e *cause.Error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil && e.ID == cause.ClientClosed && r.err.ID != cause.ClientClosed {
		return
	}
	r.err = e
}

// Snapshot is a copy of a Record's fields at one moment.
type Snapshot struct {
	Route, Pool, Target string
	Attempts            int
	UpstreamStatus      int
	// Err is the classified failure, nil when the request did not fail.
	Err    *cause.Error
	Phases Phases
}

// Snapshot returns a copy of the record's fields.
func (r *Record) Snapshot() Snapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	return Snapshot{Route: r.route, Pool: r.pool, Target: r.target, Attempts: r.attempts,
		UpstreamStatus: r.upstreamStatus, Err: r.err, Phases: r.phases}
}

type recordKey struct{}

// WithRecord returns a context carrying r.
func WithRecord(ctx context.Context, r *Record) context.Context {
	return context.WithValue(ctx, recordKey{}, r)
}

// RecordFrom returns the record carried by ctx, or nil.
func RecordFrom(ctx context.Context) *Record {
	r, _ := ctx.Value(recordKey{}).(*Record)
	return r
}
