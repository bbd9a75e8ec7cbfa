// Package drill runs a failover drill's workload: producers that send
// numbered messages continuously (each producer with its own sharding key,
// so its messages land in one queue in send order) and a clustering
// consumer that receives them, while the caller disrupts the group (kills
// a leader, transfers leadership, restarts a node) and marks each
// disruption with Mark.
//
// Stop reports what a user of rmq cares about after failures: how many
// messages were acknowledged, how many of those were never delivered
// (lost; must be 0), duplicates (a retried send whose first attempt was
// stored, or redelivery of progress not yet committed; stored duplicates,
// the first kind, are counted apart: with producer dedup they are 0), order errors (a
// producer's message delivered for the first time after a later one), and
// for every disruption the time from it to the first acknowledged send
// issued after it (write unavailability as a client sees it).
//
// With Config.Unkeyed the producers send without a sharding key: messages
// spread over every group's queues and a send may move to another group
// when its group fails (the client's latency fault tolerance), so order is
// not checked; the report's LongestGap is the longest time between two
// acknowledgements.
//
// Used by rmq failover drill and by the e2e tests. Producers are goroutines
// started by Start and stopped by Stop; a failed send is retried with the
// same sequence number so order stays checkable.
package drill
