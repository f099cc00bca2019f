package doctor

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"strings"
	"syscall"
	"time"
)

// maxLine bounds a line read from a dependency's text protocol.
const maxLine = 64 << 10

// network returns the network of an address: "unix" for an absolute path,
// else "tcp".
func network(addr string) string {
	if strings.HasPrefix(addr, "/") || strings.HasPrefix(addr, "@") {
		return "unix"
	}
	return "tcp"
}

// dial connects to addr (host:port or a socket path) within ctx, and sets
// the connection's deadline to ctx's.
func dial(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network(addr), addr)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	return c, nil
}

// connectProblem says in words why a connection to a service failed.
func connectProblem(err error, what string) string {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused: " + what + " is not running, or listens elsewhere"
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOENT):
		return "the socket does not exist: " + what + " is not running, or its socket is elsewhere"
	case errors.Is(err, syscall.EAGAIN):
		return "the socket's listen queue is full: " + what + " is too busy to accept"
	case errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.EACCES):
		return "permission denied on the socket (run doctor as the web server's user or root)"
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		return "no answer in time: " + what + " (or a firewall) does not respond"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return what + " closed the connection without answering"
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return "the name does not resolve: " + dnsErr.Err
	}
	return err.Error()
}

// isTimeout reports whether err is a timeout.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// readLine reads one line ending in \n (\r\n trimmed) of at most maxLine
// bytes.
func readLine(r *bufio.Reader) (string, error) {
	var sb strings.Builder
	for {
		chunk, err := r.ReadSlice('\n')
		sb.Write(chunk)
		if sb.Len() > maxLine {
			return "", fmt.Errorf("a line longer than %d bytes", maxLine)
		}
		if err == nil {
			break
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if sb.Len() > 0 && errors.Is(err, io.EOF) {
			return strings.TrimRight(sb.String(), "\r\n"), io.ErrUnexpectedEOF
		}
		return "", err
	}
	return strings.TrimRight(sb.String(), "\r\n"), nil
}

// ms formats a duration in milliseconds with one decimal.
func ms(d time.Duration) string {
	return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000)
}
