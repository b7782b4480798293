#!/bin/sh
# Prints the Debian packages an image build needs: the "# Build" and
# "# Libraries" sections of ops/packages.txt (everything before "# Tests"),
# so the image and ops/dev.sh install from the one list.
#
#   build-deps.sh [ops/packages.txt]
set -eu
list=${1:-ops/packages.txt}
out=$(sed -n '/^# Build$/,/^# Tests/p' "$list" | grep -v '^#' | grep -v '^[[:space:]]*$' || true)
if [ -z "$out" ]; then
  echo "build-deps.sh: no '# Build' ... '# Tests' section in $list" >&2
  exit 1
fi
printf '%s\n' "$out"
