package migration

import (
	"strings"
	"testing"
	"testing/fstest"
)

func TestLoad(t *testing.T) {
	fsys := fstest.MapFS{
		"m/0002_more.sql": {Data: []byte("two")},
		"m/0001_init.sql": {Data: []byte("one")},
		"m/10_later.sql":  {Data: []byte("ten")},
		"m/README.md":     {Data: []byte("not a migration")},
	}
	got, err := Load(fsys, "m/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range got {
		names = append(names, m.Name)
	}
	if strings.Join(names, " ") != "0001_init.sql 0002_more.sql 10_later.sql" || got[2].Version != 10 || got[0].SQL != "one" {
		t.Fatalf("Load = %+v", got)
	}
	for name, fsys := range map[string]fstest.MapFS{
		"no number":    {"m/init.sql": {}},
		"zero":         {"m/0_init.sql": {}},
		"same version": {"m/1_a.sql": {}, "m/01_b.sql": {}},
	} {
		if _, err := Load(fsys, "m/*.sql"); err == nil {
			t.Errorf("%s: Load succeeded", name)
		}
	}
}

func TestCheckNotNewer(t *testing.T) {
	ms := []Migration{{Version: 1}, {Version: 4}}
	if Latest(ms) != 4 || Latest(nil) != 0 {
		t.Fatalf("Latest = %d, %d", Latest(ms), Latest(nil))
	}
	for _, applied := range []int{0, 1, 3, 4} {
		if err := CheckNotNewer(applied, ms); err != nil {
			t.Errorf("CheckNotNewer(%d) = %v", applied, err)
		}
	}
	err := CheckNotNewer(5, ms)
	tooNew, ok := err.(*TooNewError)
	if !ok || tooNew.Database != 5 || tooNew.Known != 4 {
		t.Fatalf("CheckNotNewer(5) = %#v", err)
	}
	if !strings.Contains(err.Error(), "schema version 5") || !strings.Contains(err.Error(), "up to 4") {
		t.Errorf("message = %q", err)
	}
}
