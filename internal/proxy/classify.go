package proxy

import (
	"errors"

	"github.com/gatewise/gatewise/internal/cause"
	"github.com/gatewise/gatewise/internal/upstream"
)

// classification is what classify needs to know about an attempt besides
// its error.
type classification = cause.Attempt

// classify maps an attempt's error to a cause: the proxy's own errors
// (a retired idle connection, a superseded replay body) first, then
// cause.Classify.
func classify(err error, c classification) *cause.Error {
	if ce, ok := cause.Of(err); ok {
		return ce
	}
	if errors.Is(err, upstream.ErrRetiredIdle) {
		// A pooled connection dropped before a byte was written: the
		// upstream saw nothing, so any request may be retried.
		return &cause.Error{ID: cause.ConnectionTerminated, Detail: "idle connection retired", Phase: cause.PhaseConnect, Err: err}
	}
	if errors.Is(err, errSuperseded) || errors.Is(err, errNotReplayable) {
		return &cause.Error{ID: cause.ConnectionTerminated, Detail: "body", Phase: c.Phase, Err: err}
	}
	return cause.Classify(err, c)
}
