//go:build !linux

package rocketmq_test

import "os/exec"

// Elsewhere there is no parent-death signal: TestMain and t.Cleanup stop
// every process, but a killed test binary can leave servers behind.
func startProcess(cmd *exec.Cmd) error { return cmd.Start() }
