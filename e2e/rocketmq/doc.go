// Package rocketmq holds the compatibility proof that unmodified Apache
// RocketMQ clients work against rmq: tests that drive rmq servers with
// rocketmq-client-go v2.1.2, pinned in go.mod and used only through its
// public API (producer.NewDefaultProducer, consumer.NewPushConsumer,
// primitive.*). The package has no code of its own; everything is in the
// _test.go files.
//
// # What it proves
//
// The rmq NameServer and brokers speak RocketMQ's remoting protocol on the
// same ports as rmq's own protocol. A RocketMQ client is given the
// NameServer address; routes name the broker group (brokerName = the rmq
// group) with its Raft leader as brokerId 0 and followers as 1..n. The
// tests check, against `rmq dev` unless noted:
//
//   - sends: sync, async, oneway, a batch to one queue, a compressed body;
//     tags, keys and properties; result queue and offset match what is
//     consumed (TestSendModes); a send to a missing topic creates it via
//     the TBW102 route (TestAutoCreateTopic);
//   - 10 000 messages through a clustering push consumer, consumed set
//     equal to sent set, duplicates counted (TestClustering10k);
//     broadcasting: two members each get everything (TestBroadcasting);
//   - orderly consumption of sharding-key sequences (TestOrderlyShardingKey),
//     tag filters (TestTagFilter), committed offsets surviving a consumer
//     restart (TestOffsetsSurviveRestart), consume from a timestamp on a
//     young queue (TestConsumeFromTimestamp);
//   - failover: SIGKILL of the leader of a NameServer + three-broker group
//     of separate processes while producing and consuming; lost
//     acknowledged sends must be 0, failed sends and duplicates are logged
//     (TestFailoverLeaderKill). rocketmq-client-go v2.1.2 refreshes routes
//     every 30s (a constant, no option), so the clients' outage lasts up to
//     that long and this test takes 30-60s;
//   - delay levels 1 and 2 (TestDelayLevel); retries through rmq's retry
//     queue and the dead-letter queue after maxReconsumeTimes
//     (TestRetryToDLQ, on rmq dev with shortened --delay-levels);
//   - interop with rmq's own client (package client) both ways, message
//     ids included (TestInteropRmqToRocketMQ, TestInteropRocketMQToRmq);
//   - request-reply: Producer.Request answered through CreateReplyMessage
//     and SendSync, a 5000-byte reply included, and rmq's Request answered
//     by the same RocketMQ responder (TestRequestReply); RocketMQ's
//     Request answered by rmq's Consumer.Reply
//     (TestRequestReplyToRmqResponder);
//   - throughput, 1 KiB messages, sync and async: TestThroughput (only with
//     RMQ_BENCH=1) and BenchmarkSendSync/BenchmarkSendAsync; they print
//     msgs/s and assert nothing about timing.
//
// TestHarnessDev and TestHarnessGroup check the harness itself with rmq's
// own client only: servers start, are found ready, a leader is killed
// and restarted, and after cleanup every process is reaped, its ports are
// free and its files are gone.
//
// # Running
//
//	cd e2e/rocketmq && go test ./...
//	cd e2e/rocketmq && go test -v -run Failover ./...            # the logged counts
//	cd e2e/rocketmq && RMQ_BENCH=1 go test -v -run Throughput ./...
//
// Run the RocketMQ tests without -race: rocketmq-client-go v2.1.2 has
// known data races of its own (apache/rocketmq-client-go#790, #1115), so
// under -race they skip themselves (RMQ_E2E_RACE=1 runs them anyway). The
// harness tests run under -race as well:
//
//	cd e2e/rocketmq && go test -race -run Harness ./...
//
// TestMain builds ../../cmd/rmq once (in the main module, with its own
// go.mod) into a temporary directory. Every server is a child process on
// 127.0.0.1 ports below the ephemeral range, with data in t.TempDir();
// t.Cleanup stops it, and on Linux it also dies with the test binary
// (parent-death signal). TestMain fails the run if any rmq process or
// RocketMQ client is still running after the tests. ROCKETMQ_GO_LOG_LEVEL
// overrides the client's log level, which the tests set to warn.
//
// Each RocketMQ producer and consumer has its own instance name and is
// shut down by t.Cleanup. Some of the library's own goroutines outlive
// Shutdown by design (timers that sleep 1-10s before their loop, and a
// consumer's expired-message cleaner that sleeps ConsumeTimeout, 15
// minutes); they hold no connection and only end with the process.
// Broadcasting consumers keep offsets in files under
// $HOME/.rocketmq_client_go (or $rocketmq.client.localOffsetStoreDir);
// the tests remove theirs.
//
// # Why its own module
//
// So that the main module does not depend on rocketmq-client-go and the
// dependencies it brings (logrus, json-iterator, testify, ...): go.mod
// requires github.com/rmq-dev/rmq through `replace => ../..` for rmq's
// client, and the rmq binary is built with the main module's own
// dependency versions. `go test ./...` at the repository root does not
// enter this directory.
package rocketmq
