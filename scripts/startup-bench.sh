#!/usr/bin/env bash
# Process start-up of faultline (issue #16; BENCHMARKS.md, "Start-up"):
# median wall and CPU time over many runs of `--version`, a one-operation
# `check`, /bin/true (the floor: what any exec costs on this machine), and
# one process per Porcupine etcd corpus file.
#
#   scripts/startup-bench.sh [BINARY] [RUNS] [RUNS_PER_FILE]
#
# No hyperfine needed: a small C driver (posix_spawn + wait4, output to
# /dev/null) times each run; CPU is the child's user + system time, which a
# loaded machine distorts less than wall time.
set -euo pipefail
B=$(realpath "${1:-target/release/faultline}")
N=${2:-1000}
PER_FILE=${3:-21}
C=${C:-$(dirname "$0")/../../shared/corpus/porcupine/test_data/jepsen}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cat > "$T/spawnbench.c" <<'EOF'
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
extern char **environ;
static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}
int main(int argc, char **argv) {
  int n = atoi(argv[1]), code = 0;
  double *t = malloc(sizeof(double) * n), *c = malloc(sizeof(double) * n);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  for (int i = 0; i < n; i++) {
    struct timespec a, b;
    struct rusage ru;
    pid_t pid;
    int st;
    clock_gettime(CLOCK_MONOTONIC, &a);
    if (posix_spawn(&pid, argv[2], &fa, NULL, argv + 2, environ) != 0) return perror("spawn"), 1;
    wait4(pid, &st, 0, &ru);
    clock_gettime(CLOCK_MONOTONIC, &b);
    code = WEXITSTATUS(st);
    t[i] = (b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6;
    c[i] = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
  }
  qsort(t, n, sizeof(double), cmp);
  qsort(c, n, sizeof(double), cmp);
  printf("wall %.3f ms (p10 %.3f, p90 %.3f) cpu %.3f ms exit %d\n", t[n / 2],
         t[n / 10], t[n * 9 / 10], c[n / 2], code);
  return 0;
}
EOF
cc -O2 -o "$T/spawnbench" "$T/spawnbench.c"
printf '{"index":0,"time":1,"process":0,"type":"invoke","f":"write","value":1}\n{"index":1,"time":2,"process":0,"type":"ok","f":"write","value":1}\n' > "$T/one-op.jsonl"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "/bin/true:       $("$T/spawnbench" "$N" /bin/true)"
echo "--version:       $("$T/spawnbench" "$N" "$B" --version)"
echo "check one op:    $("$T/spawnbench" "$N" "$B" check "$T/one-op.jsonl")"
if [ -d "$C" ]; then
    for f in "$C"/etcd_*.log; do "$T/spawnbench" "$PER_FILE" "$B" check "$f"; done > "$T/per-file"
    # Fields: 2 = wall median, 9 = cpu median of each file.
    med() { sort -n | awk '{a[NR]=$1} END {printf "%.3f ms (slowest file %.3f ms)", a[int((NR+1)/2)], a[NR]}'; }
    echo "etcd corpus, one process per file, $(wc -l < "$T/per-file") files, median over files of each file's median:"
    echo "  wall $(awk '{print $2}' "$T/per-file" | med)"
    echo "  cpu  $(awk '{print $9}' "$T/per-file" | med)"
fi
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
