#!/bin/bash -e
# lablog stage, inside the image (pi-gen's on_chroot, or chroot in the
# emulated test): lablog's package, users, keys folder, units.

# lablog from its Debian package, as on any machine: binary, unit (enabled),
# the lablog user, its folders. The overlay's lablog.yaml, installed first,
# is kept (the package's example is not needed).
dpkg --force-confold --force-confdef -i /tmp/lablog.deb
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
install -d -m 0755 -o root -g root /etc/ssh/lablog-keys
install -d -m 0750 -o root -g lablog /etc/lablog
# Owners from image/overlay.modes.
while read -r mode owner path; do
	case "${mode}" in '#'* | '') continue ;; esac
	chown "${owner}" "${path}"
	chmod "${mode}" "${path}"
done </usr/local/share/lablog/overlay.modes

# No swap file on the SD card (Raspberry Pi OS has dphys-swapfile).
if [ -e /usr/lib/systemd/system/dphys-swapfile.service ] || [ -e /lib/systemd/system/dphys-swapfile.service ]; then
	systemctl disable dphys-swapfile.service
fi

systemctl enable nftables.service ssh.service avahi-daemon.service \
	lablog-import-config.service lablog-archive-guard.service \
	relay-host.service lablog.service
