#!/usr/bin/env bash
# A private Docker engine for the testcontainers backend, with Redis and
# PostgreSQL images built locally from Debian packages (no registry needed).
#
#   scripts/local-docker.sh up     install docker.io/debootstrap if missing, start
#                                  dockerd, build the images, print the env
#   scripts/local-docker.sh env    print `export ...` lines for eval
#   scripts/local-docker.sh down   remove testcontainers' containers, stop dockerd
#                                  (images stay cached in the data root)
#
# Usage in CI:  scripts/local-docker.sh up && eval "$(scripts/local-docker.sh env)"
#
# Everything lives under NOTEPIPE_DOCKER_ROOT (default /var/tmp/notepipe-docker):
# its own socket, pidfile, data root and exec root. No other dockerd is used or
# touched. Published ports default to 127.0.0.1 (dockerd --ip).
set -euo pipefail

ROOT=${NOTEPIPE_DOCKER_ROOT:-/var/tmp/notepipe-docker}
SOCK="$ROOT/docker.sock"
PIDFILE="$ROOT/dockerd.pid"
DATA_ROOT="$ROOT/data"
EXEC_ROOT="$ROOT/exec"
LOGFILE="$ROOT/dockerd.log"
CACHE="$ROOT/cache"
BUILD="$ROOT/build"
DOCKER_HOST_URL="unix://$SOCK"
SUITE=bookworm
# bookworm ships Redis 7.0 and PostgreSQL 15; the build checks the installed versions.
REDIS_MAJOR=7
POSTGRES_MAJOR=15
REDIS_IMAGE="notepipe/redis:${REDIS_MAJOR}-debian"
POSTGRES_IMAGE="notepipe/postgres:${POSTGRES_MAJOR}-debian"
READY_TIMEOUT=${NOTEPIPE_DOCKER_READY_TIMEOUT:-60}
export DEBIAN_FRONTEND=noninteractive

elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1fs", b - a }'; }
log() { printf 'local-docker: %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

# The docker.io client matches the engine's API; fall back to any docker on PATH.
docker_cli() {
	local cli=/usr/bin/docker
	[[ -x $cli ]] || cli=docker
	"$cli" --host "$DOCKER_HOST_URL" "$@"
}

need_root() {
	[[ $(id -u) -eq 0 ]] || die "must run as root (dockerd and debootstrap need it); try: sudo $0 $*"
}

install_packages() {
	local missing=()
	command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
	command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
	((${#missing[@]} == 0)) && return 0
	log "installing ${missing[*]}"
	apt-get update -q
	apt-get install -y -q --no-install-recommends "${missing[@]}" ca-certificates
}

dockerd_pid() {
	[[ -s $PIDFILE ]] || return 1
	local pid
	pid=$(<"$PIDFILE")
	[[ -d /proc/$pid ]] || return 1
	# The pid must still be our dockerd, not a recycled pid.
	tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "--pidfile $PIDFILE" || return 1
	printf '%s\n' "$pid"
}

process_gone() { [[ ! -d /proc/$1 ]] || grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }

engine_ready() { docker_cli info >/dev/null 2>&1; }

wait_for() { # wait_for <timeout-seconds> <command...>: poll until it succeeds or time is up
	local deadline=$((SECONDS + $1))
	shift
	until "$@"; do
		((SECONDS < deadline)) || return 1
		sleep 0.1
	done
}

start_dockerd() {
	if dockerd_pid >/dev/null && engine_ready; then
		log "dockerd already running (pid $(dockerd_pid))"
		return 0
	fi
	rm -f "$PIDFILE"
	mkdir -p "$ROOT" "$DATA_ROOT" "$EXEC_ROOT"
	# An explicit (empty) config file so /etc/docker/daemon.json cannot add hosts or options.
	[[ -f $ROOT/daemon.json ]] || printf '{}\n' >"$ROOT/daemon.json"
	log "starting dockerd (log: $LOGFILE)"
	local started=$EPOCHREALTIME
	setsid dockerd \
		--config-file "$ROOT/daemon.json" \
		--host "$DOCKER_HOST_URL" \
		--pidfile "$PIDFILE" \
		--data-root "$DATA_ROOT" \
		--exec-root "$EXEC_ROOT" \
		--storage-driver overlay2 \
		--ip 127.0.0.1 \
		</dev/null >>"$LOGFILE" 2>&1 &
	if ! wait_for "$READY_TIMEOUT" engine_ready; then
		tail -n 30 "$LOGFILE" >&2 || true
		die "dockerd not ready after ${READY_TIMEOUT}s; see $LOGFILE"
	fi
	log "dockerd ready after $(elapsed "$started")"
}

debian_mirror() {
	# The Debian mirror apt uses here (deb822 .sources or one-line sources.list).
	local mirror
	mirror=$(
		cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null |
			awk -v suite="$SUITE" '
				/^[[:space:]]*#/ { next }
				/^URIs:/ { uris = $0; sub(/^URIs:[[:space:]]*/, "", uris) }
				/^Suites:/ { if ($0 ~ ("[[:space:]]" suite "([[:space:]]|$)")) { split(uris, u, " "); print u[1]; exit } }
				/^deb[[:space:]]/ { for (i = 2; i < NF; i++) if ($i ~ /^[a-z]+:\/\//) { if ($(i + 1) == suite) { print $i; exit } break } }
			'
	)
	printf '%s\n' "${mirror:-http://deb.debian.org/debian}"
}

base_tarball() {
	local tarball="$CACHE/$SUITE-minbase.tar.gz" mirror
	if [[ -s $tarball ]]; then
		printf '%s\n' "$tarball"
		return 0
	fi
	mirror=$(debian_mirror)
	mkdir -p "$CACHE"
	local dir="$BUILD/base"
	rm -rf "$dir"
	log "debootstrap --variant=minbase $SUITE from $mirror"
	debootstrap --variant=minbase "$SUITE" "$dir" "$mirror" >"$BUILD/debootstrap.log" 2>&1 ||
		{
			tail -n 30 "$BUILD/debootstrap.log" >&2
			die "debootstrap failed; see $BUILD/debootstrap.log"
		}
	# Never let a package's postinst start a daemon on the host.
	printf '#!/bin/sh\nexit 101\n' >"$dir/usr/sbin/policy-rc.d"
	chmod 755 "$dir/usr/sbin/policy-rc.d"
	tar --numeric-owner -C "$dir" -czf "$tarball.tmp" .
	mv "$tarball.tmp" "$tarball"
	rm -rf "$dir"
	printf '%s\n' "$tarball"
}

CHROOT=""
unmount_chroot() {
	local dir
	for dir in "$CHROOT/var/cache/apt/archives" "$CHROOT/proc"; do
		if mountpoint -q "$dir"; then umount "$dir" || umount -l "$dir"; fi
		# Never rm -rf through a mount (the deb cache, or /proc).
		! mountpoint -q "$dir" || die "cannot unmount $dir; remove $CHROOT by hand"
	done
}

cleanup_chroot() {
	[[ -n $CHROOT ]] || return 0
	unmount_chroot
	rm -rf "$CHROOT"
	CHROOT=""
}
trap cleanup_chroot EXIT

# build_image <tag> <name> <package> <post-install-sh> <entrypoint-file> <docker-import --change args...>
build_image() {
	local tag=$1 name=$2 package=$3 post=$4 entrypoint=$5
	shift 5
	if docker_cli image inspect "$tag" >/dev/null 2>&1; then
		log "$tag already built"
		return 0
	fi
	local started=$EPOCHREALTIME tarball
	tarball=$(base_tarball)
	CHROOT="$BUILD/$name"
	rm -rf "$CHROOT"
	mkdir -p "$CHROOT"
	tar --numeric-owner -C "$CHROOT" -xzf "$tarball"
	cp /etc/resolv.conf "$CHROOT/etc/resolv.conf"
	mount -t proc proc "$CHROOT/proc"
	# Downloaded .debs are kept in the cache, so a rebuild only downloads the package lists.
	mkdir -p "$CACHE/apt-archives/partial"
	mount --bind "$CACHE/apt-archives" "$CHROOT/var/cache/apt/archives"
	log "building $tag (apt-get install $package)"
	chroot "$CHROOT" /usr/bin/env DEBIAN_FRONTEND=noninteractive sh -ec "
		apt-get update -q
		apt-get install -y -q --no-install-recommends $package
		$post
	" >"$BUILD/$name.log" 2>&1 || {
		tail -n 30 "$BUILD/$name.log" >&2
		die "building $tag failed; see $BUILD/$name.log"
	}
	unmount_chroot
	chroot "$CHROOT" sh -ec "
		apt-get clean
		rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt/* /var/log/dpkg.log
	"
	install -m 755 "$entrypoint" "$CHROOT/usr/local/bin/docker-entrypoint.sh"
	: >"$CHROOT/etc/resolv.conf"
	local version want=${tag##*:}
	want=${want%-debian}
	# shellcheck disable=SC2016 # a dpkg-query format, not a shell expansion
	version=$(chroot "$CHROOT" dpkg-query -W -f '${Version}' "$package")
	version=${version#*:}      # epoch
	version=${version%%[-+~]*} # Debian revision
	[[ ${version%%.*} == "$want" ]] || die "$tag: $package gave version $version, expected $want.x"
	tar --numeric-owner -C "$CHROOT" -c . | docker_cli import "$@" - "$tag" >/dev/null
	docker_cli tag "$tag" "${tag%%:*}:$version-debian"
	cleanup_chroot
	log "built $tag (= ${tag%%:*}:$version-debian) in $(elapsed "$started")"
}

write_entrypoints() {
	mkdir -p "$BUILD"
	cat >"$BUILD/redis-entrypoint.sh" <<'EOF'
#!/bin/sh
# `docker run IMAGE redis-server --requirepass x` or `docker run IMAGE --requirepass x`.
set -eu
if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
	set -- redis-server "$@"
fi
if [ "$1" = redis-server ]; then
	shift
	mkdir -p /data
	chown redis:redis /data
	# No config file: listen on all container interfaces; a password is what protects it.
	exec setpriv --reuid=redis --regid=redis --init-groups \
		redis-server --bind '* -::*' --protected-mode no --dir /data "$@"
fi
exec "$@"
EOF
	cat >"$BUILD/postgres-entrypoint.sh" <<EOF
#!/bin/sh
# Honours POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB / POSTGRES_INITDB_ARGS like the
# official image. initdb skips fsync (a test server; the running server still fsyncs).
set -eu
PGBIN=/usr/lib/postgresql/$POSTGRES_MAJOR/bin
EOF
	cat >>"$BUILD/postgres-entrypoint.sh" <<'EOF'
PGDATA=${PGDATA:-/var/lib/postgresql/data}
POSTGRES_USER=${POSTGRES_USER:-postgres}
POSTGRES_DB=${POSTGRES_DB:-$POSTGRES_USER}
as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }

if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
	set -- postgres "$@"
fi
if [ "$1" != postgres ]; then
	exec "$@"
fi
shift
mkdir -p "$PGDATA" /var/run/postgresql
chown postgres:postgres "$PGDATA" /var/run/postgresql
chmod 700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
	if [ -z "${POSTGRES_PASSWORD:-}" ]; then
		echo "error: POSTGRES_PASSWORD is required" >&2
		exit 1
	fi
	pwfile=$(mktemp)
	printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
	chown postgres "$pwfile"
	as_postgres "$PGBIN/initdb" -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$pwfile" \
		--auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 \
		--no-sync ${POSTGRES_INITDB_ARGS:-}
	rm -f "$pwfile"
	echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
	{
		echo "listen_addresses = '*'"
		echo "unix_socket_directories = '/var/run/postgresql'"
	} >>"$PGDATA/postgresql.conf"
	if [ "$POSTGRES_DB" != postgres ]; then
		db=$(printf '%s' "$POSTGRES_DB" | sed 's/"/""/g')
		echo "CREATE DATABASE \"$db\";" | as_postgres "$PGBIN/postgres" --single -j -D "$PGDATA" postgres >/dev/null
	fi
	echo "PostgreSQL init process complete; ready for start up."
fi
# `docker import` cannot set STOPSIGNAL: turn `docker stop`'s SIGTERM into a fast
# shutdown (SIGINT) so open client connections cannot hold up a stop or restart.
# Not through the as_postgres function: $! must be postgres itself, not a subshell.
setpriv --reuid=postgres --regid=postgres --init-groups "$PGBIN/postgres" -D "$PGDATA" "$@" &
pid=$!
trap 'kill -INT "$pid" 2>/dev/null' INT TERM
set +e
wait "$pid"
status=$?
if kill -0 "$pid" 2>/dev/null; then
	wait "$pid"
	status=$?
fi
exit "$status"
EOF
}

build_images() {
	local started=$EPOCHREALTIME
	write_entrypoints
	build_image "$REDIS_IMAGE" redis redis-server : "$BUILD/redis-entrypoint.sh" \
		--change 'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]' \
		--change 'CMD ["redis-server"]' \
		--change 'EXPOSE 6379' \
		--change 'WORKDIR /data' \
		--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
	# The package creates a "main" cluster; the entrypoint runs initdb itself.
	build_image "$POSTGRES_IMAGE" postgres "postgresql-$POSTGRES_MAJOR" \
		"pg_dropcluster $POSTGRES_MAJOR main 2>/dev/null || true" "$BUILD/postgres-entrypoint.sh" \
		--change 'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]' \
		--change 'CMD ["postgres"]' \
		--change 'EXPOSE 5432' \
		--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		--change 'ENV PGDATA=/var/lib/postgresql/data'
	log "images ready in $(elapsed "$started")"
}

print_env() {
	cat <<EOF
export DOCKER_HOST=$DOCKER_HOST_URL
export NOTEPIPE_REDIS_IMAGE=$REDIS_IMAGE
export NOTEPIPE_POSTGRES_IMAGE=$POSTGRES_IMAGE
export TESTCONTAINERS_RYUK_DISABLED=true
export TESTCONTAINERS_CONNECTION_MODE=docker_host
EOF
}

remove_test_containers() {
	local ids
	ids=$(docker_cli ps -aq --filter label=org.testcontainers)
	if [[ -n $ids ]]; then
		log "removing $(wc -w <<<"$ids") testcontainers container(s)"
		# shellcheck disable=SC2086 # one id per word
		docker_cli rm -f $ids >/dev/null
	fi
}

stop_dockerd() {
	local pid
	if ! pid=$(dockerd_pid); then
		log "dockerd not running"
		rm -f "$PIDFILE"
		return 0
	fi
	engine_ready && remove_test_containers
	log "stopping dockerd (pid $pid)"
	kill -TERM "$pid"
	if wait_for 30 process_gone "$pid"; then
		log "dockerd stopped"
	else
		log "dockerd did not stop in 30s; killing pid $pid"
		kill -KILL "$pid" || true
	fi
	rm -f "$PIDFILE"
}

main() {
	case "${1:-}" in
	up)
		need_root "$@"
		install_packages
		start_dockerd
		build_images
		print_env
		;;
	down)
		need_root "$@"
		stop_dockerd
		;;
	env)
		print_env
		;;
	*)
		printf 'usage: %s up|down|env\n' "$0" >&2
		exit 2
		;;
	esac
}

main "$@"
