package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/herald-webhooks/herald"
)

// Polling endpoints (Svix's messagePoller): an endpoint created with the
// URL poller:// (herald.PollerURL, Herald's extension: Svix creates them in
// its app portal) gets no deliveries; its consumers pull the application's
// messages it accepts, in an order no later commit can land behind (see
// herald.PollStore), with iterators.
//
// GET …/poller/{sink_id} is stateless: the caller keeps the iterator.
// GET …/consumer/{consumer_id} keeps the position in the store, at least
// once: without an iterator it answers the page after the stored position
// (the same page again until the consumer acknowledges it); with the
// iterator a previous page returned it first stores that iterator (the
// pages up to it are processed), then answers the page after it. A new
// consumer starts at the polling endpoint's creation. POST …/seek moves a
// consumer to a time.

// pollIteratorDetail says what a poll iterator is, for the 422.
const pollIteratorDetail = `value is not a valid iterator: polling iterators are "it_<number>" or "it_<number>_msg_…", as a previous poll returned them`

// parsePollIterator reads the optional iterator parameter; ok is false
// when absent.
func parsePollIterator(q url.Values, v *validation) (pos herald.PollPosition, ok bool) {
	s := q.Get("iterator")
	if s == "" {
		return pos, false
	}
	pos, err := herald.ParsePollPosition(s, messageCursor.valid)
	if err != nil {
		v.add(pollIteratorDetail, "query", "iterator")
		return pos, false
	}
	return pos, true
}

