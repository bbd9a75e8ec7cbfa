package client

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rmq-dev/rmq/wire"
)

func queues(topic string, groups []string, n uint32) []Queue {
	var qs []Queue
	for _, g := range groups {
		for i := uint32(0); i < n; i++ {
			qs = append(qs, Queue{Topic: topic, Group: g, QueueID: i})
		}
	}
	return qs
}

func TestAllocateAveragely(t *testing.T) {
	tests := []struct {
		name    string
		queues  int
		clients []string
		want    map[string][]uint32
	}{
		{"even", 8, []string{"a", "b"}, map[string][]uint32{"a": {0, 1, 2, 3}, "b": {4, 5, 6, 7}}},
		{"first get extra", 8, []string{"c", "a", "b"}, map[string][]uint32{"a": {0, 1, 2}, "b": {3, 4, 5}, "c": {6, 7}}},
		{"more clients than queues", 2, []string{"a", "b", "c"}, map[string][]uint32{"a": {0}, "b": {1}, "c": nil}},
		{"one client", 3, []string{"a"}, map[string][]uint32{"a": {0, 1, 2}}},
		{"not a member", 3, []string{"a"}, map[string][]uint32{"z": nil}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			qs := queues("t", []string{"g"}, uint32(tc.queues))
			// Shuffle-insensitive: reverse the input.
			for i, j := 0, len(qs)-1; i < j; i, j = i+1, j-1 {
				qs[i], qs[j] = qs[j], qs[i]
			}
			for cid, want := range tc.want {
				var got []uint32
				for _, q := range AllocateAveragely(qs, tc.clients, cid) {
					got = append(got, q.QueueID)
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("client %s (-want +got):\n%s", cid, diff)
				}
			}
		})
	}
}

func TestAllocateCoversEveryQueueOnce(t *testing.T) {
	for nq := 1; nq <= 17; nq++ {
		for nc := 1; nc <= 6; nc++ {
			qs := queues("t", []string{"g1", "g2"}, uint32(nq))
			var cids []string
			for i := 0; i < nc; i++ {
				cids = append(cids, fmt.Sprintf("c%d", i))
			}
			seen := map[Queue]int{}
			for _, c := range cids {
				for _, q := range AllocateAveragely(qs, cids, c) {
					seen[q]++
				}
			}
			for _, q := range qs {
				if seen[q] != 1 {
					t.Fatalf("%d queues, %d clients: %v assigned %d times, want 1", 2*nq, nc, q, seen[q])
				}
			}
		}
	}
}

