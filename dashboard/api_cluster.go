package dashboard

import (
	"context"
	"net/http"
	"strings"

	"github.com/rmq-dev/rmq/client"
)

// nodeJSON is one broker node in GET /api/v1/cluster.
type nodeJSON struct {
	Node         string  `json:"node"`
	Role         string  `json:"role"` // leader, follower, candidate, or down
	Serving      bool    `json:"serving"`
	Down         bool    `json:"down"`
	StaleLeader  bool    `json:"stale_leader"`
	Term         uint64  `json:"term"`
	CommitIndex  *uint64 `json:"commit_index"` // null while unknown
	AppliedIndex uint64  `json:"applied_index"`
	Lag          uint64  `json:"lag"` // leader's applied index minus this node's
	Addr         string  `json:"addr"`
	RaftAddr     string  `json:"raft_addr"`
	LastSeenMS   int64   `json:"last_seen_ms"`
	LogBytes     int64   `json:"log_bytes"`
	DataBytes    int64   `json:"data_bytes"`
	DiskUsed     uint64  `json:"disk_used"`
	DiskTotal    uint64  `json:"disk_total"`
}

// brokerGroupJSON is one broker group in GET /api/v1/cluster.
type brokerGroupJSON struct {
	BrokerGroup  string     `json:"broker_group"`
	Cluster      string     `json:"cluster"`
	Leader       string     `json:"leader"` // "" when none
	Term         uint64     `json:"term"`
	CommitIndex  uint64     `json:"commit_index"`
	AppliedIndex uint64     `json:"applied_index"`
	Nodes        []nodeJSON `json:"nodes"`
}

func (s *Server) getCluster(ctx context.Context, _ *http.Request, cl *clients) (int, any, error) {
	gs, err := cl.admin.ClusterStatus(ctx)
	if err != nil {
		return 0, nil, err
	}
	out := []brokerGroupJSON{}
	for _, g := range gs {
		bg := brokerGroupJSON{BrokerGroup: g.Group, Cluster: g.Cluster, Leader: g.Leader, Term: g.Term,
			CommitIndex: g.CommitIndex, AppliedIndex: g.AppliedIndex, Nodes: []nodeJSON{}}
		for _, n := range g.Nodes {
			nj := nodeJSON{Node: n.NodeID, Role: n.Role, Serving: n.Serving, Down: n.Down, StaleLeader: n.StaleLeader,
				Term: n.Term, AppliedIndex: n.AppliedIndex, Lag: n.Lag, Addr: n.Addr, RaftAddr: n.RaftAddr,
				LastSeenMS: n.Age.Milliseconds(), LogBytes: n.LogBytes, DataBytes: n.DataBytes,
				DiskUsed: n.DiskUsed, DiskTotal: n.DiskTotal}
			if n.Down {
				nj.Role = "down"
			}
			if !n.CommitUnknown {
				ci := n.CommitIndex
				nj.CommitIndex = &ci
			}
			bg.Nodes = append(bg.Nodes, nj)
		}
		out = append(out, bg)
	}
	return http.StatusOK, out, nil
}

type transferRequest struct {
	To string `json:"to"` // node id; "" for the most up-to-date follower
}

type transferResponse struct {
	BrokerGroup string `json:"broker_group"`
	To          string `json:"to,omitempty"`
	Status      string `json:"status"` // "transferred"
}

func (s *Server) postTransfer(ctx context.Context, r *http.Request, cl *clients) (int, any, error) {
	group := r.PathValue("group")
	var req transferRequest
	if r.ContentLength != 0 {
		if err := decodeBody(r, &req); err != nil {
			return 0, nil, err
		}
	}
	req.To = strings.TrimSpace(req.To)
	gs, err := cl.admin.ClusterStatus(ctx)
	if err != nil {
		return 0, nil, err
	}
	var found *client.GroupStatus
	for i := range gs {
		if gs[i].Group == group {
			found = &gs[i]
		}
	}
	if found == nil {
		return 0, nil, &notFoundError{"broker_group", group}
	}
	if req.To != "" {
		known := false
		for _, n := range found.Nodes {
			known = known || n.NodeID == req.To && !n.Down
		}
		if !known {
			return 0, nil, &fieldError{"to", "no live node " + req.To + " in broker group " + group}
		}
		if req.To == found.Leader {
			return 0, nil, &fieldError{"to", req.To + " is the leader already"}
		}
	}
	if err := cl.admin.TransferLeadership(ctx, group, req.To); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, transferResponse{BrokerGroup: group, To: req.To, Status: "transferred"}, nil
}
