package rocketmq_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/rmq-dev/rmq/client"
)

// replyErrors records what a responder's replies failed with.
type replyErrors struct {
	mu   sync.Mutex
	errs []string
}

func (r *replyErrors) add(err error) {
	r.mu.Lock()
	r.errs = append(r.errs, err.Error())
	r.mu.Unlock()
}

func (r *replyErrors) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.errs, "; ")
}

// rocketResponder answers every message of topic with "re:" + its body,
// the way RocketMQ's examples do: consumer.CreateReplyMessage, sent by a
// producer's SendSync (which the library turns into SEND_REPLY_MESSAGE).
// v2.1.2's CreateReplyMessage parses the body it is given as properties
// and leaves the reply's Body empty, so the body is set afterwards.
func rocketResponder(t *testing.T, ns, topic string) *replyErrors {
	t.Helper()
	errs := &replyErrors{}
	rp := newProducer(t, ns)
	newPushConsumer(t, ns, uniqueName(t, "G"), topic, subAll, func(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		for _, m := range msgs {
			body := append([]byte("re:"), m.Body...)
			reply, err := consumer.CreateReplyMessage(m, body)
			if err != nil {
				errs.add(err)
				continue
			}
			reply.Body = body
			if _, err := rp.SendSync(ctx, reply); err != nil {
				errs.add(fmt.Errorf("reply to %s: %w", m.GetProperty(primitive.PropertyCorrelationID), err))
			}
		}
		return consumer.ConsumeSuccess, nil
	})
	return errs
}

// TestRequestReply drives rocketmq-client-go v2.1.2's request-reply API
// against rmq: Producer.Request to a topic that exists (so the library
// sends no heartbeat first), answered by a push consumer through
// CreateReplyMessage and SendSync; a 5000-byte reply too (the library
// marks it compressed without compressing it). Then rmq's own Request
// answered by the same RocketMQ responder.
func TestRequestReply(t *testing.T) {
	skipUnderRace(t)
	d := startDev(t)
	topic := uniqueName(t, "T")
	createTopic(t, d.ns, topic, 4)
	errs := rocketResponder(t, d.ns, topic)
	requester := newProducer(t, d.ns)

	big := strings.Repeat("b", 5000)
	for i, body := range []string{"ping-0", "ping-1", "ping-2", big} {
		start := time.Now()
		reply, err := requester.Request(context.Background(), 20*time.Second, primitive.NewMessage(topic, []byte(body)))
		if err != nil {
			t.Fatalf("request %d: %v (responder: %s)", i, err, errs)
		}
		if want := "re:" + body; !bytes.Equal(reply.Body, []byte(want)) {
			t.Fatalf("request %d: reply of %d bytes %.20q, want %.20q", i, len(reply.Body), reply.Body, want)
		}
		if reply.GetProperty(primitive.PropertyCorrelationID) == "" || reply.Topic != "rmq_REPLY_TOPIC" {
			t.Fatalf("reply topic %q properties %v", reply.Topic, reply.GetProperties())
		}
		t.Logf("RocketMQ request %d answered by a RocketMQ responder in %v", i, time.Since(start).Round(time.Millisecond))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rp, err := client.NewProducer(client.ProducerConfig{NameServers: []string{d.ns}})
	if err != nil {
		t.Fatal(err)
	}
	defer rp.Close(ctx)
	rctx, rcancel := context.WithTimeout(ctx, 20*time.Second)
	defer rcancel()
	reply, err := rp.Request(rctx, &client.Message{Topic: topic, Body: []byte("from rmq")})
	if err != nil {
		t.Fatalf("rmq request answered by RocketMQ: %v (responder: %s)", err, errs)
	}
	if string(reply.Body) != "re:from rmq" {
		t.Fatalf("rmq request got %q", reply.Body)
	}
}

// TestRequestReplyToRmqResponder: rocketmq-client-go's Request answered
// by rmq's own Consumer.Reply.
func TestRequestReplyToRmqResponder(t *testing.T) {
	skipUnderRace(t)
	d := startDev(t)
	topic := uniqueName(t, "T")
	createTopic(t, d.ns, topic, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rc, err := client.NewConsumer(client.ConsumerConfig{NameServers: []string{d.ns}, Group: uniqueName(t, "G"),
		Subscriptions: map[string]string{topic: "*"}, From: client.FromFirst})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close(ctx)
	errs := &replyErrors{}
	if err := rc.Start(ctx, func(ctx context.Context, msgs []*client.MessageExt) client.ConsumeResult {
		for _, m := range msgs {
			if err := rc.Reply(ctx, m, append([]byte("rmq:"), m.Body...)); err != nil {
				errs.add(err)
			}
		}
		return client.ConsumeSuccess
	}); err != nil {
		t.Fatal(err)
	}
	requester := newProducer(t, d.ns)
	for i := range 3 {
		body := fmt.Sprintf("q-%d", i)
		reply, err := requester.Request(context.Background(), 20*time.Second, primitive.NewMessage(topic, []byte(body)))
		if err != nil {
			t.Fatalf("request %d: %v (rmq responder: %s)", i, err, errs)
		}
		if string(reply.Body) != "rmq:"+body {
			t.Fatalf("request %d: reply %q", i, reply.Body)
		}
	}
}
