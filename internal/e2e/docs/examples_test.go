package docs

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/practable/lablog/internal/config"
)

// yamlBlock returns the first ```yaml block after heading in the Markdown
// file at path.
func yamlBlock(t *testing.T, path, heading string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(data), heading+"\n")
	if !ok {
		t.Fatalf("%s has no heading %q", path, heading)
	}
	_, block, _ := strings.Cut(section, "```yaml\n")
	block, _, ok = strings.Cut(block, "```")
	if !ok {
		t.Fatalf("%s has no yaml block under %q", path, heading)
	}
	return []byte(block)
}

// The README's short configuration is a valid lablog.yaml.
func TestReadmeConfigurationParses(t *testing.T) {
	block := yamlBlock(t, filepath.Join(repoRoot(t), "README.md"), "## Configuration")
	c, err := config.Parse(block, "README.md")
	if err != nil {
		t.Fatalf("README's configuration does not parse:\n%v", err)
	}
	if n := len(c.Streams()); n != 16 {
		t.Errorf("README's configuration has %d streams, want 16 (spin30-41, pend00-03)", n)
	}
}

// docs/configuration.md says every key it shows has its default: hold it to
// that, as config's own test holds `lablog config example`.
func TestConfigurationDocShowsTheDefaults(t *testing.T) {
	block := yamlBlock(t, filepath.Join(repoRoot(t), "docs", "configuration.md"), "# Configuration")
	c, err := config.Parse(block, "configuration.md")
	if err != nil {
		t.Fatalf("docs/configuration.md's configuration does not parse:\n%v", err)
	}
	d := config.Default()
	d.StreamSpecs = c.StreamSpecs
	if !reflect.DeepEqual(c, d) {
		t.Errorf("docs/configuration.md's settings differ from config.Default():\n got %+v\nwant %+v", c, d)
	}
}
