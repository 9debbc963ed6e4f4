#!/usr/bin/env bash
# Makes the disks of the emulated image test from the cached root filesystem
# (build-rootfs.sh) and our assembled pi-gen stage, without mounting anything:
#
#   WORK/disk.img     the "SD card": FAT boot partition (cmdline.txt and the
#                     test's lablog/ config folder with tokens and SSH keys)
#                     and the ext4 root, both made from folders
#   WORK/archive.img  the "USB drive": one ext4 partition labelled LABLOG
#                     with the archive marker, owned by lablog
#   WORK/vmlinuz, WORK/initrd.img, WORK/cmdline   for qemu's direct boot
#   WORK/admin_key, WORK/archive_key              SSH keys the test uses
#
# Usage: make-disk.sh ROOTFS_TARBALL STAGE_DIR WORK
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
lablog="${here}/../../dist/lablog" # this machine's build: it writes the archive marker
tarball=$1
stage=$(cd "$2" && pwd)
work=$3
admin=labadmin        # pi-gen's FIRST_USER_NAME in pi-gen-config/config
disk_id=1ab10600      # MBR disk id: partitions are PARTUUID=1ab10600-0N
boot_mib=64

mkdir -p "${work}"
work=$(cd "${work}" && pwd)
root="${work}/root"
bootdir="${work}/boot"
rm -rf "${root}" "${bootdir}" "${work}"/*.img "${work}"/*_key "${work}"/*_key.pub
mkdir -p "${root}" "${bootdir}"
tar -C "${root}" --numeric-owner --xattrs --xattrs-include='*' -xf "${tarball}"

# --- What pi-gen's stages 1 and 2 do on a real build (test stand-in) -------
echo lablog >"${root}/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tlablog\n' >"${root}/etc/hosts"
cat >"${root}/etc/fstab" <<FSTAB
proc /proc proc defaults 0 0
PARTUUID=${disk_id}-01 /boot/firmware vfat defaults 0 2
PARTUUID=${disk_id}-02 / ext4 defaults,noatime 0 1
FSTAB
mkdir -p "${root}/boot/firmware"
echo "console=ttyAMA0 root=PARTUUID=${disk_id}-02 rootfstype=ext4 fsck.repair=yes rootwait" \
	>"${root}/boot/firmware/cmdline.txt"
if ! chroot "${root}" getent passwd "${admin}" >/dev/null; then
	chroot "${root}" useradd --create-home --shell /bin/bash --groups sudo "${admin}"
fi
echo "${admin} ALL=(ALL) NOPASSWD: ALL" >"${root}/etc/sudoers.d/010_${admin}-nopasswd"
chmod 0440 "${root}/etc/sudoers.d/010_${admin}-nopasswd"
# Raspberry Pi OS brings the network up with NetworkManager; here networkd.
mkdir -p "${root}/etc/systemd/network"
printf '[Match]\nName=en* eth*\n\n[Network]\nDHCP=yes\n' >"${root}/etc/systemd/network/50-wired.network"
chroot "${root}" systemctl enable systemd-networkd.service >/dev/null 2>&1

# The lab's traffic (test only): a local client of the image's real relay
# host that sends on ws://127.0.0.1:8888/ws/spin30..33; the relay host passes
# it to lablog, its other local client there (see lab-traffic.py).
install -D -m 0755 "${here}/lab-traffic.py" "${root}/usr/local/lib/lablog-image-test/lab-traffic.py"
cat >"${root}/etc/systemd/system/lablog-labtraffic.service" <<'UNIT'
[Unit]
Description=lab traffic through the relay host's local websocket (emulated image test only)
Wants=relay-host.service
After=relay-host.service

[Service]
ExecStart=/usr/bin/python3 /usr/local/lib/lablog-image-test/lab-traffic.py --rate 5 spin30 spin31 spin32 spin33
DynamicUser=yes
Restart=always
RestartSec=2

[Install]
WantedBy=multi-user.target
UNIT
chroot "${root}" systemctl enable lablog-labtraffic.service >/dev/null 2>&1

# --- Our stage, exactly as pi-gen runs it ----------------------------------
for step in "${stage}"/[0-9][0-9]-*/; do
	(
		cd "${step}"
		for s in [0-9][0-9]-run.sh [0-9][0-9]-run-chroot.sh; do
			[ -f "${s}" ] || continue
			case "${s}" in
			*-run-chroot.sh) chroot "${root}" /bin/bash -e <"${s}" ;;
			*) ROOTFS_DIR="${root}" FIRST_USER_NAME="${admin}" "./${s}" ;;
			esac
		done
	)
