package rocketmq_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/rmq-dev/rmq/client"
)

// interopSpecs are the messages both interop tests send: tags, several
// keys, properties with spaces and separators, and an empty body.
func interopSpecs(run string) []msgSpec {
	return []msgSpec{
		{body: run + "/plain", tag: "t1", keys: []string{"order-1", "user-7"}, props: map[string]string{"p1": "v1", "p2": "two words"}},
		{body: run + "/notag", keys: []string{"only-key"}, props: map[string]string{"x-trace": "a=b;c=d"}},
		{body: run + "/nokeys", tag: "t2"},
	}
}

// TestInteropRmqToRocketMQ sends with rmq's own client and consumes with
// RocketMQ's push consumer: body, tag, keys and properties arrive, at the
// queue and offset rmq's client reported, and the message id is the same
// in both (RocketMQ's UNIQ_KEY is rmq's MsgID; compared ignoring case, as
// rmq's ids are upper-case hex and the Go client's are mixed).
func TestInteropRmqToRocketMQ(t *testing.T) {
	skipUnderRace(t)
	d := startDev(t)
	topic := uniqueName(t, "T")
	createTopic(t, d.ns, topic, 4)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rp, err := client.NewProducer(client.ProducerConfig{NameServers: []string{d.ns}})
	if err != nil {
		t.Fatal(err)
	}
	defer rp.Close(ctx)
	specs := interopSpecs(uniqueName(t, "m"))
	results := map[string]client.SendResult{}
	for _, s := range specs {
		res, err := rp.Send(ctx, &client.Message{Topic: topic, Tags: s.tag, Keys: s.keys, Properties: s.props, Body: []byte(s.body)})
		if err != nil {
			t.Fatalf("rmq send: %v", err)
		}
		results[s.body] = res
	}

	col := newCollector()
	newPushConsumer(t, d.ns, uniqueName(t, "G"), topic, subAll, col.handle)
	col.waitFor(t, 30*time.Second, specBodies(specs))
	for _, s := range specs {
		m, res := col.get(s.body), results[s.body]
		if err := s.check(m); err != nil {
			t.Error(err)
		}
		if uint32(m.Queue.QueueId) != res.QueueID || m.QueueOffset != int64(res.QueueOffset) {
			t.Errorf("%s consumed from queue %d offset %d; rmq's Send said queue %d offset %d", s.body, m.Queue.QueueId, m.QueueOffset, res.QueueID, res.QueueOffset)
		}
		if uniq := m.GetProperty(primitive.PropertyUniqueClientMessageIdKeyIndex); !strings.EqualFold(uniq, res.MsgID) || m.MsgId != uniq {
			t.Errorf("%s: RocketMQ sees MsgId %q, UNIQ_KEY %q; want rmq's MsgID %s (up to case)", s.body, m.MsgId, uniq, res.MsgID)
		}
	}
}

// TestInteropRocketMQToRmq sends with RocketMQ's producer and consumes
// with rmq's own client: the same fields, and rmq's MsgID is the
// UNIQ_KEY RocketMQ's SendSync returned.
func TestInteropRocketMQToRmq(t *testing.T) {
	skipUnderRace(t)
	d := startDev(t)
	topic := uniqueName(t, "T")
	createTopic(t, d.ns, topic, 4)
	p := newProducer(t, d.ns)
	specs := interopSpecs(uniqueName(t, "m"))
	results := map[string]*primitive.SendResult{}
	for _, s := range specs {
		results[s.body] = mustSendSync(t, p, s.message(topic))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rc, err := client.NewConsumer(client.ConsumerConfig{NameServers: []string{d.ns}, Group: uniqueName(t, "G"),
		Subscriptions: map[string]string{topic: "*"}, From: client.FromFirst})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close(ctx)
	got := map[string]*client.MessageExt{}
	for len(got) < len(specs) {
		b, err := rc.Poll(ctx)
		if err != nil {
			t.Fatalf("rmq poll: %v (got %d of %d messages)", err, len(got), len(specs))
		}
		if err := rc.Commit(ctx, b); err != nil { // Close waits for uncommitted batches
			t.Fatalf("rmq commit: %v", err)
		}
		for _, m := range b.Messages() {
			got[string(m.Body)] = m
		}
	}
	for _, s := range specs {
		m, res := got[s.body], results[s.body]
		if m == nil {
			t.Errorf("%s not consumed", s.body)
			continue
		}
		if err := checkRmq(s, m); err != nil {
			t.Error(err)
		}
		if m.Queue.QueueID != uint32(res.MessageQueue.QueueId) || int64(m.QueueOffset) != res.QueueOffset {
			t.Errorf("%s consumed from queue %d offset %d; RocketMQ's SendSync said queue %d offset %d", s.body, m.Queue.QueueID, m.QueueOffset, res.MessageQueue.QueueId, res.QueueOffset)
		}
		if !strings.EqualFold(m.MsgID, res.MsgID) {
			t.Errorf("%s: rmq sees MsgID %s; want RocketMQ's MsgID (UNIQ_KEY) %s (up to case)", s.body, m.MsgID, res.MsgID)
		}
	}
}

// checkRmq compares a message consumed with rmq's client with what was
// sent with RocketMQ's: properties may hold more (system properties), not
// less.
func checkRmq(s msgSpec, m *client.MessageExt) error {
	var bad []string
	if string(m.Body) != s.body {
		bad = append(bad, fmt.Sprintf("body %q", m.Body))
	}
	if m.Tags != s.tag {
		bad = append(bad, fmt.Sprintf("tag %q, want %q", m.Tags, s.tag))
	}
	if !slices.Equal(m.Keys, s.keys) && len(m.Keys)+len(s.keys) > 0 {
		bad = append(bad, fmt.Sprintf("keys %q, want %q", m.Keys, s.keys))
	}
	for k, v := range s.props {
		if m.Properties[k] != v {
			bad = append(bad, fmt.Sprintf("property %s=%q, want %q", k, m.Properties[k], v))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("message %s: %v", s.body, bad)
	}
	return nil
}
