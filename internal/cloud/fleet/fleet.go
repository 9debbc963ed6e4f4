// Package fleet reads what a fleet of lablogs uploaded into one bucket:
// which sites, streams and hours are there, and which hours are missing
// between a stream's first and last. It only lists keys
// (<prefix>/site=<site>/stream=<stream>/date=<date>/<file name>); the file
// name says the stream and hour (see archive.ParseFileName).
package fleet

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/practable/lablog/internal/publish/archive"
)

// Stream is what the bucket holds of one site's stream.
type Stream struct {
	Site   string    `json:"site"`
	Stream string    `json:"stream"`
	First  time.Time `json:"first_hour"`
	Last   time.Time `json:"last_hour"`
	Hours  int       `json:"hours"` // hours with at least one file
	Files  int       `json:"files"`
	Bytes  int64     `json:"bytes"`
	Gaps   []Gap     `json:"gaps"` // hours without a file between First and Last
}

// Gap is a run of missing hours, From to To inclusive.
type Gap struct {
	From  time.Time `json:"from"`
	To    time.Time `json:"to"`
	Hours int       `json:"hours"`
}

// Object is a key and its size, as a listing gives them.
type Object struct {
	Key  string
	Size int64
}

// List pages through every object under prefix.
func List(ctx context.Context, client *s3.Client, bucket, prefix string) ([]Object, error) {
	in := &s3.ListObjectsV2Input{Bucket: aws.String(bucket)}
	if prefix != "" {
		in.Prefix = aws.String(prefix + "/")
	}
	var out []Object
	p := s3.NewListObjectsV2Paginator(client, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("fleet: list s3://%s/%s: %w", bucket, prefix, err)
		}
		for _, o := range page.Contents {
			out = append(out, Object{Key: aws.ToString(o.Key), Size: aws.ToInt64(o.Size)})
		}
	}
	return out, nil
}

// ParseKey reads <prefix>/site=<site>/stream=<s>/date=<d>/<name>; ok is
// false for any other key (merged files, foreign objects).
func ParseKey(prefix, key string) (site string, n archive.Name, ok bool) {
	if prefix != "" {
		if key, ok = strings.CutPrefix(key, prefix+"/"); !ok {
			return "", n, false
		}
	}
	parts := strings.Split(key, "/")
	if len(parts) != 4 {
		return "", n, false
	}
	site, ok1 := strings.CutPrefix(parts[0], "site=")
	stream, ok2 := strings.CutPrefix(parts[1], "stream=")
	date, ok3 := strings.CutPrefix(parts[2], "date=")
	n, ok4 := archive.ParseFileName(parts[3])
	if !ok1 || !ok2 || !ok3 || !ok4 || site == "" || n.Stream != stream || n.Hour.Format(time.DateOnly) != date {
		return "", n, false
	}
	return site, n, true
}

// Summarise groups objects by site and stream, in that order, and finds
// each stream's gaps. Keys that are not hourly files are counted in
// skipped.
func Summarise(prefix string, objs []Object) (streams []Stream, skipped int) {
	type id struct{ site, stream string }
	hours := map[id]map[time.Time]bool{}
	byID := map[id]*Stream{}
	for _, o := range objs {
		site, n, ok := ParseKey(prefix, o.Key)
		if !ok {
			skipped++
			continue
		}
		k := id{site, n.Stream}
		s := byID[k]
		if s == nil {
			s = &Stream{Site: site, Stream: n.Stream, First: n.Hour, Last: n.Hour}
			byID[k], hours[k] = s, map[time.Time]bool{}
		}
		s.Files++
		s.Bytes += o.Size
		hours[k][n.Hour] = true
		if n.Hour.Before(s.First) {
			s.First = n.Hour
		}
		if n.Hour.After(s.Last) {
			s.Last = n.Hour
		}
	}
	for k, s := range byID {
		s.Hours = len(hours[k])
		s.Gaps = []Gap{}
		var open *Gap
		for h := s.First; !h.After(s.Last); h = h.Add(time.Hour) {
			if hours[k][h] {
				open = nil
				continue
			}
			if open == nil {
				s.Gaps = append(s.Gaps, Gap{From: h})
				open = &s.Gaps[len(s.Gaps)-1]
			}
			open.To = h
			open.Hours++
		}
		streams = append(streams, *s)
	}
	sort.Slice(streams, func(i, j int) bool {
		a, b := streams[i], streams[j]
		return a.Site < b.Site || a.Site == b.Site && a.Stream < b.Stream
	})
	return streams, skipped
}
