package fsm

import (
	"encoding/binary"
	"fmt"
	"reflect"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/rmq-dev/rmq/internal/msgpackguard"
)

// CommandType is the first byte of every raft Log.Data the FSM applies.
type CommandType uint8

// Command types. Values are part of the on-disk format: never reuse one.
const (
	CmdMessageBatch   CommandType = 1
	CmdCreateTopic    CommandType = 2
	CmdUpdateTopic    CommandType = 3
	CmdDeleteTopic    CommandType = 4
	CmdCommitOffsets  CommandType = 5
	CmdDeleteGroup    CommandType = 6
	CmdTruncatePrefix CommandType = 7
	CmdRegisterNode   CommandType = 8
	CmdLockQueues     CommandType = 9
	CmdUnlockQueues   CommandType = 10
	CmdDeliverTimers  CommandType = 11
	CmdSendBack       CommandType = 12
	// Pop consumption (pop.go).
	CmdPop                CommandType = 13
	CmdPopAck             CommandType = 14
	CmdPopChangeInvisible CommandType = 15
	// Transactions (tx.go).
	CmdEndTx   CommandType = 16
	CmdCheckTx CommandType = 17
	// Producer dedup (dedup.go).
	CmdSetDedup CommandType = 18
)

// Encoding versions (second byte of Log.Data).
const (
	msgBatchVersion = 1
	controlVersion  = 1
)

// Topic permission bits (RocketMQ PermName).
const (
	PermInherit  uint8 = 1
	PermWrite    uint8 = 2
	PermRead     uint8 = 4
	PermPriority uint8 = 8
	// DefaultPerm (read+write) is used when a CreateTopic has Perm 0.
	DefaultPerm = PermRead | PermWrite
	// MaxQueues bounds a topic's queue count. It is a constant, not config,
	// because Apply must validate identically on every replica.
	MaxQueues = 1024
	// MaxGroupLen bounds a consumer group name.
	MaxGroupLen = 255
)

// Command is one of MessageBatch, CreateTopic, UpdateTopic, DeleteTopic,
// CommitOffsets, DeleteGroup, TruncatePrefix, RegisterNode, LockQueues and
// UnlockQueues (values or pointers both encode). Decode returns values.
type Command interface {
	Type() CommandType
}

// MessageBatch is the decoded form of a message batch entry. Producers on
// the hot path use BatchEncoder instead; Decode fills Messages with
// CRC-checked messages whose ID and Body alias the input.
type MessageBatch struct {
	StoreTimestamp int64 // leader clock when the batch was proposed, unix ms
	Messages       []Message
}

// CreateTopic creates a topic with a fresh incarnation ID. Apply result:
// nil, ErrTopicExists or an ErrInvalidCommand error.
type CreateTopic struct {
	Name       string            `msgpack:"name"`
	Queues     uint32            `msgpack:"queues"`
	Perm       uint8             `msgpack:"perm"` // 0 means DefaultPerm
	Time       int64             `msgpack:"time"` // leader clock, unix ms
	Attributes map[string]string `msgpack:"attrs,omitempty"`
}

// UpdateTopic changes queue count (grow only; 0 keeps it) and perm (0 keeps
// it). Apply result: nil, ErrTopicNotFound, ErrQueueShrink or ErrInvalidCommand.
type UpdateTopic struct {
	Name   string `msgpack:"name"`
	Queues uint32 `msgpack:"queues"`
	Perm   uint8  `msgpack:"perm"`
}

// DeleteTopic removes a topic, its consume queues and all consumer offsets
// on it. Apply result: nil or ErrTopicNotFound.
type DeleteTopic struct {
	Name string `msgpack:"name"`
}

// OffsetEntry is one consumer offset.
type OffsetEntry struct {
	Topic   string `msgpack:"t"`
	QueueID uint32 `msgpack:"q"`
	Offset  uint64 `msgpack:"o"`
}

