package client

import (
	"hash/fnv"
	"math/rand/v2"
	"sync/atomic"
)

// QueueSelector picks the queue a message is sent to among the topic's
// writable queues (sorted by group, then queue id; never empty). It must
// be safe for concurrent use.
type QueueSelector interface {
	Select(msg *Message, queues []Queue) Queue
}

// RoundRobinSelector spreads messages over all queues in turn, starting
// at a random queue (as RocketMQ's producer does), so that many short-lived
// producers sending one message each do not all pick the first queue.
func RoundRobinSelector() QueueSelector { return newRoundRobin() }

type roundRobin struct{ n atomic.Uint64 }

func newRoundRobin() *roundRobin {
	r := &roundRobin{}
	r.n.Store(rand.Uint64())
	return r
}

func (r *roundRobin) Select(_ *Message, queues []Queue) Queue {
	return queues[(r.n.Add(1)-1)%uint64(len(queues))]
}

// HashSelector sends every message with the same ShardingKey to the same
// queue (FNV-32a of the key modulo the queue count, as rocketmq-client-go's
// NewHashQueueSelector), so per-key order is kept while the queue count
// does not change. Messages without a key go round robin.
func HashSelector() QueueSelector { return &hashSelector{rr: newRoundRobin()} }

type hashSelector struct{ rr *roundRobin }

func (h *hashSelector) Select(m *Message, queues []Queue) Queue {
	if m.ShardingKey == "" {
		return h.rr.Select(m, queues)
	}
	return queues[ShardingHash(m.ShardingKey)%uint32(len(queues))]
}

// ShardingHash is the FNV-32a hash used by HashSelector.
func ShardingHash(key string) uint32 {
	f := fnv.New32a()
	_, _ = f.Write([]byte(key))
	return f.Sum32()
}

// DefaultSelector is HashSelector: by ShardingKey when set, else round robin.
func DefaultSelector() QueueSelector { return HashSelector() }
