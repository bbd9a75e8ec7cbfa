package rocketmq_test

import (
	"os/exec"
	"runtime"
	"sync"
	"syscall"
)

// On Linux every rmq process gets SIGKILL when the test binary dies
// (go test -timeout, a panic, Ctrl-C), so no server outlives a run that
// could not clean up. The kernel delivers that parent-death signal when
// the thread that forked the child exits, not the process, so every child
// is forked from one goroutine locked to its thread for the life of the
// test binary: that thread exits only with the process.

type startReq struct {
	cmd  *exec.Cmd
	done chan error
}

var (
	spawnerOnce sync.Once
	spawnerCh   chan startReq
)

func startProcess(cmd *exec.Cmd) error {
	spawnerOnce.Do(func() {
		spawnerCh = make(chan startReq)
		go func() { // lives as long as the test binary
			runtime.LockOSThread()
			for r := range spawnerCh {
				r.done <- r.cmd.Start()
			}
		}()
	})
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	r := startReq{cmd: cmd, done: make(chan error, 1)}
	spawnerCh <- r
	return <-r.done
}
