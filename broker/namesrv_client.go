package broker

import (
	"context"
	"crypto/tls"
	"time"

	"github.com/rmq-dev/rmq/wire"
)

// The broker's calls to NameServers other than registration
// (register.go): both speak the rmq wire protocol, the NameServer's
// protocol; they are outbound clients, not part of the node's core.

// groupDisks returns this node's disk use and that of every other node of
// the group as it last reported it to a NameServer (followers heartbeat
// their disk use with their status every RegisterInterval). The first
// NameServer that answers within a second is used; reports older than
// three heartbeats are ignored. A node no NameServer has heard from
// recently is left out: the leader cannot protect a disk it cannot see
// (see doc.go). fresh measures this node's disk now instead of using a
// recent measurement.
func (n *Node) groupDisks(ctx context.Context, ns *nameServerConns, fresh bool) []nodeDisk {
	out := []nodeDisk{{Node: n.cfg.NodeID, DiskUsage: n.diskUsage(fresh)}}
	maxAge := 3 * max(n.cfg.RegisterInterval, time.Second)
	for _, addr := range n.cfg.NameServers {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		ci, err := ns.clusterInfo(cctx, addr)
		cancel()
		if err != nil {
			n.log.Debug("no follower disk use from namesrv", "namesrv", addr, "error", err)
			continue
		}
		for _, cn := range ci.Nodes {
			if cn.Cluster != n.cfg.Cluster || cn.Group != n.cfg.Group || cn.NodeID == n.cfg.NodeID ||
				cn.DiskTotal == 0 || time.Duration(cn.AgeMillis)*time.Millisecond > maxAge {
				continue
			}
			out = append(out, nodeDisk{Node: cn.NodeID, DiskUsage: DiskUsage{FSUsed: cn.DiskUsed, FSTotal: cn.DiskTotal, DataBytes: cn.DataBytes}})
		}
		return out
	}
	return out
}

// nameServerConns keeps one connection per NameServer address for a
// leader service; the zero value is ready, close ends them all.
type nameServerConns struct {
	conns map[string]*wire.Conn
	tls   *tls.Config // Config.NameServerTLS
}

func (ns *nameServerConns) close() {
	for _, c := range ns.conns {
		c.Close()
	}
}

func (ns *nameServerConns) clusterInfo(ctx context.Context, addr string) (*wire.ClusterInfo, error) {
	if ns.conns == nil {
		ns.conns = map[string]*wire.Conn{}
	}
	conns := ns.conns
	c := conns[addr]
	if c != nil && c.Err() != nil {
		c.Close()
		c = nil
	}
	if c == nil {
		var err error
		if c, err = wire.DialTLS(ctx, addr, 0, ns.tls); err != nil {
			delete(conns, addr)
			return nil, err
		}
		conns[addr] = c
	}
	var ci wire.ClusterInfo
	if err := c.Call(ctx, wire.CodeGetCluster, wire.Empty{}, &ci); err != nil {
		return nil, err
	}
	return &ci, nil
}
