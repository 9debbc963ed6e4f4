#!/bin/bash -e
# What pi-gen's stages 1-2 do that needs the Raspberry Pi archive (raspi-config,
# raspberrypi-sys-mods, NetworkManager), stood in for the emulated test; run.sh
# adds pi-gen's own stage1 sub-stages that run offline before this one
# (00-boot-files: cmdline.txt, config.txt; 01-sys-tweaks: fstab, first user).
here=$(pwd)

# stage1/02-net-tweaks (raspi-config do_net_names aside).
echo "${TARGET_HOSTNAME}" >"${ROOTFS_DIR}/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n' "${TARGET_HOSTNAME}" >"${ROOTFS_DIR}/etc/hosts"
# Raspberry Pi OS brings the network up with NetworkManager; here networkd.
mkdir -p "${ROOTFS_DIR}/etc/systemd/network"
printf '[Match]\nName=en* eth*\n\n[Network]\nDHCP=yes\n' >"${ROOTFS_DIR}/etc/systemd/network/50-wired.network"

# Packages of stage2, as stand-ins: an rpi-resize.service that fails if it
# ever runs (raspberrypi-sys-mods'; our stage must mask it) and
# console-setup's unit. cloud-init is Debian's own, in the root (build-rootfs.sh);
# rpi-cloud-init-mods, from the Raspberry Pi archive, is not there: our
# overlay's cloud.cfg.d/zz-lablog.cfg says everything the image relies on.
debs="${ROOTFS_DIR}/root/lablog-test-debs"
rm -rf "${debs}"
mkdir -p "${debs}"
standin() { # NAME DEPENDS FILE CONTENT
	local d="${debs}/$1"
	mkdir -p "${d}/DEBIAN" "$(dirname "${d}$3")"
	printf 'Package: %s\nVersion: 0-lablog-test\nArchitecture: all\nMaintainer: lablog image test <lablog@localhost>\n%sDescription: stand-in for the emulated image test\n' \
		"$1" "${2:+Depends: $2
}" >"${d}/DEBIAN/control"
	printf '%s\n' "$4" >"${d}$3"
	dpkg-deb --root-owner-group --build "${d}" "${debs}/$1.deb" >/dev/null
	rm -rf "${d}"
}
standin rpi-resize-standin "" /usr/lib/systemd/system/rpi-resize.service \
	"$(printf '[Unit]\nDescription=stand-in of Raspberry Pi OS rpi-resize (must be masked)\n[Service]\nType=oneshot\nExecStart=/bin/false\n[Install]\nWantedBy=multi-user.target')"
# stage2's console-setup (Debian's; cloud-init's keyboard module writes
# /etc/default/keyboard and restarts it): its unit, with no console to set
# up in QEMU.
standin console-setup-standin "" /usr/lib/systemd/system/console-setup.service \
	"$(printf '[Unit]\nDescription=stand-in of console-setup (emulated image test)\n[Service]\nType=oneshot\nExecStart=/bin/true\nRemainAfterExit=yes')"

# The key of the test's signed updates (make-updates.sh), trusted as a
# technician makes a Pi trust one (docs/updates.md, "Keys").
: "${LABLOG_TEST_UPDATE_KEY:?LABLOG_TEST_UPDATE_KEY must name the public key of the test updates}"
install -D -m 0644 "${LABLOG_TEST_UPDATE_KEY}" "${ROOTFS_DIR}/etc/lablog/update-keys/image-test.pub"

# The lab's traffic (test only): a local client of the image's real relay
# host that sends on ws://127.0.0.1:8888/ws/spin30..33; the relay host passes
# it to lablog, its other local client there (see lab-traffic.py).
install -D -m 0755 "${LABLOG_TEST_DIR}/lab-traffic.py" "${ROOTFS_DIR}/usr/local/lib/lablog-image-test/lab-traffic.py"
cat >"${ROOTFS_DIR}/etc/systemd/system/lablog-labtraffic.service" <<'UNIT'
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
cd "${here}"
