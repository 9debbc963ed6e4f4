#!/bin/bash -e
# Inside the image (pi-gen's on_chroot): the rest of the stand-in for stage2.
dpkg -i /root/lablog-test-debs/*.deb
rm -rf /root/lablog-test-debs
# stage2/01-sys-tweaks: rpi-resize enabled, the first user in sudo,
# raspi-config do_sudo_pass (PASSWORDLESS_SUDO=1).
systemctl enable rpi-resize.service systemd-networkd.service lablog-labtraffic.service
user=$(getent passwd 1000 | cut -d: -f1)
adduser "${user}" sudo
echo "${user} ALL=(ALL) NOPASSWD: ALL" >"/etc/sudoers.d/010_${user}-nopasswd"
chmod 0440 "/etc/sudoers.d/010_${user}-nopasswd"
