#!/bin/bash -e
# lablog stage, inside the image (pi-gen's on_chroot, or chroot in the
# emulated test): lablog's package, users, keys folder, units.

# lablog from its Debian package, as on any machine: binary, unit (enabled),
# the lablog user, its folders. The overlay's lablog.yaml, installed first,
# is kept (the package's example is not needed).
dpkg --force-confold --force-confdef -i /tmp/lablog.deb
# Kept as the package a failed update rolls back to (lablog update).
lablog update keep /tmp/lablog.deb
rm -f /tmp/lablog.deb /etc/lablog/lablog.yaml.dpkg-dist
# The read-only archive account: sshd forces rrsync -ro on it.
if ! getent passwd archive >/dev/null; then
	useradd --system --user-group --create-home --home-dir /var/lib/archive-ssh \
		--shell /bin/sh archive
fi
passwd -l archive >/dev/null
# No password login for anyone: keys come from the boot partition.
# shellcheck source=/dev/null
. /etc/default/lablog-image
passwd -l "${LABLOG_ADMIN_USER}" >/dev/null
# The archive is for lablog's group (files 0640): the admin reads it too.
usermod -aG lablog "${LABLOG_ADMIN_USER}"
install -d -m 0755 -o root -g root /etc/ssh/lablog-keys
install -d -m 0750 -o root -g lablog /etc/lablog
# Owners from image/overlay.modes.
while read -r mode owner path; do
	case "${mode}" in '#'* | '') continue ;; esac
	chown "${owner}" "${path}"
	chmod "${mode}" "${path}"
done </usr/local/share/lablog/overlay.modes

# cloud-init stays (Raspberry Pi Imager's settings, limited by the overlay's
# /etc/cloud/cloud.cfg.d/zz-lablog.cfg). An image built before it did was
# switched off with this file: never again.
rm -f /etc/cloud/cloud-init.disabled

# No swap: rpi-swap reads /etc/rpi/swap.conf.d/90-lablog-no-swap.conf (from
# the overlay). Raspberry Pi's first-boot resize: rpi-resize.service would
# edit cmdline.txt on the read-only boot partition; lablog-grow-root.service
# does what is left, once.
if [ -e /usr/lib/systemd/system/rpi-resize.service ] || [ -e /lib/systemd/system/rpi-resize.service ]; then
	systemctl mask rpi-resize.service
fi

systemctl enable nftables.service ssh.service avahi-daemon.service \
	lablog-import-config.service lablog-archive-guard.service \
	lablog-grow-root.service relay-host.service lablog.service lablog-update.service
