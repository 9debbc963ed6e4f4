#!/bin/bash -e
# Stand-in for pi-gen's stages 0-2 in the emulated image test (run.sh puts
# this stage first in STAGE_LIST): their root filesystem comes from the
# Raspberry Pi archive, which the test cannot reach; this stage starts from
# the debootstrapped Debian root of build-rootfs.sh instead.
#
# Environment: LABLOG_TEST_ROOTFS, the root filesystem tarball.
: "${LABLOG_TEST_ROOTFS:?LABLOG_TEST_ROOTFS must name the root filesystem tarball}"
if [ ! -d "${ROOTFS_DIR}" ]; then
	mkdir -p "${ROOTFS_DIR}"
	tar -C "${ROOTFS_DIR}" --numeric-owner --xattrs --xattrs-include='*' -xf "${LABLOG_TEST_ROOTFS}"
fi
