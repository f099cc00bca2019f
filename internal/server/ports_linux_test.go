package server_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// netnsChild is set in the environment of the test binary run again inside
// a network namespace of its own.
const netnsChild = "GATEWISE_TEST_NETNS_CHILD"

// TestLocalPortsExhausted runs the gateway where the kernel has two local
// ports for connections: four slow requests at once take both and leave
// the other two without a port (EADDRNOTAVAIL on connect). They are
// answered 502 local_ports_exhausted, not proxy_internal_error. The port
// range is a setting of the network namespace, so the test runs itself
// again inside a new one (unshare -n, as root) and leaves the machine's
// alone.
func TestLocalPortsExhausted(t *testing.T) {
	if os.Getenv(netnsChild) == "" {
		if os.Geteuid() != 0 {
			t.Skip("needs root: it runs in a network namespace of its own (unshare -n)")
		}
		unshare, err := exec.LookPath("unshare")
		if err != nil {
			t.Skip("needs unshare (util-linux) for a network namespace of its own")
		}
		if out, err := exec.Command(unshare, "-n", "true").CombinedOutput(); err != nil {
			// A container without CAP_SYS_ADMIN, for one.
			t.Skipf("cannot create a network namespace here: %v: %s", err, strings.TrimSpace(string(out)))
		}
		runAlone(t, netnsChild, unshare, "-n")
		return
	}

	if err := loopbackUp(); err != nil {
		t.Fatalf("bring lo up: %v", err)
	}
	const slow = time.Second
	upLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	up := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(slow)
		_, _ = io.WriteString(w, "ok\n")
	})}
	go func() { _ = up.Serve(upLn) }()
	t.Cleanup(func() { _ = up.Close() })
	cfg := oneTargetConfig("http://" + upLn.Addr().String())
	cfg.AccessLog = "off"
	off, noLimit := false, 0
	cfg.Pools["app"].Concurrency.Adaptive = &off
	cfg.Limits.MaxConnsPerIP = &noLimit
	g := startGateway(t, cfg)

	// Two ports, above the default range, so no listener holds one.
	if err := os.WriteFile("/proc/sys/net/ipv4/ip_local_port_range", []byte("61000 61001"), 0o644); err != nil {
		if errors.Is(err, syscall.EROFS) || errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM) {
			t.Skipf("cannot narrow the namespace's port range here (/proc/sys read-only?): %v", err)
		}
		t.Fatalf("narrow the port range: %v", err)
	}
	type answer struct {
		status int
		proxy  string
		err    error
	}
	answers := make([]answer, 4)
	var wg sync.WaitGroup
	for i := range answers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// The client binds its own ports, outside the narrowed range.
			d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 50000 + i}}
			c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: d.DialContext}}
			res, err := c.Get(g.url + "/")
			if err != nil {
				answers[i].err = err
				return
			}
			_, _ = io.Copy(io.Discard, res.Body)
			_ = res.Body.Close()
			answers[i] = answer{status: res.StatusCode, proxy: res.Header.Get("Proxy-Status")}
		}()
	}
	wg.Wait()
	ok, exhausted := 0, 0
	for i, a := range answers {
		switch {
		case a.err != nil:
			t.Errorf("request %d: %v", i, a.err)
		case a.status == http.StatusOK:
			ok++
		case a.status == http.StatusBadGateway && strings.Contains(a.proxy, `details="local_ports_exhausted"`):
			exhausted++
		default:
			t.Errorf("request %d: %d %q, want 200, or 502 with local_ports_exhausted", i, a.status, a.proxy)
		}
	}
	if ok != 2 || exhausted != 2 {
		t.Errorf("%d answered, %d local_ports_exhausted; want 2 and 2 (two ports for four requests at once)", ok, exhausted)
	}
}

// loopbackUp brings up the loopback interface of a new network namespace
// (SIOCSIFFLAGS), which starts down, without needing iproute2.
func loopbackUp() error {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	var ifr [40]byte // struct ifreq: the name, then the flags
	copy(ifr[:syscall.IFNAMSIZ], "lo")
	*(*uint16)(unsafe.Pointer(&ifr[syscall.IFNAMSIZ])) = syscall.IFF_UP | syscall.IFF_LOOPBACK | syscall.IFF_RUNNING
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), syscall.SIOCSIFFLAGS, uintptr(unsafe.Pointer(&ifr[0]))); errno != 0 {
		return fmt.Errorf("ioctl SIOCSIFFLAGS: %w", errno)
	}
	return nil
}
