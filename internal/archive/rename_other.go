//go:build !linux

package archive

// renameNoReplace renames from to to, failing with ErrExists when to exists
// (checked first: safe with one compactor).
func renameNoReplace(from, to string) error { return renameCheck(from, to) }
