package bench

import (
	"math"
	"testing"
)

func same(a, b float64) bool {
	return a == b || math.IsNaN(a) && math.IsNaN(b) || math.Abs(a-b) < 1e-9
}

func TestSummarize(t *testing.T) {
	nan := math.NaN()
	cases := []struct {
		name        string
		in          []float64
		med, lo, hi float64
		n           int
	}{
		{"empty", nil, nan, nan, nan, 0},
		{"one", []float64{5}, 5, 5, 5, 1},
		{"odd", []float64{3, 1, 2}, 2, 1, 3, 3},
		{"even takes the mean of the middle two", []float64{4, 1, 3, 2}, 2.5, 1, 4, 4},
		{"NaN left out", []float64{nan, 7, 1, nan}, 4, 1, 7, 2},
		{"all NaN", []float64{nan}, nan, nan, nan, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := Summarize(c.in)
			if !same(s.Median, c.med) || !same(s.Min, c.lo) || !same(s.Max, c.hi) || s.N != c.n {
				t.Fatalf("Summarize(%v) = %+v, want median %v min %v max %v n %d", c.in, s, c.med, c.lo, c.hi, c.n)
			}
		})
	}
}

func TestHistogramQuantile(t *testing.T) {
	inf := math.Inf(1)
	// 10 observations <= 1 ms, 10 more in (1, 5] ms, none slower.
	b := []Bucket{{0.001, 10}, {0.005, 20}, {0.01, 20}, {inf, 20}}
	cases := []struct {
		name    string
		buckets []Bucket
		q, want float64
	}{
		{"empty", nil, 0.5, math.NaN()},
		{"no observations", []Bucket{{0.001, 0}, {inf, 0}}, 0.5, math.NaN()},
		{"median at a bound", b, 0.5, 0.001},
		{"interpolated", b, 0.75, 0.003},
		{"p99 near the top of its bucket", b, 0.99, 0.001 + 0.004*9.8/10},
		{"first bucket from zero", b, 0.25, 0.0005},
		{"in +Inf: the highest finite bound", []Bucket{{0.001, 1}, {inf, 2}}, 0.99, 0.001},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := HistogramQuantile(c.buckets, c.q); !same(got, c.want) {
				t.Fatalf("HistogramQuantile(q=%v) = %v, want %v", c.q, got, c.want)
			}
		})
	}
	if got := HistogramMax(b); got != 0.005 {
		t.Errorf("HistogramMax = %v, want 0.005", got)
	}
	d := deltaBuckets(b, []Bucket{{0.001, 4}, {0.005, 4}, {0.01, 4}, {inf, 4}})
	if d[0].Count != 6 || d[1].Count != 16 || d[3].Count != 16 {
		t.Errorf("deltaBuckets = %v", d)
	}
}

func TestFormatNum(t *testing.T) {
	cases := map[float64]string{0: "0", 123456.7: "123457", 42.25: "42.2", 1.234: "1.23", 0.0432: "0.043", 0.00031: "0.00031", math.NaN(): "n/a"}
	for in, want := range cases {
		if got := formatNum(in); got != want {
			t.Errorf("formatNum(%v) = %q, want %q", in, got, want)
		}
	}
}

func TestUserOf(t *testing.T) {
	cases := map[string]string{
		`{"user":"abc-1","t":1}`:             "abc-1",
		`{"user": "py-style", "score": NaN}`: "py-style",
		`{"t":1,"payload":{}}`:               "unknown",
		`{"user":"../etc/passwd"}`:           "unknown",
		`{"user":""}`:                        "unknown",
		`{"user":42}`:                        "unknown",
	}
	for in, want := range cases {
		if got := userOf([]byte(in)); got != want {
			t.Errorf("userOf(%s) = %q, want %q", in, got, want)
		}
	}
}
