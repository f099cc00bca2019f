package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/gatewise/gatewise/bench/internal/benchkit"
)

// smallBody is the body of GET /small.
const smallBody = "Hello, world\n"

// bigSize is the size of the body of GET /1mb.
const bigSize = 1 << 20

// upstreamHandler serves GET /small (13 bytes of text) and GET /1mb (1 MiB
// from memory); anything else is 404.
func upstreamHandler() http.Handler {
	big := bytes.Repeat([]byte("0123456789abcdef"), bigSize/16)
	bigLen := strconv.Itoa(len(big))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /small", func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		h["Content-Type"] = []string{"text/plain"}
		h["Content-Length"] = []string{"13"}
		_, _ = io.WriteString(w, smallBody)
	})
	mux.HandleFunc("GET /1mb", func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		h["Content-Type"] = []string{"application/octet-stream"}
		h["Content-Length"] = []string{bigLen}
		_, _ = w.Write(big)
	})
	return mux
}

// runUpstream is the "upstream" subcommand: the fixed upstream every
// contender proxies to, a plain net/http server, run as its own process so
// that its CPU time is measured apart from the proxy's and the load's. With
// -tls-listen it also serves HTTPS with HTTP/2, for the direct limit of the
// h2 scenario.
func runUpstream(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("compare upstream", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:0", "plain HTTP/1.1 address")
	tlsListen := fs.String("tls-listen", "", "HTTPS (HTTP/2 and HTTP/1.1) address; empty for none")
	cert := fs.String("cert", "", "PEM certificate for -tls-listen")
	key := fs.String("key", "", "PEM private key for -tls-listen")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return benchkit.ErrUsage
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("upstream: unexpected argument %q", fs.Arg(0))
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM)
	defer stop()
	srv := &http.Server{Handler: upstreamHandler(), ReadHeaderTimeout: 10 * time.Second}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("upstream: %w", err)
	}
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()
	if *tlsListen != "" {
		if *cert == "" || *key == "" {
			return errors.New("upstream: -tls-listen needs -cert and -key")
		}
		pair, err := tls.LoadX509KeyPair(*cert, *key)
		if err != nil {
			return fmt.Errorf("upstream: %w", err)
		}
		tln, err := net.Listen("tcp", *tlsListen)
		if err != nil {
			return fmt.Errorf("upstream: %w", err)
		}
		tsrv := &http.Server{Handler: upstreamHandler(), ReadHeaderTimeout: 10 * time.Second,
			TLSConfig: &tls.Config{Certificates: []tls.Certificate{pair}, NextProtos: []string{"h2", "http/1.1"}}}
		go func() { errc <- tsrv.ServeTLS(tln, "", "") }()
		defer tsrv.Close()
	}
	defer srv.Close()
	select {
	case <-ctx.Done():
		return nil
	case err := <-errc:
		return fmt.Errorf("upstream: %w", err)
	}
}
