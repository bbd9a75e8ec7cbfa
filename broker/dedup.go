package broker

import (
	"context"
	"time"

	"github.com/rmq-dev/rmq/fsm"
)

// dedupSettings is the fsm command that sets the group's producer dedup
// window to this node's configuration.
func (n *Node) dedupSettings() fsm.SetDedup {
	if n.cfg.DedupWindow < 0 {
		return fsm.SetDedup{}
	}
	return fsm.SetDedup{Window: n.cfg.DedupWindow.Milliseconds(), Max: uint32(n.cfg.DedupMaxEntries), All: n.cfg.DedupAll}
}

// syncDedup runs when this node starts leading, before it serves: if the
// group's dedup settings (replicated state) differ from this node's
// configuration it proposes its own, so the new settings take effect at
// one log position on every replica. A failure leaves the group's
// settings as they are; the next leader session tries again.
func (n *Node) syncDedup(ctx context.Context) {
	want := n.dedupSettings()
	if cur := n.fsm.Dedup(); cur.Window == want.Window && (want.Window == 0 || cur.Max == int(want.Max) && cur.All == want.All) {
		return
	}
	actx, cancel := context.WithTimeout(ctx, n.cfg.ApplyTimeout)
	defer cancel()
	if err := n.proposeCommand(actx, &want); err != nil {
		n.log.Warn("set producer dedup window", "error", err)
		return
	}
	n.log.Info("producer dedup window set", "window", time.Duration(want.Window)*time.Millisecond, "max-entries", want.Max)
}
