// Package e2e holds tests that run rmq across processes, and the in-process
// cluster helper other packages' tests use.
//
// StartCluster starts a NameServer and a three-node broker group inside
// the test process, on 127.0.0.1 with ports chosen by the kernel and data
// in t.TempDir(). It returns a *Cluster with Kill (crash), Stop (graceful),
// Wipe and Restart per node, LeaderID to wait for a serving leader, and
// NamesrvAddr for clients. Every node and the NameServer are stopped by
// t.Cleanup; restarted nodes reuse their addresses. Eventually polls a
// condition with a deadline instead of sleeping.
//
// Client tests use it from an external test package (package client_test)
// so that importing broker and namesrv never leaks into the client
// library itself.
package e2e
