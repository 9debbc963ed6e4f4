# shellcheck shell=bash
# Helpers shared by the image scripts (sourced, never run).

# is_arm64 FILE: FILE is a linux/arm64 ELF binary (e_machine, bytes 18-19,
# is 0xb7 0x00).
is_arm64() { [ -f "$1" ] && [ "$(od -An -tx1 -j18 -N2 "$1" | tr -d ' ')" = "b700" ]; }
