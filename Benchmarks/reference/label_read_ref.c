/*
 * label_read_ref: the floor for pool discovery — read the config area of the four labels of
 * every device in a list, and nothing else (no directory listing, no decoding, no checksums).
 *
 *   label_read_ref LISTFILE THREADS
 *
 * LISTFILE holds one device path per line. For each device: open(O_RDONLY), fstat, four
 * pread()s of 112 KiB (the label config block, VDEV_PHYS_SIZE) at the label offsets
 * (vdev_label_offset: L0 at 0, L1 at 256 KiB, L2 and L3 at the end of the size rounded down to
 * 256 KiB), close. THREADS workers take devices from a shared counter (1 = a plain loop, what
 * `dd` per label would do without the process starts). Prints, on one line:
 *   elapsed-ns devices bytes-read byte-sum
 * The byte sum keeps the reads from being optimised away and lets the caller check that both
 * sides read the same bytes. Timing covers the reads only (list already in memory).
 *
 * Built at run time by Benchmarks/Sources/scan-bench with `gcc -O2 -pthread`.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LABEL_SIZE (256 * 1024)
#define CONFIG_OFFSET (16 * 1024)
#define CONFIG_SIZE (112 * 1024)

static char **paths;
static size_t npaths;
static atomic_size_t next_index;
static atomic_ulong total_bytes;
static atomic_ulong total_sum;

static void *
worker(void *arg)
{
	(void) arg;
	unsigned char *buf = malloc(CONFIG_SIZE);
	unsigned long bytes = 0, sum = 0;
	for (;;) {
		size_t i = atomic_fetch_add(&next_index, 1);
		if (i >= npaths)
			break;
		int fd = open(paths[i], O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		struct stat st;
		if (fstat(fd, &st) != 0) {
			close(fd);
			continue;
		}
		uint64_t size = (uint64_t)st.st_size & ~((uint64_t)LABEL_SIZE - 1);
		uint64_t offsets[4] = { 0, LABEL_SIZE, size - 2 * LABEL_SIZE, size - LABEL_SIZE };
		for (int l = 0; l < 4; l++) {
			ssize_t n = pread(fd, buf, CONFIG_SIZE, (off_t)(offsets[l] + CONFIG_OFFSET));
			if (n > 0) {
				bytes += (unsigned long)n;
				for (ssize_t k = 0; k < n; k += 4096)
					sum += buf[k];
			}
		}
		close(fd);
	}
	atomic_fetch_add(&total_bytes, bytes);
	atomic_fetch_add(&total_sum, sum);
	free(buf);
	return NULL;
}

int
main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: label_read_ref LISTFILE THREADS\n");
		return 64;
	}
	FILE *list = fopen(argv[1], "r");
	if (list == NULL) {
		perror(argv[1]);
		return 1;
	}
	int threads = atoi(argv[2]);
	if (threads < 1)
		threads = 1;
	size_t capacity = 1024;
	paths = malloc(capacity * sizeof (char *));
	char *line = NULL;
	size_t length = 0;
	ssize_t got;
	while ((got = getline(&line, &length, list)) > 0) {
		if (line[got - 1] == '\n')
			line[got - 1] = '\0';
		if (npaths == capacity) {
			capacity *= 2;
			paths = realloc(paths, capacity * sizeof (char *));
		}
		paths[npaths++] = strdup(line);
	}
	fclose(list);

	struct timespec start, end;
	clock_gettime(CLOCK_MONOTONIC, &start);
	if (threads == 1) {
		worker(NULL);
	} else {
		pthread_t *tids = malloc((size_t)threads * sizeof (pthread_t));
		for (int t = 0; t < threads; t++)
			pthread_create(&tids[t], NULL, worker, NULL);
		for (int t = 0; t < threads; t++)
			pthread_join(tids[t], NULL);
		free(tids);
	}
	clock_gettime(CLOCK_MONOTONIC, &end);
	long long ns = (long long)(end.tv_sec - start.tv_sec) * 1000000000LL + (end.tv_nsec - start.tv_nsec);
	printf("%lld %zu %lu %lu\n", ns, npaths, atomic_load(&total_bytes), atomic_load(&total_sum));
	return 0;
}
