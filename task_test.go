package herald

import "testing"

func TestTaskFilterMatchesLastResponse(t *testing.T) {
	for _, c := range []struct {
		class, status   int
		attempted, want bool
	}{
		{0, 0, false, true}, // no class: everything
		{0, 503, true, true},
		{500, 503, true, true},
		{500, 599, true, true},
		{500, 600, true, false},
		{500, 499, true, false},
		{200, 200, true, true},
		{200, 0, true, false},
		{-1, 0, true, true}, // no response
		{-1, 200, true, false},
		{-1, 0, false, false}, // never attempted: no class at all
		{500, 0, false, false},
	} {
		f := TaskFilter{StatusCodeClass: c.class}
		if got := f.MatchesLastResponse(c.status, c.attempted); got != c.want {
			t.Errorf("class %d, status %d, attempted %v: %v, want %v", c.class, c.status, c.attempted, got, c.want)
		}
	}
}
