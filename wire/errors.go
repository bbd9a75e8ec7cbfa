package wire

// Error codes carried in a response frame's Code. The numbers are stable:
// never reuse or renumber one. Retriable codes are safe to retry on the
// same or another node (CodeIndeterminate may then duplicate a message).
const (
	CodeOK                uint16 = 0
	CodeInternal          uint16 = 1
	CodeNotLeader         uint16 = 2
	CodeLeaderNotReady    uint16 = 3
	CodeIndeterminate     uint16 = 4
	CodeUnavailable       uint16 = 5
	CodeTimeout           uint16 = 6
	CodeTopicNotFound     uint16 = 10
	CodeTopicExists       uint16 = 11
	CodeInvalidArgument   uint16 = 12
	CodeMessageTooLarge   uint16 = 13
	CodeNoPermission      uint16 = 14
	CodeOffsetMoved       uint16 = 15
	CodeUnknownRequest    uint16 = 16
	CodeGroupModeMismatch uint16 = 17
	CodeQueueLocked       uint16 = 18
	CodeMalformed         uint16 = 19
	CodeStaleEpoch        uint16 = 20
	CodeOffsetIllegal     uint16 = 21
	CodeReceiptHandle     uint16 = 22
	CodeAccessDenied      uint16 = 23 // refused by access control (package acl); the message names what is missing
	// CodeDiskFull: a node of the broker group is short of disk space, so
	// the group refuses data-growing writes (sends) until it is back below
	// its low-water mark. Nothing was stored: retry on another broker group
	// (see RetryElsewhere); reads, commits and acks still work.
	CodeDiskFull uint16 = 24
)

// CodeInfo describes one error code.
type CodeInfo struct {
	Name      string
	Retriable bool
}

// codes is the table of every error code; look codes up with Info.
var codes = map[uint16]CodeInfo{
	CodeOK:                {"ok", false},
	CodeInternal:          {"internal error", false},
	CodeNotLeader:         {"not leader", true},
	CodeLeaderNotReady:    {"leader not ready", true},
	CodeIndeterminate:     {"outcome unknown", true},
	CodeUnavailable:       {"unavailable", true},
	CodeTimeout:           {"timeout", true},
	CodeTopicNotFound:     {"topic not found", false},
	CodeTopicExists:       {"topic exists", false},
	CodeInvalidArgument:   {"invalid argument", false},
	CodeMessageTooLarge:   {"message too large", false},
	CodeNoPermission:      {"no permission", false},
	CodeOffsetMoved:       {"offset moved", false},
	CodeUnknownRequest:    {"unknown request", false},
	CodeGroupModeMismatch: {"group mode mismatch", false},
	CodeQueueLocked:       {"queue locked", true},
	CodeMalformed:         {"malformed request", false},
	CodeStaleEpoch:        {"commit predates an offset reset", false},
	CodeOffsetIllegal:     {"offset illegal", false},
	CodeReceiptHandle:     {"receipt handle not valid", false},
	CodeAccessDenied:      {"access denied", false},
	CodeDiskFull:          {"disk full", true}, // retriable elsewhere: see RetryElsewhere
}

// elsewhere holds the retriable codes that the answering broker group
// will keep returning for a while: a retry belongs on another group.
var elsewhere = map[uint16]bool{
	CodeDiskFull: true,
}

// RetryElsewhere reports whether a request refused with code should be
// retried on another broker group rather than on the same one (the
// request was not carried out there).
func RetryElsewhere(code uint16) bool { return elsewhere[code] }

// Info returns the description of code; unknown codes are internal,
// non-retriable errors named by number.
func Info(code uint16) CodeInfo {
	if ci, ok := codes[code]; ok {
		return ci
	}
	return CodeInfo{Name: "unknown error code", Retriable: false}
}

// ErrorBody is the msgpack body of an error response.
type ErrorBody struct {
	Message string `msgpack:"m"`
	// Leader is the client address of the current leader, for
	// CodeNotLeader, when known.
	Leader string `msgpack:"l,omitempty"`
	// MinOffset and MaxOffset are the queue's valid offsets (MaxOffset is
	// the next offset to be written), for CodeOffsetMoved and
	// CodeOffsetIllegal. Peers that predate MaxOffset ignore it.
	MinOffset uint64 `msgpack:"o,omitempty"`
	MaxOffset uint64 `msgpack:"ma,omitempty"`
}
