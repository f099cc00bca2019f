package proxy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptrace"
	"time"

	"github.com/gatewise/gatewise/internal/cause"
	"github.com/gatewise/gatewise/internal/config"
	"github.com/gatewise/gatewise/internal/httpsyntax"
	"github.com/gatewise/gatewise/internal/obs"
	"github.com/gatewise/gatewise/internal/upstream"
)

// attemptTransport sends a request to the targets of its pool: it picks a
// target, makes the attempt with a trace, classifies a failure, and retries
// on another target when that is safe, allowed and within the budget.
type attemptTransport struct {
	h      *Handler
	pool   *upstream.Pool
	retry  config.Retry
	budget *retryBudget
}

func newAttemptTransport(h *Handler, pool *upstream.Pool, rc config.Retry) *attemptTransport {
	percent, floor := config.DefaultRetryBudgetPercent, config.DefaultRetryBudgetMinPerSecond
	if rc.BudgetPercent != nil {
		percent = *rc.BudgetPercent
	}
	if rc.BudgetMinPerSecond != nil {
		floor = *rc.BudgetMinPerSecond
	}
	if rc.Attempts < 1 {
		rc.Attempts = 1
	}
	return &attemptTransport{h: h, pool: pool, retry: rc, budget: newRetryBudget(percent, floor, h.now)}
}

// observedRoundTripper is a transport that reports an attempt's events to
// an upstream.Observer (the HTTP/1.1 upstream.Transport): cheaper than an
// httptrace in the request's context. It takes the target apart from the
// request, so an attempt needs no copy of the request's URL.
type observedRoundTripper interface {
	RoundTripTarget(req *http.Request, scheme, host string, now time.Time, o upstream.Observer) (*http.Response, error)
	// SystemClock reports whether the transport's clock is time.Now.
	SystemClock() bool
}

// errPerTryTimeout is the cause of an attempt's context when its per-try
// timeout expires before the response headers.
var errPerTryTimeout = errors.New("per-try timeout awaiting response headers")

// perTryTimeoutError is the error an attempt fails with when its per-try
// timeout expired: a net.Error timeout, so it classifies as one.
type perTryTimeoutError struct{ err error }

func (e perTryTimeoutError) Error() string   { return errPerTryTimeout.Error() + ": " + e.err.Error() }
func (e perTryTimeoutError) Unwrap() error   { return e.err }
func (e perTryTimeoutError) Timeout() bool   { return true }
func (e perTryTimeoutError) Temporary() bool { return true }

// RoundTrip runs the attempts of one request and returns the first
// response, or the last attempt's *cause.Error.
func (t *attemptTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	return t.roundTrip(req, nil, time.Time{})
}

