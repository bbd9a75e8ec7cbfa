package client_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/client"
	"github.com/rmq-dev/rmq/e2e"
)

func TestAdmin(t *testing.T) {
	c := e2e.StartCluster(t, e2e.Options{})
	a := newAdmin(t, c)
	ctx := ctxT(t, 60*time.Second)

	created, err := a.CreateTopic(ctx, client.TopicSpec{Name: "adm"})
	if err != nil {
		t.Fatal(err)
	}
	if len(created) != 1 || created[0].Queues != 8 || created[0].Perm != 6 {
		t.Errorf("created %+v, want one group with 8 queues perm 6", created)
	}
	if _, err := a.CreateTopic(ctx, client.TopicSpec{Name: "adm"}); !errors.Is(err, client.ErrTopicExists) {
		t.Errorf("second create: got %v, want ErrTopicExists", err)
	}
	if _, err := a.UpdateTopic(ctx, client.TopicUpdate{Name: "adm", Queues: new(uint32(12))}); err != nil {
		t.Fatal(err)
	}
	topics, err := a.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, ti := range topics {
		if ti.Name == "adm" {
			found = ti.Queues == 12
		}
	}
	if !found {
		t.Errorf("ListTopics %+v has no adm with 12 queues", topics)
	}

	p := newProducer(t, c, nil)
	sendN(t, p, "adm", "m", 24, "")
	e2e.Eventually(t, 10*time.Second, func() error {
		st, err := a.TopicStatus(ctx, "adm")
		if err != nil {
			return err
		}
		var total uint64
		for _, q := range st {
			total += q.MaxOffset
		}
		if len(st) != 12 || total != 24 {
			return fmt.Errorf("status: %d queues, %d messages; want 12 and 24", len(st), total)
		}
		return nil
	})

	r := newRecorder()
	cons := newConsumer(t, c, "admg", map[string]string{"adm": "*"}, func(cfg *client.ConsumerConfig) { cfg.ClientID = "member-1" })
	if err := cons.Start(ctx, pushInto(r, "x")); err != nil {
		t.Fatal(err)
	}
	r.waitDistinct(t, 24, 10*time.Second)
	e2e.Eventually(t, 10*time.Second, func() error {
		d, err := a.DescribeGroup(ctx, "admg")
		if err != nil {
			return err
		}
		var lag uint64
		for _, q := range d.Queues {
			lag += q.Lag
		}
		if len(d.Members) != 1 || d.Members[0] != "member-1" || lag != 0 {
			return fmt.Errorf("describe: %+v", d)
		}
		return nil
	})
	groups, err := a.ListGroups(ctx)
	if err != nil || len(groups) == 0 {
		t.Errorf("ListGroups: %v, %v", groups, err)
	}

	cs, err := a.ClusterStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 1 || cs[0].Leader == "" || len(cs[0].Nodes) != 3 {
		t.Fatalf("cluster status %+v, want one group with a leader and 3 nodes", cs)
	}
	for _, n := range cs[0].Nodes {
		t.Logf("node %s role %s term %d applied %d lag %d age %v", n.NodeID, n.Role, n.Term, n.AppliedIndex, n.Lag, n.Age)
	}

	old := c.LeaderID(5 * time.Second)
	var to string
	for _, id := range c.NodeIDs() {
		if id != old {
			to = id
			break
		}
	}
	if err := a.TransferLeadership(ctx, cs[0].Group, to); err != nil {
		t.Fatal(err)
	}
	e2e.Eventually(t, 10*time.Second, func() error {
		if id := c.LeaderID(time.Second); id != to {
			return fmt.Errorf("leader %s, want %s", id, to)
		}
		return nil
	})
	if err := cons.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.DeleteTopic(ctx, "adm"); err != nil {
		t.Fatal(err)
	}
	if err := a.DeleteTopic(ctx, "adm"); !errors.Is(err, client.ErrTopicNotFound) {
		t.Errorf("second delete: got %v, want ErrTopicNotFound", err)
	}
}
