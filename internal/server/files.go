package server

import (
	"log/slog"

	"github.com/gatewise/gatewise/internal/config"
)

// fileMargin is the files the gateway holds besides connections: its
// listeners, the admin listener, log files, the runtime's poller.
const fileMargin = 64

// filesNeeded returns how many files the gateway may hold open at once
// under cfg's limits: a file for every visitor connection limits.max_conns
// allows, the idle connections each pool keeps to each of its targets, and
// fileMargin. It is 0 when limits.max_conns is 0 (no limit, so no bound).
// Connections to upstreams for requests in flight come on top.
func filesNeeded(cfg *config.Config) uint64 {
	maxConns := derefInt(cfg.Limits.MaxConns)
	if maxConns <= 0 {
		return 0
	}
	n := uint64(maxConns) + fileMargin
	for _, p := range cfg.Pools {
		idle := p.MaxIdlePerTarget
		if p.FastCGI != nil && p.FastCGI.MaxIdleConns != nil {
			idle = *p.FastCGI.MaxIdleConns
		}
		n += uint64(len(p.Targets) * max(idle, 0))
	}
	return n
}

// warnFileLimit logs a warning when the process's open-files limit is
// below what cfg's limits may need (filesNeeded), as nginx warns when its
// worker_connections exceed it: past the limit the gateway can neither
// accept visitors nor connect to upstreams (file_descriptors_exhausted).
func (s *Server) warnFileLimit(cfg *config.Config) {
	need := filesNeeded(cfg)
	limit, ok := openFilesLimit()
	if need == 0 || !ok || limit >= need {
		return
	}
	s.log.Warn("the open-files limit is below what limits.max_conns and the pools' idle connections may need: past it visitors wait to be accepted and upstream connections fail (file_descriptors_exhausted); raise the limit (LimitNOFILE in the systemd unit, ulimit -n) or lower limits.max_conns",
		slog.Uint64("open_files_limit", limit), slog.Uint64("needed", need), slog.Int("max_conns", derefInt(cfg.Limits.MaxConns)))
}
