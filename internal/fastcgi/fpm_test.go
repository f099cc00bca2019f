package fastcgi

import (
	"testing"

	"github.com/gatewise/gatewise/internal/testkit"
)

// pool is one pool of a test php-fpm master.
type pool struct {
	// name is the pool's name.
	name string
	// tcp listens on 127.0.0.1 and a free port instead of a unix socket.
	tcp bool
	// maxChildren is pm.max_children (pm = static). Default 2.
	maxChildren int
	// backlog is listen.backlog. Default 16.
	backlog int
	// terminate is request_terminate_timeout, such as "2s". Default none.
	terminate string
	// extra lines for the pool's section.
	extra []string
}

// fpm is a php-fpm master started by a test (testkit.PHPFPM), with its
// document root.
type fpm struct {
	*testkit.PHPFPM
	t    testing.TB
	dir  string
	root string
}

// startFPM starts php-fpm (without php.ini, so its settings are the test's)
// with the given pools and a fresh document root, and stops it when the
// test ends.
func startFPM(t testing.TB, pools ...*pool) *fpm {
	t.Helper()
	c := testkit.PHPFPMConfig{Global: []string{"log_level = notice"}}
	for _, p := range pools {
		backlog := p.backlog
		if backlog == 0 {
			backlog = 16
		}
		extra := []string{"catch_workers_output = yes",
			"php_value[memory_limit] = 32M", "php_flag[log_errors] = on", "php_flag[display_errors] = off", "php_value[post_max_size] = 200M"}
		c.Pools = append(c.Pools, testkit.Pool{Name: p.name, TCP: p.tcp, MaxChildren: p.maxChildren, Backlog: backlog,
			StatusPath: "/fpm-status", TerminateTimeout: p.terminate, Extra: append(extra, p.extra...)})
	}
	s := testkit.StartPHPFPM(t, c)
	return &fpm{PHPFPM: s, t: t, dir: s.Dir(), root: s.Root()}
}

// stop ends the master (and its workers) and waits for it.
func (f *fpm) stop() { f.Stop() }

// write creates a file under the document root.
func (f *fpm) write(name, content string) {
	f.t.Helper()
	f.Write(name, content)
}

// workers returns the pids of the master's children.
func (f *fpm) workers() []int {
	f.t.Helper()
	return f.Workers()
}

// transport returns a Transport for the named pool, closed at the end.
func (f *fpm) transport(name string, o Options) *Transport {
	f.t.Helper()
	o.Network, o.Address = f.Network(name), f.Address(name)
	if o.Root == "" {
		o.Root = f.root
	}
	tr, err := New(o)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { tr.Close() })
	return tr
}
