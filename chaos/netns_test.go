package chaos

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"
)

var errNoSetns = errors.New("setns: system call number unknown on this architecture")

// inNamespace runs f on an OS thread moved into namespace ns; sockets f
// creates belong to ns. The thread is not unlocked, so it exits with the
// goroutine instead of returning to the pool in the wrong namespace.
func inNamespace(ns string, f func() error) error {
	errc := make(chan error, 1)
	go func() { // ends when f returns
		runtime.LockOSThread()
		if sysSetns == 0 {
			errc <- errNoSetns
			return
		}
		fd, err := os.Open("/run/netns/" + ns)
		if err != nil {
			errc <- err
			return
		}
		defer fd.Close()
		if _, _, e := syscall.RawSyscall(sysSetns, fd.Fd(), syscall.CLONE_NEWNET, 0); e != 0 {
			errc <- fmt.Errorf("setns %s: %w", ns, e)
			return
		}
		errc <- f()
	}()
	return <-errc
}

func listenIn(t *testing.T, n *Net, i int) net.Listener {
	t.Helper()
	var ln net.Listener
	if err := inNamespace(n.Namespace(i), func() (err error) {
		ln, err = net.Listen("tcp", n.IP(i)+":7000")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() { // ends when the listener is closed
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return ln
}

func dialFrom(n *Net, from, to int) error {
	d := net.Dialer{Timeout: 300 * time.Millisecond}
	addr := n.ipOf(to) + ":7000"
	if from == Host {
		c, err := d.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err
	}
	return inNamespace(n.Namespace(from), func() error {
		c, err := d.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err
	})
}

// udpOneWay sends a datagram from endpoint from to endpoint to and
// reports whether it arrived (within 300ms).
func udpArrives(t *testing.T, n *Net, from, to int) bool {
	t.Helper()
	listen := func() (*net.UDPConn, error) {
		return net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(n.ipOf(to)), Port: 7001})
	}
	var rc *net.UDPConn
	var err error
	if to == Host {
		rc, err = listen()
	} else {
		err = inNamespace(n.Namespace(to), func() (e error) { rc, e = listen(); return e })
	}
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	send := func() error {
		sc, err := net.Dial("udp", n.ipOf(to)+":7001")
		if err != nil {
			return err
		}
		defer sc.Close()
		_, err = sc.Write([]byte("x"))
		return err
	}
	if from == Host {
		err = send()
	} else {
		err = inNamespace(n.Namespace(from), send)
	}
	if errors.Is(err, syscall.EPERM) {
		return false // dropped in the sender's OUTPUT chain
	}
	if err != nil {
		t.Fatal(err)
	}
	_ = rc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	buf := make([]byte, 8)
	_, err = rc.Read(buf)
	return err == nil
}

// TestNetRules checks every kind of rule against real sockets in the
// namespaces: a cut black-holes both ways, a one-way drop only one, a
// reset refuses at once, and Heal restores everything; Close leaves no
// namespace, link or state file behind.
func TestNetRules(t *testing.T) {
	needHarness(t)
	if sysSetns == 0 {
		t.Skip(errNoSetns)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n, err := NewNet(ctx, 2, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	nss, links := n.Names()
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Error(err)
		}
		for _, ns := range nss {
			if nsExists(ns) {
				t.Errorf("namespace %s left", ns)
			}
		}
		for _, l := range links {
			if exists(l) {
				t.Errorf("link %s left", l)
			}
		}
		if _, err := os.Stat(n.state); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("state file %s left (%v)", n.state, err)
		}
	})
	listenIn(t, n, 0)
	listenIn(t, n, 1)
	reach := func(from, to int, want bool) {
		t.Helper()
		err := dialFrom(n, from, to)
		if (err == nil) != want {
			t.Errorf("%s -> %s with rules %v: dial error %v, want reachable=%v", endpointName(from), endpointName(to), n.Rules(), err, want)
		}
	}
	reach(Host, 0, true)
	reach(Host, 1, true)
	reach(0, 1, true)
	reach(1, 0, true)

	if err := n.Apply(ctx, Cut(0, Host)); err != nil {
		t.Fatal(err)
	}
	reach(Host, 0, false)
	reach(Host, 1, true)
	reach(1, 0, true)

	if err := n.Apply(ctx, Cut(0, 1)); err != nil {
		t.Fatal(err)
	}
	reach(Host, 0, true)
	reach(0, 1, false)
	reach(1, 0, false)

	if err := n.Apply(ctx, ResetLink(0, 1)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = dialFrom(n, 1, 0)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial n1 -> n0 across a reset link: %v, want connection refused", err)
	}
	t.Logf("reset refused in %s", time.Since(start))

	if err := n.Apply(ctx, OneWay(0, 1)); err != nil {
		t.Fatal(err)
	}
	if udpArrives(t, n, 0, 1) {
		t.Error("datagram n0 -> n1 arrived across a one-way drop")
	}
	if !udpArrives(t, n, 1, 0) {
		t.Error("datagram n1 -> n0 lost: the one-way drop cut the other direction too")
	}
	if err := n.Apply(ctx, OneWay(0, Host)); err != nil {
		t.Fatal(err)
	}
	if udpArrives(t, n, 0, Host) {
		t.Error("datagram n0 -> host arrived across a one-way drop")
	}
	if !udpArrives(t, n, Host, 0) {
		t.Error("datagram host -> n0 lost across a one-way drop the other way")
	}

	if err := n.Heal(ctx); err != nil {
		t.Fatal(err)
	}
	reach(Host, 0, true)
	reach(0, 1, true)
	reach(1, 0, true)
}

func TestPartitionRules(t *testing.T) {
	got := Partition([]int{0}, []int{1, 2})
	want := []Rule{{0, 1, Drop}, {1, 0, Drop}, {0, 2, Drop}, {2, 0, Drop}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v, want %v", got, want)
	}
}
