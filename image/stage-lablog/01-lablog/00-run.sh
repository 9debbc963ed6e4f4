#!/bin/bash -e
# lablog stage, host side: puts lablog's Debian package (installed by
# 01-run-chroot.sh), the relay host and the rootfs overlay into
# ${ROOTFS_DIR}. pi-gen runs this in this folder; the emulated image test
# (image/test/make-disk.sh) runs the very same script.
# files/ is filled by image/assemble-stage.sh.
#
# Environment: ROOTFS_DIR (the image's root), FIRST_USER_NAME (pi-gen's).

: "${ROOTFS_DIR:?ROOTFS_DIR must be set}"
: "${FIRST_USER_NAME:?FIRST_USER_NAME must be set}"

install -D -m 0644 files/lablog.deb "${ROOTFS_DIR}/tmp/lablog.deb"
# The practable relay (arm64), run as `relay host` by relay-host.service.
install -D -m 0755 files/relay-host "${ROOTFS_DIR}/usr/local/bin/relay-host"
install -D -m 0644 files/relay-host.copyright "${ROOTFS_DIR}/usr/share/doc/relay-host/copyright"

# The overlay, file by file with the modes of image/overlay.modes (owners
# other than root are set in 01-run-chroot.sh, where those users exist).
while read -r mode _owner path; do
	case "${mode}" in '#'* | '') continue ;; esac
	install -D -m "${mode}" "files/overlay${path}" "${ROOTFS_DIR}${path}"
done <files/overlay.modes
install -D -m 0644 files/overlay.modes "${ROOTFS_DIR}/usr/local/share/lablog/overlay.modes"

# Who the first-boot import gives the boot partition's authorized_keys to.
printf 'LABLOG_ADMIN_USER=%s\n' "${FIRST_USER_NAME}" >"${ROOTFS_DIR}/etc/default/lablog-image"
chmod 0644 "${ROOTFS_DIR}/etc/default/lablog-image"

# The archive drive, by label; nofail: boot goes on without it. The udev rule
# in the overlay mounts it when plugged in later.
fstab="${ROOTFS_DIR}/etc/fstab"
sed -i '\#[[:space:]]/media/lablog[[:space:]]#d' "${fstab}"
printf '%s\n' "LABEL=LABLOG /media/lablog ext4 defaults,noatime,nofail,x-systemd.device-timeout=30s 0 2" >>"${fstab}"

# The FAT boot partition stays read-only; the import remounts it read-write
# only while it removes the tokens (FAT has no journal).
sed -i -E '\#[[:space:]]/boot/firmware[[:space:]]#{/(^|[,[:space:]])ro([,[:space:]]|$)/!s#^([^[:space:]]+[[:space:]]+[^[:space:]]+[[:space:]]+vfat[[:space:]]+)([^[:space:]]+)#\1\2,ro#}' "${fstab}"

# cloud-init's seed files (meta-data, user-data, network-config) stay on the
# boot partition as stage2 wrote them (ENABLE_CLOUD_INIT=1): Raspberry Pi
# Imager rewrites them with its customisation.

# Mount the root read-only first, so that its fsck runs after a power cut,
# before systemd remounts it read-write.
cmdline="${ROOTFS_DIR}/boot/firmware/cmdline.txt"
if [ -f "${cmdline}" ] && ! grep -qE '(^| )ro( |$)' "${cmdline}"; then
	sed -i -E '1s/$/ ro/; 1s/  +/ /g' "${cmdline}"
fi
# pi-gen's `resize` stays: Raspberry Pi OS's initramfs grows the root
# partition at the first boot, and lablog-grow-root.service (the overlay)
# finishes the job and takes the word off.

# A site's config folder baked in at build time (make image SITE=folder):
# imported at first boot like one a technician put on the card.
if [ -d files/site ]; then
	mkdir -p "${ROOTFS_DIR}/boot/firmware/lablog"
	cp -r files/site/. "${ROOTFS_DIR}/boot/firmware/lablog/"
fi
