package chaos

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// proc is one running rmq process. done is closed once it was reaped.
type proc struct {
	name   string
	cmd    *exec.Cmd
	done   chan struct{}
	paused bool // SIGSTOPped and not yet continued
}

// startProc starts argv, with env added to the harness's environment,
// its output appended to logPath. The process
// gets SIGKILL if the harness dies (Pdeathsig): it is started and reaped
// by one goroutine locked to its OS thread, because the kernel sends the
// signal when the thread that forked exits, not the process.
func startProc(name, logPath string, argv, env []string) (*proc, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(f, "---- chaos: start %s at %s: %s\n", name, time.Now().Format(time.RFC3339Nano), strings.Join(argv, " "))
	cmd := exec.Command(argv[0], argv[1:]...)
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() { // ends when the process is reaped
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		defer close(p.done)
		defer f.Close()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		_ = cmd.Wait()
		fmt.Fprintf(f, "---- chaos: %s exited at %s: %v\n", name, time.Now().Format(time.RFC3339Nano), cmd.ProcessState)
	}()
	if err := <-started; err != nil {
		<-p.done
		return nil, fmt.Errorf("chaos: start %s: %w", name, err)
	}
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// signal sends sig; for SIGKILL and SIGTERM it waits until the process is
// reaped, escalating to SIGKILL after grace.
func (p *proc) signal(sig syscall.Signal, grace time.Duration) error {
	if err := p.cmd.Process.Signal(sig); err != nil {
		select {
		case <-p.done:
			return nil // already gone
		default:
			return fmt.Errorf("chaos: signal %s with %v: %w", p.name, sig, err)
		}
	}
	if sig != syscall.SIGKILL && sig != syscall.SIGTERM {
		return nil
	}
	if p.paused && sig == syscall.SIGTERM {
		_ = p.cmd.Process.Signal(syscall.SIGCONT) // a stopped process cannot act on SIGTERM
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
	}
	_ = p.cmd.Process.Kill()
	select {
	case <-p.done:
		return fmt.Errorf("chaos: %s ignored %v for %s; killed", p.name, sig, grace)
	case <-time.After(30 * time.Second):
		return fmt.Errorf("chaos: %s not reaped 30s after SIGKILL", p.name)
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// tail returns the last n lines of a log file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	return lastLines(string(b), n)
}

// lastLines returns the last n lines of text.
func lastLines(text string, n int) string {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
