package wire

// MemberRequest names one node of a broker group for a membership change.
// Addr (the node's Raft address) is needed only to add it.
type MemberRequest struct {
	ID   string `msgpack:"id"`
	Addr string `msgpack:"a,omitempty"`
	// TimeoutMillis bounds the Raft configuration change on the leader; 0
	// means the broker's ApplyTimeout.
	TimeoutMillis int64 `msgpack:"t,omitempty"`
}

// Member is one server of a group's Raft configuration.
type Member struct {
	ID       string `msgpack:"id"`
	Addr     string `msgpack:"a"`           // Raft address
	Suffrage string `msgpack:"s"`           // "voter" or "nonvoter"
	Leader   bool   `msgpack:"l,omitempty"` // the answering node's leader
}

// MemberList is a group's latest Raft configuration as the answering node
// knows it (the leader's, for a change), and the log index it was stored
// at (0 before any).
type MemberList struct {
	Members []Member `msgpack:"m"`
	Index   uint64   `msgpack:"i,omitempty"`
}
