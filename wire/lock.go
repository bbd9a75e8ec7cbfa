package wire

import "time"

// LockTrust is how long a client treats a granted queue lock as held,
// counted from when it sent the lock request (not from the answer):
// RocketMQ's client-side 30 s. It is a contract between client and broker:
// a broker's lock lease must be longer, so a lock never lapses on the
// broker while its holder may still consume, and a broker releases a
// departed member's locks only once LockTrust has passed since their last
// grant or renewal.
const LockTrust = 30 * time.Second