// CommitOffsets sets a group's offsets (commit and reset alike). Entries for
// unknown topics or queues are skipped. Reset marks an administrative reset:
// it increments the group's reset epoch, which tells live members to drop
// their in-memory positions and re-read the committed ones. Apply result:
// nil, ErrStaleEpoch or ErrInvalidCommand.
type CommitOffsets struct {
	Group   string        `msgpack:"group"`
	Offsets []OffsetEntry `msgpack:"offsets"`
	Reset   bool          `msgpack:"reset,omitempty"`
	// Epoch is the reset epoch the committer last saw. A plain commit
	// with an epoch older than the group's is rejected (ErrStaleEpoch): it
	// carries positions from before an administrative reset and would
	// silently undo it.
	Epoch uint64 `msgpack:"epoch,omitempty"`
}

// RegisterNode records a broker node's client address, so any replica can
// point a client at the current leader. A leader proposes it for itself.
// Apply result: nil or ErrInvalidCommand.
type RegisterNode struct {
	ID   string `msgpack:"id"`
	Addr string `msgpack:"addr"`
}

// DeleteGroup removes all offsets of a group. Apply result: nil or ErrGroupNotFound.
type DeleteGroup struct {
	Group string `msgpack:"group"`
}

// TruncatePrefix is the replicated retention decision: raft entries with
// index <= UpTo are gone. Reason says which retention rule released them
// (for logs and node status; Apply does not interpret it). Apply result:
// nil (an UpTo below the current log start is a no-op).
type TruncatePrefix struct {
	UpTo   uint64 `msgpack:"upto"`
	Reason string `msgpack:"reason,omitempty"`
}

func (MessageBatch) Type() CommandType   { return CmdMessageBatch }
func (CreateTopic) Type() CommandType    { return CmdCreateTopic }
func (UpdateTopic) Type() CommandType    { return CmdUpdateTopic }
func (DeleteTopic) Type() CommandType    { return CmdDeleteTopic }
func (CommitOffsets) Type() CommandType  { return CmdCommitOffsets }
func (DeleteGroup) Type() CommandType    { return CmdDeleteGroup }
func (TruncatePrefix) Type() CommandType { return CmdTruncatePrefix }
func (RegisterNode) Type() CommandType   { return CmdRegisterNode }

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidCommand}, args...)...)
}

func (c *CreateTopic) validate() error {
	if err := ValidateTopicName(c.Name); err != nil {
		return invalid("%v", err)
	}
	if c.Queues == 0 || c.Queues > MaxQueues {
		return invalid("queue count %d outside [1, %d]", c.Queues, MaxQueues)
	}
	return validatePerm(c.Perm)
}

func (c *UpdateTopic) validate() error {
	if err := ValidateTopicName(c.Name); err != nil {
		return invalid("%v", err)
	}
	if c.Queues > MaxQueues {
		return invalid("queue count %d > %d", c.Queues, MaxQueues)
	}
	return validatePerm(c.Perm)
}

func (c *DeleteTopic) validate() error {
	if err := ValidateTopicName(c.Name); err != nil {
		return invalid("%v", err)
	}
	return nil
}

func (c *CommitOffsets) validate() error  { return validateGroup(c.Group) }
func (c *DeleteGroup) validate() error    { return validateGroup(c.Group) }
func (c *TruncatePrefix) validate() error { return nil }

func (c *RegisterNode) validate() error {
	if c.ID == "" || len(c.ID) > 255 || len(c.Addr) > 255 {
		return invalid("node id %q / address %q", c.ID, c.Addr)
	}
	return nil
}

func validatePerm(p uint8) error {
	if p&^(PermInherit|PermWrite|PermRead|PermPriority) != 0 {
		return invalid("unknown perm bits %#x", p)
	}
	return nil
}

func validateGroup(g string) error {
	if g == "" || len(g) > MaxGroupLen {
		return invalid("group name length %d outside [1, %d]", len(g), MaxGroupLen)
	}
	return nil
}

// control is implemented by the pointer form of every control command
// (every command but MessageBatch).
type control interface {
	Command
	// validate checks the fields; Encode and Apply share it, so a replica
	// rejects exactly what a proposer would have refused to encode.
	validate() error
	// apply changes f's state under f.mu for the raft entry at index. The
	// result is the command's raft Apply result (documented on its type).
	apply(f *FSM, index uint64) any
}

