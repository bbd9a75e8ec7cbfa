package fsm

import (
	"bytes"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
)

var update = flag.Bool("update", false, "rewrite testdata golden files")

// TestEncodeGolden pins the raft Log.Data of every sample command: the
// encoding is the on-disk format of the CommitLog, so any change to it must
// be deliberate (a new version byte), never a side effect of refactoring.
// Run with -update to rewrite testdata/commands.golden.
func TestEncodeGolden(t *testing.T) {
	var b bytes.Buffer
	for i, c := range sampleCommands() {
		data, err := Encode(c)
		if err != nil {
			t.Fatalf("Encode %d (%T): %v", i, c, err)
		}
		fmt.Fprintf(&b, "%02d %s %s\n", i, c.Type(), hex.EncodeToString(data))
	}
	path := filepath.Join("testdata", "commands.golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	gotLines, wantLines := strings.Split(b.String(), "\n"), strings.Split(string(want), "\n")
	if len(gotLines) != len(wantLines) {
		t.Fatalf("got %d golden lines, want %d", len(gotLines), len(wantLines))
	}
	for i := range gotLines {
		if gotLines[i] != wantLines[i] {
			t.Errorf("encoding changed:\ngot  %s\nwant %s", gotLines[i], wantLines[i])
		}
	}
}

// controlSamples returns the encodings of the sample control commands.
func controlSamples(tb testing.TB) [][]byte {
	var out [][]byte
	for _, c := range sampleCommands() {
		if c.Type() != CmdMessageBatch {
			out = append(out, mustEncode(tb, c))
		}
	}
	return out
}

// BenchmarkDecode decodes every sample control command once per op.
func BenchmarkDecode(b *testing.B) {
	samples := controlSamples(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, data := range samples {
			if _, err := Decode(data); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkApplyBatchControl applies a batch of control commands that all
// succeed on every repetition, so it measures decode + dispatch + apply.
func BenchmarkApplyBatchControl(b *testing.B) {
	f := newFSM(b, b.TempDir(), DefaultUnitsPerFile, nil)
	f.Apply(&raft.Log{Index: 1, Type: raft.LogCommand, Data: mustEncode(b, CreateTopic{Name: "bench", Queues: 8})})
	cmds := []Command{
		UpdateTopic{Name: "bench", Perm: DefaultPerm},
		CommitOffsets{Group: "g", Offsets: []OffsetEntry{{Topic: "bench", QueueID: 1, Offset: 42}}},
		RegisterNode{ID: "n0", Addr: "127.0.0.1:10911"},
		LockQueues{Group: "g", ClientID: "c1", Queues: []QueueRef{{Topic: "bench", QueueID: 3}}, Now: 1700000000000, Lease: 60000},
		UnlockQueues{Group: "g", ClientID: "c1", All: true},
		DeleteGroup{Group: "g"},
		TruncatePrefix{UpTo: 1},
	}
	logs := make([]*raft.Log, len(cmds))
	for i, c := range cmds {
		logs[i] = &raft.Log{Type: raft.LogCommand, Data: mustEncode(b, c)}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j, l := range logs {
			l.Index = uint64(i*len(logs)+j) + 2
		}
		for j, r := range f.ApplyBatch(logs) {
			if err, ok := r.(error); ok && err != nil {
				b.Fatalf("command %d: %v", j, err)
			}
		}
	}
}

// TestCommandRegistry checks that every control command type constant has
// its entry, filed under its own type byte.
func TestCommandRegistry(t *testing.T) {
	registered := 0
	for i := range commands {
		d := &commands[i]
		if d.decode == nil {
			continue
		}
		registered++
		if d.typ != CommandType(i) {
			t.Errorf("entry %d has type %d", i, d.typ)
		}
		if got := CommandType(i).String(); !strings.HasPrefix(got, "Cmd") {
			t.Errorf("type %d String got %q, want a Cmd name", i, got)
		}
	}
	if want := int(CmdSetDedup - CmdMessageBatch); registered != want {
		t.Errorf("got %d registered control commands, want %d", registered, want)
	}
	for _, c := range sampleCommands() {
		if got := toPointer(c) != nil; got != (c.Type() != CmdMessageBatch) {
			t.Errorf("%s: registered got %v", c.Type(), got)
		}
	}
	if got := CommandType(200).String(); got != "CommandType(200)" {
		t.Errorf("unknown type String got %q", got)
	}
	defer func() {
		if recover() == nil {
			t.Error("a duplicate registration did not panic")
		}
	}()
	commandTable(def[DeleteTopic](), def[DeleteTopic]())
}
