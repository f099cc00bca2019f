package fastcgi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"time"
)

// Status is PHP-FPM's status page (pm.status_path) for one pool, as its
// ?json form gives it.
type Status struct {
	// Pool is the pool's name, such as "www".
	Pool string `json:"pool"`
	// ProcessManager is "static", "dynamic" or "ondemand".
	ProcessManager string `json:"process manager"`
	// StartTime is when the pool started (Unix seconds in the JSON).
	StartTime UnixTime `json:"start time"`
	// StartSince is how many seconds ago the pool started.
	StartSince int64 `json:"start since"`
	// AcceptedConn counts the requests the pool has accepted.
	AcceptedConn uint64 `json:"accepted conn"`
	// ListenQueue is how many connections wait in the socket's queue now.
	ListenQueue int64 `json:"listen queue"`
	// MaxListenQueue is the most that ever waited there.
	MaxListenQueue int64 `json:"max listen queue"`
	// ListenQueueLen is the queue's size (listen.backlog as the kernel
	// applied it).
	ListenQueueLen int64 `json:"listen queue len"`
	// IdleProcesses counts the workers waiting for a request. A worker
	// holding a kept-alive connection open (see Options.MaxIdleConns)
	// counts as active.
	IdleProcesses int64 `json:"idle processes"`
	// ActiveProcesses counts the workers serving a request.
	ActiveProcesses int64 `json:"active processes"`
	// TotalProcesses is IdleProcesses + ActiveProcesses.
	TotalProcesses int64 `json:"total processes"`
	// MaxActiveProcesses is the most workers ever active at once.
	MaxActiveProcesses int64 `json:"max active processes"`
	// MaxChildrenReached counts the times pm.max_children stopped the
	// pool from starting a worker (always 0 with pm = static).
	MaxChildrenReached uint64 `json:"max children reached"`
	// SlowRequests counts the requests past request_slowlog_timeout.
	SlowRequests uint64 `json:"slow requests"`
}

// Saturated reports whether the pool has no idle worker and connections
// are waiting: the state in which it starts refusing (fpm_pool_exhausted).
func (s *Status) Saturated() bool { return s.IdleProcesses == 0 && s.ListenQueue > 0 }

// UnixTime is a time sent as Unix seconds in JSON.
type UnixTime struct{ time.Time }

// UnmarshalJSON reads Unix seconds.
func (t *UnixTime) UnmarshalJSON(b []byte) error {
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("fastcgi: status time %s: %w", b, err)
	}
	t.Time = time.Unix(n, 0)
	return nil
}

// MaxStatusBytes bounds the status page's body.
const MaxStatusBytes = 1 << 20

// Status reads PHP-FPM's status page over FastCGI: path is the pool's
// pm.status_path, such as "/fpm-status" (the request asks for ?json). It
// uses the Transport's connections, so a pool with every worker busy
// answers late or fails with fpm_pool_exhausted, itself a sign of
// saturation: give ctx a deadline. Errors are *cause.Error values as from
// RoundTrip, or a decoding error (the path is not the status page).
func (t *Transport) Status(ctx context.Context, path string) (*Status, error) {
	if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, "?#\x00") {
		return nil, fmt.Errorf("%w: status path %q must start with / and hold no query", ErrOptions, path)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://localhost"+path+"?json", nil)
	if err != nil {
		return nil, fmt.Errorf("fastcgi: status request: %w", err)
	}
	req.RemoteAddr = "127.0.0.1:0"
	real, err := filepath.EvalSymlinks(t.opts.Root)
	if err != nil {
		return nil, t.rootError(err)
	}
	res, err := t.runScript(req, cgiRequest{req: req, root: real, script: path})
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, MaxStatusBytes))
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fastcgi: status page %s answered %s (is pm.status_path set to it?)", path, res.Status)
	}
	var st Status
	if err := json.Unmarshal(body, &st); err != nil {
		return nil, fmt.Errorf("fastcgi: status page %s: %w", path, err)
	}
	if st.Pool == "" {
		return nil, fmt.Errorf("fastcgi: status page %s: %w", path, errNotStatus)
	}
	return &st, nil
}

var errNotStatus = errors.New("the answer is not PHP-FPM's status page (no pool name)")
