#!/usr/bin/env bash
# Rolling deploy of DTQ to EC2 instances behind an ALB target group, one instance at a time,
# dropping no request and losing no job:
#   for each instance: deregister it from the target group → wait out the deregistration delay
#   (the ALB stops sending and lets in-flight requests finish) → install the new release →
#   restart the API and worker units (SIGTERM: the worker finishes or hands back its jobs) →
#   wait for /health/ready → register it → wait until the target is healthy → next.
#   A failed health check stops the roll-out and rolls that instance back to the previous release.
#
# Usage:
#   scripts/deploy/rolling-deploy.sh --target-group-arn ARN --release dtq-1.2.3.tar.gz \
#       --instances "i-0abc i-0def" [--ssh-user ec2-user] [--port 8000] [--dry-run]
#
# Needs: aws (CLI v2, credentials for elbv2 and ec2 describe-instances), ssh/scp access to the
# instances, and on them: /opt/dtq/releases, the dtq-api/dtq-worker units, /etc/dtq/dtq.env.
set -euo pipefail

TG="" RELEASE="" INSTANCES="" SSH_USER="ec2-user" PORT=8000 DRY=0 READY_TRIES=60
while [ $# -gt 0 ]; do
  case "$1" in
    --target-group-arn) TG=$2; shift 2 ;;
    --release) RELEASE=$2; shift 2 ;;
    --instances) INSTANCES=$2; shift 2 ;;
    --ssh-user) SSH_USER=$2; shift 2 ;;
    --port) PORT=$2; shift 2 ;;
    --dry-run) DRY=1; shift ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
[ -n "$TG" ] && [ -n "$RELEASE" ] && [ -n "$INSTANCES" ] || { echo "need --target-group-arn, --release and --instances (see --help)" >&2; exit 2; }
[ "$DRY" = 1 ] || [ -f "$RELEASE" ] || { echo "release $RELEASE not found" >&2; exit 2; }
VERSION=$(basename "$RELEASE" .tar.gz)

step() { printf '\n== %s\n' "$*"; }
run() {
  printf '+ %s\n' "$*"
  [ "$DRY" = 1 ] || "$@"
}

host_of() {
  if [ "$DRY" = 1 ]; then echo "<ip of $1>"; return; fi
  aws ec2 describe-instances --instance-ids "$1" --query 'Reservations[0].Instances[0].PrivateIpAddress' --output text
}

remote() { run ssh -o BatchMode=yes "$SSH_USER@$1" "$2"; }

wait_ready() {
  local host=$1
  printf '+ wait for http://%s:%s/health/ready (up to %ss)\n' "$host" "$PORT" "$((READY_TRIES * 2))"
  [ "$DRY" = 1 ] && return 0
  for _ in $(seq "$READY_TRIES"); do
    if ssh -o BatchMode=yes "$SSH_USER@$host" "curl -fsS http://127.0.0.1:$PORT/health/ready" >/dev/null 2>&1; then return 0; fi
    sleep 2
  done
  return 1
}

activate() { # host, release dir name
  remote "$1" "sudo ln -sfn /opt/dtq/releases/$2 /opt/dtq/current && sudo systemctl restart dtq-api dtq-worker"
}

for id in $INSTANCES; do
  host=$(host_of "$id")
  step "$id ($host): take it out of the target group"
  run aws elbv2 deregister-targets --target-group-arn "$TG" --targets "Id=$id"
  # Returns once the ALB has drained the target (its deregistration delay).
  run aws elbv2 wait target-deregistered --target-group-arn "$TG" --targets "Id=$id"

  step "$id: install $VERSION"
  previous=$([ "$DRY" = 1 ] && echo '<previous>' || ssh -o BatchMode=yes "$SSH_USER@$host" 'basename "$(readlink -f /opt/dtq/current)"')
  run scp -o BatchMode=yes "$RELEASE" "$SSH_USER@$host:/tmp/$VERSION.tar.gz"
  remote "$host" "sudo mkdir -p /opt/dtq/releases/$VERSION && sudo tar -xzf /tmp/$VERSION.tar.gz -C /opt/dtq/releases/$VERSION && cd /opt/dtq/releases/$VERSION && sudo pnpm install --prod --frozen-lockfile"

  step "$id: restart on the new release (SIGTERM drains the old processes)"
  activate "$host" "$VERSION"
  if ! wait_ready "$host"; then
    step "$id: NOT READY — rolling back to $previous and stopping the roll-out"
    activate "$host" "$previous"
    wait_ready "$host" || echo "the previous release is not ready either: investigate $id" >&2
    run aws elbv2 register-targets --target-group-arn "$TG" --targets "Id=$id"
    exit 1
  fi

  step "$id: put it back"
  run aws elbv2 register-targets --target-group-arn "$TG" --targets "Id=$id"
  run aws elbv2 wait target-in-service --target-group-arn "$TG" --targets "Id=$id"
done
step "done: $VERSION on $(echo "$INSTANCES" | wc -w) instance(s)"
