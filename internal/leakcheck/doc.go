// Package leakcheck is the goroutine-leak check of the module's test
// binaries: a TestMain runs its tests with Main, which then asks goleak
// for goroutines that are still running and fails the binary if any
// remain.
//
// goleak.VerifyTestMain gives goroutines about a second to end, with no
// way to change that in goleak v1.3.0. That is enough on an idle machine.
// On a loaded 2-core CI machine, though, a connection handler or a
// stopped node's loop can take longer to be scheduled and return after
// its Close. That would be a false leak, and it would fail a suite that
// is otherwise green. Main keeps asking for up to Patience (10 s). A
// goroutine that really leaked is still there then and is reported with
// its stack, as goleak prints it. The wait only happens when something
// is left over, so a clean binary exits at once.
//
// It is a normal package and not a _test.go file so that every package's
// TestMain can share it; it is imported only by tests.
package leakcheck
