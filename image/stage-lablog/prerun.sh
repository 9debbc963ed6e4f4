#!/bin/bash -e
# pi-gen: start this stage from a copy of the previous stage's root (stage2,
# Raspberry Pi OS Lite). copy_previous is pi-gen's (scripts/common).
if [ ! -d "${ROOTFS_DIR}" ]; then
	copy_previous
fi
