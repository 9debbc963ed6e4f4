// Package imagetest boots the lablog appliance image in qemu-system-aarch64
// and checks it from the host (make image-test). The disks are made by
// image/test/make-disk.sh; without LABLOG_IMAGE_WORK the test is skipped.
package imagetest
