#!/usr/bin/env bash
# Makes the disks of the emulated image test from the image pi-gen exported
# (run.sh), without mounting anything:
#
#   WORK/disk.img     the "SD card": pi-gen's image, 1 GiB larger (a bigger
#                     card, for the first-boot resize), with the test's
#                     lablog/ config folder (tokens, SSH keys, network.yaml)
#                     put on its FAT boot partition as a technician would,
#                     and cloud-init's user-data and network-config as
#                     Raspberry Pi Imager's OS customisation writes them
#                     (hostname, a user with an SSH key, Wi-Fi, time zone,
#                     keyboard)
#   WORK/archive.img  the "USB drive": one ext4 partition labelled LABLOG
#                     with the archive marker, owned by lablog
#   WORK/vmlinuz, WORK/initrd.img   the kernel and initramfs in the image's
#                     /boot, for QEMU's direct boot (no Pi firmware)
#   WORK/admin_key, WORK/archive_key, WORK/imager_key   SSH keys the test
#                     uses (imager_key is the one Imager gives its user)
#
# Usage: make-disk.sh IMAGE.img[.xz] WORK
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
lablog="${here}/../../dist/lablog" # this machine's build: it writes the archive marker
image=$1
work=$2

mkdir -p "${work}"
work=$(cd "${work}" && pwd)
rm -f "${work}"/*.img "${work}"/*_key "${work}"/*_key.pub "${work}/vmlinuz" "${work}/initrd.img" "${work}"/imager-*
case "${image}" in
*.xz) xz -dc "${image}" | dd of="${work}/disk.img" bs=1M conv=sparse status=none ;;
*) cp --sparse=always "${image}" "${work}/disk.img" ;;
esac
truncate -s +1G "${work}/disk.img"
disk="${work}/disk.img"
start() { partx -g -n "$1" -o START "${disk}" | tr -d ' '; }
boot_off=$(($(start 1) * 512))
root_off=$(($(start 2) * 512))

# --- The boot partition: the test's config folder and keys -----------------
cfg="${work}/card-lablog"
rm -rf "${cfg}"
cp -r "${here}/lablog" "${cfg}"
ssh-keygen -q -t ed25519 -N '' -C lablog-image-test-admin -f "${work}/admin_key"
ssh-keygen -q -t ed25519 -N '' -C lablog-image-test-archive -f "${work}/archive_key"
cp "${work}/admin_key.pub" "${cfg}/authorized_keys"
cp "${work}/archive_key.pub" "${cfg}/archive_keys"
MTOOLS_SKIP_CHECK=1 mcopy -s -i "${disk}@@${boot_off}" "${cfg}" ::/lablog
rm -rf "${cfg}"

# Raspberry Pi Imager's OS customisation, as it writes it for Raspberry Pi OS
# trixie: user-data and network-config over the ones pi-gen put there.
ssh-keygen -q -t ed25519 -N '' -C lablog-image-test-imager -f "${work}/imager_key"
cat >"${work}/imager-user-data" <<USERDATA
#cloud-config
hostname: labpi-imager
manage_etc_hosts: true
packages:
- avahi-daemon
apt:
  conf: |
    Acquire {
      Check-Date "false";
    };
timezone: Europe/London
keyboard:
  model: pc105
  layout: "gb"
users:
- name: tech
  groups: users,adm,dialout,audio,netdev,video,plugdev,cdrom,games,input,gpio,spi,i2c,render,sudo
  shell: /bin/bash
  lock_passwd: false
  passwd: $(openssl passwd -5 -salt imagertest 'imager test password')
  ssh_authorized_keys:
  - $(cat "${work}/imager_key.pub")
  sudo: ALL=(ALL) NOPASSWD:ALL
ssh_pwauth: true
USERDATA
cat >"${work}/imager-network-config" <<'NETWORK'
network:
  version: 2
  wifis:
    wlan0:
      dhcp4: true
      regulatory-domain: "GB"
      access-points:
        "ImagerNet":
          password: "imager wifi passphrase"
      optional: true
NETWORK
MTOOLS_SKIP_CHECK=1 mcopy -o -i "${disk}@@${boot_off}" "${work}/imager-user-data" ::/user-data
MTOOLS_SKIP_CHECK=1 mcopy -o -i "${disk}@@${boot_off}" "${work}/imager-network-config" ::/network-config

# --- Kernel and initramfs, out of the root filesystem ----------------------
rootfs="${disk}?offset=${root_off}"
kernel=$(debugfs -R 'ls -p /boot' "${rootfs}" 2>/dev/null | awk -F/ '$6 ~ /^vmlinuz-/ {print $6}' | sort | tail -1)
[ -n "${kernel}" ] || { echo "make-disk: no /boot/vmlinuz-* in the image" >&2; exit 1; }
debugfs -R "dump /boot/${kernel} ${work}/vmlinuz" "${rootfs}" 2>/dev/null
debugfs -R "dump /boot/initrd.img-${kernel#vmlinuz-} ${work}/initrd.img" "${rootfs}" 2>/dev/null
if [ ! -s "${work}/vmlinuz" ] || [ ! -s "${work}/initrd.img" ]; then
	echo "make-disk: kernel or initramfs missing" >&2
	exit 1
fi

# --- archive.img: the LABLOG drive, as `lablog drive init` leaves one ------
ids=$(debugfs -R 'cat /etc/passwd' "${rootfs}" 2>/dev/null | awk -F: '$1 == "lablog" {print $3 ":" $4}')
[ -n "${ids}" ] || { echo "make-disk: no lablog user in the image" >&2; exit 1; }
arch="${work}/archive-root"
rm -rf "${arch}"
mkdir -p "${arch}"
chown "${ids}" "${arch}"
"${lablog}" drive mark "${arch}" >/dev/null
truncate -s 512M "${work}/archive.img"
printf 'label: gpt\nstart=2048, type=L\n' | sfdisk --quiet "${work}/archive.img"
mkfs.ext4 -q -F -L LABLOG -d "${arch}" -E "offset=$((2048 * 512)),root_owner=${ids}" \
	"${work}/archive.img" 500M
debugfs -w -R 'set_inode_field lost+found mode 040755' "${work}/archive.img?offset=$((2048 * 512))" 2>/dev/null
rm -rf "${arch}"
echo "make-disk: ${disk} ($(($(stat -c %s "${disk}") >> 20)) MiB) and ${work}/archive.img ready" >&2