// roundTrip is RoundTrip. ex, when not nil, holds the first attempt's
// trace (see exchange). now, when not zero, is a reading of the handler's
// clock taken just before: it is the time the request is counted in the
// retry budget, its first target picked and its first attempt started.
func (t *attemptTransport) roundTrip(req *http.Request, ex *exchange, now time.Time) (*http.Response, error) {
	h := t.h
	rec := obs.RecordFrom(req.Context())
	if now.IsZero() {
		now = h.now()
	}
	t.budget.request(now)
	var body *replayBody
	if req.Body != nil && req.Body != http.NoBody {
		body = newReplayBody(req.Body, int64(t.retry.ReplayBodyBytes))
	}
	var tried []*upstream.Target
	var cut []*upstream.Target // tried targets whose connection was cut
	var target *upstream.Target
	var panicked bool
	for attempt := 1; ; attempt++ {
		if attempt == 1 {
			target, panicked = t.pool.PickAt(req, nil, now)
		}
		if target == nil {
			ce := &cause.Error{ID: cause.NoHealthyUpstream, Detail: "no target available", RetryAfter: t.pool.RetryAfter()}
			h.observeFailure(req, rec, t.pool.Name, ce, "answered")
			return nil, ce
		}
		tried = append(tried, target)
		var tr *attemptTrace
		var start time.Time
		if attempt == 1 {
			start = now
			if ex != nil {
				tr = &ex.trace
			}
		}
		if tr == nil {
			// Never one of an earlier attempt: a dial of it racing in
			// the background may still report to it.
			tr = new(attemptTrace)
			if ex != nil {
				tr.interim = &ex.interim
			}
		}
		tr.now, tr.systemClock = h.now, h.systemClock
		tr.bodiless = body == nil
		tr.wantFields = ex != nil
		if ex != nil {
			tr.added = ex.added
		}
		res, ce := t.attempt(req, rec, target, body, tr, start)
		if ce == nil {
			if ex != nil {
				ex.fields = tr.fields
			}
			return res, nil
		}
		if transient(ce) {
			cut = append(cut, target)
		}
		reason := t.retryDenied(req, ce, body, attempt)
		var next *upstream.Target
		nextPanicked := false
		if reason == "" {
			next, nextPanicked = t.pool.Pick(req, tried)
			if next == nil && transient(ce) {
				// No other target may take it, but a connection that was
				// cut is worth one more try on a target that is up, the
				// same one included, over a new connection (a restart, a
				// keep-alive race).
				next, nextPanicked = t.pool.Pick(req, nil)
			}
			if next == nil {
				// A target this request tried whose connection was cut
				// (a restart, a reset) and that is still up is a better
				// bet than one the pool has put down or ejected.
				for _, c := range cut {
					if c.Available() {
						next, nextPanicked = c, false
						break
					}
				}
			}
			if next == nil {
				// Every other target is down or ejected: one of them may
				// have recovered since its verdict, and failing the
				// request is certain.
				next = t.pool.PickUntried(tried)
			}
			if next == nil {
				reason = "no_target"
			}
		}
		if reason != "" {
			h.observeFailure(req, rec, t.pool.Name, ce, "answered")
			switch {
			case ce.ID == cause.ClientClosed:
			case panicked:
				// Every target was down and this one, tried anyway in
				// panic mode, failed too: the answer is that the pool has
				// no healthy target, with the last failure as detail.
				ce = &cause.Error{ID: cause.NoHealthyUpstream, Detail: "every target down; last: " + string(ce.ID),
					Phase: ce.Phase, Target: ce.Target, Err: ce, RetryAfter: t.pool.RetryAfter()}
			case len(t.pool.Targets) > 1 && (reason == "no_target" || distinct(tried) >= len(t.pool.Targets)):
				// Several targets, and none left that may serve: each
				// was tried and failed, or is down.
				ce = &cause.Error{ID: cause.NoHealthyUpstream, Detail: "no target left; last: " + string(ce.ID),
					Phase: ce.Phase, Target: ce.Target, Err: ce, RetryAfter: t.pool.RetryAfter()}
			}
			if h.metrics != nil && ce.ID != cause.ClientClosed {
				h.metrics.ObserveRetryDenied(t.pool.Name, ce.ID, reason)
			}
			if reason == "budget" {
				h.log.LogAttrs(req.Context(), slog.LevelWarn, "retry budget spent: not retrying",
					slog.String("request_id", rec.ID), slog.String("pool", t.pool.Name), slog.String("cause", string(ce.ID)))
			}
			return nil, ce
		}
		h.observeFailure(req, rec, t.pool.Name, ce, "retried")
		if h.metrics != nil {
			h.metrics.ObserveRetry(t.pool.Name, ce.ID)
		}
		h.log.LogAttrs(req.Context(), slog.LevelInfo, "retrying on another target",
			slog.String("request_id", rec.ID), slog.String("pool", t.pool.Name), slog.String("cause", string(ce.ID)),
			slog.String("failed", target.Addr), slog.String("next", next.Addr), slog.Int("attempt", attempt+1))
		if !t.sleep(req.Context(), attempt) {
			return nil, cause.New(cause.ClientClosed, "", req.Context().Err())
		}
		target, panicked = next, nextPanicked
	}
}

