package proxy

import (
	"context"
	"net/http/httptrace"
)

func httptraceContext(ctx context.Context, tr *attemptTrace) context.Context {
	return httptrace.WithClientTrace(ctx, tr.clientTrace())
}
