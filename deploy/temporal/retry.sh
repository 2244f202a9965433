# Sourced by the one-shot setup scripts (mounted beside them at /retry.sh).
#
# retry CMD...: runs CMD until it succeeds, at most $attempts times (default 30), two
# seconds apart. Setup talks to servers that may not serve yet although their port is open.
retry() {
  n=1
  until "$@"; do
    if [ "$n" -ge "${attempts:-30}" ]; then
      echo "giving up after $n attempts: $*" >&2
      return 1
    fi
    echo "attempt $n/${attempts:-30} failed, retrying in 2 s: $*" >&2
    n=$((n + 1))
    sleep 2
  done
}