// attempt makes one try of req on target, traced by tr; start is its
// start time, or zero for a reading of the handler's clock.
func (t *attemptTransport) attempt(req *http.Request, rec *obs.Record, target *upstream.Target, body *replayBody, tr *attemptTrace, start time.Time) (*http.Response, *cause.Error) {
	h := t.h
	rec.StartAttempt(target.Addr)
	if h.metrics != nil {
		h.metrics.ObserveAttempt(t.pool.Name, target.Addr)
	}
	observed, direct := t.pool.Transport.(observedRoundTripper)
	if direct && tr.interim == nil {
		// httputil.ReverseProxy relays interim responses through the
		// ClientTrace it puts in the request's context, which the
		// gateway's transport does not read: the trace passes them on.
		if ct := httptrace.ContextClientTrace(req.Context()); ct != nil {
			tr.rp1xx = ct.Got1xxResponse
		}
	}
	// The attempt's own context, cancelled by its per-try timeout and
	// when its response body is closed. The gateway's HTTP/1.1 transport
	// needs none without a per-try timeout: it follows the request's
	// context itself and releases the connection when the body ends.
	own := !direct || t.retry.PerTryTimeout.Duration > 0
	ctx, cancel := attemptContext(req.Context(), own)
	var timer *time.Timer
	if d := t.retry.PerTryTimeout.Duration; d > 0 {
		timer = time.AfterFunc(d, func() { cancel(errPerTryTimeout) })
	}
	// The request as sent: req itself when the transport takes the target
	// apart and nothing else differs, else a copy.
	out := req
	switch {
	case !direct:
		out = req.WithContext(httptraceContext(ctx, tr))
		u := *req.URL
		u.Scheme, u.Host = target.URL.Scheme, target.URL.Host
		out.URL = &u
	case own || body != nil:
		out = req.WithContext(ctx)
	}
	if body != nil {
		out.Body = body.reader()
		out.GetBody = func() (io.ReadCloser, error) {
			if !body.replayable() {
				return nil, errNotReplayable
			}
			return body.reader(), nil
		}
	}
	end := target.Begin()
	if start.IsZero() {
		start = h.now()
	}
	tr.start = start
	var res *http.Response
	var err error
	if direct {
		// The attempt's start is the transport's reading too when both
		// clocks are the system's.
		var at time.Time
		if h.systemClock && observed.SystemClock() {
			at = start
		}
		var o upstream.Observer = tr
		if tr.wantFields {
			o = fieldsTrace{tr}
		}
		res, err = observed.RoundTripTarget(out, target.URL.Scheme, target.URL.Host, at, o)
	} else {
		res, err = t.pool.Transport.RoundTrip(out)
	}
	if timer != nil {
		timer.Stop()
	}
	phase, phases, read, firstByte := tr.state()
	rec.SetPhases(phases)
	if h.metrics != nil {
		if tr.resent {
			h.metrics.ObserveResend(t.pool.Name, target.Addr)
		}
		if phase >= cause.PhaseConnected && !phases.Reused {
			h.metrics.ObserveConnOpened(t.pool.Name, target.Addr)
		}
	}
	if err != nil {
		if errors.Is(context.Cause(ctx), errPerTryTimeout) {
			err = perTryTimeoutError{err}
		}
		if body != nil {
			// The visitor's body failed (too large, too slow): that is the
			// cause, whatever the transport made of it (net/http cancels
			// the request's context when a read from the visitor fails).
			if be, ok := cause.Of(body.readErr()); ok {
				err = be
			}
		}
		cancel(nil)
		ce := classify(err, classification{
			Phase:          phase,
			BytesRead:      read,
			MaxHeaderBytes: t.pool.MaxResponseHeaderBytes,
			ClientGone:     clientGone(req),
		})
		ce.Target = target.Addr
		done := h.now()
		end(upstream.Outcome{Err: ce, Latency: done.Sub(start), At: done})
		return nil, ce
	}
	// The attempt's end is its first byte (the head follows within
	// microseconds), which saves a clock reading.
	done := firstByte
	if done.IsZero() {
		done = h.now()
	}
	end(upstream.Outcome{Status: res.StatusCode, Latency: done.Sub(start), At: done})
	if h.metrics != nil {
		h.metrics.ObserveFirstByte(t.pool.Name, phases.FirstByte)
	}
	if res.Header != nil {
		target.Idle.ObserveHeader(res.Header)
	} else if v, ok := tr.fields.Get("Keep-Alive"); ok {
		target.Idle.ObserveKeepAlive(string(v))
	}
	if d, changed := target.Idle.TakeChange(); changed && h.metrics != nil {
		h.metrics.SetLearnedIdleTimeout(t.pool.Name, target.Addr, d)
		h.log.LogAttrs(req.Context(), slog.LevelInfo, "learned the target's keep-alive idle timeout",
			slog.String("pool", t.pool.Name), slog.String("upstream", target.Addr), slog.Duration("idle_timeout", d),
			slog.Duration("retire_after", target.Idle.RetireAfter()))
	}
	if !own {
		return res, nil
	}
	// The attempt's context lives as long as the response body. An
	// upgraded connection's body is an io.ReadWriteCloser (the reverse
	// proxy writes to it), so its wrapper keeps Write.
	stop := func() { cancel(nil) }
	if rwc, ok := res.Body.(io.ReadWriteCloser); ok && res.StatusCode == http.StatusSwitchingProtocols {
		res.Body = &cancelOnCloseRW{ReadWriteCloser: rwc, cancel: stop}
	} else {
		res.Body = &cancelOnClose{ReadCloser: res.Body, cancel: stop}
	}
	return res, nil
}

