package rocketmq_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/rlog"
)

// rmqBin is the rmq binary TestMain built for this run.
var rmqBin string

func TestMain(m *testing.M) { os.Exit(runTests(m)) }

// runTests builds cmd/rmq once, runs the tests, then checks that no rmq
// process and no RocketMQ client is left: whatever is, is stopped and the
// run fails.
func runTests(m *testing.M) int {
	if os.Getenv("ROCKETMQ_GO_LOG_LEVEL") == "" {
		rlog.SetLogLevel("warn") // its info lines would drown the test output
	}
	dir, err := os.MkdirTemp("", "rmq-rocketmq-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e/rocketmq:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if rmqBin, err = buildRMQ(dir); err != nil {
		fmt.Fprintln(os.Stderr, "e2e/rocketmq:", err)
		return 1
	}
	code := m.Run()
	if left := procs.killAll(); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "e2e/rocketmq: rmq processes left running after the tests (killed now): %s\n", strings.Join(left, ", "))
		code = 1
	}
	if open := rocketClients.shutdownAll(); len(open) > 0 {
		fmt.Fprintf(os.Stderr, "e2e/rocketmq: RocketMQ clients left running after the tests (shut down now): %s\n", strings.Join(open, ", "))
		code = 1
	}
	return code
}

// buildRMQ builds ../../cmd/rmq in the main module (with the main
// module's own go.mod and go.sum) into dir.
func buildRMQ(dir string) (string, error) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		return "", err
	}
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil || !bytes.HasPrefix(mod, []byte("module github.com/rmq-dev/rmq\n")) {
		return "", fmt.Errorf("%s is not the rmq main module (want its go.mod there): %v", root, err)
	}
	bin := filepath.Join(dir, "rmq")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/rmq")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/rmq in %s: %v\n%s", root, err, out)
	}
	return bin, nil
}

// proc is one running rmq process. Its stdout and stderr go to a log file
// that is shown (last lines) when the test fails.
type proc struct {
	name    string
	logPath string
	cmd     *exec.Cmd
	done    chan struct{} // closed once the process is reaped
	waitErr error         // set before done is closed
}

// procTable holds every process this test binary started and has not
// reaped yet, for the check at the end of TestMain.
type procTable struct {
	mu   sync.Mutex
	live map[*proc]struct{}
}

var procs = &procTable{live: map[*proc]struct{}{}}

func (pt *procTable) add(p *proc) {
	pt.mu.Lock()
	pt.live[p] = struct{}{}
	pt.mu.Unlock()
}

func (pt *procTable) remove(p *proc) {
	pt.mu.Lock()
	delete(pt.live, p)
	pt.mu.Unlock()
}

// names lists the live processes as "name (pid N)", sorted.
func (pt *procTable) names() []string {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	var out []string
	for p := range pt.live {
		out = append(out, fmt.Sprintf("%s (pid %d)", p.name, p.cmd.Process.Pid))
	}
	sort.Strings(out)
	return out
}

// killAll SIGKILLs every live process, waits for each and returns what
// was still running.
func (pt *procTable) killAll() []string {
	left := pt.names()
	pt.mu.Lock()
	var ps []*proc
	for p := range pt.live {
		ps = append(ps, p)
	}
	pt.mu.Unlock()
	for _, p := range ps {
		_ = p.stop(syscall.SIGKILL, 0)
	}
	return left
}

// spawn starts rmq with args; name labels it in logs and errors.
func spawn(logDir, name string, args ...string) (*proc, error) {
	logPath := filepath.Join(logDir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(rmqBin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := startProcess(cmd); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, logPath: logPath, cmd: cmd, done: make(chan struct{})}
	procs.add(p)
	go func() { // reaps the process; ends when it exits
		p.waitErr = cmd.Wait()
		f.Close()
		procs.remove(p)
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// stop sends sig and waits up to grace for the process to exit, then
// SIGKILLs it. It returns an error if the process needed the SIGKILL it
// was not sent, or did not even die of that within 10s.
func (p *proc) stop(sig syscall.Signal, grace time.Duration) error {
	if !p.alive() {
		return nil
	}
	_ = p.cmd.Process.Signal(sig)
	var ignored error
	if sig != syscall.SIGKILL {
		select {
		case <-p.done:
			return nil
		case <-time.After(grace):
			ignored = fmt.Errorf("%s (pid %d) still running %v after %v; killed", p.name, p.pid(), grace, sig)
			_ = p.cmd.Process.Kill()
		}
	}
	select {
	case <-p.done:
		return ignored
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s (pid %d) survived SIGKILL for 10s", p.name, p.pid())
	}
}

// exitStatus describes how a reaped process ended.
func (p *proc) exitStatus() string {
	if p.alive() {
		return "running"
	}
	if p.waitErr == nil {
		return "exit 0"
	}
	return p.waitErr.Error()
}

// tail returns the last n lines of the process log.
func (p *proc) tail(n int) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// gone reports whether no process with this pid exists any more.
func (p *proc) gone() bool {
	if p.alive() {
		return false
	}
	return errors.Is(syscall.Kill(p.pid(), 0), syscall.ESRCH)
}

// Port choice: ports are taken from below Linux's ephemeral range
// (32768-60999) so that no outgoing connection grabs one between the
// check and the server's bind. A start that still loses the race is
// retried by its caller with new ports.
const portLow, portHigh = 20000, 32000

// portFree reports whether nothing listens on 127.0.0.1:port.
func portFree(port int) bool {
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

// pickPorts returns n free loopback ports, none in avoid.
func pickPorts(n int, avoid map[int]bool) ([]int, error) {
	var out []int
	for tries := 0; len(out) < n && tries < 1000; tries++ {
		p := portLow + rand.IntN(portHigh-portLow)
		if !avoid[p] && portFree(p) {
			avoid[p] = true
			out = append(out, p)
		}
	}
	if len(out) < n {
		return nil, fmt.Errorf("found only %d of %d free loopback ports in [%d, %d)", len(out), n, portLow, portHigh)
	}
	return out, nil
}

// pickDevPorts returns a NameServer port and a base port for `rmq dev`,
// which listens on base+10i (client) and base+10i+1 (Raft) for i in 0..2.
func pickDevPorts() (ns, base int, all []int, err error) {
	avoid := map[int]bool{}
	for tries := 0; tries < 200; tries++ {
		base = portLow + rand.IntN(portHigh-portLow-30)
		all = []int{base, base + 1, base + 10, base + 11, base + 20, base + 21}
		ok := true
		for _, p := range all {
			ok = ok && portFree(p)
		}
		if !ok {
			continue
		}
		for _, p := range all {
			avoid[p] = true
		}
		nsPorts, err := pickPorts(1, avoid)
		if err != nil {
			return 0, 0, nil, err
		}
		return nsPorts[0], base, append(all, nsPorts[0]), nil
	}
	return 0, 0, nil, errors.New("no free block of loopback ports for rmq dev")
}
