#!/usr/bin/env bash
# Usage text for the scripts in scripts/: sourced, never run. A script's usage is its header
# comment, from line 2 to the first line that is not a comment, so the two cannot disagree.
#
#   usage_text                  prints the running script's header without the leading "# "
#   help_or_no_arguments "$@"   for a script that takes no arguments: -h/--help prints
#                               usage_text and exits 0, any other argument exits 2
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  sed -n '2,/^[^#]/{/^# shellcheck /d;/^#/s/^# \{0,1\}//p}' "$0"
  exit 0
fi

usage_text() { sed -n '2,/^[^#]/{/^# shellcheck /d;/^#/s/^# \{0,1\}//p}' "$0"; }

help_or_no_arguments() {
  case "${1:-}" in
    -h | --help) usage_text; exit 0 ;;
    "") ;;
    *) echo "${0##*/}: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
}