// commandDef is how the FSM encodes, decodes and applies one control
// command type. def builds it from the type alone.
type commandDef struct {
	typ  CommandType
	name string // CommandType.String
	// decode unmarshals a msgpack body (guarded) into a new *T.
	decode func(body []byte) (control, error)
	// value returns the value form of a control of this type.
	value func(control) Command
	// pointer returns c (a T or *T) as *T, or nil if c is another type.
	pointer func(c Command) control
}

// controlPtr is the constraint on a control command's pointer type.
type controlPtr[T any] interface {
	*T
	control
}

// def describes control command T: its type byte comes from T.Type(), its
// msgpack body from T's fields, its validation and state change from *T's
// validate and apply methods.
func def[T Command, P controlPtr[T]]() commandDef {
	var zero T
	return commandDef{
		typ:  zero.Type(),
		name: "Cmd" + reflect.TypeFor[T]().Name(),
		decode: func(body []byte) (control, error) {
			p := P(new(T))
			if err := msgpackguard.Unmarshal(body, p); err != nil {
				return nil, err
			}
			return p, nil
		},
		value: func(c control) Command { return *c.(P) },
		pointer: func(c Command) control {
			switch c := c.(type) {
			case T:
				return P(&c)
			case P:
				return c
			}
			return nil
		},
	}
}

// commands is the control command registry, indexed by type byte. It is
// built once and never modified. Adding a command: give it a CommandType
// constant (a new value, never a reused one), a struct with msgpack tags
// and a Type method, validate and apply methods on its pointer, and one
// def entry here. MessageBatch is not in it: it has its own binary
// encoding and the hot-path apply in FSM.applyBatch.
var commands = commandTable(
	def[CreateTopic](),
	def[UpdateTopic](),
	def[DeleteTopic](),
	def[CommitOffsets](),
	def[DeleteGroup](),
	def[TruncatePrefix](),
	def[RegisterNode](),
	def[LockQueues](),
	def[UnlockQueues](),
	def[DeliverTimers](),
	def[SendBack](),
	def[Pop](),
	def[PopAck](),
	def[PopChangeInvisible](),
	def[EndTx](),
	def[CheckTx](),
	def[SetDedup](),
)

// commandTable indexes defs by type byte. A duplicate type, or one that
// claims the message batch byte, is a programmer error and panics when the
// package is initialised.
func commandTable(defs ...commandDef) *[256]commandDef {
	var t [256]commandDef
	for _, d := range defs {
		if d.typ == CmdMessageBatch || t[d.typ].decode != nil {
			panic(fmt.Sprintf("fsm: command type %d registered twice", d.typ))
		}
		t[d.typ] = d
	}
	return &t
}

// Encode returns the raft Log.Data for cmd: [type][version][body].
func Encode(cmd Command) ([]byte, error) {
	switch c := cmd.(type) {
	case MessageBatch:
		return encodeBatch(&c)
	case *MessageBatch:
		return encodeBatch(c)
	case nil:
		return nil, invalid("nil command")
	}
	ptr := toPointer(cmd)
	if ptr == nil {
		return nil, fmt.Errorf("%w: %T", ErrUnknownCommand, cmd)
	}
	if err := ptr.validate(); err != nil {
		return nil, err
	}
	body, err := msgpack.Marshal(ptr)
	if err != nil {
		return nil, fmt.Errorf("encode %T: %w", cmd, err)
	}
	return append([]byte{byte(cmd.Type()), controlVersion}, body...), nil
}

// toPointer returns a control command in its pointer form, or nil for a
// message batch or a type fsm does not know.
func toPointer(cmd Command) control {
	if p := commands[cmd.Type()].pointer; p != nil {
		return p(cmd)
	}
	return nil
}

func encodeBatch(b *MessageBatch) ([]byte, error) {
	var e BatchEncoder
	e.Reset(b.StoreTimestamp)
	for i := range b.Messages {
		if err := e.Add(&b.Messages[i]); err != nil {
			return nil, fmt.Errorf("message %d: %w", i, err)
		}
	}
	return e.Bytes(), nil
}

