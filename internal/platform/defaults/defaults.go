// Package defaults fills the unset fields of a component's Options, as
// every New does: one idiom, so a default is applied the same way
// everywhere and a constructor's first lines read as a list of its
// defaults.
package defaults

import (
	"log/slog"
	"time"
)

// Positive sets *v to d unless *v is positive: a size, count or interval
// of zero (or less, which means nothing) is the default.
func Positive[T ~int | ~int64 | ~float64](v *T, d T) {
	if *v <= 0 {
		*v = d
	}
}

// Zero sets *v to d when *v is its type's zero value.
func Zero[T comparable](v *T, d T) {
	var zero T
	if *v == zero {
		*v = d
	}
}

// Clock sets a missing clock to time.Now.
func Clock(now *func() time.Time) {
	if *now == nil {
		*now = time.Now
	}
}

// Logger sets a missing logger to slog.Default().
func Logger(l **slog.Logger) {
	if *l == nil {
		*l = slog.Default()
	}
}
