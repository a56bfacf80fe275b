package telemetry

import (
	"go/ast"
	"go/parser"
	"go/token"
	"reflect"
	"slices"
	"testing"

	"github.com/herald-webhooks/herald"
)

// TestStoreInstrumentsEveryMethod fails when herald.Store gains a method
// the decorator does not measure (it would still compile, through the
// embedded store): add an op, its name and its wrapper in store.go.
func TestStoreInstrumentsEveryMethod(t *testing.T) {
	// The methods store.go declares on *Store.
	file, err := parser.ParseFile(token.NewFileSet(), "store.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	wrapped := map[string]bool{}
	for _, decl := range file.Decls {
		fn, ok := decl.(*ast.FuncDecl)
		if !ok || fn.Recv == nil || len(fn.Recv.List) != 1 {
			continue
		}
		if star, ok := fn.Recv.List[0].Type.(*ast.StarExpr); ok {
			if id, ok := star.X.(*ast.Ident); ok && id.Name == "Store" {
				wrapped[fn.Name.Name] = true
				// A wrapper records under its own op, not a neighbour's.
				usesOwnOp := false
				ast.Inspect(fn.Body, func(n ast.Node) bool {
					if id, ok := n.(*ast.Ident); ok && id.Name == "op"+fn.Name.Name {
						usesOwnOp = true
					}
					return true
				})
				if !usesOwnOp && fn.Name.Name != "Unwrap" {
					t.Errorf("telemetry.Store.%s does not record under op%s", fn.Name.Name, fn.Name.Name)
				}
			}
		}
	}

	// The op constants, in declaration (so iota) order, name the methods
	// in storeOpMethods order.
	var consts []string
	for _, decl := range file.Decls {
		if gd, ok := decl.(*ast.GenDecl); ok && gd.Tok == token.CONST {
			for _, spec := range gd.Specs {
				for _, n := range spec.(*ast.ValueSpec).Names {
					if n.Name != "numStoreOps" && len(n.Name) > 2 && n.Name[:2] == "op" {
						consts = append(consts, n.Name[2:])
					}
				}
			}
		}
	}
	if !slices.Equal(consts, storeOpMethods[:]) {
		t.Errorf("op constants %v\ndo not match storeOpMethods %v", consts, storeOpMethods)
	}

	iface := reflect.TypeFor[herald.Store]()
	for i := range iface.NumMethod() {
		name := iface.Method(i).Name
		if name == "Close" {
			continue // not an operation worth timing
		}
		if !wrapped[name] {
			t.Errorf("herald.Store.%s is not wrapped by telemetry.Store (it falls through to the embedded store unmeasured)", name)
		}
		if !slices.Contains(storeOpMethods[:], name) {
			t.Errorf("herald.Store.%s has no storeOp", name)
		}
	}
	optional := reflect.TypeFor[TokenTaker]()
	for _, name := range storeOpMethods {
		if _, ok := optional.MethodByName(name); ok {
			continue // an optional interface's, measured by its own wrapper
		}
		if _, ok := iface.MethodByName(name); !ok {
			t.Errorf("storeOp %s is not a method of herald.Store", name)
		}
	}
	if got := storeOpLabels[opCreateMessages]; got != "create_messages" {
		t.Errorf("label of CreateMessages = %q", got)
	}
}
