// Package logkey names the slog attributes that lablog's packages share, so
// that one thing has one key in every log line (grep err=, stream=, path=).
package logkey

// Shared attribute keys.
const (
	Err     = "err"     // an error
	Stream  = "stream"  // a stream's name
	Path    = "path"    // a file or folder on this machine
	URL     = "url"     // a remote endpoint (never with a secret in it)
	Records = "records" // a count of records
)
