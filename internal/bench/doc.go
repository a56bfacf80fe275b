// Package bench is `herald bench`, the end-to-end load test: clients post
// messages through the API, loopback receivers take the deliveries, and the
// report compares Herald's delivery rate with the machine's plain loopback
// HTTP ceiling measured in the same run.
//
// It lives apart from cmd/herald so that the binary's main package holds
// only the wiring of commands. What it needs of that wiring, starting an
// in-process node over a store, is passed in as Env.StartNode rather than
// imported.
package bench
