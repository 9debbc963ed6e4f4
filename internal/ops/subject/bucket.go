package subject

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/practable/lablog/internal/platform/failpoint"
	"github.com/practable/lablog/internal/publish/archive"
)

// scratchDir holds downloads of objects whose drive copy is gone (deleted
// after upload, or by retention), rewritten there before upload.
const scratchDir = "subject-scratch"

// bucket brings the bucket in line with the drive: each rewritten file's
// new object put and its old one deleted; objects with no drive copy
// downloaded, rewritten and replaced the same way.
func (e *eraser) bucket(ctx context.Context) error {
	objs, err := e.o.Bucket.List(ctx)
	if err != nil {
		return err
	}
	scratch := filepath.Join(e.o.DataDir, scratchDir)
	if err := os.MkdirAll(scratch, 0o700); err != nil {
		return err
	}
	if !e.j.Bucket {
		if err := e.planBucket(ctx, objs, scratch); err != nil {
			return err
		}
	}
	root, err := archive.OpenRoot(scratch, archive.RequireNone)
	if err != nil {
		return err
	}
	defer root.Close()
	for i := range e.j.Files {
		if err := ctx.Err(); err != nil {
			return err
		}
		f := &e.j.Files[i]
		if f.BucketDone {
			continue
		}
		src := ""
		switch f.Source {
		case "drive":
			if !objs[f.Old] {
				break // never uploaded: the uploader sends the new file
			}
			if f.New != "" {
				src = filepath.Join(e.o.Archive, filepath.FromSlash(f.New))
			}
		case "bucket":
			if err := e.rewriteObject(ctx, root, scratch, objs, f); err != nil {
				return err
			}
			if f.New != "" {
				src = filepath.Join(scratch, filepath.FromSlash(f.New))
			}
		}
		if src != "" && !objs[f.New] {
			if err := e.o.Bucket.Put(ctx, f.New, src, f.NewSHA256); err != nil {
				return err
			}
			objs[f.New] = true
			failpoint.Hit(FailAfterPut)
		}
		if f.Source == "bucket" {
			f.Done = true // the rewrite is in the bucket: the step the drive's Done stands for
		}
		if objs[f.Old] {
			if err := e.o.Bucket.Delete(ctx, f.Old); err != nil {
				return err
			}
			delete(objs, f.Old)
		}
		if f.Source == "bucket" && src != "" {
			if err := os.Remove(src); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
		f.BucketDone = true
		if err := e.progress(); err != nil {
			return err
		}
	}
	if err := e.save(); err != nil {
		return err
	}
	return os.RemoveAll(scratch)
}

// planBucket downloads each object the drive has no copy of, and plans
// those with rows of the user.
func (e *eraser) planBucket(ctx context.Context, objs map[string]bool, scratch string) error {
	known := map[string]bool{}
	for _, f := range e.j.Files {
		known[f.Old], known[f.New] = true, true
	}
	rels := make([]string, 0, len(objs))
	for rel := range objs {
		rels = append(rels, rel)
	}
	sort.Strings(rels)
	for _, rel := range rels {
		if err := ctx.Err(); err != nil {
			return err
		}
		if known[rel] {
			continue
		}
		if _, ok := archive.ParseFileName(filepath.Base(rel)); !ok {
			continue // not an archive file (a merged file, a foreign object)
		}
		if e.o.Archive != "" {
			if _, err := os.Stat(filepath.Join(e.o.Archive, filepath.FromSlash(rel))); err == nil {
				continue // scanned on the drive: the object is its copy
			}
		}
		dst := filepath.Join(scratch, filepath.FromSlash(rel))
		if err := e.get(ctx, rel, dst); err != nil {
			return err
		}
		p, found, err := planFile(scratch, dst, e.m)
		if err != nil {
			return fmt.Errorf("object %s: %w", rel, err)
		}
		if !found {
			if err := os.Remove(dst); err != nil {
				return err
			}
			continue
		}
		p.Source = "bucket"
		e.j.Files = append(e.j.Files, p)
	}
	e.j.Bucket = true
	return e.save()
}

// rewriteObject makes the user-free copy of a bucket-only object in the
// scratch tree, downloading what a crash left missing.
func (e *eraser) rewriteObject(ctx context.Context, root *archive.Root, scratch string, objs map[string]bool, f *FilePlan) error {
	oldPath := filepath.Join(scratch, filepath.FromSlash(f.Old))
	newPath := ""
	if f.New != "" {
		newPath = filepath.Join(scratch, filepath.FromSlash(f.New))
		if !exists(newPath) && objs[f.New] {
			if err := e.get(ctx, f.New, newPath); err != nil {
				return err
			}
		}
	}
	if !exists(oldPath) && (newPath == "" || !exists(newPath)) {
		if !objs[f.Old] {
			if newPath == "" {
				return nil // nothing was to remain, and the object is gone
			}
			return fmt.Errorf("object %s: gone, and its replacement %s is not there", f.Old, f.New)
		}
		if err := e.get(ctx, f.Old, oldPath); err != nil {
			return err
		}
	}
	return e.replace(root, oldPath, newPath, f)
}

func (e *eraser) get(ctx context.Context, rel, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	return e.o.Bucket.Get(ctx, rel, dst)
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
