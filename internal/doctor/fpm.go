package doctor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gatewise/gatewise/internal/cause"
	"github.com/gatewise/gatewise/internal/fastcgi"
)

// fpm is check 4's PHP-FPM part: the pool's status page (pm.status_path)
// read over FastCGI. A pool whose every worker is busy cannot answer it:
// the status request waits in the listen queue until the check's time is
// up, which is itself the finding.
func (e *env) fpm(ctx context.Context, addr, statusPath string) []Finding {
	addr = fpmAddress(addr)
	start := time.Now()
	conn, err := dial(ctx, addr)
	if err != nil {
		return []Finding{e.fpmFail(fpmDialCause(err), "connect: "+connectProblem(err, "PHP-FPM"))}
	}
	conn.Close()
	tr, err := fastcgi.New(fastcgi.Options{Address: addr, Root: "/", MaxIdleConns: -1})
	if err != nil {
		return []Finding{skip("cannot set up a FastCGI client: " + err.Error())}
	}
	defer tr.Close()
	// Leave a little of the check's time to report.
	sctx := ctx
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		sctx, cancel = context.WithDeadline(ctx, dl.Add(-200*time.Millisecond))
		defer cancel()
	}
	st, err := tr.Status(sctx, statusPath)
	took := time.Since(start)
	if err != nil {
		if ce, found := cause.Of(err); found {
			return []Finding{e.fpmFail(ce, fmt.Sprintf("status page %s: %v", statusPath, err))}
		}
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || isTimeout(err) {
			f := e.fpmFail(cause.New(cause.FPMPoolExhausted, "no worker free", err),
				fmt.Sprintf("the status page %s did not answer within %s: PHP-FPM accepted the connection, but no worker was free to serve it", statusPath, ms(took)))
			f.Summary = "every PHP-FPM worker is busy: the status page waited " + ms(took) + " without an answer"
			return []Finding{f}
		}
		return []Finding{newFinding(StatusWarn, weightInfo, "PHP-FPM answers, but not with its status page at "+statusPath,
			[]string{err.Error()},
			"Set pm.status_path = "+statusPath+" in the pool's config (and reload php-fpm), or give doctor the pool's path with --fpm-status, so doctor can see how busy the pool is.")}
	}
	// The worker serving the status page counts as active: it is free
	// again as soon as it has answered.
	active, idle := max(0, st.ActiveProcesses-1), st.IdleProcesses+min(1, st.ActiveProcesses)
	ev := []string{
		fmt.Sprintf("pool %s (pm = %s), up %s, accepted %d connections", st.Pool, st.ProcessManager, (time.Duration(st.StartSince) * time.Second).String(), st.AcceptedConn),
		fmt.Sprintf("processes: %d active, %d idle, %d total, not counting the one serving this status page; at most %d active at once", active, idle, st.TotalProcesses, st.MaxActiveProcesses),
		fmt.Sprintf("listen queue: %d now (at most %d) of %d", st.ListenQueue, st.MaxListenQueue, st.ListenQueueLen),
		fmt.Sprintf("max children reached: %d times; slow requests: %d", st.MaxChildrenReached, st.SlowRequests),
		fmt.Sprintf("status page answered in %s", ms(took)),
	}
	exhausted := e.table.Get(cause.FPMPoolExhausted)
	switch {
	case st.Saturated():
		f := newFinding(StatusFail, weightFPM, fmt.Sprintf("pool %s is saturated: no idle worker and %d connections waiting", st.Pool, st.ListenQueue), ev, exhausted.Owner)
		f.Cause = string(cause.FPMPoolExhausted)
		return []Finding{f}
	case st.MaxChildrenReached > 0 || st.MaxListenQueue > 0:
		f := newFinding(StatusWarn, weightFPM-20, fmt.Sprintf("pool %s has been full: pm.max_children reached %d times, up to %d connections queued", st.Pool, st.MaxChildrenReached, st.MaxListenQueue), ev, exhausted.Owner)
		f.Cause = string(cause.FPMPoolExhausted)
		return []Finding{f}
	case idle == 0 && st.ProcessManager != "ondemand":
		f := newFinding(StatusWarn, weightFPM-20, fmt.Sprintf("pool %s has no idle worker right now (%d active)", st.Pool, active), ev, exhausted.Owner)
		f.Cause = string(cause.FPMPoolExhausted)
		return []Finding{f}
	}
	return []Finding{ok(fmt.Sprintf("pool %s: %d active, %d idle", st.Pool, active, idle), ev...)}
}

// fpmFail builds a failed PHP-FPM finding from its cause.
func (e *env) fpmFail(ce *cause.Error, evidence string) Finding {
	c := e.table.Get(ce.ID)
	f := newFinding(StatusFail, weightFPM, c.Title, []string{evidence}, c.Owner)
	f.Cause = string(ce.ID)
	return f
}
