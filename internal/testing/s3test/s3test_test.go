package s3test

import (
	"bytes"
	"io"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// The server starts, takes a bucket and an object, survives a restart with
// its objects, and refuses what its keys did not sign.
func TestServerRoundTripAndRestart(t *testing.T) {
	s := Start(t)
	s.Bucket(t, "lab")
	ctx := Ctx(t)
	body := []byte("hello parquet")
	if _, err := s.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("lab"), Key: aws.String("a/b.txt"),
		Body: bytes.NewReader(body)}); err != nil {
		t.Fatal(err)
	}
	s.Stop()
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	resp, err := s.Client().GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("lab"), Key: aws.String("a/b.txt")})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(got, body) {
		t.Errorf("got %q", got)
	}
	if objs := s.List(t, "lab"); len(objs) != 1 || objs[0].Key != "a/b.txt" || objs[0].Size != int64(len(body)) {
		t.Errorf("list = %+v", objs)
	}
	wrong := &Server{URL: s.URL, Region: s.Region, AccessKey: s.AccessKey, SecretKey: "not-the-secret"}
	if _, err := wrong.Client().GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("lab"), Key: aws.String("a/b.txt")}); err == nil {
		t.Error("a request signed with the wrong secret was served")
	}
}
