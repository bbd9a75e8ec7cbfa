package main

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// positions checks msgs hold distinct queue positions and returns how
// many there are.
func positions(t *testing.T, msgs []consumedMessage) int {
	t.Helper()
	seen := map[string]bool{}
	for _, m := range msgs {
		p := fmt.Sprintf("%s#%d@%d", m.BrokerGroup, m.QueueID, m.Offset)
		if seen[p] {
			t.Errorf("message at %s printed twice", p)
		}
		seen[p] = true
	}
	return len(seen)
}

// TestConsumeExitAndWait: consume --exit stops by itself once the topic
// is read to its end (with a tag filter, --orderly, --broadcast), and
// --wait bounds the command, alone or with --count.
func TestConsumeExitAndWait(t *testing.T) {
	c := newCLI(t)
	c.ok("topic", "create", "ex", "--queues", "4")
	c.ok("topic", "create", "empty", "--queues", "4")
	c.ok("send", "ex", "body-a", "--tag", "a", "--count", "3")
	c.ok("send", "ex", "body-b", "--tag", "b", "--count", "7")

	// consume runs args and checks it printed want messages (any number
	// if want < 0) and said why it stopped (reason, or nothing for
	// --count).
	consume := func(t *testing.T, want int, reason string, args ...string) ([]consumedMessage, time.Duration) {
		t.Helper()
		start := time.Now()
		out, errOut, err := c.run(append([]string{"consume"}, append(args, "-o", "json")...)...)
		took := time.Since(start)
		if err != nil {
			t.Fatalf("consume %s: %v\nstderr:\n%s", strings.Join(args, " "), err, errOut)
		}
		msgs := jsonLines(t, out)
		if want < 0 {
			want = len(msgs)
		}
		if n := positions(t, msgs); n != want {
			t.Errorf("consume %s: printed %d messages, want %d", strings.Join(args, " "), n, want)
		}
		noun := "messages"
		if want == 1 {
			noun = "message"
		}
		if line := fmt.Sprintf("%sconsumed %d %s\n", reason, want, noun); !strings.Contains(errOut, line) {
			t.Errorf("consume %s: stderr %q, want the line %q", strings.Join(args, " "), errOut, line)
		}
		return msgs, took
	}

	t.Run("exit", func(t *testing.T) {
		consume(t, 10, "caught up (--exit): ", "ex", "--exit", "-g", "g", "--from", "first", "--count", "100")
		// Offsets were committed on exit: the group is caught up at once.
		consume(t, 0, "caught up (--exit): ", "ex", "-e", "-g", "g", "--from", "first")
	})
	t.Run("exit tag filter", func(t *testing.T) {
		msgs, _ := consume(t, 3, "caught up (--exit): ", "ex", "--exit", "-g", "tagged", "--from", "first", "--tag", "a", "--count", "100")
		for _, m := range msgs {
			if m.Tags != "a" {
				t.Errorf("--tag a printed %+v", m)
			}
		}
	})
	t.Run("exit orderly", func(t *testing.T) {
		consume(t, 10, "caught up (--exit): ", "ex", "--exit", "--orderly", "-g", "ordered", "--from", "first")
	})
	t.Run("exit broadcast", func(t *testing.T) {
		consume(t, 10, "caught up (--exit): ", "ex", "--exit", "--broadcast", "--from", "first")
	})
	t.Run("exit empty topic", func(t *testing.T) {
		consume(t, 0, "caught up (--exit): ", "empty", "--exit", "-g", "e0", "--from", "first")
	})
	t.Run("exit before count", func(t *testing.T) {
		consume(t, 4, "", "ex", "--exit", "-g", "counted", "--from", "first", "--count", "4")
	})

	t.Run("wait on an empty topic", func(t *testing.T) {
		_, took := consume(t, 0, "stopped after 1s (--wait): ", "empty", "-g", "w", "--from", "first", "--wait", "1s")
		if took < time.Second || took > 15*time.Second {
			t.Errorf("consume --wait 1s took %s, want about 1s (at least 1s, under 15s on a loaded machine)", took)
		}
	})
	t.Run("wait with orderly and broadcast", func(t *testing.T) {
		consume(t, 0, "stopped after 1s (--wait): ", "empty", "--orderly", "-g", "wo", "--from", "first", "--wait", "1s")
		consume(t, 0, "stopped after 1s (--wait): ", "empty", "--broadcast", "--from", "first", "--wait", "1s")
	})
	t.Run("count before wait", func(t *testing.T) {
		_, took := consume(t, 4, "", "ex", "-g", "wc", "--from", "first", "--count", "4", "--wait", "60s")
		if took >= 60*time.Second {
			t.Errorf("consume --count 4 --wait 60s took %s, want it to stop at the count", took)
		}
	})
	t.Run("wait before count", func(t *testing.T) {
		// However many were printed before the 3s passed were committed:
		// --exit then prints the rest.
		msgs, _ := consume(t, -1, "stopped after 3s (--wait): ", "ex", "-g", "wb", "--from", "first", "--count", "100", "--wait", "3s")
		if len(msgs) > 10 {
			t.Fatalf("printed %d of 10 messages", len(msgs))
		}
		consume(t, 10-len(msgs), "caught up (--exit): ", "ex", "-g", "wb", "--exit")
	})
	t.Run("bad wait", func(t *testing.T) {
		c.fails("--wait -1s: want 0 (no bound) or more", "consume", "ex", "-g", "bad", "--wait", "-1s")
	})
}
