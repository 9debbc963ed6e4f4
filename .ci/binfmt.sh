#!/usr/bin/env bash
# Lets this machine's kernel run arm64 programs through qemu-user: mounts
# binfmt_misc and registers qemu-aarch64 (pi-gen's dependencies_check,
# arch-test and the image test's arm64 root need it). On a fresh container or
# VM nothing does this: binfmt-support and systemd-binfmt only run at boot
# under systemd. Called by make deps and image/test/build-rootfs.sh; as root it
# does the work, otherwise it prints the command and fails.
set -euo pipefail

dir=/proc/sys/fs/binfmt_misc
entry="${dir}/qemu-aarch64"
if [ -e "${dir}/status" ] && grep -qx enabled "${entry}" 2>/dev/null; then
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "binfmt: qemu-aarch64 is not registered with binfmt_misc; as root run:" >&2
	echo "  sudo $(cd "$(dirname "$0")" && pwd)/binfmt.sh" >&2
	exit 1
fi
if [ ! -e "${dir}/status" ]; then
	mount -t binfmt_misc binfmt_misc "${dir}"
fi
# binfmt-support's database holds qemu-user-static's entry (imported when the
# package was installed): --enable writes it to the kernel's register file.
update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
# Without binfmt-support's database, qemu-user-static's systemd-binfmt line.
conf=/usr/lib/binfmt.d/qemu-aarch64.conf
if [ ! -e "${entry}" ] && [ -f "${conf}" ]; then
	grep -m1 '^:qemu-aarch64:' "${conf}" >"${dir}/register"
fi
if ! grep -qx enabled "${entry}" 2>/dev/null; then
	echo "binfmt: could not register qemu-aarch64 (apt-get install qemu-user-static binfmt-support)" >&2
	exit 1
fi
echo "binfmt: qemu-aarch64 registered ($(sed -n 's/^interpreter //p' "${entry}"))"
