/*
 * The reference for nbd-bench: the same NBD I/O as ZPoolKit's, issued by a plain libnbd C loop
 * (synchronous calls, one connection), in the same run.
 *
 *   nbd_ref heartbeat URI PERIOD_MS COUNT OFFSET   one 4 KiB FUA write every PERIOD_MS at OFFSET,
 *                                                  on an absolute CLOCK_MONOTONIC schedule; prints
 *                                                  the gaps between issue instants (ns), one a line
 *   nbd_ref replay URI TRACE                       runs a trace of "W off len fua" / "R off len" /
 *                                                  "F" lines in order; prints the wall time (ns)
 *
 * Build: gcc -O2 nbd_ref.c -lnbd -o nbd_ref
 */
#define _GNU_SOURCE
#include <libnbd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static void die(const char *what) {
    fprintf(stderr, "nbd_ref: %s: %s\n", what, nbd_get_error());
    exit(1);
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: nbd_ref heartbeat URI PERIOD_MS COUNT OFFSET | replay URI TRACE\n");
        return 2;
    }
    struct nbd_handle *h = nbd_create();
    if (!h || nbd_connect_uri(h, argv[2]) == -1) die("connect");
    static char buf[16 << 20] __attribute__((aligned(4096)));
    if (strcmp(argv[1], "heartbeat") == 0 && argc == 6) {
        int64_t period = atoll(argv[3]) * 1000000;
        int count = atoi(argv[4]);
        uint64_t offset = strtoull(argv[5], NULL, 10);
        uint32_t flags = nbd_can_fua(h) == 1 ? LIBNBD_CMD_FLAG_FUA : 0;
        int64_t next = now_ns() + period, last = 0;
        for (int i = 0; i < count; i++) {
            struct timespec at = {next / 1000000000, next % 1000000000};
            while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL) != 0) {}
            int64_t issued = now_ns();
            if (last) printf("%lld\n", (long long)(issued - last));
            last = issued;
            memset(buf, i, 4096);
            if (nbd_pwrite(h, buf, 4096, offset, flags) == -1) die("pwrite");
            next += period;
        }
    } else if (strcmp(argv[1], "replay") == 0) {
        FILE *trace = fopen(argv[3], "r");
        if (!trace) { perror("nbd_ref: trace"); return 1; }
        char op;
        unsigned long long off, len;
        int fua;
        char line[256];
        int64_t start = now_ns();
        while (fgets(line, sizeof line, trace)) {
            if (sscanf(line, "W %llu %llu %d", &off, &len, &fua) == 3) {
                if (nbd_pwrite(h, buf, len, off, fua ? LIBNBD_CMD_FLAG_FUA : 0) == -1) die("pwrite");
            } else if (sscanf(line, "R %llu %llu", &off, &len) == 2) {
                if (nbd_pread(h, buf, len, off, 0) == -1) die("pread");
            } else if (sscanf(line, "%c", &op) == 1 && op == 'F') {
                if (nbd_flush(h, 0) == -1) die("flush");
            }
        }
        printf("%lld\n", (long long)(now_ns() - start));
        fclose(trace);
    } else {
        fprintf(stderr, "nbd_ref: unknown mode %s\n", argv[1]);
        return 2;
    }
    nbd_shutdown(h, 0);
    nbd_close(h);
    return 0;
}
