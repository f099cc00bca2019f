package errorpage

import (
	"testing"

	"github.com/gatewise/gatewise/internal/cause"
)

func TestProxyStatusExamples(t *testing.T) {
	t.Parallel()
	refused := cause.NewTable().Get(cause.ConnectionRefused)
	tests := []struct {
		desc string
		name string
		p    Problem
		want string
	}{
		{"default name", "", Problem{Cause: refused}, `gatewise; error=connection_refused; details="connection_refused"`},
		{"detail appended", "edge-1", Problem{Cause: refused, Detail: "reset"}, `edge-1; error=connection_refused; details="connection_refused: reset"`},
		{"a name that is not a token is a string", "my proxy", Problem{Cause: refused}, `"my proxy"; error=connection_refused; details="connection_refused"`},
		{"quotes and backslashes escaped", "gw", Problem{Cause: refused, Detail: `a "b" \c`}, `gw; error=connection_refused; details="connection_refused: a \"b\" \\c"`},
		{"non-ASCII replaced", "gw", Problem{Cause: refused, Detail: "café"}, `gw; error=connection_refused; details="connection_refused: caf?"`},
		{"an error type that is not a token is left out", "gw", Problem{Cause: cause.Cause{ID: "custom", ProxyStatusError: "not a token"}}, `gw; details="custom"`},
		{"no error type", "gw", Problem{Cause: cause.NewTable().Get(cause.ClientClosed)}, `gw; details="client_closed"`},
		{"zero cause", "gw", Problem{}, `gw; error=proxy_internal_error; details="proxy_internal_error"`},
	}
	for _, tt := range tests {
		if got := ProxyStatus(tt.name, tt.p); got != tt.want {
			t.Errorf("%s: ProxyStatus = %s, want %s", tt.desc, got, tt.want)
		}
	}
}
