# shellcheck shell=sh
# Sourced by the project's scripts, from the repository's top directory:
# Debian packages that are missing get installed (as root, or with sudo).
#   install_missing_packages WHO PACKAGE...
# WHO begins the one line it prints ("setup: installing missing Debian
# packages: ..."); nothing is printed or run when all are there.
sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "ok installed"; }
install_missing_packages() {
    who=$1
    shift
    missing=""
    for p in "$@"; do installed "$p" || missing="$missing $p"; done
    [ -n "$missing" ] || return 0
    echo "$who: installing missing Debian packages:$missing" >&2
    $sudo apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
}
