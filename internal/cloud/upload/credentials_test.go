package upload

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

func writeCreds(t *testing.T, body string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "upload-credentials")
	if err := os.WriteFile(path, []byte(body), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadCredentials(t *testing.T) {
	for _, mode := range []os.FileMode{0o600, 0o640, 0o400} {
		path := writeCreds(t, "# lab keys\naccess_key_id: AKIAEXAMPLE123\nsecret_access_key: \""+secret+"\"\n", mode)
		c, err := LoadCredentials(path)
		if err != nil {
			t.Fatalf("mode %o: %v", mode, err)
		}
		if c.AccessKeyID != "AKIAEXAMPLE123" || c.SecretAccessKey != secret {
			t.Errorf("got %q %q", c.AccessKeyID, c.SecretAccessKey)
		}
		for _, s := range []string{c.String(), fmt.Sprintf("%v %+v %#v %s", c, c, c, c)} {
			if strings.Contains(s, secret) || strings.Contains(s, "AKIAEXAMPLE123") {
				t.Errorf("printed credentials show a key: %s", s)
			}
		}
	}
}

func TestLoadCredentialsErrorsNeverQuoteValues(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		mode       os.FileMode
		want       string
	}{
		{"world readable", "access_key_id: AKIAEXAMPLE123\nsecret_access_key: " + secret + "\n", 0o644, "mode 0644 lets others read or change it: chmod 600 "},
		{"group writable", "access_key_id: AKIAEXAMPLE123\nsecret_access_key: " + secret + "\n", 0o660, "mode 0660"},
		{"no secret", "access_key_id: AKIAEXAMPLE123\n", 0o600, "needs both access_key_id and secret_access_key"},
		{"secret on a bad line", "access_key_id: AKIAEXAMPLE123\n" + secret + "\n", 0o600, "line 2: want key: value"},
		{"secret under a misspelt key", "access_key_id: AKIAEXAMPLE123\nsecret_key: " + secret + "\n", 0o600, `line 2: unknown key "secret_key"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadCredentials(writeCreds(t, tc.body, tc.mode))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "AKIAEXAMPLE123") {
				t.Errorf("the error quotes a key: %v", err)
			}
		})
	}
	_, err := LoadCredentials(filepath.Join(t.TempDir(), "none"))
	if err == nil || !strings.Contains(err.Error(), "missing: create it (mode 0600)") {
		t.Errorf("missing file: %v", err)
	}
}
