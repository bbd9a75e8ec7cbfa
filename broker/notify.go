package broker

import "sync"

// notifier wakes long-polling readers when the FSM applies messages to
// their queue. The FSM calls wake from its apply goroutine after releasing
// its lock; wake never blocks.
type notifier struct {
	mu      sync.Mutex
	closed  bool
	waiters map[queueKey]chan struct{}
	topics  map[string]chan struct{} // waiters for any queue of a topic
}

type queueKey struct {
	topic string
	queue uint32
}

func newNotifier() *notifier {
	return &notifier{waiters: make(map[queueKey]chan struct{}), topics: make(map[string]chan struct{})}
}

// wait returns a channel closed at the next append to (topic, queue).
func (n *notifier) wait(topic string, queue uint32) <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	k := queueKey{topic, queue}
	ch, ok := n.waiters[k]
	if !ok {
		ch = make(chan struct{})
		if n.closed {
			close(ch)
			return ch
		}
		n.waiters[k] = ch
	}
	return ch
}

// waitTopic returns a channel closed at the next append to any queue of
// topic (a pop receive from every queue waits on it).
func (n *notifier) waitTopic(topic string) <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	ch, ok := n.topics[topic]
	if !ok {
		ch = make(chan struct{})
		if n.closed {
			close(ch)
			return ch
		}
		n.topics[topic] = ch
	}
	return ch
}

func (n *notifier) wake(_ uint32, topic string, queue uint32, _ uint64) {
	k := queueKey{topic, queue}
	n.mu.Lock()
	if ch, ok := n.waiters[k]; ok {
		close(ch)
		delete(n.waiters, k)
	}
	if ch, ok := n.topics[topic]; ok {
		close(ch)
		delete(n.topics, topic)
	}
	n.mu.Unlock()
}

// wakeTopic wakes every reader waiting on a queue of topic, so long polls
// re-check a topic whose permission changed or that was deleted.
func (n *notifier) wakeTopic(topic string) {
	n.mu.Lock()
	for k, ch := range n.waiters {
		if k.topic == topic {
			close(ch)
			delete(n.waiters, k)
		}
	}
	if ch, ok := n.topics[topic]; ok {
		close(ch)
		delete(n.topics, topic)
	}
	n.mu.Unlock()
}

func (n *notifier) close() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.closed = true
	for k, ch := range n.waiters {
		close(ch)
		delete(n.waiters, k)
	}
	for k, ch := range n.topics {
		close(ch)
		delete(n.topics, k)
	}
}
