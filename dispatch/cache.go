package dispatch

import "time"

// cacheTTL is how long an endpoint or application read from the store is
// reused: changes to them reach the dispatcher within it.
const cacheTTL = 2 * time.Second
