// Package secretfile guards the files that hold secrets (relay tokens, S3 keys,
// a configuration with an inline token): on a multi-user server such a file
// must not be readable by other users nor writable by its group. Mode 0600,
// or 0640 where root owns the file and the service's group reads it.
package secretfile

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
)

// unsafePerm are the permission bits a secret must not have: group write,
// and anything for others.
const unsafePerm fs.FileMode = 0o027

// CheckMode refuses the secret file at path, described by fi, when it is
// not a regular file or its mode shares it; the error names the file, its
// mode and the chmod that fixes it.
func CheckMode(path string, fi fs.FileInfo) error {
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s: not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&unsafePerm != 0 {
		return &ModeError{Path: path, Mode: perm}
	}
	return nil
}

// ModeError is a secret file refused for its mode.
type ModeError struct {
	Path string
	Mode fs.FileMode
}

func (e *ModeError) Error() string {
	return fmt.Sprintf("%s: mode %04o lets others read or change it: chmod 600 %s", e.Path, e.Mode, e.Path)
}

// ReadFile reads the secret file at path, refusing it as CheckMode does.
// The mode is taken from the open file, so it is the file that was read.
func ReadFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if err := CheckMode(path, fi); err != nil {
		return nil, err
	}
	return io.ReadAll(f)
}

// Line is one line of a secrets file that holds something: its number
// (from 1) and its text, trimmed.
type Line struct {
	N    int
	Text string
}

// ReadLines reads the secret file at path as ReadFile does and returns its
// lines that are neither blank nor # comments. A missing file is an error
// wrapping fs.ErrNotExist.
func ReadLines(path string) ([]Line, error) {
	data, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	var lines []Line
	n := 0
	for text := range strings.Lines(string(data)) {
		n++
		text = strings.TrimSpace(text)
		if text != "" && !strings.HasPrefix(text, "#") {
			lines = append(lines, Line{N: n, Text: text})
		}
	}
	return lines, nil
}
