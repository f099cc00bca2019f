package fastcgi

import (
	"context"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// TestConnectionFreeWithLastBytes checks that the connection goes back to
// the idle pool when the last bytes of the body are read, not at the next
// Read or Close: a proxy writes those bytes to the visitor first, and the
// visitor's next request must find the connection idle rather than dial a
// new one (which would wait in PHP-FPM's queue behind the worker the idle
// connection holds).
func TestConnectionFreeWithLastBytes(t *testing.T) {
	f := startFPM(t, &pool{name: "www"})
	f.write("hi.php", `<?php echo "hi";`)
	var dials atomic.Int32
	d := &net.Dialer{}
	tr := f.transport("www", Options{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return d.DialContext(ctx, network, addr)
	}})
	// pm.max_children is 2: a third connection would wait for a worker
	// for ever, so each request has a deadline.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var open []io.Closer
	for i := range 5 {
		res, err := tr.RoundTrip(newRequest(t, "GET", "/hi.php", nil).WithContext(ctx))
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		buf := make([]byte, 2)
		if _, err := io.ReadFull(res.Body, buf); err != nil || string(buf) != "hi" {
			t.Fatalf("request %d: body %q, %v", i, buf, err)
		}
		open = append(open, res.Body) // neither read to EOF nor closed yet
	}
	for _, b := range open {
		b.Close()
	}
	if n := dials.Load(); n != 1 {
		t.Errorf("%d connections for 5 requests whose last bytes were read, want 1", n)
	}
}