// parsePollLimit reads ?limit= (1 to 250, 50 by default), as lists do.
func parsePollLimit(q url.Values, v *validation) int {
	s := q.Get("limit")
	if s == "" {
		return defaultLimit
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > maxLimit {
		v.add("limit must be an integer between 1 and 250", "query", "limit")
		return defaultLimit
	}
	return n
}

// lookupSink resolves the path's app_id and sink_id (an endpoint's ID or
// uid) to a polling endpoint: another endpoint is not one (404), a
// disabled one answers 409.
func (a *API) lookupSink(r *http.Request) (*herald.Endpoint, error) {
	app, err := a.lookupApp(r)
	if err != nil {
		return nil, err
	}
	ep, err := a.store.GetEndpoint(r.Context(), app.ID, r.PathValue("sink_id"))
	if err != nil {
		return nil, fmt.Errorf("get polling endpoint: %w", err)
	}
	if !ep.IsPoller() {
		return nil, herald.Errorf(herald.ENOTFOUND, "Polling endpoint not found: endpoint %s is not a polling endpoint (its URL is not %s).", ep.ID, herald.PollerURL)
	}
	if ep.Disabled {
		return nil, herald.Errorf(herald.ECONFLICT, "The polling endpoint %s is disabled: enable it to poll.", ep.ID)
	}
	return ep, nil
}

// sinkFilter is what a polling endpoint keeps.
func sinkFilter(ep *herald.Endpoint) herald.PollFilter {
	return herald.PollFilter{FilterTypes: ep.FilterTypes, Channels: ep.Channels}
}

// pollOut is Svix's PollingEndpointOut; its messages are
// PollingEndpointMessageOut, which has MessageOut's fields (headers, for
// Svix's raw messages, is left out).
type pollOut struct {
	Iterator string `json:"iterator"`
	Done     bool   `json:"done"`
}

// writePollPage answers with a page, payloads byte for byte.
func writePollPage(w http.ResponseWriter, page herald.PollPage) error {
	var buf bytes.Buffer
	buf.WriteString("[")
	for i, m := range page.Messages {
		b, err := toMessageOut(m, true).encode()
		if err != nil {
			return err
		}
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.Write(b)
	}
	buf.WriteString("]")
	env, err := json.Marshal(pollOut{Iterator: page.Next.String(), Done: page.Done})
	if err != nil {
		return fmt.Errorf("encode poll page: %w", err)
	}
	writeRaw(w, http.StatusOK, spliceField(env, "data", buf.Bytes()))
	return nil
}

// poll is GET /api/v1/app/{app_id}/poller/{sink_id}: the page after the
// iterator or, without one, after the position at ?after= (or now).
// event_type, channel and after narrow what the polling endpoint keeps.
func (a *API) poll(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	var v validation
	limit := parsePollLimit(q, &v)
	from, hasIterator := parsePollIterator(q, &v)
	f := herald.PollFilter{EventType: q.Get("event_type"), Channel: q.Get("channel"), After: parseTime(q, "after", &v)}
	if q.Has("event_type") {
		v.checkName(f.EventType, "query", "event_type")
	}
	if q.Has("channel") {
		v.checkChannel(f.Channel, "query", "channel")
	}
	if err := v.err(); err != nil {
		return err
	}
	ep, err := a.lookupSink(r)
	if err != nil {
		return err
	}
	if !hasIterator {
		if from, err = a.store.PollStart(r.Context(), ep.AppID, f.After); err != nil {
			return fmt.Errorf("poll start: %w", err)
		}
	}
	sink := sinkFilter(ep)
	f.FilterTypes, f.Channels = sink.FilterTypes, sink.Channels
	page, err := a.store.PollMessages(r.Context(), ep.AppID, herald.PollOptions{From: from, Limit: limit, Filter: f})
	if err != nil {
		return fmt.Errorf("poll messages: %w", err)
	}
	return writePollPage(w, page)
}

// consumerID reads and checks the path's consumer_id.
func consumerID(r *http.Request) (string, error) {
	id := r.PathValue("consumer_id")
	var v validation
	v.checkName(id, "path", "consumer_id")
	return id, v.err()
}

// pollConsumer is GET …/poller/{sink_id}/consumer/{consumer_id}.
func (a *API) pollConsumer(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	var v validation
	limit := parsePollLimit(q, &v)
	ack, hasIterator := parsePollIterator(q, &v)
	if err := v.err(); err != nil {
		return err
	}
	cid, err := consumerID(r)
	if err != nil {
		return err
	}
	ep, err := a.lookupSink(r)
	if err != nil {
		return err
	}
	from := ack
	if !hasIterator {
		c, err := a.store.GetPollConsumer(r.Context(), ep.ID, cid)
		switch {
		case err == nil:
			from = c.Position
		case herald.ErrorCode(err) == herald.ENOTFOUND:
			if from, err = a.store.PollStart(r.Context(), ep.AppID, ep.CreatedAt); err != nil {
				return fmt.Errorf("poll start: %w", err)
			}
			hasIterator = true // store the new consumer's start
		default:
			return fmt.Errorf("get poll consumer: %w", err)
		}
	}
	if hasIterator {
		c := &herald.PollConsumer{AppID: ep.AppID, EndpointID: ep.ID, ConsumerID: cid, Position: from, UpdatedAt: a.now().UTC()}
		if err := a.store.SetPollConsumer(r.Context(), c); err != nil {
			return fmt.Errorf("set poll consumer: %w", err)
		}
	}
	page, err := a.store.PollMessages(r.Context(), ep.AppID, herald.PollOptions{From: from, Limit: limit, Filter: sinkFilter(ep)})
	if err != nil {
		return fmt.Errorf("poll messages: %w", err)
	}
	return writePollPage(w, page)
}

// seekIn is Svix's PollingEndpointConsumerSeekIn; the time is read as a
// string so a malformed one is a 422 naming it.
type seekIn struct {
	After *string `json:"after"`
}

// seekOut is Svix's PollingEndpointConsumerSeekOut.
type seekOut struct {
	Iterator string `json:"iterator"`
}

// seekConsumer is POST …/consumer/{consumer_id}/seek: the consumer goes to
// just before the first message created at or after "after" (or, with
// none, to now), and the answer is that position's iterator.
func (a *API) seekConsumer(w http.ResponseWriter, r *http.Request) error {
	var in seekIn
	var v validation
	var after time.Time
	_, err := decodeValid(r, &v, &in, false, func(map[string]json.RawMessage) {
		if in.After == nil {
			v.add("field required", "body", "after")
			return
		}
		t, err := time.Parse(time.RFC3339Nano, *in.After)
		if err != nil {
			v.add("value is not a valid RFC 3339 date-time", "body", "after")
		}
		after = t
	})
	if err != nil {
		return err
	}
	cid, err := consumerID(r)
	if err != nil {
		return err
	}
	ep, err := a.lookupSink(r)
	if err != nil {
		return err
	}
	pos, err := a.store.PollStart(r.Context(), ep.AppID, after)
	if err != nil {
		return fmt.Errorf("poll start: %w", err)
	}
	c := &herald.PollConsumer{AppID: ep.AppID, EndpointID: ep.ID, ConsumerID: cid, Position: pos, UpdatedAt: a.now().UTC()}
	if err := a.store.SetPollConsumer(r.Context(), c); err != nil {
		return fmt.Errorf("set poll consumer: %w", err)
	}
	return writeJSON(w, http.StatusOK, seekOut{Iterator: pos.String()})
}

// errPollerNoDeliveries refuses a request that would create a delivery to
// a polling endpoint (resend, send-example).
func errPollerNoDeliveries(ep *herald.Endpoint) error {
	return invalid(fmt.Sprintf("endpoint %s is a polling endpoint (%s): it receives no deliveries; its consumers poll /api/v1/app/%s/poller/%s", ep.ID, herald.PollerURL, ep.AppID, ep.ID), "path", "endpoint_id")
}

// errPollerSwitch refuses changing an endpoint between pushed deliveries
// and polling: its queued deliveries, or its consumers, would be left
// behind.
var errPollerSwitch = invalid("an endpoint cannot change between an http(s) URL and "+herald.PollerURL+" (polling): create another endpoint", "body", "url")
