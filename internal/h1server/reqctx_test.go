package h1server

import (
	"context"
	"errors"
	"net/url"
	"reflect"
	"sync/atomic"
	"testing"
	"time"
)

// TestRequestContextDoneAfterCancel asks for Done only after the
// cancel, which made no channel: it must come back closed.
func TestRequestContextDoneAfterCancel(t *testing.T) {
	c := newRequestContext(context.Background())
	c.cancel()
	if c.done != nil {
		t.Error("cancel made a Done channel nobody asked for")
	}
	select {
	case <-c.Done():
	default:
		t.Fatal("Done after cancel is not closed")
	}
	if c.Done() != c.Done() {
		t.Error("Done returns a new channel each call")
	}
}

func TestRequestContextCancel(t *testing.T) {
	type key struct{}
	parent := context.WithValue(context.Background(), key{}, "v")
	c := newRequestContext(parent)
	if c.Err() != nil {
		t.Fatalf("Err before cancel: %v", c.Err())
	}
	if c.Value(key{}) != "v" {
		t.Errorf("Value: %v", c.Value(key{}))
	}
	done := c.Done()
	woken := make(chan int, 4)
	slot := c.RegisterWake(func() { woken <- 1 })
	unregistered := c.RegisterWake(func() { woken <- 2 })
	if slot < 0 || unregistered < 0 {
		t.Fatalf("slots %d %d", slot, unregistered)
	}
	if !c.UnregisterWake(unregistered) {
		t.Error("UnregisterWake of a live slot: false")
	}
	stopped := c.AfterFunc(func() { woken <- 3 })
	ranAfter := c.AfterFunc(func() { woken <- 4 })
	if !stopped() {
		t.Error("stop before cancel: false")
	}

	// A context derived from it is cancelled with it, through AfterFunc
	// (the context package uses it for parents that are not its own).
	derived, cancelDerived := context.WithTimeout(c, time.Hour)
	defer cancelDerived()

	c.cancel()
	c.cancel() // a second cancel does nothing
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Done not closed")
	}
	if !errors.Is(c.Err(), context.Canceled) {
		t.Errorf("Err: %v", c.Err())
	}
	got := map[int]bool{}
	for range 2 {
		select {
		case v := <-woken:
			got[v] = true
		case <-time.After(10 * time.Second):
			t.Fatalf("woken so far: %v", got)
		}
	}
	if !got[1] || !got[4] {
		t.Errorf("ran %v, want the registered wake (1) and the AfterFunc not stopped (4)", got)
	}
	select {
	case v := <-woken:
		t.Errorf("%d ran: it was unregistered or stopped", v)
	case <-time.After(50 * time.Millisecond):
	}
	if c.UnregisterWake(slot) {
		t.Error("UnregisterWake after the wake ran: true")
	}
	if ranAfter() {
		t.Error("stop after the func ran: true")
	}
	select {
	case <-derived.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("derived context not cancelled")
	}

	// Registrations after the cancel: the wake is refused (the caller
	// falls back to context.AfterFunc), AfterFunc runs at once.
	if s := c.RegisterWake(func() {}); s != -1 {
		t.Errorf("RegisterWake after cancel: %d", s)
	}
	var late atomic.Bool
	lateDone := make(chan struct{})
	c.AfterFunc(func() { late.Store(true); close(lateDone) })
	select {
	case <-lateDone:
	case <-time.After(10 * time.Second):
		t.Fatal("AfterFunc after cancel did not run")
	}
	if d := c.Done(); d == nil {
		t.Error("Done after cancel: nil")
	}
}

func TestRequestContextWakeSlotsRunOut(t *testing.T) {
	c := newRequestContext(context.Background())
	for i := range len(c.wakes) {
		if s := c.RegisterWake(func() {}); s != i {
			t.Fatalf("slot %d: %d", i, s)
		}
	}
	if s := c.RegisterWake(func() {}); s != -1 {
		t.Errorf("a slot past the last: %d", s)
	}
	if c.UnregisterWake(-1) || c.UnregisterWake(len(c.wakes)) {
		t.Error("UnregisterWake of a slot out of range: true")
	}
}

// TestParseOriginForm: the fast path gives what url.ParseRequestURI gives,
// or declines.
func TestParseOriginForm(t *testing.T) {
	for _, target := range []string{
		"/", "/a/b.c", "/a?b=c&d=e", "/a?", "/a??", "/a?b?", "//x", "/a:b@c;d=e,f+g$h&i~j_k-l",
		"/%41", "/a b", "/a#f", "/a?b#c", "*", "http://h/p", "/é", "/a(b)", "/a*b", "/a!b", "/a'b",
		"", "a", "/a?%zz", "/a?q=1;2",
	} {
		var u url.URL
		ok := parseOriginForm(target, &u)
		want, err := url.ParseRequestURI(target)
		if !ok {
			continue // the caller takes ParseRequestURI's answer
		}
		if err != nil {
			t.Errorf("%q: fast path took a target ParseRequestURI refuses (%v)", target, err)
			continue
		}
		if !reflect.DeepEqual(&u, want) {
			t.Errorf("%q: got %#v, want %#v", target, u, *want)
		}
	}
}

func FuzzParseOriginForm(f *testing.F) {
	for _, s := range []string{"/", "/a?b", "/a?", "/a%20b", "/a/b;c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, target string) {
		var u url.URL
		if !parseOriginForm(target, &u) {
			return
		}
		want, err := url.ParseRequestURI(target)
		if err != nil {
			t.Fatalf("%q: fast path took a target ParseRequestURI refuses (%v)", target, err)
		}
		if !reflect.DeepEqual(&u, want) {
			t.Fatalf("%q: got %#v, want %#v", target, u, *want)
		}
	})
}

// TestRequestContextSetValue checks the one value a middleware may set:
// Value returns it, the parent's values still come through, and a second
// value or a nil key is refused.
func TestRequestContextSetValue(t *testing.T) {
	type key struct{}
	type other struct{}
	parent := context.WithValue(context.Background(), other{}, "parent")
	c := newRequestContext(parent)
	if c.SetValue(nil, 1) {
		t.Error("SetValue took a nil key")
	}
	if !c.SetValue(key{}, "mine") {
		t.Fatal("SetValue refused the first value")
	}
	if c.SetValue(key{}, "again") || c.SetValue(other{}, "again") {
		t.Error("SetValue took a second value")
	}
	if c.Value(key{}) != "mine" || c.Value(other{}) != "parent" {
		t.Errorf("Value: %v, %v", c.Value(key{}), c.Value(other{}))
	}
	derived, cancel := context.WithCancel(c)
	defer cancel()
	if derived.Value(key{}) != "mine" {
		t.Errorf("a derived context's Value: %v", derived.Value(key{}))
	}
}