// Decode parses raft Log.Data into a command value. It never panics;
// unknown types and versions return ErrUnknownCommand / ErrUnknownVersion.
func Decode(data []byte) (Command, error) {
	if len(data) >= 2 && CommandType(data[0]) == CmdMessageBatch {
		if ver := data[1]; ver != msgBatchVersion {
			return nil, fmt.Errorf("%w: type %d version %d", ErrUnknownVersion, CmdMessageBatch, ver)
		}
		return decodeBatch(data)
	}
	c, d, err := decodeControl(data)
	if err != nil {
		return nil, err
	}
	return d.value(c), nil
}

// decodeControl parses the Log.Data of a control command into its pointer
// form. Apply uses it directly; Decode returns the value.
func decodeControl(data []byte) (control, *commandDef, error) {
	if len(data) < 2 {
		return nil, nil, fmt.Errorf("%w: %d bytes", ErrCorrupt, len(data))
	}
	typ, ver := CommandType(data[0]), data[1]
	d := &commands[typ]
	if d.decode == nil {
		return nil, nil, fmt.Errorf("%w: %d", ErrUnknownCommand, typ)
	}
	if ver != controlVersion {
		return nil, nil, fmt.Errorf("%w: type %d version %d", ErrUnknownVersion, typ, ver)
	}
	c, err := d.decode(data[2:])
	if err != nil {
		return nil, nil, fmt.Errorf("%w: type %d: %w", ErrCorrupt, typ, err)
	}
	return c, d, nil
}

// recRef locates one record inside a batch's Log.Data.
type recRef struct {
	pos, size uint32
	r         record
}

// splitBatch checks the structure of a message batch (not CRCs) and appends
// every record's location to dst. It fails as a whole: either every record
// is well formed or an error is returned.
func splitBatch(data []byte, dst []recRef) (int64, []recRef, error) {
	if len(data) < batchHeaderLen {
		return 0, dst, fmt.Errorf("%w: batch header", ErrCorrupt)
	}
	ts := int64(binary.BigEndian.Uint64(data[2:]))
	count := binary.BigEndian.Uint32(data[10:])
	if uint64(count) > uint64(len(data)-batchHeaderLen)/recordFixedLen || uint64(len(data)) > 1<<32 {
		return 0, dst, fmt.Errorf("%w: batch count %d too large for %d bytes", ErrCorrupt, count, len(data))
	}
	p := batchHeaderLen
	for i := uint32(0); i < count; i++ {
		if len(data)-p < 4 {
			return 0, dst, fmt.Errorf("%w: record %d truncated", ErrCorrupt, i)
		}
		size := int(binary.BigEndian.Uint32(data[p:]))
		if size < recordFixedLen || size > len(data)-p {
			return 0, dst, fmt.Errorf("%w: record %d size %d", ErrCorrupt, i, size)
		}
		r, err := parseRecord(data[p : p+size])
		if err != nil {
			return 0, dst, fmt.Errorf("record %d: %w", i, err)
		}
		dst = append(dst, recRef{pos: uint32(p), size: uint32(size), r: r})
		p += size
	}
	if p != len(data) {
		return 0, dst, fmt.Errorf("%w: %d trailing bytes after batch", ErrCorrupt, len(data)-p)
	}
	return ts, dst, nil
}

func decodeBatch(data []byte) (Command, error) {
	ts, refs, err := splitBatch(data, nil)
	if err != nil {
		return nil, err
	}
	b := MessageBatch{StoreTimestamp: ts, Messages: make([]Message, 0, len(refs))}
	for i, ref := range refs {
		m, err := DecodeMessage(data[ref.pos : ref.pos+ref.size])
		if err != nil {
			return nil, fmt.Errorf("message %d: %w", i, err)
		}
		b.Messages = append(b.Messages, m)
	}
	return b, nil
}

func (t CommandType) String() string {
	if t == CmdMessageBatch {
		return "CmdMessageBatch"
	}
	if d := &commands[t]; d.decode != nil {
		return d.name
	}
	return fmt.Sprintf("CommandType(%d)", uint8(t))
}