func TestParseTagExpression(t *testing.T) {
	tests := []struct {
		expr    string
		match   []string
		nomatch []string
		wantErr bool
	}{
		{expr: "*", match: []string{"", "a"}},
		{expr: "", match: []string{"x"}},
		{expr: "a", match: []string{"a"}, nomatch: []string{"b", ""}},
		{expr: "TagA || TagB", match: []string{"TagA", "TagB"}, nomatch: []string{"TagC", "TagA || TagB"}},
		{expr: " a||b ", match: []string{"a", "b"}},
		{expr: "a || ", wantErr: true},
		{expr: "||", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.expr, func(t *testing.T) {
			te, err := ParseTagExpression(tc.expr)
			if tc.wantErr {
				if !errors.Is(err, ErrInvalidArgument) {
					t.Fatalf("got %v, want ErrInvalidArgument", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range tc.match {
				if !te.Match(m) {
					t.Errorf("%q does not match %q, want match", tc.expr, m)
				}
			}
			for _, m := range tc.nomatch {
				if te.Match(m) {
					t.Errorf("%q matches %q, want no match", tc.expr, m)
				}
			}
		})
	}
}

func TestSelectors(t *testing.T) {
	qs := queues("t", []string{"g"}, 4)
	rr := RoundRobinSelector()
	var got []uint32
	for i := 0; i < 6; i++ {
		got = append(got, rr.Select(&Message{}, qs).QueueID)
	}
	// In turn from wherever it starts.
	first := got[0]
	want := []uint32{first, (first + 1) % 4, (first + 2) % 4, (first + 3) % 4, first, (first + 1) % 4}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("round robin (-want +got):\n%s", diff)
	}
	// New selectors (one per short-lived producer) start at random queues:
	// 64 of them all starting at one queue has probability 4^-63.
	starts := map[uint32]bool{}
	for i := 0; i < 64; i++ {
		starts[RoundRobinSelector().Select(&Message{}, qs).QueueID] = true
		starts[HashSelector().Select(&Message{}, qs).QueueID] = true
	}
	if len(starts) < 2 {
		t.Errorf("128 new selectors all started at queue(s) %v, want random starting queues", starts)
	}
	h := HashSelector()
	for _, key := range []string{"a", "order-42", "key7"} {
		want := ShardingHash(key) % 4
		for i := 0; i < 3; i++ {
			if q := h.Select(&Message{ShardingKey: key}, qs); q.QueueID != want {
				t.Errorf("key %q went to queue %d, want %d every time", key, q.QueueID, want)
			}
		}
	}
	// FNV-32a reference value.
	if got := ShardingHash("a"); got != 0xe40c292c {
		t.Errorf("ShardingHash(a) = %#x, want 0xe40c292c", got)
	}
}

func TestIDGen(t *testing.T) {
	g := newIDGen()
	seen := map[string]bool{}
	for i := 0; i < 10000; i++ {
		id := FormatMsgID(g.next())
		if len(id) != 32 || strings.ToUpper(id) != id {
			t.Fatalf("id %q, want 32 upper-case hex characters", id)
		}
		if seen[id] {
			t.Fatalf("duplicate id %s", id)
		}
		seen[id] = true
	}
	if a, b := newIDGen().next(), newIDGen().next(); string(a) == string(b) {
		t.Errorf("two generators made the same id %x", a)
	}
}

func TestErrorMapping(t *testing.T) {
	we := &wire.Error{Code: wire.CodeNotLeader, ErrorBody: wire.ErrorBody{Message: "follower", Leader: "10.0.0.1:10911"}}
	err := fromWire(fmt.Errorf("call: %w", we))
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("got %T, want *Error", err)
	}
	if !e.Retriable || e.LeaderHint != "10.0.0.1:10911" {
		t.Errorf("got %+v, want retriable with leader hint", e)
	}
	if !errors.Is(err, ErrNotLeader) || errors.Is(err, ErrTopicNotFound) {
		t.Errorf("errors.Is on codes is wrong for %v", err)
	}
	wrapped := fmt.Errorf("send: %w", fromWire(&wire.Error{Code: wire.CodeTopicNotFound}))
	if !errors.Is(wrapped, ErrTopicNotFound) {
		t.Errorf("wrapped %v is not ErrTopicNotFound", wrapped)
	}
	for _, tc := range []struct {
		err  error
		want failure
	}{
		{fromWire(&wire.Error{Code: wire.CodeNotLeader}), failRedirect},
		{fromWire(&wire.Error{Code: wire.CodeLeaderNotReady}), failNotSent},
		{fromWire(&wire.Error{Code: wire.CodeIndeterminate}), failMaybe},
		{fromWire(&wire.Error{Code: wire.CodeTimeout}), failMaybe},
		{fromWire(&wire.Error{Code: wire.CodeTopicNotFound}), failFatal},
		{&dialError{addr: "x", err: errors.New("refused")}, failNotSent},
		{fmt.Errorf("%w: eof", wire.ErrConnClosed), failMaybe},
		{budgetErr(errContextDeadline(), nil), failFatal},
	} {
		if got := classify(tc.err); got != tc.want {
			t.Errorf("classify(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	_, err := NewProducer(ProducerConfig{})
	if err == nil || !strings.Contains(err.Error(), "NameServers") {
		t.Errorf("producer without NameServers: got %v", err)
	}
	_, err = NewConsumer(ConsumerConfig{NameServers: []string{"h:1"}, Subscriptions: map[string]string{"bad topic": "a ||"}, From: FromTimestamp})
	for _, want := range []string{"empty group name", "bad topic", "empty tag", "FromTimestamp"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("consumer config error %v does not mention %q", err, want)
		}
	}
	d := DefaultProducerConfig()
	if d.SendTimeout.Seconds() != 3 || d.Retries != 2 || d.MaxMessageSize != 4<<20 || d.AutoCreateQueues != DefaultQueues {
		t.Errorf("defaults %+v, want 3s, 2 retries, 4 MiB, %d queues", d, DefaultQueues)
	}
}

func TestValidateMessage(t *testing.T) {
	for _, tc := range []struct {
		name string
		m    *Message
		code uint16
	}{
		{"too large", &Message{Topic: "t", Body: make([]byte, 11)}, wire.CodeMessageTooLarge},
		{"empty body", &Message{Topic: "t"}, wire.CodeInvalidArgument},
		{"key with space", &Message{Topic: "t", Body: []byte("x"), Keys: []string{"a b"}}, wire.CodeInvalidArgument},
		{"property separator", &Message{Topic: "t", Body: []byte("x"), Properties: map[string]string{"k": "\x01"}}, wire.CodeInvalidArgument},
		{"ok", &Message{Topic: "a-b_c%d|e", Body: []byte("x"), Keys: []string{"k"}}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := validateMessage(tc.m, 10)
			var e *Error
			switch {
			case tc.code == 0 && err != nil:
				t.Fatalf("got %v, want nil", err)
			case tc.code != 0 && (!errors.As(err, &e) || e.Code != tc.code):
				t.Fatalf("got %v, want code %d", err, tc.code)
			}
		})
	}
}

func TestAttemptTimeoutValidate(t *testing.T) {
	ns := []string{"h:1"}
	for _, tc := range []struct {
		name          string
		attempt, send time.Duration
		want          string // "" for valid
	}{
		{"defaults", 0, 0, ""},
		{"shorter than the budget", 500 * time.Millisecond, 2 * time.Second, ""},
		{"as long as the budget", 3 * time.Second, 3 * time.Second, "AttemptTimeout 3s must be shorter than SendTimeout 3s"},
		{"longer than the default budget", 5 * time.Second, 0, "AttemptTimeout 5s must be shorter than SendTimeout 3s"},
		{"negative", -time.Second, 0, "AttemptTimeout -1s is negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewProducer(ProducerConfig{NameServers: ns, AttemptTimeout: tc.attempt, SendTimeout: tc.send})
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("got %v, want no error", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
	if d := DefaultProducerConfig(); d.AttemptTimeout != DefaultAttemptTimeout {
		t.Errorf("default AttemptTimeout %v, want %v", d.AttemptTimeout, DefaultAttemptTimeout)
	}
	if d := (ProducerConfig{SendTimeout: 300 * time.Millisecond}).withDefaults(); d.AttemptTimeout != 150*time.Millisecond {
		t.Errorf("default AttemptTimeout with a 300ms SendTimeout: %v, want 150ms", d.AttemptTimeout)
	}
	_, err := NewConsumer(ConsumerConfig{NameServers: ns, Group: "g", Subscriptions: map[string]string{"t": "*"}, AttemptTimeout: -time.Second})
	if err == nil || !strings.Contains(err.Error(), "durations must not be negative") {
		t.Errorf("consumer with a negative AttemptTimeout: got %v", err)
	}
}
