/*
 * nvlist_ref: the reference side of `nvlist-bench`.
 *
 * Decodes (nvlist_unpack) and re-encodes (nvlist_pack) the packed nvlists of a corpus file
 * with Debian's libnvpair (OpenZFS 2.1.11 userland), the same number of passes as the Swift
 * side, and prints the elapsed time of each phase. `nvlist-bench` builds this file with gcc at
 * run time into a temporary directory:
 *
 *     gcc -O2 -I/usr/include/libspl -I/usr/include/libzfs nvlist_ref.c -lnvpair -o nvlist_ref
 *
 * (both -I flags are needed: <libnvpair.h> lives in libzfs/, and its <sys/nvpair.h> needs
 * libspl's <sys/types.h> for uint32_t and friends).
 *
 * Usage: nvlist_ref CORPUS PASSES MODE [ENCODED_OUT]
 *
 *   CORPUS       records of (u32 little-endian length, that many packed-nvlist bytes)
 *   PASSES       how many times to decode (and/or encode) every record
 *   MODE         decode, encode or both: which phases to time (the other reports 0)
 *   ENCODED_OUT  optional: write each record re-encoded once, in the corpus format, so the
 *                harness can compare our encoder's bytes with libnvpair's
 *
 * Each record is re-encoded in its own encoding (byte 0 of its header: 0 native, 1 XDR), as
 * the writer of a label (XDR) or a cache file (native) would.
 *
 * Output, one line:  decode_ns=N encode_ns=N bytes=N pairs=N
 *   bytes = packed bytes per pass (the input size: what MB/s is computed from)
 *   pairs = top-level pairs per pass, a cross-check that both sides decoded the same thing
 */
#include <libnvpair.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t
now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec);
}

static void
die(const char *what, int err)
{
	fprintf(stderr, "nvlist_ref: %s (error %d)\n", what, err);
	exit(2);
}

int
main(int argc, char **argv)
{
	if (argc < 4 || argc > 5) {
		fprintf(stderr, "usage: nvlist_ref CORPUS PASSES MODE [ENCODED_OUT]\n");
		return (64);
	}
	long passes = strtol(argv[2], NULL, 10);
	if (passes <= 0)
		die("PASSES must be positive", 0);
	int do_decode = strcmp(argv[3], "decode") == 0 || strcmp(argv[3], "both") == 0;
	int do_encode = strcmp(argv[3], "encode") == 0 || strcmp(argv[3], "both") == 0;
	if (!do_decode && !do_encode)
		die("MODE must be decode, encode or both", 0);

	FILE *f = fopen(argv[1], "rb");
	if (f == NULL)
		die("cannot open corpus", 0);
	size_t cap = 16, n = 0;
	char **bufs = malloc(cap * sizeof (char *));
	size_t *lens = malloc(cap * sizeof (size_t));
	unsigned char hdr[4];
	while (fread(hdr, 1, 4, f) == 4) {
		size_t len = (size_t)hdr[0] | (size_t)hdr[1] << 8 |
		    (size_t)hdr[2] << 16 | (size_t)hdr[3] << 24;
		if (n == cap) {
			cap *= 2;
			bufs = realloc(bufs, cap * sizeof (char *));
			lens = realloc(lens, cap * sizeof (size_t));
		}
		bufs[n] = malloc(len);
		if (fread(bufs[n], 1, len, f) != len)
			die("corpus record is truncated", 0);
		lens[n++] = len;
	}
	fclose(f);
	if (n == 0)
		die("corpus is empty", 0);

	uint64_t bytes = 0, pairs = 0;
	nvlist_t **lists = malloc(n * sizeof (nvlist_t *));
	int *encodings = malloc(n * sizeof (int));
	for (size_t i = 0; i < n; i++) {
		int err = nvlist_unpack(bufs[i], lens[i], &lists[i], 0);
		if (err != 0)
			die("nvlist_unpack failed on a corpus record", err);
		encodings[i] = bufs[i][0] == 0 ? NV_ENCODE_NATIVE : NV_ENCODE_XDR;
		bytes += lens[i];
		for (nvpair_t *p = nvlist_next_nvpair(lists[i], NULL); p != NULL;
		    p = nvlist_next_nvpair(lists[i], p))
			pairs++;
	}

	if (argc == 5) {
		FILE *out = fopen(argv[4], "wb");
		if (out == NULL)
			die("cannot create ENCODED_OUT", 0);
		for (size_t i = 0; i < n; i++) {
			char *buf = NULL;
			size_t len = 0;
			int err = nvlist_pack(lists[i], &buf, &len, encodings[i], 0);
			if (err != 0)
				die("nvlist_pack failed", err);
			unsigned char h[4] = { len & 0xff, (len >> 8) & 0xff,
			    (len >> 16) & 0xff, (len >> 24) & 0xff };
			fwrite(h, 1, 4, out);
			fwrite(buf, 1, len, out);
			free(buf);
		}
		fclose(out);
	}

	/* Decode: unpack into a fresh nvlist_t and free it, as a reader of labels does. */
	uint64_t sink = 0;
	uint64_t t0 = now_ns();
	for (long pass = 0; do_decode && pass < passes; pass++) {
		for (size_t i = 0; i < n; i++) {
			nvlist_t *nvl = NULL;
			int err = nvlist_unpack(bufs[i], lens[i], &nvl, 0);
			if (err != 0)
				die("nvlist_unpack failed", err);
			sink += (uintptr_t)nvl & 0xff;
			nvlist_free(nvl);
		}
	}
	uint64_t t1 = now_ns();

	/* Encode: nvlist_pack into a buffer it allocates (size pass + write pass), then free. */
	for (long pass = 0; do_encode && pass < passes; pass++) {
		for (size_t i = 0; i < n; i++) {
			char *buf = NULL;
			size_t len = 0;
			int err = nvlist_pack(lists[i], &buf, &len, encodings[i], 0);
			if (err != 0)
				die("nvlist_pack failed", err);
			sink += len + (unsigned char)buf[len - 1];
			free(buf);
		}
	}
	uint64_t t2 = now_ns();

	printf("decode_ns=%llu encode_ns=%llu bytes=%llu pairs=%llu sink=%llu\n",
	    (unsigned long long)(t1 - t0), (unsigned long long)(t2 - t1),
	    (unsigned long long)bytes, (unsigned long long)pairs,
	    (unsigned long long)sink);

	for (size_t i = 0; i < n; i++) {
		nvlist_free(lists[i]);
		free(bufs[i]);
	}
	free(lists);
	free(encodings);
	free(bufs);
	free(lens);
	return (0);
}
