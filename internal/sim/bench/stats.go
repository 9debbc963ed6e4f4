package bench

import (
	"math"
	"slices"
)

// Summary is a figure over repeated runs: the median, with the spread.
type Summary struct {
	Median, Min, Max float64
	N                int
}

// Summarize takes the median, minimum and maximum of xs; NaNs (a figure a
// run could not measure) are left out. An empty or all-NaN xs gives N 0.
func Summarize(xs []float64) Summary {
	v := make([]float64, 0, len(xs))
	for _, x := range xs {
		if !math.IsNaN(x) {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return Summary{Median: math.NaN(), Min: math.NaN(), Max: math.NaN()}
	}
	slices.Sort(v)
	med := v[len(v)/2]
	if len(v)%2 == 0 {
		med = (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return Summary{Median: med, Min: v[0], Max: v[len(v)-1], N: len(v)}
}

// Bucket is one cumulative histogram bucket: Count observations <= Upper.
type Bucket struct {
	Upper float64
	Count float64
}

// HistogramQuantile estimates the q-quantile from cumulative buckets sorted
// by Upper, interpolating linearly inside the bucket it falls in (as
// Prometheus does); the +Inf bucket answers with the highest finite bound.
// It is only as exact as the buckets, so callers mark it approximate.
func HistogramQuantile(buckets []Bucket, q float64) float64 {
	if len(buckets) == 0 {
		return math.NaN()
	}
	total := buckets[len(buckets)-1].Count
	if total <= 0 {
		return math.NaN()
	}
	rank := q * total
	lower, below := 0.0, 0.0
	for _, b := range buckets {
		if b.Count >= rank {
			if math.IsInf(b.Upper, 1) {
				return lower
			}
			in := b.Count - below
			if in <= 0 {
				return b.Upper
			}
			return lower + (b.Upper-lower)*(rank-below)/in
		}
		lower, below = b.Upper, b.Count
	}
	return lower
}

// HistogramMax is the upper bound of the highest bucket with observations:
// the most a histogram can say about the largest one.
func HistogramMax(buckets []Bucket) float64 {
	top, below := math.NaN(), 0.0
	for _, b := range buckets {
		if b.Count > below {
			top = b.Upper
		}
		below = b.Count
	}
	return top
}

// deltaBuckets is what a cumulative histogram gained between two scrapes.
func deltaBuckets(after, before []Bucket) []Bucket {
	out := make([]Bucket, len(after))
	for i, b := range after {
		out[i] = b
		if i < len(before) && before[i].Upper == b.Upper {
			out[i].Count -= before[i].Count
		}
	}
	return out
}
