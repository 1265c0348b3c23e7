#!/bin/sh
# The `kiosk` command as the service runs it: as the user kodomat, with the
# service's environment. A file it reads or writes must be reachable by that user
# (e.g. in /var/tmp, not in /root). Installed by docs/deploy.md as
#   install -m 755 /srv/kodomat/deploy/kodomat.sh /usr/local/bin/kodomat
# then, as root:  kodomat db upgrade   kodomat create-user …   kodomat pools
# (KODOMAT_ENV, KODOMAT_HOME, KODOMAT_VENV, KODOMAT_USER change the defaults below.)
set -eu
ENV_FILE=${KODOMAT_ENV:-/etc/kodomat/kodomat.env}
HOME_DIR=${KODOMAT_HOME:-/srv/kodomat}
RUN_AS=${KODOMAT_USER:-kodomat}
VENV=${KODOMAT_VENV:-$HOME_DIR/.venv}
set -a
. "$ENV_FILE"
set +a
if [ "$(id -un)" = "$RUN_AS" ]; then
    exec "$VENV/bin/kiosk" "$@"
fi
exec runuser -u "$RUN_AS" -- "$VENV/bin/kiosk" "$@"
