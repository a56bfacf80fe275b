package web

import (
	"math"
	"net/http"
	"time"
)

// overviewSpan is how far back the overview's charts reach.
const overviewSpan = time.Hour

// overviewView is the data of the overview page.
type overviewView struct {
	Charts []chartView
	// The newest sample's figures; Have* false when there is none.
	HaveQueue, HaveMetrics bool
	Pending, Sending       int
	OldestDue              string
	Disabled               int
	OpenBreakers           int
	SampledAt              string
	Samples                int
}

// overview shows this node's recent throughput and queue, from the
// sampler's ring: messages/s and deliveries/s (counter deltas), the
// success ratio of attempts, the queue depth and the oldest due delivery's
// age.
func (s *Server) overview(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	samples := s.sampler.samples()
	now := s.now()
	var msgs, dels, ratio, depth, age []point
	for i, sp := range samples {
		if sp.HaveQueue {
			depth = append(depth, point{sp.At, float64(sp.Pending)})
			age = append(age, point{sp.At, sp.OldestDueAge.Seconds()})
		} else {
			depth = append(depth, point{sp.At, math.NaN()})
			age = append(age, point{sp.At, math.NaN()})
		}
		if i == 0 {
			continue
		}
		prev := samples[i-1]
		dt := sp.At.Sub(prev.At).Seconds()
		m, d, q := math.NaN(), math.NaN(), math.NaN()
		if sp.HaveMetrics && prev.HaveMetrics && dt > 0 {
			dm := sp.Messages - prev.Messages
			ds := sp.Succeeded - prev.Succeeded
			da := ds + (sp.Retrying - prev.Retrying) + (sp.Exhausted - prev.Exhausted)
			if dm >= 0 { // a negative delta is a restart's reset
				m = dm / dt
			}
			if da >= 0 && ds >= 0 {
				d = da / dt
				if da > 0 {
					q = 100 * ds / da
				}
			}
		}
		msgs = append(msgs, point{sp.At, m})
		dels = append(dels, point{sp.At, d})
		ratio = append(ratio, point{sp.At, q})
	}
	v := &overviewView{
		Samples: len(samples),
		Charts: []chartView{
			newChart("messages", "Messages accepted per second", msgs, now, overviewSpan, 0, formatRate),
			newChart("deliveries", "Delivery attempts per second", dels, now, overviewSpan, 0, formatRate),
			newChart("success", "Attempts that succeeded", ratio, now, overviewSpan, 100, formatPercent),
			newChart("depth", "Deliveries pending (queue depth)", depth, now, overviewSpan, 0, formatNumber),
			newChart("age", "Age of the oldest due delivery", age, now, overviewSpan, 0, formatAge),
		},
	}
	if n := len(samples); n > 0 {
		last := samples[n-1]
		v.SampledAt = last.At.UTC().Format("15:04:05") + " UTC"
		v.HaveQueue, v.HaveMetrics = last.HaveQueue, last.HaveMetrics
		v.Pending, v.Sending, v.Disabled = last.Pending, last.Sending, last.DisabledEndpoints
		v.OldestDue = formatAge(last.OldestDueAge.Seconds())
		v.OpenBreakers = int(last.OpenBreakers)
	}
	s.render(w, r, rc, http.StatusOK, "overview", &page{Title: "Overview", Nav: "overview", Data: v})
}
