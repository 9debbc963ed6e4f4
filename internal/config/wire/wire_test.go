package wire

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/practable/lablog/internal/config"
)

// The unit of the default configuration is the one the service package's
// golden file holds, which the image ships.
func TestServiceUnitOfDefaultConfig(t *testing.T) {
	got, err := ServiceUnit("/usr/local/bin/lablog", "/etc/lablog/lablog.yaml", config.Default()).Render()
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join("..", "..", "ops", "service", "testdata", "lablog.service"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("unit of the default configuration differs from the service package's golden file:\n%s", got)
	}
}

// Configuration is at the edge: no package under internal/ but config and
// this one imports config, directly or not, so a domain package's options
// never depend on the YAML schema.
func TestOnlyWireImportsConfig(t *testing.T) {
	const mod = "github.com/practable/lablog"
	allowed := map[string]bool{mod + "/internal/config": true, mod + "/internal/config/wire": true}
	cmd := exec.Command("go", "list", "-deps", "-json=ImportPath,Deps", mod+"/internal/...")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	seen := 0
	for {
		var p struct {
			ImportPath string
			Deps       []string
		}
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(p.ImportPath, mod+"/internal/") {
			continue
		}
		seen++
		if allowed[p.ImportPath] {
			continue
		}
		for _, d := range p.Deps {
			if d == mod+"/internal/config" {
				t.Errorf("%s depends on internal/config: give it Options of its own and map them in package wire", p.ImportPath)
			}
		}
	}
	if seen < 10 {
		t.Fatalf("go list saw %d internal packages: the check looked at nothing", seen)
	}
}
