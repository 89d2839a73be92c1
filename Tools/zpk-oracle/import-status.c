/*
 * zpk-import-status [--hostid HEX] FILE
 *
 * Prints what libzfs says about the packed pool config in FILE (a
 * spa_tryimport() answer, packed by zpk-oracle), as `zpool import` would:
 *
 *     STATUS MSGID ERRATA POOLSTATE       zpool_import_status(), and
 *                                         zpool_pool_state_to_name()
 *     VDEVSTATE                           zpool_state_to_name(), one line per
 *     ...                                 vdev: children, then cache devices,
 *                                         then spares, depth first
 *
 * STATUS is the zpool_status_t name without its ZPOOL_STATUS_ prefix, MSGID
 * the ZFS-8000-xx message id or "-", ERRATA the zpool_errata_t number.
 *
 * This is a separate program because libzfs and libzpool cannot be loaded
 * into one process.  In 2.1.11 zpool_import_status() needs no libzfs handle.
 * It compares the config's host id with get_system_hostid(), which reads
 * ZFS_HOSTID; --hostid sets that variable (0: unset it; the caller hides
 * /etc/hostid by preloading libzpk-zfsdev.so with ZPK_HIDE_HOSTID).
 */

#include <libzfs.h>
#include <libnvpair.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define	NAME(s)	[ZPOOL_STATUS_##s] = #s

static const char *const status_names[] = {
	NAME(CORRUPT_CACHE), NAME(MISSING_DEV_R), NAME(MISSING_DEV_NR),
	NAME(CORRUPT_LABEL_R), NAME(CORRUPT_LABEL_NR), NAME(BAD_GUID_SUM),
	NAME(CORRUPT_POOL), NAME(CORRUPT_DATA), NAME(FAILING_DEV),
	NAME(VERSION_NEWER), NAME(HOSTID_MISMATCH), NAME(HOSTID_ACTIVE),
	NAME(HOSTID_REQUIRED), NAME(IO_FAILURE_WAIT),
	NAME(IO_FAILURE_CONTINUE), NAME(IO_FAILURE_MMP), NAME(BAD_LOG),
	NAME(ERRATA), NAME(UNSUP_FEAT_READ), NAME(UNSUP_FEAT_WRITE),
	NAME(FAULTED_DEV_R), NAME(FAULTED_DEV_NR), NAME(VERSION_OLDER),
	NAME(FEAT_DISABLED), NAME(RESILVERING), NAME(OFFLINE_DEV),
	NAME(REMOVED_DEV), NAME(REBUILDING), NAME(REBUILD_SCRUB),
	NAME(NON_NATIVE_ASHIFT), NAME(COMPATIBILITY_ERR),
	NAME(INCOMPATIBLE_FEAT), NAME(OK),
};

/* The word zpool prints for each vdev, in zpk-oracle's order. */
static void
print_states(nvlist_t *nv)
{
	static const char *const lists[] = { ZPOOL_CONFIG_CHILDREN,
	    ZPOOL_CONFIG_L2CACHE, ZPOOL_CONFIG_SPARES };
	vdev_stat_t *vs;
	nvlist_t **kids;
	uint_t n;

	if (nvlist_lookup_uint64_array(nv, ZPOOL_CONFIG_VDEV_STATS,
	    (uint64_t **)&vs, &n) == 0)
		(void) printf("%s\n", zpool_state_to_name(vs->vs_state,
		    vs->vs_aux));
	else
		(void) printf("UNKNOWN\n");
	for (size_t l = 0; l < sizeof (lists) / sizeof (lists[0]); l++) {
		if (nvlist_lookup_nvlist_array(nv, lists[l], &kids, &n) != 0)
			continue;
		for (uint_t c = 0; c < n; c++)
			print_states(kids[c]);
	}
}

int
main(int argc, char **argv)
{
	const char *file;
	char *buf = NULL, *msgid = NULL;
	size_t len = 0, cap = 0, n;
	nvlist_t *config;
	FILE *f;

	if (argc == 4 && strcmp(argv[1], "--hostid") == 0) {
		/* libspl reads ZFS_HOSTID with strtoull(, 0): spell it 0x... */
		unsigned long id = strtoul(argv[2], NULL, 16);
		char text[24];
		(void) snprintf(text, sizeof (text), "0x%lx", id);
		if (id != 0)
			(void) setenv("ZFS_HOSTID", text, 1);
		else
			(void) unsetenv("ZFS_HOSTID");
		file = argv[3];
	} else if (argc == 2) {
		file = argv[1];
	} else {
		(void) fprintf(stderr, "usage: zpk-import-status "
		    "[--hostid HEX] PACKED-CONFIG\n");
		return (2);
	}

	if ((f = fopen(file, "r")) == NULL) {
		(void) fprintf(stderr, "zpk-import-status: %s: %s\n", file,
		    strerror(errno));
		return (1);
	}
	do {
		if (len == cap && (buf = realloc(buf, cap = cap * 2 + 65536))
		    == NULL)
			return (1);
		n = fread(buf + len, 1, cap - len, f);
		len += n;
	} while (n > 0);
	(void) fclose(f);
	if (nvlist_unpack(buf, len, &config, 0) != 0) {
		(void) fprintf(stderr, "zpk-import-status: %s holds no packed "
		    "nvlist\n", file);
		return (1);
	}

	zpool_errata_t errata = ZPOOL_ERRATA_NONE;
	zpool_status_t status = zpool_import_status(config, &msgid, &errata);
	const char *name = (unsigned)status < sizeof (status_names) /
	    sizeof (status_names[0]) && status_names[status] != NULL ?
	    status_names[status] : "UNKNOWN";
	uint64_t state = POOL_STATE_UNAVAIL;
	nvlist_t *root = NULL;
	(void) nvlist_lookup_uint64(config, ZPOOL_CONFIG_POOL_STATE, &state);
	(void) printf("%s %s %u %s\n", name, msgid != NULL ? msgid : "-",
	    (unsigned)errata, zpool_pool_state_to_name((pool_state_t)state));
	if (nvlist_lookup_nvlist(config, ZPOOL_CONFIG_VDEV_TREE, &root) == 0)
		print_states(root);
	nvlist_free(config);
	free(buf);
	return (0);
}
