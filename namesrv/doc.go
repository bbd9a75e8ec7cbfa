// Package namesrv is rmq's NameServer: it tells clients which broker
// groups serve a topic and which node of each group leads it now. It
// holds no durable state and shares none with other NameServers; every
// broker node registers with all of them and a client may ask any one.
// It does not proxy messages, create topics or take part in elections.
//
// Entry point: New(cfg) binds the listener, Run(ctx) serves the wire
// protocol (package wire) until ctx ends. With Config.TLS the listener is
// wrapped with TLS (internal/tlsconf, tls.go): both protocols on the port
// are sniffed after the handshake, and plaintext clients get a TLS alert
// (rmq's client reports "requires TLS"). Requests served:
//
//	CodeRegisterBroker   RegisterBrokerRequest   -> Empty
//	CodeUnregisterBroker UnregisterBrokerRequest -> Empty
//	CodeGetRoute         RouteRequest            -> RouteInfo
//	CodeGetCluster       ClusterRequest (Empty)  -> ClusterInfo
//
// The registry is two maps (live groups below, and down nodes; see "Down
// nodes") guarded by one mutex:
//
//	groups ─┬─ "broker-a" ─┬─ nodes ─┬─ "n0" {NodeStatus, topics, seen, ttl, conn, stale}
//	        │              │         ├─ "n1" {...}
//	        │              │         └─ "n2" {...}
//	        │              ├─ leader ──> n1 (derived)
//	        │              ├─ term       (derived)
//	        │              └─ topics ──> n1.topics (derived)
//	        └─ "broker-b" ── ...
//
// A broker node registers on start, at once on every leadership change,
// and every heartbeat interval; each registration replaces the node's
// entry. After every change the group's derived fields are recomputed:
//
//   - leader: the live node claiming "leader" with the highest term (ties:
//     the newest registration), unless a follower reports a higher term,
//     which means an election happened that the claimant has not noticed.
//     Candidates' terms are ignored here: a partitioned candidate's term
//     runs ahead without any election succeeding.
//   - stale: every other leader claim. A stale leader is shown by the
//     cluster query but never routed to, not even as a follower.
//   - topics: the leader's latest topic table, or with no leader the table
//     of the group's newest registration.
//   - term: the leader's term, or the highest term any node reports.
//
// A node is removed when it has not registered for max(MinExpiry,
// ExpiryFactor x its announced heartbeat; 30s if it announces none), at
// once when the connection of its latest registration closes (an older
// connection closing does nothing), and at once on UnregisterBroker.
// wire.Serve runs the close hook after that connection's handlers have
// returned, so no registration on a closed connection can follow it.
// Every query first drops overdue nodes, so answers never include one;
// the sweeper only makes expiry (and its log line) timely when idle.
//
// Down nodes: a removed node (any of the three ways) leaves its group at
// once (no route, no part in leader selection, not in ClusterInfo.Nodes
// or Clusters) but its last registration is kept in a second map,
//
//	down ── "broker-a" ── "n0" {last NodeStatus, seen, why}
//
// and listed in ClusterInfo.Down with Down set and the age of its last
// registration, so "rmq cluster status" shows a killed node as down
// instead of dropping it. A record is forgotten when a node of the same
// group and ID registers again (it is live at once) or when it was last
// seen more than Config.DownRetention ago (default 10m; by queries and the
// sweeper). Like everything else here it is not durable: a restarted
// NameServer knows no down nodes, only the live ones that register.
// Registrations, changes of role/term/address, leader changes and
// removals are logged at Info; repeated heartbeats at Trace.
//
// Clusters: every registration names the cluster (broker Config.Cluster,
// RocketMQ's clusterName) its group belongs to, and a group belongs to one
// cluster. A node naming another cluster than the group's other live
// nodes is refused with CodeInvalidArgument, so two clusters sharing a
// NameServer and a group name are never merged into one group (whose
// leader would be picked across two Raft groups); a group whose only node
// re-registers with a new name moves. RouteRequest.Cluster and
// ClusterRequest.Cluster limit an answer to one cluster (empty: all);
// routes carry each group's cluster and ClusterInfo.Clusters lists each
// cluster's groups, as RocketMQ's GET_BROKER_CLUSTER_INFO does.
//
// Routes list every group whose topic table holds the topic, sorted by
// name, with its leader (nil if none) and the other routable nodes as
// followers. With RouteRequest.Default and no such group, every group
// with a leader is returned with Queues 0 and Perm read|write, so a
// producer can auto-create the topic on first send.
//
// RocketMQ clients ask the same port (compat.Mux tells a connection's
// protocol by its first bytes; remoting_adapter.go answers): routes
// (GET_ROUTEINFO_BY_TOPIC) come from the same registry, with a group as a
// RocketMQ broker whose current leader is brokerId 0 and whose followers
// are 1..n in node-ID order, so a failover moves brokerId 0 as a master
// switch would; TBW102 is answered with the default route (8 queues) for
// auto-creation, and a %RETRY% topic not created yet with a one-queue
// default route (clients look it up before the heartbeat that creates it). Cluster info and topic lists are served too; RocketMQ
// brokers cannot register (REQUEST_CODE_NOT_SUPPORTED with a remark).
//
// Goroutines: Run starts the sweeper, the mux, wire.Serve and
// compat.Serve (one reader per connection, one goroutine per request), and
// with Config.MetricsListen the HTTP server of /metrics (metrics.go: a
// registry of the server's own with the request-latency histogram and
// gauges read from the registry when scraped), and
// stops and waits for all of them before it returns. Addr is safe at any time; Run is called once.
//
// Access control: none, as in RocketMQ, whose NameServer does not check
// ACL. Route and cluster queries are open to anyone who can reach the
// port; signed requests (wire.FlagAuth, remoting AccessKey/Signature) are
// served and their signature ignored. Brokers check every request that
// touches messages, offsets or topics (package acl), so routes reveal
// topic and node names only.
//
// Failure assumptions: a NameServer restart loses everything and is
// refilled by the next round of heartbeats; until then routes may be
// missing (clients keep their cached routes). Bad input never crashes the
// server: malformed frames close their connection (wire.Serve),
// undecodable bodies get CodeMalformed, invalid fields CodeInvalidArgument.
package namesrv
