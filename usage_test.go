package herald

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestUsageCounts: a batch's counts are summed per application and hour,
// and come out sorted by application, then hour, whatever the order they
// were added in.
func TestUsageCounts(t *testing.T) {
	h := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	var u UsageCounts
	u.Add("app_b", h.Add(59*time.Minute), 1, 2)
	u.Add("app_a", h.Add(time.Hour), 1, 0)
	u.Add("app_b", h, 1, 3)
	u.Add("app_a", h.Add(30*time.Minute), 1, 1)
	u.Add("app_a", h.Add(time.Hour+time.Second), 0, 4)
	want := []UsageCount{
		{AppID: "app_a", Bucket: h.Unix(), Messages: 1, Destinations: 1},
		{AppID: "app_a", Bucket: h.Unix() + 3600, Messages: 1, Destinations: 4},
		{AppID: "app_b", Bucket: h.Unix(), Messages: 2, Destinations: 5},
	}
	if diff := cmp.Diff(want, u.Rows()); diff != "" {
		t.Fatalf("rows (-want +got):\n%s", diff)
	}
}

// TestUsageRange: a range is rounded outward to whole hours; a bound on
// an hour's start stays, and times before 1970 round down too.
func TestUsageRange(t *testing.T) {
	h := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		since, until time.Time
		from, to     int64
	}{
		{h, h.Add(time.Hour), h.Unix(), h.Unix() + 3600},
		{h.Add(30 * time.Minute), h.Add(70 * time.Minute), h.Unix(), h.Unix() + 7200},
		{h.Add(time.Nanosecond), h.Add(time.Hour + time.Nanosecond), h.Unix(), h.Unix() + 7200},
		{time.Unix(-1, 0), time.Unix(1, 0), -3600, 3600},
	} {
		from, to := UsageRange(c.since, c.until)
		if from != c.from || to != c.to {
			t.Errorf("UsageRange(%s, %s) = %d, %d; want %d, %d", c.since, c.until, from, to, c.from, c.to)
		}
	}
}
