// Command lablog-aptrepo builds or adds to a signed apt repository of
// lablog's packages (make apt-repo).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/practable/lablog/tools/aptrepo"
)

func main() {
	fs := flag.NewFlagSet("lablog-aptrepo", flag.ExitOnError)
	dir := fs.String("dir", "dist/apt", "repository `folder` (created, or added to)")
	suite := fs.String("suite", "stable", "suite (the distribution in sources.list)")
	key := fs.String("key", "", "gpg `key` that signs (id, fingerprint or address; required)")
	home := fs.String("gnupghome", os.Getenv("GNUPGHOME"), "gpg home `folder` holding the key")
	fs.Parse(os.Args[1:])
	err := aptrepo.Build(context.Background(), aptrepo.Options{Dir: *dir, Debs: fs.Args(), Suite: *suite, Key: *key, GnupgHome: *home})
	if err != nil {
		fmt.Fprintln(os.Stderr, "lablog-aptrepo:", err)
		os.Exit(1)
	}
	fmt.Printf("apt repository in %s (suite %s), public key %s/%s\n", *dir, *suite, *dir, aptrepo.KeyringName)
}