// attemptContext returns an attempt's context: a child of parent that its
// cancel func ends when own, else parent itself with a cancel func that
// does nothing.
func attemptContext(parent context.Context, own bool) (context.Context, context.CancelCauseFunc) {
	if !own {
		return parent, func(error) {}
	}
	return context.WithCancelCause(parent)
}

// retryDenied returns why a failed attempt may not be retried, or "" when
// it may: "unsafe" (the request may have reached the upstream and is not
// idempotent), "attempts", "body" (too large to replay), "budget",
// "deadline", or "final" (the cause is not one a retry can help); the
// caller adds "no_target" when no other target may take the retry.
func (t *attemptTransport) retryDenied(req *http.Request, ce *cause.Error, body *replayBody, attempt int) string {
	switch ce.ID {
	case cause.ClientClosed, cause.NoHealthyUpstream, cause.HTTPResponseHeaderSectionSize,
		cause.RequestBodyTooLarge, cause.ClientTimeout,
		cause.PHPFatalError, cause.PHPMemoryExhausted, cause.PHPTimeout:
		// Nothing another try could change (PHP's own failures: the same
		// code runs on every target), or the visitor's own fault.
		return "final"
	}
	if ce.Phase >= cause.PhaseHeaders {
		return "final"
	}
	if attempt >= t.retry.Attempts {
		return "attempts"
	}
	if ce.Phase.RequestMayHaveReached() && !idempotent(req) {
		return "unsafe"
	}
	if body != nil && !body.replayable() {
		return "body"
	}
	if dl, ok := req.Context().Deadline(); ok && time.Until(dl) < t.backoff(attempt) {
		return "deadline"
	}
	if !t.budget.allow() {
		return "budget"
	}
	return ""
}

// distinct counts the different targets in tried.
func distinct(tried []*upstream.Target) int {
	n := 0
	for i, t := range tried {
		seen := false
		for _, u := range tried[:i] {
			if u == t {
				seen = true
				break
			}
		}
		if !seen {
			n++
		}
	}
	return n
}

// transient reports whether a failure is of the connection rather than of
// the target, so that trying the same target again may work.
func transient(ce *cause.Error) bool {
	return ce.ID == cause.ConnectionTerminated || (ce.ID == cause.HTTPResponseIncomplete && ce.Phase < cause.PhaseHeaders)
}

// idempotent reports whether a request may be sent twice: its method is
// idempotent (RFC 9110 9.2.2) or it carries an Idempotency-Key.
func idempotent(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return httpsyntax.HeaderValue(req.Header, "Idempotency-Key") != "" || httpsyntax.HeaderValue(req.Header, "X-Idempotency-Key") != ""
}

// backoff returns the longest wait before retry number attempt.
func (t *attemptTransport) backoff(attempt int) time.Duration {
	return t.retry.Backoff.Duration << min(attempt-1, 10)
}

// sleep waits a jittered backoff (between half and all of it) and reports
// false when the visitor left meanwhile.
func (t *attemptTransport) sleep(ctx context.Context, attempt int) bool {
	d := t.backoff(attempt)
	if d <= 0 {
		return ctx.Err() == nil
	}
	d = d/2 + rand.N(d/2+1)
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// cancelOnClose ends an attempt's context when its response body is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel func()
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

// cancelOnCloseRW is cancelOnClose for an upgraded connection's body.
type cancelOnCloseRW struct {
	io.ReadWriteCloser
	cancel func()
}

func (c *cancelOnCloseRW) Close() error {
	err := c.ReadWriteCloser.Close()
	c.cancel()
	return err
}

// clientGone reports whether the visitor cancelled the request (as opposed
// to the gateway's own request timeout expiring).
func clientGone(req *http.Request) bool {
	return errors.Is(req.Context().Err(), context.Canceled)
}
