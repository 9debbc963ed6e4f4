#!/usr/bin/env bash
# A stand-in for the `docker` command, enough of it for pi-gen's
# build-docker.sh: the tests put it on PATH as `docker` to run pi-gen's real
# Docker route without a Docker daemon (internal/e2e/image, TestDockerRoute).
#
#   build -t NAME DIR   copies DIR (less .dockerignore's work/ and deploy/)
#                       as the image's /pi-gen
#   run --name C ... NAME CMD...
#                       gives container C its own copy of the image and runs
#                       CMD in a private mount namespace where /pi-gen is that
#                       copy (the path is rewritten in CMD) and the build
#                       context DIR is hidden under an empty tmpfs: what the
#                       build writes to a host path is lost, as in a container
#   cp C:/pi-gen/X -    a tar stream of X; logs C; rm -v C; ps; info;
#                       container inspect -f '{{.State.Running}}' C
#
# Inside the "container" dpkg-reconfigure and mount only record their
# arguments: nothing touches this machine's binfmt_misc.
#
# Environment: DOCKER_STANDIN_STATE (required) holds images, containers and
# calls.log, one line per call.
set -euo pipefail

state=${DOCKER_STANDIN_STATE:?DOCKER_STANDIN_STATE must name the stand-in state folder}
mkdir -p "${state}/images" "${state}/containers"
printf '%s\n' "$*" >>"${state}/calls.log"

cmd=${1:-}
shift || true
case "${cmd}" in
info)
	echo "Server: docker stand-in (image/test/docker-standin.sh)"
	;;
ps)
	all=0 name=""
	while [ $# -gt 0 ]; do
		case "$1" in
		-a) all=1 ;;
		--filter) shift; name=${1#name=} ;;
		esac
		shift
	done
	for c in "${state}/containers"/*/; do
		[ -d "${c}" ] || continue
		c=$(basename "${c}")
		case "${c}" in *"${name}"*) ;; *) continue ;; esac
		if [ "${all}" = 1 ] || [ -e "${state}/containers/${c}/running" ]; then echo "${c}"; fi
	done
	;;
build)
	tag="" dir=""
	while [ $# -gt 0 ]; do
		case "$1" in
		-t) shift; tag=$1 ;;
		--build-arg) shift ;;
		*) dir=$1 ;;
		esac
		shift
	done
	img="${state}/images/${tag}"
	rm -rf "${img}"
	mkdir -p "${img}/pi-gen"
	rsync -a --exclude /work --exclude /deploy --exclude /output --exclude /apt-cacher-ng "${dir}/" "${img}/pi-gen/"
	(cd "${dir}" && pwd) >"${img}/context"
	;;
run)
	name="" image=""
	while [ $# -gt 0 ] && [ -z "${image}" ]; do
		case "$1" in
		--name) shift; name=$1 ;;
		--volume | -e) shift ;;
		--rm | --privileged | --volumes-from=*) ;;
		-*) ;;
		*) image=$1 ;;
		esac
		shift
	done
	if [ -z "${name}" ] || [ ! -d "${state}/images/${image}" ]; then
		echo "docker stand-in: run needs --name and a built image" >&2
		exit 125
	fi
	c="${state}/containers/${name}"
	if [ -e "${c}" ]; then echo "docker stand-in: container ${name} exists" >&2; exit 125; fi
	mkdir -p "${c}/bin"
	cp -a "${state}/images/${image}/pi-gen" "${c}/pi-gen"
	for tool in dpkg-reconfigure mount; do
		printf '#!/bin/sh\necho "%s $*" >>"%s/inside.log"\n' "${tool}" "${c}" >"${c}/bin/${tool}"
		chmod 0755 "${c}/bin/${tool}"
	done
	# The command, with /pi-gen mapped to the container's copy.
	args=()
	for a in "$@"; do args+=("${a//\/pi-gen/${c}/pi-gen}"); done
	touch "${c}/running"
	rc=0
	# shellcheck disable=SC2016 # expanded by the inner bash
	unshare --mount --propagation private /bin/bash -c '
		mount -t tmpfs lablog-standin-hidden "$1" && shift && PATH="$1:${PATH}" && shift && exec "$@"' \
		bash "$(cat "${state}/images/${image}/context")" "${c}/bin" "${args[@]}" 2>&1 | tee "${c}/log" || rc=$?
	rm -f "${c}/running"
	exit "${rc}"
	;;
cp)
	src=$1 dst=${2:-}
	c="${state}/containers/${src%%:*}"
	path=${src#*:}
	if [ ! -d "${c}" ] || [ "${dst}" != - ]; then
		echo "docker stand-in: cp CONTAINER:PATH - only" >&2
		exit 1
	fi
	tar -C "${c}$(dirname "${path}")" -cf - "$(basename "${path}")"
	;;
logs)
	[ "${1:-}" = --timestamps ] && shift
	cat "${state}/containers/$1/log"
	;;
rm)
	[ "${1:-}" = -v ] && shift
	[ -d "${state}/containers/$1" ] || { echo "Error: No such container: $1" >&2; exit 1; }
	rm -rf "${state}/containers/$1"
	;;
container)
	[ "${1:-}" = inspect ] || exit 1
	shift
	[ "${1:-}" = -f ] && shift 2
	c="${state}/containers/$1"
	[ -d "${c}" ] || { echo "Error: No such container: $1" >&2; exit 1; }
	if [ -e "${c}/running" ]; then echo true; else echo false; fi
	;;
stop) ;;
*)
	echo "docker stand-in: ${cmd} not emulated" >&2
	exit 1
	;;
esac
