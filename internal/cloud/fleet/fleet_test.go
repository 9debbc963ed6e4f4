package fleet

import (
	"reflect"
	"testing"
	"time"

	"github.com/practable/lablog/internal/publish/archive"
)

func key(prefix, site, stream string, hour time.Time, first uint64) string {
	n := archive.Name{Stream: stream, Hour: hour, BufferID: "0123456789abcdef", First: first, Last: first + 9}
	return prefix + "/site=" + site + "/stream=" + stream + "/date=" + hour.Format(time.DateOnly) + "/" + archive.FileName(n)
}

func TestSummariseFindsGaps(t *testing.T) {
	h := time.Date(2026, 11, 26, 22, 0, 0, 0, time.UTC)
	objs := []Object{
		{key("fleet", "oxford", "spin30", h, 1), 10},
		{key("fleet", "bristol", "spin30", h, 1), 100},
		{key("fleet", "bristol", "spin30", h, 11), 5}, // a late file of the same hour
		{key("fleet", "bristol", "spin30", h.Add(time.Hour), 21), 100},
		// 00:00 and 01:00 of the next day missing, then 02:00; 04:00 missing.
		{key("fleet", "bristol", "spin30", h.Add(4*time.Hour), 31), 100},
		{key("fleet", "bristol", "spin30", h.Add(6*time.Hour), 41), 100},
		{"fleet/compacted/date=2026-11-26/part-0.parquet", 1000},
		{"fleet/site=bristol/stream=spin31/date=2026-11-26/" + archive.FileName(archive.Name{Stream: "spin30", Hour: h, First: 1, Last: 2}), 1},
		{"other/site=x/stream=a/date=2026-11-26/a.parquet", 1},
	}
	got, skipped := Summarise("fleet", objs)
	if skipped != 3 {
		t.Errorf("skipped %d, want 3 (merged file, stream mismatch, other prefix)", skipped)
	}
	want := []Stream{
		{Site: "bristol", Stream: "spin30", First: h, Last: h.Add(6 * time.Hour), Hours: 4, Files: 5, Bytes: 405, Gaps: []Gap{
			{From: h.Add(2 * time.Hour), To: h.Add(3 * time.Hour), Hours: 2}, {From: h.Add(5 * time.Hour), To: h.Add(5 * time.Hour), Hours: 1}}},
		{Site: "oxford", Stream: "spin30", First: h, Last: h, Hours: 1, Files: 1, Bytes: 10, Gaps: []Gap{}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}
