package h1server

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// BenchmarkServe measures a keep-alive visitor's small GETs over loopback
// against a trivial handler, served by this package and by net/http's
// Server. The client is a few lines of byte handling with no allocation
// of its own, so ns/op and allocs/op are the server's (and the loopback's).
func BenchmarkServe(b *testing.B) {
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "hello, world!")
	})
	for _, clients := range []int{1, 8} {
		b.Run(fmt.Sprintf("server=h1server/conns=%d", clients), func(b *testing.B) {
			ln := benchListen(b)
			s := &Server{Handler: handler}
			go func() { _ = s.Serve(ln) }()
			defer s.Close()
			benchGETs(b, ln.Addr().String(), clients)
		})
		b.Run(fmt.Sprintf("server=net-http/conns=%d", clients), func(b *testing.B) {
			ln := benchListen(b)
			s := &http.Server{Handler: handler}
			go func() { _ = s.Serve(ln) }()
			defer s.Close()
			benchGETs(b, ln.Addr().String(), clients)
		})
	}
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func benchListen(b *testing.B) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	return ln
}

var benchRequest = []byte("GET /bench/path?q=1 HTTP/1.1\r\nHost: bench.example\r\nUser-Agent: bench/1.0\r\nAccept: */*\r\nAccept-Encoding: gzip\r\n\r\n")

// benchGETs runs b.N GETs over clients keep-alive connections and
// reports the process's CPU time per request (client and server: the
// client's share is the same for both servers) beside the wall time.
func benchGETs(b *testing.B, addr string, clients int) {
	conns := make(chan net.Conn, clients)
	for range clients {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		conns <- c
	}
	b.ReportAllocs()
	b.SetParallelism(max(1, clients/runtime.GOMAXPROCS(0)))
	cpu0 := cpuTime(b)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var c net.Conn
		select {
		case c = <-conns:
		default:
			return // more goroutines than connections
		}
		br := bufio.NewReaderSize(c, 4096)
		for pb.Next() {
			if _, err := c.Write(benchRequest); err != nil {
				b.Error(err)
				return
			}
			if err := readBenchAnswer(br); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N), "cpu-ns/op")
}

var contentLengthPrefix = []byte("Content-Length: ")

// readBenchAnswer reads a 200 answer with a Content-Length and drops it.
func readBenchAnswer(br *bufio.Reader) error {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(line, []byte("HTTP/1.1 200 ")) {
		return errBenchAnswer
	}
	n := -1
	for {
		line, err = br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) <= 2 {
			break
		}
		if v, ok := bytes.CutPrefix(line, contentLengthPrefix); ok {
			n, err = strconv.Atoi(string(bytes.TrimSpace(v)))
			if err != nil {
				return err
			}
		}
	}
	if n < 0 {
		return errBenchAnswer
	}
	_, err = br.Discard(n)
	return err
}

var errBenchAnswer = errors.New("unexpected benchmark answer")
