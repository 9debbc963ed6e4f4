#!/usr/bin/env bash
# Prints the copyright notice of the relay host binary BIN that the image
# ships as /usr/local/bin/relay-host (installed as
# /usr/share/doc/relay-host/copyright): the practable relay is a separate
# program under the GNU GPL version 3, and its recipients must be told where
# its source is. Which source BIN was built from is read from BIN.source,
# written by relay-arm64.sh; a prebuilt binary without one says so.
set -euo pipefail
bin=${1:?usage: relay-copyright.sh RELAY_HOST_BIN}
built="an unrecorded version (a prebuilt binary, RELAY_HOST_BIN)"
if [ -f "${bin}.source" ]; then
	built=$(head -1 "${bin}.source")
fi
cat <<MSG
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: relay (practable), installed as /usr/local/bin/relay-host
Source: https://github.com/practable/relay
Comment: This binary was built, unchanged, from ${built}.
 Relay source tarballs are named relay-src-<commit>.tar.gz after the
 commit of github.com/practable/relay they hold. It is not part of lablog
 (Apache-2.0): lablog only talks to it over HTTP and websockets.
 The relay repository's LICENSE file is the GNU GPL version 3; some of its
 source files' headers name the GNU Affero GPL version 3 or later.

Files: *
Copyright: 2020-2026 Tim Drysdale and the practable relay contributors
License: GPL-3.0-or-later

License: GPL-3.0-or-later
 This program is free software: you can redistribute it and/or modify it
 under the terms of the GNU General Public License as published by the Free
 Software Foundation, either version 3 of the License, or (at your option)
 any later version.
 .
 On Debian systems, the complete text of the GNU General Public License
 version 3 can be found in "/usr/share/common-licenses/GPL-3".
MSG
