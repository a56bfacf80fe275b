package herald

import "time"

// QueueStats is the delivery queue at a glance, for monitoring: cheap
// enough to read every few seconds, never per request.
type QueueStats struct {
	// Pending counts deliveries waiting for an attempt, due or scheduled.
	Pending int
	// Sending counts deliveries leased to a dispatcher.
	Sending int
	// OldestDue is the NextAttemptAt of the pending delivery that has been
	// due longest (at or before the time asked about); zero when none is
	// due.
	OldestDue time.Time
	// DisabledEndpoints counts endpoints that are disabled.
	DisabledEndpoints int
}
