package broker

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/compat"
	"github.com/rmq-dev/rmq/wire"
)

// pushes collects the replies pushed to an rmq requester's connection.
type pushes chan *wire.PushReply

// rmqRequester dials n, takes pushed replies and says hello as clientID.
func rmqRequester(t *testing.T, n *Node, clientID string) (*wire.Conn, pushes) {
	t.Helper()
	conn, err := wire.Dial(t.Context(), n.ClientAddr(), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	got := make(pushes, 8)
	conn.SetHandler(func(_ context.Context, code uint16, body []byte) (any, error) {
		if code != wire.CodePushReply {
			return nil, wire.Errorf(wire.CodeUnknownRequest, "code %d", code)
		}
		pr := new(wire.PushReply)
		if err := wire.Unmarshal(body, pr); err != nil {
			return nil, err
		}
		got <- pr
		return wire.Empty{}, nil
	})
	if err := conn.Call(t.Context(), wire.CodeProducerHello, wire.ProducerHello{ClientID: clientID}, nil); err != nil {
		t.Fatal(err)
	}
	return conn, got
}

func (p pushes) next(t *testing.T) *wire.PushReply {
	t.Helper()
	select {
	case pr := <-p:
		return pr
	case <-time.After(10 * time.Second):
		t.Fatal("no reply pushed")
		return nil
	}
}

func wireCode(err error) uint16 {
	var we *wire.Error
	if errors.As(err, &we) {
		return we.Code
	}
	return wire.CodeOK
}

// TestReplyPushedToRMQRequester: a request sent over rmq's protocol is
// stored with CLUSTER stamped; a reply naming its requester is pushed
// over the requester's hello'd connection and answered once taken; a
// reply to a client with no connection here is CodeUnavailable, one
// without the request's properties CodeInvalidArgument.
func TestReplyPushedToRMQRequester(t *testing.T) {
	n, _ := remotingNode(t)
	req, got := rmqRequester(t, n, "req-1")
	props := map[string]string{compat.PropCorrelationID: "c1", compat.PropReplyTo: "req-1", compat.PropMessageTTL: "3000"}
	var sent wire.SendResponse
	if err := req.Call(t.Context(), wire.CodeSend, wire.SendRequest{AutoCreateQueues: 1,
		Messages: []wire.Message{{Topic: "rpc", Properties: props, Body: []byte("q"), ID: make([]byte, 16)}}}, &sent); err != nil {
		t.Fatal(err)
	}
	if len(sent.Results) != 1 || sent.Results[0].ErrorCode != 0 {
		t.Fatalf("send: %+v", sent)
	}
	res, err := n.Read(t.Context(), ReadRequest{Topic: "rpc", QueueID: 0, MaxMessages: 1})
	if err != nil || len(res.Messages) != 1 {
		t.Fatalf("read the request: %v, %d messages", err, len(res.Messages))
	}
	if p := res.Messages[0].Properties; p[compat.PropCluster] != n.cfg.Cluster || p[compat.PropCorrelationID] != "c1" || p[compat.PropReplyTo] != "req-1" {
		t.Fatalf("stored request properties %v: want CLUSTER %s stamped and the request's kept", p, n.cfg.Cluster)
	}

	resp, err := wire.Dial(t.Context(), n.ClientAddr(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Close()
	reply := wire.ReplyRequest{Message: wire.Message{Tags: "t", Body: []byte("answer"), BornTimestamp: 42,
		Properties: map[string]string{compat.PropCorrelationID: "c1", compat.PropReplyTo: "req-1"}}}
	if err := resp.Call(t.Context(), wire.CodeSendReply, reply, nil); err != nil {
		t.Fatal(err)
	}
	pr := got.next(t)
	m := pr.Message
	if string(m.Body) != "answer" || m.Topic != n.cfg.Cluster+"_REPLY_TOPIC" || m.Tags != "t" || m.BornTimestamp != 42 ||
		m.Properties[compat.PropCorrelationID] != "c1" || m.Properties[compat.PropPushReplyTime] == "" || pr.Group != n.cfg.Group {
		t.Fatalf("pushed %+v (group %q)", m, pr.Group)
	}

	reply.Message.Properties = map[string]string{compat.PropCorrelationID: "c1", compat.PropReplyTo: "nobody"}
	if err := resp.Call(t.Context(), wire.CodeSendReply, reply, nil); wireCode(err) != wire.CodeUnavailable {
		t.Fatalf("reply to an unknown client: %v, want CodeUnavailable", err)
	}
	reply.Message.Properties = map[string]string{compat.PropReplyTo: "req-1"}
	if err := resp.Call(t.Context(), wire.CodeSendReply, reply, nil); wireCode(err) != wire.CodeInvalidArgument {
		t.Fatalf("reply without CORRELATION_ID: %v, want CodeInvalidArgument", err)
	}

	req.Close()
	reply.Message.Properties = map[string]string{compat.PropCorrelationID: "c1", compat.PropReplyTo: "req-1"}
	eventually(t, 10*time.Second, func() error {
		if err := resp.Call(t.Context(), wire.CodeSendReply, reply, nil); wireCode(err) != wire.CodeUnavailable {
			return errors.New("a reply to a closed requester is still taken")
		}
		return nil
	})
}
