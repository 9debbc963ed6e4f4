//go:build !linux

package archive

import "os"

// renameNoReplace renames from to to inside dir, failing with ErrExists
// when to exists (checked first: safe with one compactor).
func renameNoReplace(dir *os.File, from, to string) error { return renameCheck(dir, from, to) }
