// Package e2e holds tests that run rmq across processes, and the in-process
// cluster helper other packages' tests use.
//
// StartCluster starts a NameServer and a three-node broker group inside
// the test process, on 127.0.0.1 with ports chosen by the kernel and data
// in t.TempDir(); Options.Groups and Options.NameServers ask for several
// (groups broker-a, broker-b, ... with node IDs running on across groups:
// n0-n2, n3-n5; every node registers with every NameServer). It returns a
// *Cluster with Kill (crash), Stop (graceful), Wipe and Restart per node,
// LeaderID (first group) and GroupLeaderID to wait for a serving leader,
// Groups, GroupOf and GroupNodeIDs, StopNamesrv and RestartNamesrv (empty,
// as after a crash), and NamesrvAddr/NamesrvAddrs for clients.
// StartJoiner starts one more node that joins the running group
// (Config.Join) for membership tests, RaftAddr gives its address for
// client.Admin.AddNode, and SyncPeers points a node's Peers at the current
// members before it restarts wiped. Every node and the NameServer are stopped by
// t.Cleanup; restarted nodes reuse their addresses. Eventually polls a
// condition with a deadline instead of sleeping.
//
// With Options.Broker and Options.Namesrv setting the TLS configs the same
// helper runs a group with TLS everywhere (tls_test.go: a failover drill
// in process and one across rmq processes started with the TLS flags).
//
// Client tests use it from an external test package (package client_test)
// so that importing broker and namesrv never leaks into the client
// library itself.
package e2e
