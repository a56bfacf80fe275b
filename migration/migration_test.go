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
