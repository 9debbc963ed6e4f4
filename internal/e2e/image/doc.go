// Package image checks the lablog appliance image: its files, pi-gen's
// Docker route against a stand-in docker, the build-host packages against
// pi-gen's dependency check, and (make image-test) the image pi-gen built,
// booted twice in qemu-system-aarch64 and checked from the host. The disks
// are made by image/test/run.sh and make-disk.sh; without LABLOG_IMAGE_WORK
// the boot test is skipped.
package image
