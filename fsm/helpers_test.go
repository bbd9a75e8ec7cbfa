package fsm

import (
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func testLogger(t testing.TB) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: "fsm", Output: testWriter{t}, Level: hclog.Debug})
}

// memLog is an in-memory raft log implementing LogReader.
type memLog struct {
	logs []*raft.Log // contiguous indexes
}

func (m *memLog) FirstIndex() (uint64, error) {
	if len(m.logs) == 0 {
		return 0, nil
	}
	return m.logs[0].Index, nil
}

func (m *memLog) LastIndex() (uint64, error) {
	if len(m.logs) == 0 {
		return 0, nil
	}
	return m.logs[len(m.logs)-1].Index, nil
}

func (m *memLog) Scan(from, to uint64, fn func(uint64, raft.LogType, []byte) error) error {
	for _, l := range m.logs {
		if l.Index < from || l.Index > to {
			continue
		}
		if err := fn(l.Index, l.Type, l.Data); err != nil {
			return err
		}
	}
	return nil
}

// truncate drops entries <= upTo, as raftlog does under retention.
func (m *memLog) truncate(upTo uint64) {
	i := 0
	for i < len(m.logs) && m.logs[i].Index <= upTo {
		i++
	}
	m.logs = m.logs[i:]
}

// harness drives an FSM the way raft would, recording the log.
type harness struct {
	t   testing.TB
	f   *FSM
	log *memLog
	idx uint64
}

func newFSM(t testing.TB, dir string, upf int, log LogReader) *FSM {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Dir, cfg.UnitsPerFile, cfg.Log, cfg.Logger = dir, upf, log, testLogger(t)
	f, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := f.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return f
}

func newHarness(t testing.TB, upf int) *harness {
	log := &memLog{}
	return &harness{t: t, f: newFSM(t, t.TempDir(), upf, log), log: log}
}

func (h *harness) applyLog(typ raft.LogType, data []byte) interface{} {
	h.idx++
	l := &raft.Log{Index: h.idx, Term: 1, Type: typ, Data: append([]byte(nil), data...)}
	h.log.logs = append(h.log.logs, l)
	return h.f.Apply(l)
}

func (h *harness) cmd(c Command) error {
	h.t.Helper()
	data, err := Encode(c)
	if err != nil {
		h.t.Fatalf("Encode(%T): %v", c, err)
	}
	res := h.applyLog(raft.LogCommand, data)
	if res == nil {
		return nil
	}
	return res.(error)
}

func (h *harness) mustCmd(c Command) {
	h.t.Helper()
	if err := h.cmd(c); err != nil {
		h.t.Fatalf("apply %T: %v", c, err)
	}
}

func (h *harness) send(ts int64, msgs ...Message) *BatchResult {
	h.t.Helper()
	var e BatchEncoder
	e.Reset(ts)
	for i := range msgs {
		if err := e.Add(&msgs[i]); err != nil {
			h.t.Fatalf("Add: %v", err)
		}
	}
	res, ok := h.applyLog(raft.LogCommand, e.Bytes()).(*BatchResult)
	if !ok {
		h.t.Fatalf("batch apply did not return *BatchResult")
	}
	return res
}

func (h *harness) topicID(name string) uint32 {
	t, ok := h.f.Topic(name)
	if !ok {
		h.t.Fatalf("topic %s missing", name)
	}
	return t.ID
}

func msg(topic string, id uint32, q uint32, body string) Message {
	return Message{Topic: topic, TopicID: id, QueueID: q, Body: []byte(body), Tags: "t" + body}
}

// queueDump is everything observable about one queue.
type queueDump struct {
	Min, Next uint64
	Units     []Unit
}

type stateDump struct {
	Applied, LogStart uint64
	Topics            []Topic
	Queues            map[string]queueDump
	Groups            map[string][]OffsetEntry
	ResetEpochs       map[string]uint64
	Nodes             map[string]string
	Locks             []QueueLock
}

func dump(t testing.TB, f *FSM) stateDump {
	t.Helper()
	d := stateDump{Applied: f.AppliedIndex(), LogStart: f.LogStart(), Topics: f.Topics(),
		Queues: map[string]queueDump{}, Groups: map[string][]OffsetEntry{}}
	for _, tp := range d.Topics {
		for q := uint32(0); q < tp.Queues; q++ {
			min, next, err := f.QueueRange(tp.Name, q)
			if err != nil {
				t.Fatalf("QueueRange: %v", err)
			}
			units, err := f.Units(tp.Name, q, min, int(next-min), nil)
			if err != nil {
				t.Fatalf("Units(%s/%d): %v", tp.Name, q, err)
			}
			d.Queues[fmt.Sprintf("%s/%d", tp.Name, q)] = queueDump{Min: min, Next: next, Units: units}
		}
	}
	for _, g := range f.Groups() {
		d.Groups[g] = f.GroupOffsets(g)
		if e := f.GroupResetEpoch(g); e > 0 {
			if d.ResetEpochs == nil {
				d.ResetEpochs = map[string]uint64{}
			}
			d.ResetEpochs[g] = e
		}
	}
	d.Nodes = f.Nodes()
	d.Locks = f.Locks("")
	return d
}

type nopCloser struct{ io.Reader }

func (nopCloser) Close() error { return nil }