done

# --- The boot partition: what the image put there, the test's config folder
cp -r "${root}/boot/firmware/." "${bootdir}/"
find "${root}/boot/firmware" -mindepth 1 -delete
mkdir -p "${bootdir}/lablog"
cp -r "${here}/lablog/." "${bootdir}/lablog/"
ssh-keygen -q -t ed25519 -N '' -C lablog-image-test-admin -f "${work}/admin_key"
ssh-keygen -q -t ed25519 -N '' -C lablog-image-test-archive -f "${work}/archive_key"
cp "${work}/admin_key.pub" "${bootdir}/lablog/authorized_keys"
cp "${work}/archive_key.pub" "${bootdir}/lablog/archive_keys"
cp "${bootdir}/cmdline.txt" "${work}/cmdline"

kernel=$(find "${root}/boot" -maxdepth 1 -name 'vmlinuz-*' | sort | tail -1)
initrd=$(find "${root}/boot" -maxdepth 1 -name 'initrd.img-*' | sort | tail -1)
cp "${kernel}" "${work}/vmlinuz"
cp "${initrd}" "${work}/initrd.img"

# --- disk.img: MBR, FAT boot, ext4 root; filesystems made from folders -----
root_mib=$(($(du -sm "${root}" | cut -f1) * 3 / 2 + 256))
boot_start=2048
root_start=$((boot_start + boot_mib * 2048))
total_mib=$((1 + boot_mib + root_mib))
truncate -s "${total_mib}M" "${work}/disk.img"
sfdisk --quiet "${work}/disk.img" <<PART
label: dos
label-id: 0x${disk_id}
start=${boot_start}, size=$((boot_mib * 2048)), type=c
start=${root_start}, type=83
PART
mkfs.vfat -F 32 -S 512 -s 1 -n BOOTFS --offset "${boot_start}" "${work}/disk.img" $((boot_mib * 1024)) >/dev/null 2>&1
MTOOLS_SKIP_CHECK=1 mcopy -s -i "${work}/disk.img@@$((boot_start * 512))" "${bootdir}"/* ::/
mkfs.ext4 -q -F -L rootfs -d "${root}" -E "offset=$((root_start * 512))" "${work}/disk.img" "$((root_mib - 1))M"

# --- archive.img: the LABLOG drive, as `lablog drive init` leaves one ------
uid=$(chroot "${root}" id -u lablog)
gid=$(chroot "${root}" id -g lablog)
arch="${work}/archive-root"
rm -rf "${arch}"
mkdir -p "${arch}"
chown "${uid}:${gid}" "${arch}"
"${lablog}" drive mark "${arch}" >/dev/null
truncate -s 512M "${work}/archive.img"
printf 'label: gpt\nstart=2048, type=L\n' | sfdisk --quiet "${work}/archive.img"
mkfs.ext4 -q -F -L LABLOG -d "${arch}" -E "offset=$((2048 * 512)),root_owner=${uid}:${gid}" \
	"${work}/archive.img" 500M
debugfs -w -R 'set_inode_field lost+found mode 040755' "${work}/archive.img?offset=$((2048 * 512))" 2>/dev/null
rm -rf "${arch}" "${root}" "${bootdir}"
echo "make-disk: ${work}/disk.img (${total_mib} MiB) and ${work}/archive.img ready" >&2
