/*
 * zpk-oracle: ZPoolKit's OpenZFS oracle.
 *
 * A small program linked against the real OpenZFS 2.1.11 userland libraries
 * (libzpool for the pool code, libzutil inside libzfs_core for the label
 * scanner, libnvpair).  ZPoolKit's tests run it as "another host": it lists
 * importable pools the way `zpool import` does, creates pools on plain files,
 * imports them with the real Multi-Modifier Protection (MMP) activity check,
 * and keeps them imported (optionally dying without an export, like a crashed
 * host).  Each process claims its own host id, so two processes on one
 * machine act as two hosts sharing the same disks.
 *
 * Output contract (see README.md): stdout carries result lines only, one
 * record per line, fields as key=value with values percent-encoded (no
 * spaces); the last line is always "RESULT ...".  Everything else, including
 * a filtered copy of libzpool's debug log, goes to stderr.  Exit status:
 * 0 ok, 1 error, 2 usage, 3 pool active on another host.
 */

/*
 * libspl's sysmacros.h first: zfs_context.h would otherwise define _NOTE
 * twice (a harmless but noisy warning).
 */
#include <sys/sysmacros.h>
#include <sys/zfs_context.h>
#include <sys/systeminfo.h>
#include <sys/spa.h>
#include <sys/spa_impl.h>
#include <sys/mmp.h>
#include <sys/txg.h>
#include <sys/dmu.h>
#include <sys/dsl_pool.h>
#include <sys/uberblock_impl.h>
#include <sys/fs/zfs.h>
#include <sys/zio.h>
#include <zfeature_common.h>
#include <zfs_namecheck.h>
#include <libzutil.h>
#include <libnvpair.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum {
	XIT_OK = 0,
	XIT_ERROR = 1,
	XIT_USAGE = 2,
	XIT_ACTIVE = 3,
};

#define	ORACLE			"zpk-oracle"
#define	MAXDIRS			32
#define	KEY_UB_TXG		"zpk-oracle:ub_txg"
#define	KEY_TRY_NS		"zpk-oracle:tryimport_ns"

/* ------------------------------------------------------------------ */
/* options                                                             */
/* ------------------------------------------------------------------ */

static struct options {
	char		*dirs[MAXDIRS];
	int		ndirs;
	int		have_hostid;
	uint32_t	hostid;
	const char	*hostname;
	int		force;
	int		no_export;
	int		debug;
	int		multihost;		/* -1 unset, 0 off, 1 on */
	long		seconds;		/* -1 unset */
	long long	interval_ms;		/* -1 unset */
	long long	fail_intervals;		/* -1 unset */
	long long	import_intervals;	/* -1 unset */
	uint64_t	size;
	int		ashift;			/* 0: automatic */
	int		no_features;
} o = {
	.multihost = -1,
	.seconds = -1,
	.interval_ms = -1,
	.fail_intervals = -1,
	.import_intervals = -1,
	.size = 128ULL << 20,
};

/* libzpool's uname(2) copy (kernel.c); utsname() returns its address. */
extern struct utsname hw_utsname;

/* Results go here: a private copy of the original stdout (see main()). */
static FILE *results;

/* ------------------------------------------------------------------ */
/* output                                                              */
/* ------------------------------------------------------------------ */

static void
note(const char *fmt, ...)
{
	va_list ap;
	char buf[2048];

	va_start(ap, fmt);
	(void) vsnprintf(buf, sizeof (buf), fmt, ap);
	va_end(ap);
	(void) fprintf(stderr, ORACLE ": %s\n", buf);
	(void) fflush(stderr);
}

/* A result line under construction. */
typedef struct line {
	char	buf[16384];
	size_t	len;
} line_t;

static void
ln_raw(line_t *l, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (l->len >= sizeof (l->buf))
		return;
	va_start(ap, fmt);
	n = vsnprintf(l->buf + l->len, sizeof (l->buf) - l->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		l->len = MIN(l->len + (size_t)n, sizeof (l->buf) - 1);
}

/*
 * Values never contain spaces: bytes <= 0x20, >= 0x7f, '%' and '=' are
 * written as %XX; a missing or empty value is "-" (a literal "-" is %2D).
 */
static void
ln_val(line_t *l, const char *value)
{
	if (value == NULL || value[0] == '\0') {
		ln_raw(l, "-");
		return;
	}
	if (strcmp(value, "-") == 0) {
		ln_raw(l, "%%2D");
		return;
	}
	for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
		if (*p <= 0x20 || *p >= 0x7f || *p == '%' || *p == '=')
			ln_raw(l, "%%%02X", *p);
		else
			ln_raw(l, "%c", *p);
	}
}

static void
ln_str(line_t *l, const char *key, const char *value)
{
	ln_raw(l, " %s=", key);
	ln_val(l, value);
}

static void
ln_u64(line_t *l, const char *key, uint64_t v)
{
	ln_raw(l, " %s=%llu", key, (u_longlong_t)v);
}

static void
ln_hex(line_t *l, const char *key, uint64_t v)
{
	ln_raw(l, " %s=0x%llx", key, (u_longlong_t)v);
}

static void
ln_emit(line_t *l)
{
	(void) fprintf(results, "%s\n", l->buf);
	(void) fflush(results);
	l->len = 0;
	l->buf[0] = '\0';
}

static const char *
errno_name(int e)
{
	static const struct { int e; const char *n; } t[] = {
		{ 0, "OK" }, { EPERM, "EPERM" }, { ENOENT, "ENOENT" },
		{ EINTR, "EINTR" }, { EIO, "EIO" }, { ENXIO, "ENXIO" },
		{ EBADF, "EBADF" }, { EAGAIN, "EAGAIN" }, { ENOMEM, "ENOMEM" },
		{ EACCES, "EACCES" }, { EBUSY, "EBUSY" }, { EEXIST, "EEXIST" },
		{ ENODEV, "ENODEV" }, { ENOTDIR, "ENOTDIR" },
		{ EINVAL, "EINVAL" }, { ENOSPC, "ENOSPC" }, { EROFS, "EROFS" },
		{ EDOM, "EDOM" }, { ERANGE, "ERANGE" }, { ENOTSUP, "ENOTSUP" },
		{ ENAMETOOLONG, "ENAMETOOLONG" }, { EOVERFLOW, "EOVERFLOW" },
		{ ETIMEDOUT, "ETIMEDOUT" }, { EREMOTEIO, "EREMOTEIO" },
		{ EBADE, "ECKSUM" }, { EBADR, "EFRAGS" },
		{ ENOANO, "ENOTACTIVE" },
	};
	static char other[24];

	for (size_t i = 0; i < sizeof (t) / sizeof (t[0]); i++)
		if (t[i].e == e)
			return (t[i].n);
	(void) snprintf(other, sizeof (other), "E%d", e);
	return (other);
}

/* "RESULT error ENAME text"; returns XIT_ERROR. */
static int
result_error(int err, const char *fmt, ...)
{
	char text[1024];
	va_list ap;

	va_start(ap, fmt);
	(void) vsnprintf(text, sizeof (text), fmt, ap);
	va_end(ap);
	(void) fprintf(results, "RESULT error %s %s\n", errno_name(err), text);
	(void) fflush(results);
	return (XIT_ERROR);
}

static double
seconds_now(void)
{
	struct timespec ts;

	(void) clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
}

/* ------------------------------------------------------------------ */
/* names of OpenZFS enumerations                                       */
/* ------------------------------------------------------------------ */

static const char *
pool_state_str(uint64_t s)
{
	static const char *n[] = { "ACTIVE", "EXPORTED", "DESTROYED",
	    "SPARE", "L2CACHE", "UNINITIALIZED", "UNAVAIL",
	    "POTENTIALLY_ACTIVE" };

	return (s < sizeof (n) / sizeof (n[0]) ? n[s] : "UNKNOWN");
}

static const char *
aux_str(uint64_t aux)
{
	static const char *n[] = { "none", "open_failed", "corrupt_data",
	    "no_replicas", "bad_guid_sum", "too_small", "bad_label",
	    "version_newer", "version_older", "unsup_feat", "spared",
	    "err_exceeded", "io_failure", "bad_log", "external",
	    "split_pool", "bad_ashift", "external_persist", "active",
	    "children_offline", "ashift_too_big" };

	return (aux < sizeof (n) / sizeof (n[0]) ? n[aux] : "unknown");
}

/* The state names `zpool import`/`zpool status` print (zpool_state_to_name). */
static const char *
vdev_state_str(uint64_t state, uint64_t aux)
{
	switch (state) {
	case VDEV_STATE_CLOSED:
	case VDEV_STATE_OFFLINE:
		return ("OFFLINE");
	case VDEV_STATE_REMOVED:
		return ("REMOVED");
	case VDEV_STATE_CANT_OPEN:
		if (aux == VDEV_AUX_CORRUPT_DATA || aux == VDEV_AUX_BAD_LOG)
			return ("FAULTED");
		if (aux == VDEV_AUX_SPLIT_POOL)
			return ("SPLIT");
		return ("UNAVAIL");
	case VDEV_STATE_FAULTED:
		return ("FAULTED");
	case VDEV_STATE_DEGRADED:
		return ("DEGRADED");
	case VDEV_STATE_HEALTHY:
		return ("ONLINE");
	default:
		return ("UNKNOWN");
	}
}

static const char *
mmp_state_str(uint64_t s)
{
	switch (s) {
	case MMP_STATE_ACTIVE: return ("ACTIVE");
	case MMP_STATE_INACTIVE: return ("INACTIVE");
	case MMP_STATE_NO_HOSTID: return ("NO_HOSTID");
	default: return ("UNKNOWN");
	}
}

/* ------------------------------------------------------------------ */
/* libzpool's debug log (zfs_dbgmsg)                                   */
/* ------------------------------------------------------------------ */

/* Number of zfs_dbgmsg lines already handed out by dbg_take(). */
static size_t dbg_taken;

/*
 * Calls fn on each zfs_dbgmsg line logged since the previous call.  The log
 * is only reachable through zfs_dbgmsg_print(), which write()s to file
 * descriptor 1, so that descriptor points at a temporary file meanwhile.
 */
static void
dbg_take(void (*fn)(const char *, void *), void *arg)
{
	FILE *tmp = tmpfile();
	char *line = NULL;
	size_t cap = 0, n = 0;
	ssize_t len;
	int saved;

	if (tmp == NULL)
		return;
	saved = dup(STDOUT_FILENO);
	if (saved < 0) {
		(void) fclose(tmp);
		return;
	}
	(void) fflush(stdout);
	(void) dup2(fileno(tmp), STDOUT_FILENO);
	zfs_dbgmsg_print(ORACLE);
	(void) dup2(saved, STDOUT_FILENO);
	(void) close(saved);

	rewind(tmp);
	while ((len = getline(&line, &cap, tmp)) > 0) {
		if (strncmp(line, "ZFS_DBGMSG(", 11) == 0)
			continue;
		if (line[len - 1] == '\n')
			line[len - 1] = '\0';
		if (n++ < dbg_taken)
			continue;
		fn(line, arg);
	}
	dbg_taken = n;
	free(line);
	(void) fclose(tmp);
}

/* Copies interesting (or, with --debug, all) debug lines to stderr. */
static void
dbg_to_stderr(const char *line, void *arg)
{
	static const char *const keep[] = { "activity", "import_delay",
	    "mmp", "MMP", "hostid", "FAILED", "failed", "using uberblock",
	    "spa_import", "spa_tryimport", NULL };

	(void) arg;
	for (int i = 0; !o.debug && keep[i] != NULL; i++) {
		if (strstr(line, keep[i]) != NULL)
			goto copy;
	}
	if (!o.debug)
		return;
copy:
	(void) fprintf(stderr, "  dbgmsg: %s\n", line);
}

/* Finds the txg of the uberblock spa_load() selected. */
static void
dbg_find_ub_txg(const char *line, void *arg)
{
	const char *p = strstr(line, "using uberblock with txg=");

	dbg_to_stderr(line, NULL);
	if (p != NULL)
		*(uint64_t *)arg = strtoull(p + 25, NULL, 10);
}

static void
dbg_flush(void)
{
	dbg_take(dbg_to_stderr, NULL);
}

/* ------------------------------------------------------------------ */
/* discovery: libzutil's label scan, refreshed by spa_tryimport        */
/* ------------------------------------------------------------------ */

static uint32_t
my_hostid(void)
{
	return (zone_get_hostid(NULL));
}

/*
 * libzutil calls this for every assembled candidate.  spa_tryimport() runs
 * the real read-only load, MMP activity check included.  Two facts the
 * returned config lacks are added under private keys: the txg of the
 * uberblock the load selected, and how long the tryimport took.
 */
static nvlist_t *
oracle_refresh_config(void *unused, nvlist_t *tryconfig)
{
	uint64_t ub_txg = 0;
	double t0;
	nvlist_t *config;

	(void) unused;
	dbg_flush();
	t0 = seconds_now();
	config = spa_tryimport(tryconfig);
	if (config != NULL) {
		fnvlist_add_uint64(config, KEY_TRY_NS,
		    (uint64_t)((seconds_now() - t0) * 1e9));
	}
	dbg_take(dbg_find_ub_txg, &ub_txg);
	if (config != NULL && ub_txg != 0)
		fnvlist_add_uint64(config, KEY_UB_TXG, ub_txg);
	return (config);
}

/* "Active" here means: imported by this very process. */
static int
oracle_pool_active(void *unused, const char *name, uint64_t guid,
    boolean_t *isactive)
{
	spa_t *spa;

	(void) unused;
	mutex_enter(&spa_namespace_lock);
	spa = spa_lookup(name);
	*isactive = (spa != NULL && spa_guid(spa) == guid);
	mutex_exit(&spa_namespace_lock);
	return (0);
}

static const pool_config_ops_t oracle_ops = {
	.pco_refresh_config = oracle_refresh_config,
	.pco_pool_active = oracle_pool_active,
};

/*
 * Scans the -d directories like `zpool import -d`.  With a name or guid,
 * only that pool's labels are kept (before any tryimport).  Returns an
 * nvlist of name -> refreshed config (names may repeat), or NULL.
 */
static nvlist_t *
scan_pools(const char *name, uint64_t guid)
{
	importargs_t args;

	(void) memset(&args, 0, sizeof (args));
	args.path = o.dirs;
	args.paths = o.ndirs;
	args.poolname = name;
	args.guid = guid;
	args.scan = B_TRUE;
	args.can_be_active = B_FALSE;
	return (zpool_search_import(NULL, &args, &oracle_ops));
}

/* ------------------------------------------------------------------ */
/* status reasons, as `zpool import` derives them (import mode)        */
/* ------------------------------------------------------------------ */

typedef int (*leaf_test_t)(const vdev_stat_t *, uint_t);

static int
leaf_missing(const vdev_stat_t *vs, uint_t n)
{
	(void) n;
	return (vs->vs_state == VDEV_STATE_CANT_OPEN &&
	    vs->vs_aux == VDEV_AUX_OPEN_FAILED);
}

static int
leaf_faulted(const vdev_stat_t *vs, uint_t n)
{
	(void) n;
	return (vs->vs_state == VDEV_STATE_FAULTED);
}

/*
 * zpool tests plain CANT_OPEN here, but only after the missing test has
 * failed; excluding missing leaves keeps the reasons list free of repeats.
 */
static int
leaf_cant_open(const vdev_stat_t *vs, uint_t n)
{
	(void) n;
	return (vs->vs_state == VDEV_STATE_CANT_OPEN &&
	    vs->vs_aux != VDEV_AUX_OPEN_FAILED);
}

static int
leaf_offline(const vdev_stat_t *vs, uint_t n)
{
	(void) n;
	return (vs->vs_state == VDEV_STATE_OFFLINE);
}

static int
leaf_removed(const vdev_stat_t *vs, uint_t n)
{
	(void) n;
	return (vs->vs_state == VDEV_STATE_REMOVED);
}

static int
leaf_non_native_ashift(const vdev_stat_t *vs, uint_t n)
{
	return (VDEV_STAT_VALID(vs_physical_ashift, n) &&
	    vs->vs_configured_ashift < vs->vs_physical_ashift);
}

/*
 * Does any leaf (cache devices included) pass the test?  Leaves under a
 * "replacing" vdev are skipped when skip_replacing is set.
 */
static int
any_leaf(nvlist_t *nv, leaf_test_t test, int skip_replacing)
{
	nvlist_t **kids;
	uint_t nkids, nvs;
	uint64_t *vs;
	char *type;

	if (skip_replacing &&
	    nvlist_lookup_string(nv, ZPOOL_CONFIG_TYPE, &type) == 0 &&
	    strcmp(type, VDEV_TYPE_REPLACING) == 0)
		return (0);
	if (nvlist_lookup_nvlist_array(nv, ZPOOL_CONFIG_CHILDREN, &kids,
	    &nkids) == 0) {
		for (uint_t i = 0; i < nkids; i++)
			if (any_leaf(kids[i], test, skip_replacing))
				return (1);
	} else if (nvlist_lookup_uint64_array(nv, ZPOOL_CONFIG_VDEV_STATS,
	    &vs, &nvs) == 0 && test((vdev_stat_t *)vs, nvs)) {
		return (1);
	}
	if (nvlist_lookup_nvlist_array(nv, ZPOOL_CONFIG_L2CACHE, &kids,
	    &nkids) == 0) {
		for (uint_t i = 0; i < nkids; i++)
			if (any_leaf(kids[i], test, skip_replacing))
				return (1);
	}
	return (0);
}

typedef struct reasons {
	const char	*list[32];
	int		n;
} reasons_t;

static void
reason(reasons_t *r, const char *name)
{
	for (int i = 0; i < r->n; i++)
		if (strcmp(r->list[i], name) == 0)
			return;
	if (r->n < (int)(sizeof (r->list) / sizeof (r->list[0])))
		r->list[r->n++] = name;
}

/* The "see:" message id zpool prints for a status, or NULL. */
static const char *
status_msgid(const char *status)
{
	static const struct { const char *s, *id; } t[] = {
		{ "MISSING_DEV_R", "ZFS-8000-2Q" },
		{ "MISSING_DEV_NR", "ZFS-8000-3C" },
		{ "CORRUPT_LABEL_R", "ZFS-8000-4J" },
		{ "CORRUPT_LABEL_NR", "ZFS-8000-5E" },
		{ "BAD_GUID_SUM", "ZFS-8000-6X" },
		{ "CORRUPT_POOL", "ZFS-8000-72" },
		{ "VERSION_NEWER", "ZFS-8000-A5" },
		{ "HOSTID_MISMATCH", "ZFS-8000-EY" },
		{ "HOSTID_ACTIVE", "ZFS-8000-EY" },
		{ "HOSTID_REQUIRED", "ZFS-8000-EY" },
		{ "IO_FAILURE_WAIT", "ZFS-8000-HC" },
		{ "IO_FAILURE_CONTINUE", "ZFS-8000-JQ" },
		{ "IO_FAILURE_MMP", "ZFS-8000-MM" },
		{ "BAD_LOG", "ZFS-8000-K4" },
		{ "ERRATA", "ZFS-8000-ER" },
	};

	for (size_t i = 0; i < sizeof (t) / sizeof (t[0]); i++)
		if (strcmp(t[i].s, status) == 0)
			return (t[i].id);
	return (NULL);
}

/*
 * Every import-mode status condition of OpenZFS 2.1.11's check_status()
 * (libzfs_status.c) that holds for this config, in zpool's order of
 * precedence; the first one is the status `zpool import` shows.  Written
 * from the source's logic; the local host id is this process's claimed id.
 */
static void
import_reasons(nvlist_t *config, reasons_t *r)
{
	nvlist_t *nvroot, *nvinfo = NULL, **kids;
	uint64_t *vsp, version = 0, state = 0, hostid = 0, errata = 0;
	uint64_t suspended, reason_code, mmp_state;
	uint_t nvs, nkids, n;
	vdev_stat_t *vs;
	pool_scan_stat_t *ps = NULL;
	uint64_t *psp;

	r->n = 0;
	if (nvlist_lookup_nvlist(config, ZPOOL_CONFIG_VDEV_TREE,
	    &nvroot) != 0 ||
	    nvlist_lookup_uint64_array(nvroot, ZPOOL_CONFIG_VDEV_STATS, &vsp,
	    &nvs) != 0)
		return;
	vs = (vdev_stat_t *)vsp;
	(void) nvlist_lookup_uint64(config, ZPOOL_CONFIG_VERSION, &version);
	(void) nvlist_lookup_uint64(config, ZPOOL_CONFIG_POOL_STATE, &state);
	(void) nvlist_lookup_uint64(config, ZPOOL_CONFIG_HOSTID, &hostid);
	(void) nvlist_lookup_uint64(config, ZPOOL_CONFIG_ERRATA, &errata);
	(void) nvlist_lookup_nvlist(config, ZPOOL_CONFIG_LOAD_INFO, &nvinfo);

	int cant_open = (vs->vs_state == VDEV_STATE_CANT_OPEN);

	if (nvlist_lookup_uint64_array(nvroot, ZPOOL_CONFIG_SCAN_STATS, &psp,
	    &n) == 0) {
		ps = (pool_scan_stat_t *)psp;
		if (ps->pss_func == POOL_SCAN_RESILVER &&
		    ps->pss_state == DSS_SCANNING)
			reason(r, "RESILVERING");
	}
	if (nvlist_lookup_nvlist_array(nvroot, ZPOOL_CONFIG_CHILDREN, &kids,
	    &nkids) == 0) {
		for (uint_t c = 0; c < nkids; c++) {
			uint64_t *vrsp;
			if (nvlist_lookup_uint64_array(kids[c],
			    ZPOOL_CONFIG_REBUILD_STATS, &vrsp, &n) == 0 &&
			    ((vdev_rebuild_stat_t *)vrsp)->vrs_state ==
			    VDEV_REBUILD_ACTIVE)
				reason(r, "REBUILDING");
		}
	}
	if (cant_open && vs->vs_aux == VDEV_AUX_ACTIVE) {
		mmp_state = MMP_STATE_INACTIVE;
		if (nvinfo != NULL)
			(void) nvlist_lookup_uint64(nvinfo,
			    ZPOOL_CONFIG_MMP_STATE, &mmp_state);
		reason(r, mmp_state == MMP_STATE_ACTIVE ? "HOSTID_ACTIVE" :
		    mmp_state == MMP_STATE_NO_HOSTID ? "HOSTID_REQUIRED" :
		    "HOSTID_MISMATCH");
	}
	if (hostid != 0 && hostid != my_hostid() &&
	    state == POOL_STATE_ACTIVE)
		reason(r, "HOSTID_MISMATCH");
	if (cant_open && vs->vs_aux == VDEV_AUX_VERSION_NEWER)
		reason(r, "VERSION_NEWER");
	if (cant_open && vs->vs_aux == VDEV_AUX_UNSUP_FEAT) {
		reason(r, nvinfo != NULL &&
		    nvlist_exists(nvinfo, ZPOOL_CONFIG_CAN_RDONLY) ?
		    "UNSUP_FEAT_WRITE" : "UNSUP_FEAT_READ");
	}
	if (cant_open && vs->vs_aux == VDEV_AUX_BAD_GUID_SUM)
		reason(r, "BAD_GUID_SUM");
	if (nvlist_lookup_uint64(config, ZPOOL_CONFIG_SUSPENDED,
	    &suspended) == 0) {
		if (nvlist_lookup_uint64(config, ZPOOL_CONFIG_SUSPENDED_REASON,
		    &reason_code) == 0 && reason_code == ZIO_SUSPEND_MMP)
			reason(r, "IO_FAILURE_MMP");
		else if (suspended == ZIO_FAILURE_MODE_CONTINUE)
			reason(r, "IO_FAILURE_CONTINUE");
		else
			reason(r, "IO_FAILURE_WAIT");
	}
	if (cant_open && vs->vs_aux == VDEV_AUX_BAD_LOG)
		reason(r, "BAD_LOG");
	if (cant_open && any_leaf(nvroot, leaf_faulted, 1))
		reason(r, "FAULTED_DEV_NR");
	if (cant_open && any_leaf(nvroot, leaf_missing, 1))
		reason(r, "MISSING_DEV_NR");
	if (cant_open && any_leaf(nvroot, leaf_cant_open, 1))
		reason(r, "CORRUPT_LABEL_NR");
	if (cant_open && vs->vs_aux == VDEV_AUX_CORRUPT_DATA)
		reason(r, "CORRUPT_POOL");
	if (!cant_open && any_leaf(nvroot, leaf_faulted, 1))
		reason(r, "FAULTED_DEV_R");
	if (!cant_open && any_leaf(nvroot, leaf_missing, 1))
		reason(r, "MISSING_DEV_R");
	if (!cant_open && any_leaf(nvroot, leaf_cant_open, 1))
		reason(r, "CORRUPT_LABEL_R");
	if (any_leaf(nvroot, leaf_offline, 1))
		reason(r, "OFFLINE_DEV");
	if (any_leaf(nvroot, leaf_removed, 1))
		reason(r, "REMOVED_DEV");
	if (getenv("ZPOOL_STATUS_NON_NATIVE_ASHIFT_IGNORE") == NULL &&
	    any_leaf(nvroot, leaf_non_native_ashift, 0))
		reason(r, "NON_NATIVE_ASHIFT");
	if (errata != 0)
		reason(r, "ERRATA");
	if (SPA_VERSION_IS_SUPPORTED(version) && version != SPA_VERSION)
		reason(r, "VERSION_OLDER");
	if (version >= SPA_VERSION_FEATURES && nvinfo != NULL) {
		nvlist_t *feat = nvinfo, *enabled;

		/*
		 * A load that failed early reports no enabled features; zpool
		 * then tests load_info itself, which only matters when no
		 * other reason was found.
		 */
		if (nvlist_lookup_nvlist(nvinfo, ZPOOL_CONFIG_ENABLED_FEAT,
		    &enabled) == 0)
			feat = enabled;
		else if (r->n > 0)
			return;
		for (int i = 0; i < SPA_FEATURES; i++) {
			zfeature_info_t *fi = &spa_feature_table[i];
			if (fi->fi_zfs_mod_supported &&
			    !nvlist_exists(feat, fi->fi_guid)) {
				reason(r, "FEAT_DISABLED");
				break;
			}
		}
	}
}

/*
 * What `zpool import POOL` decides before calling into the kernel
 * (zfs_force_import_required() in zpool_main.c): a pool not exported and
 * last written under another host id, or one whose activity check did not
 * end INACTIVE, needs -f.
 */
static int
force_required(nvlist_t *config)
{
	uint64_t state = POOL_STATE_ACTIVE, hostid = 0, mmp_state;
	nvlist_t *nvinfo;

	(void) nvlist_lookup_uint64(config, ZPOOL_CONFIG_POOL_STATE, &state);
	(void) nvlist_lookup_uint64(config, ZPOOL_CONFIG_HOSTID, &hostid);
	if (state != POOL_STATE_EXPORTED && hostid != my_hostid())
		return (1);
	if (nvlist_lookup_nvlist(config, ZPOOL_CONFIG_LOAD_INFO,
	    &nvinfo) == 0 &&
	    nvlist_lookup_uint64(nvinfo, ZPOOL_CONFIG_MMP_STATE,
	    &mmp_state) == 0 && mmp_state != MMP_STATE_INACTIVE)
		return (1);
	return (0);
}

static int
config_mmp_state(nvlist_t *config, uint64_t *mmp_state)
{
	nvlist_t *nvinfo;

	return (nvlist_lookup_nvlist(config, ZPOOL_CONFIG_LOAD_INFO,
	    &nvinfo) == 0 &&
	    nvlist_lookup_uint64(nvinfo, ZPOOL_CONFIG_MMP_STATE,
	    mmp_state) == 0);
}

/* ------------------------------------------------------------------ */
/* tryimport                                                           */
/* ------------------------------------------------------------------ */

static void
print_vdev(nvlist_t *nv, int depth, const char *role)
{
	line_t l = { .len = 0 };
	char *type = NULL, *path = NULL, *bias = NULL;
	uint64_t guid = 0, id, nparity, flag, *vsp;
	uint_t nvs, nkids;
	nvlist_t **kids;
	vdev_stat_t *vs = NULL;

	(void) nvlist_lookup_string(nv, ZPOOL_CONFIG_TYPE, &type);
	(void) nvlist_lookup_string(nv, ZPOOL_CONFIG_PATH, &path);
	(void) nvlist_lookup_uint64(nv, ZPOOL_CONFIG_GUID, &guid);
	if (nvlist_lookup_uint64_array(nv, ZPOOL_CONFIG_VDEV_STATS, &vsp,
	    &nvs) == 0)
		vs = (vdev_stat_t *)vsp;

	ln_raw(&l, "%*svdev", 2 * (depth + 1), "");
	ln_str(&l, "type", type);
	ln_u64(&l, "guid", guid);
	ln_str(&l, "path", path);
	ln_str(&l, "state", vs ? vdev_state_str(vs->vs_state, vs->vs_aux) :
	    "UNKNOWN");
	ln_str(&l, "aux", vs ? aux_str(vs->vs_aux) : "none");
	if (nvlist_lookup_uint64(nv, ZPOOL_CONFIG_ID, &id) == 0)
		ln_u64(&l, "id", id);
	if (nvlist_lookup_uint64(nv, ZPOOL_CONFIG_NPARITY, &nparity) == 0)
		ln_u64(&l, "nparity", nparity);
	if (role == NULL) {
		if (nvlist_lookup_uint64(nv, ZPOOL_CONFIG_IS_LOG, &flag) == 0 &&
		    flag != 0)
			role = "log";
		else if (nvlist_lookup_string(nv, ZPOOL_CONFIG_ALLOCATION_BIAS,
		    &bias) == 0)
			role = bias;
	}
	if (role != NULL)
		ln_str(&l, "class", role);
	if (nvlist_lookup_uint64(nv, ZPOOL_CONFIG_NOT_PRESENT, &flag) == 0 &&
	    flag != 0)
		ln_u64(&l, "not_present", flag);
	if (vs != NULL && vs->vs_state != 0) {
		ln_u64(&l, "vs_state", vs->vs_state);
		ln_u64(&l, "vs_aux", vs->vs_aux);
	}
	ln_emit(&l);

	if (nvlist_lookup_nvlist_array(nv, ZPOOL_CONFIG_CHILDREN, &kids,
	    &nkids) == 0) {
		for (uint_t i = 0; i < nkids; i++)
			print_vdev(kids[i], depth + 1, NULL);
	}
	if (nvlist_lookup_nvlist_array(nv, ZPOOL_CONFIG_L2CACHE, &kids,
	    &nkids) == 0) {
		for (uint_t i = 0; i < nkids; i++)
			print_vdev(kids[i], depth + 1, "cache");
	}
	if (nvlist_lookup_nvlist_array(nv, ZPOOL_CONFIG_SPARES, &kids,
	    &nkids) == 0) {
		for (uint_t i = 0; i < nkids; i++)
			print_vdev(kids[i], depth + 1, "spare");
	}
}

/* The import verb's verdict for a tryimport config, without side effects. */
static const char *
import_action(nvlist_t *config)
{
	nvlist_t *nvroot;
	uint64_t *vsp, mmp_state, version = 0;
	uint_t nvs;
	vdev_stat_t *vs = NULL;

	if (config_mmp_state(config, &mmp_state)) {
		if (mmp_state == MMP_STATE_ACTIVE)
			return ("blocked-active");
		if (mmp_state == MMP_STATE_NO_HOSTID)
			return ("blocked-no-hostid");
	}
	(void) nvlist_lookup_uint64(config, ZPOOL_CONFIG_VERSION, &version);
	if (nvlist_lookup_nvlist(config, ZPOOL_CONFIG_VDEV_TREE,
	    &nvroot) == 0 &&
	    nvlist_lookup_uint64_array(nvroot, ZPOOL_CONFIG_VDEV_STATS, &vsp,
	    &nvs) == 0)
		vs = (vdev_stat_t *)vsp;
	if (!SPA_VERSION_IS_SUPPORTED(version) || vs == NULL ||
	    vs->vs_state <= VDEV_STATE_CANT_OPEN)
		return ("unavailable");
	if (force_required(config))
		return ("needs-force");
	return ("import");
}

static void
print_pool(nvlist_t *config)
{
	line_t l = { .len = 0 };
	nvlist_t *nvroot = NULL, *nvinfo = NULL;
	char *name = NULL, *hostname = NULL, *mmp_hostname = NULL;
	uint64_t guid = 0, state = 0, hostid = 0, ub_txg = 0;
	uint64_t timestamp = 0, version = 0, errata = 0, try_ns = 0;
	uint64_t mmp_state, mmp_txg, mmp_hostid, *vsp;
	uint16_t mmp_seq;
	uint_t nvs;
	vdev_stat_t *vs = NULL;
	reasons_t r;

	(void) nvlist_lookup_string(config, ZPOOL_CONFIG_POOL_NAME, &name);
	(void) nvlist_lookup_uint64(config, ZPOOL_CONFIG_POOL_GUID, &guid);
	(void) nvlist_lookup_uint64(config, ZPOOL_CONFIG_POOL_STATE, &state);
	(void) nvlist_lookup_uint64(config, ZPOOL_CONFIG_HOSTID, &hostid);
	(void) nvlist_lookup_string(config, ZPOOL_CONFIG_HOSTNAME, &hostname);
	(void) nvlist_lookup_uint64(config, ZPOOL_CONFIG_TIMESTAMP, &timestamp);
	(void) nvlist_lookup_uint64(config, ZPOOL_CONFIG_VERSION, &version);
	(void) nvlist_lookup_uint64(config, ZPOOL_CONFIG_ERRATA, &errata);
	(void) nvlist_lookup_uint64(config, KEY_UB_TXG, &ub_txg);
	(void) nvlist_lookup_uint64(config, KEY_TRY_NS, &try_ns);
	(void) nvlist_lookup_nvlist(config, ZPOOL_CONFIG_LOAD_INFO, &nvinfo);
	if (nvlist_lookup_nvlist(config, ZPOOL_CONFIG_VDEV_TREE,
	    &nvroot) == 0 &&
	    nvlist_lookup_uint64_array(nvroot, ZPOOL_CONFIG_VDEV_STATS, &vsp,
	    &nvs) == 0)
		vs = (vdev_stat_t *)vsp;

	ln_raw(&l, "pool ");
	ln_val(&l, name);
	ln_u64(&l, "guid", guid);
	ln_str(&l, "state", pool_state_str(state));
	ln_str(&l, "health", vs ? vdev_state_str(vs->vs_state, vs->vs_aux) :
	    "UNKNOWN");
	ln_hex(&l, "hostid", hostid);
	ln_str(&l, "hostname", hostname);
	if (ub_txg != 0)
		ln_u64(&l, "txg", ub_txg);
	else
		ln_str(&l, "txg", NULL);
	if (nvinfo != NULL && nvlist_lookup_uint64(nvinfo,
	    ZPOOL_CONFIG_MMP_STATE, &mmp_state) == 0) {
		ln_str(&l, "mmp_state", mmp_state_str(mmp_state));
		if (nvlist_lookup_uint64(nvinfo, ZPOOL_CONFIG_MMP_TXG,
		    &mmp_txg) == 0)
			ln_u64(&l, "mmp_txg", mmp_txg);
		if (nvlist_lookup_uint16(nvinfo, ZPOOL_CONFIG_MMP_SEQ,
		    &mmp_seq) == 0)
			ln_u64(&l, "mmp_seq", mmp_seq);
		if (nvlist_lookup_uint64(nvinfo, ZPOOL_CONFIG_MMP_HOSTID,
		    &mmp_hostid) == 0)
			ln_hex(&l, "mmp_hostid", mmp_hostid);
		if (nvlist_lookup_string(nvinfo, ZPOOL_CONFIG_MMP_HOSTNAME,
		    &mmp_hostname) == 0)
			ln_str(&l, "mmp_hostname", mmp_hostname);
	} else {
		ln_str(&l, "mmp_state", "none");
	}
	ln_str(&l, "action", import_action(config));

	import_reasons(config, &r);
	if (r.n == 0) {
		ln_str(&l, "status", "OK");
		ln_str(&l, "msgid", NULL);
		ln_str(&l, "reasons", NULL);
	} else {
		char all[1024] = "";

		ln_str(&l, "status", r.list[0]);
		ln_str(&l, "msgid", status_msgid(r.list[0]));
		for (int i = 0; i < r.n; i++) {
			if (i > 0)
				(void) strlcat(all, ",", sizeof (all));
			(void) strlcat(all, r.list[i], sizeof (all));
		}
		ln_str(&l, "reasons", all);
	}
	ln_u64(&l, "timestamp", timestamp);
	ln_u64(&l, "version", version);
	ln_u64(&l, "errata", errata);
	ln_u64(&l, "tryimport_ms", try_ns / 1000000);
	ln_emit(&l);
	if (o.debug)
		nvlist_print(stderr, config);

	if (nvroot != NULL)
		print_vdev(nvroot, 0, NULL);
}

static int
cmd_tryimport(void)
{
	nvlist_t *pools;
	nvpair_t *elem = NULL;
	double t0 = seconds_now();
	int n = 0;

	note("scanning %d director%s as hostid 0x%x", o.ndirs,
	    o.ndirs == 1 ? "y" : "ies", my_hostid());
	pools = scan_pools(NULL, 0);
	note("scan + tryimport: %.3f s", seconds_now() - t0);
	while (pools != NULL &&
	    (elem = nvlist_next_nvpair(pools, elem)) != NULL) {
		print_pool(fnvpair_value_nvlist(elem));
		n++;
	}
	if (pools != NULL)
		fnvlist_free(pools);
	dbg_flush();
	(void) fprintf(results, "RESULT ok pools=%d\n", n);
	(void) fflush(results);
	return (XIT_OK);
}

/* ------------------------------------------------------------------ */
/* import                                                              */
/* ------------------------------------------------------------------ */

/* Outcome of an import attempt; printed by finish_import(). */
typedef struct outcome {
	int		code;		/* XIT_* */
	int		err;
	char		text[1024];
	uint64_t	mmp_hostid;
	char		mmp_hostname[256];
} outcome_t;

static void
fail(outcome_t *oc, int err, const char *fmt, ...)
{
	va_list ap;

	oc->code = XIT_ERROR;
	oc->err = err;
	va_start(ap, fmt);
	(void) vsnprintf(oc->text, sizeof (oc->text), fmt, ap);
	va_end(ap);
}

/* Sets an MMP outcome from load_info; returns nonzero when it did. */
static int
mmp_verdict(nvlist_t *config, outcome_t *oc)
{
	nvlist_t *nvinfo;
	uint64_t mmp_state;
	char *hostname = NULL;

	if (nvlist_lookup_nvlist(config, ZPOOL_CONFIG_LOAD_INFO,
	    &nvinfo) != 0 ||
	    nvlist_lookup_uint64(nvinfo, ZPOOL_CONFIG_MMP_STATE,
	    &mmp_state) != 0)
		return (0);
	if (mmp_state == MMP_STATE_ACTIVE) {
		oc->code = XIT_ACTIVE;
		oc->err = EREMOTEIO;
		oc->mmp_hostid = 0;
		(void) nvlist_lookup_uint64(nvinfo, ZPOOL_CONFIG_MMP_HOSTID,
		    &oc->mmp_hostid);
		(void) nvlist_lookup_string(nvinfo, ZPOOL_CONFIG_MMP_HOSTNAME,
		    &hostname);
		(void) strlcpy(oc->mmp_hostname,
		    hostname != NULL ? hostname : "", sizeof (oc->mmp_hostname));
		return (1);
	}
	if (mmp_state == MMP_STATE_NO_HOSTID) {
		fail(oc, EREMOTEIO, "pool has the multihost property on and "
		    "this host's hostid is 0 (not set)");
		return (1);
	}
	return (0);
}

/*
 * Finds the pool (by name, or by guid when `which` is all digits) and
 * imports it the way `zpool import [-f]` does.  On success the pool is in
 * this process's namespace under *poolname (caller frees).
 */
static void
import_pool(const char *which, outcome_t *oc, char **poolname)
{
	nvlist_t *pools, *config = NULL, *props;
	nvpair_t *elem = NULL;
	uint64_t guid = 0, version = 0, state = POOL_STATE_ACTIVE, hostid = 0;
	char *name = NULL, *hostname = NULL, *end;
	int matches = 0, err;
	double t0, t_scan, t_import;

	(void) memset(oc, 0, sizeof (*oc));
	*poolname = NULL;
	if (which[0] >= '0' && which[0] <= '9') {
		errno = 0;
		guid = strtoull(which, &end, 10);
		if (errno != 0 || *end != '\0' || guid == 0) {
			fail(oc, EINVAL, "bad pool guid '%s'", which);
			return;
		}
	}

	t0 = seconds_now();
	pools = scan_pools(guid == 0 ? which : NULL, guid);
	t_scan = seconds_now() - t0;
	while (pools != NULL &&
	    (elem = nvlist_next_nvpair(pools, elem)) != NULL) {
		if (config == NULL)
			config = fnvlist_dup(fnvpair_value_nvlist(elem));
		matches++;
	}
	if (pools != NULL)
		fnvlist_free(pools);
	note("scan + tryimport: %.3f s", t_scan);
	if (config == NULL) {
		fail(oc, ENOENT, "no importable pool '%s' found", which);
		return;
	}
	if (matches > 1) {
		fail(oc, EEXIST, "%d pools named '%s'; import by guid",
		    matches, which);
		goto out;
	}

	(void) nvlist_lookup_string(config, ZPOOL_CONFIG_POOL_NAME, &name);
	(void) nvlist_lookup_uint64(config, ZPOOL_CONFIG_VERSION, &version);
	(void) nvlist_lookup_uint64(config, ZPOOL_CONFIG_POOL_STATE, &state);
	(void) nvlist_lookup_uint64(config, ZPOOL_CONFIG_HOSTID, &hostid);
	(void) nvlist_lookup_string(config, ZPOOL_CONFIG_HOSTNAME, &hostname);

	if (!SPA_VERSION_IS_SUPPORTED(version)) {
		fail(oc, ENOTSUP, "pool is formatted using an unsupported ZFS "
		    "version (%llu)", (u_longlong_t)version);
		goto out;
	}
	if (force_required(config) && !o.force) {
		if (!mmp_verdict(config, oc)) {
			fail(oc, EBUSY, "pool was previously in use from "
			    "another system (hostid=0x%llx hostname=%s "
			    "state=%s); use --force", (u_longlong_t)hostid,
			    hostname != NULL ? hostname : "-",
			    pool_state_str(state));
		}
		goto out;
	}

	props = fnvlist_alloc();
	fnvlist_add_string(props, zpool_prop_to_name(ZPOOL_PROP_CACHEFILE),
	    "none");
	*poolname = strdup(name);
	t0 = seconds_now();
	err = spa_import(*poolname, config, props,
	    o.force ? ZFS_IMPORT_ANY_HOST : ZFS_IMPORT_NORMAL);
	t_import = seconds_now() - t0;
	fnvlist_free(props);
	note("spa_import: %.3f s, error %d", t_import, err);
	if (err != 0) {
		/* spa_import() put its load_info into the config. */
		if (!mmp_verdict(config, oc))
			fail(oc, err, "spa_import: %s", strerror(err));
		free(*poolname);
		*poolname = NULL;
	}
out:
	fnvlist_free(config);
	dbg_flush();
}

static int
print_outcome(const outcome_t *oc)
{
	line_t l = { .len = 0 };

	switch (oc->code) {
	case XIT_OK:
		ln_raw(&l, "RESULT ok");
		break;
	case XIT_ACTIVE:
		ln_raw(&l, "RESULT active");
		ln_hex(&l, "hostid", oc->mmp_hostid);
		ln_str(&l, "hostname", oc->mmp_hostname);
		break;
	default:
		ln_raw(&l, "RESULT error %s %s", errno_name(oc->err), oc->text);
		break;
	}
	ln_emit(&l);
	return (oc->code);
}

static void
print_imported(const char *verb, spa_t *spa)
{
	line_t l = { .len = 0 };

	ln_raw(&l, "%s", verb);
	ln_str(&l, "pool", spa_name(spa));
	ln_u64(&l, "guid", spa_guid(spa));
	ln_hex(&l, "hostid", my_hostid());
	ln_str(&l, "hostname", utsname()->nodename);
	ln_str(&l, "multihost", spa_multihost(spa) ? "on" : "off");
	ln_u64(&l, "txg", spa_last_synced_txg(spa));
	ln_emit(&l);
}

static int
export_pool(const char *name)
{
	line_t l = { .len = 0 };
	int err = spa_export(name, NULL, B_FALSE, B_FALSE);

	if (err == 0) {
		ln_raw(&l, "EXPORTED");
		ln_str(&l, "pool", name);
		ln_emit(&l);
	}
	return (err);
}

/*
 * --no-export: leaves with _exit() while the pool is still imported, like a
 * host that crashed.  The labels stay ACTIVE under this host id and the MMP
 * heartbeats stop.
 */
static void
crash_exit(const char *name)
{
	line_t l = { .len = 0 };

	ln_raw(&l, "CRASH");
	ln_str(&l, "pool", name);
	ln_emit(&l);
	(void) fprintf(results, "RESULT ok\n");
	(void) fflush(results);
	(void) fflush(stderr);
	_exit(XIT_OK);
}

static int
cmd_import(const char *which)
{
	outcome_t oc;
	char *name;
	spa_t *spa;
	int err;

	note("importing '%s' as hostid 0x%x%s", which, my_hostid(),
	    o.force ? " (--force)" : "");
	import_pool(which, &oc, &name);
	if (oc.code == XIT_OK) {
		if (spa_open(name, &spa, FTAG) == 0) {
			print_imported("IMPORTED", spa);
			spa_close(spa, FTAG);
		}
		if (o.no_export)
			crash_exit(name);
		if ((err = export_pool(name)) != 0)
			fail(&oc, err, "imported, but spa_export: %s",
			    strerror(err));
	}
	free(name);
	return (print_outcome(&oc));
}

/* ------------------------------------------------------------------ */
/* hold                                                                */
/* ------------------------------------------------------------------ */

static int
set_multihost(spa_t *spa, int on)
{
	nvlist_t *props = fnvlist_alloc();
	int err;

	fnvlist_add_uint64(props, zpool_prop_to_name(ZPOOL_PROP_MULTIHOST),
	    on ? 1 : 0);
	err = spa_prop_set(spa, props);
	fnvlist_free(props);
	if (err == 0)
		txg_wait_synced(spa_get_dsl(spa), 0);
	return (err);
}

/*
 * One small synchronous change: a pool history record written in its own
 * txg, waited for until that txg is on disk.  An idle pool writes no new
 * uberblock, so without this the on-disk txg would not move.
 */
static int
heartbeat(spa_t *spa, long tick)
{
	dsl_pool_t *dp = spa_get_dsl(spa);
	dmu_tx_t *tx = dmu_tx_create_dd(dp->dp_mos_dir);
	uint64_t txg;
	int err;

	if ((err = dmu_tx_assign(tx, TXG_WAIT)) != 0) {
		dmu_tx_abort(tx);
		return (err);
	}
	txg = dmu_tx_get_txg(tx);
	spa_history_log_internal(spa, ORACLE, tx, "hold tick %ld", tick);
	dmu_tx_commit(tx);
	txg_wait_synced(dp, txg);
	return (0);
}

/*
 * spa_t fields are read through the installed spa_impl.h; check that the
 * structure this program was compiled against matches the library's.
 */
static int
spa_layout_matches(spa_t *spa)
{
	return (strcmp(spa->spa_name, spa_name(spa)) == 0 &&
	    spa->spa_ubsync.ub_txg == spa_last_synced_txg(spa) &&
	    spa->spa_hostid == spa_get_hostid(spa));
}

static void
print_tick(spa_t *spa, double t, int layout_ok)
{
	line_t l = { .len = 0 };

	ln_raw(&l, "TICK");
	ln_raw(&l, " t=%.1f", t);
	ln_u64(&l, "txg", spa_last_synced_txg(spa));
	if (layout_ok) {
		uberblock_t ub = spa->spa_ubsync;
		mmp_thread_t *mmp = &spa->spa_mmp;
		hrtime_t last;
		uint64_t delay;

		ln_u64(&l, "ondisk_txg", ub.ub_rootbp.blk_birth);
		ln_u64(&l, "ub_timestamp", ub.ub_timestamp);
		mutex_enter(&mmp->mmp_io_lock);
		last = mmp->mmp_last_write;
		delay = mmp->mmp_delay;
		mutex_exit(&mmp->mmp_io_lock);
		if (spa_multihost(spa) && last != 0) {
			ln_u64(&l, "mmp_last_write_ms_ago",
			    (uint64_t)((gethrtime() - last) / 1000000));
			ln_u64(&l, "mmp_delay_us", delay / 1000);
		}
	}
	ln_str(&l, "multihost", spa_multihost(spa) ? "on" : "off");
	ln_str(&l, "suspended", spa_suspended(spa) ? "yes" : "no");
	ln_emit(&l);
}

static int
cmd_hold(const char *which, const sigset_t *sigs)
{
	outcome_t oc;
	line_t l = { .len = 0 };
	char *name;
	spa_t *spa;
	int err, sig = 0, layout_ok;
	long tick = 0;
	double start;

	note("importing '%s' as hostid 0x%x to hold it", which, my_hostid());
	import_pool(which, &oc, &name);
	if (oc.code != XIT_OK)
		return (print_outcome(&oc));

	if ((err = spa_open(name, &spa, FTAG)) != 0) {
		free(name);
		return (result_error(err, "spa_open: %s", strerror(err)));
	}
	if (o.multihost >= 0 && (int)spa_multihost(spa) != o.multihost &&
	    (err = set_multihost(spa, o.multihost)) != 0) {
		spa_close(spa, FTAG);
		(void) spa_export(name, NULL, B_FALSE, B_FALSE);
		free(name);
		return (result_error(err, "cannot set multihost=%s: %s%s",
		    o.multihost ? "on" : "off", strerror(err),
		    err == ENOTSUP ? " (the host id is 0)" : ""));
	}
	layout_ok = spa_layout_matches(spa);
	if (!layout_ok)
		note("warning: spa_t layout differs from the headers; TICK "
		    "lines carry txg only");

	ln_raw(&l, "READY");
	ln_str(&l, "pool", name);
	ln_u64(&l, "guid", spa_guid(spa));
	ln_hex(&l, "hostid", my_hostid());
	ln_str(&l, "hostname", utsname()->nodename);
	ln_str(&l, "multihost", spa_multihost(spa) ? "on" : "off");
	ln_u64(&l, "txg", spa_last_synced_txg(spa));
	ln_u64(&l, "interval_ms", zfs_multihost_interval);
	ln_u64(&l, "fail_intervals", zfs_multihost_fail_intervals);
	ln_u64(&l, "import_intervals", zfs_multihost_import_intervals);
	ln_emit(&l);

	start = seconds_now();
	for (;;) {
		double next, left;

		if (!spa_suspended(spa) && (err = heartbeat(spa, tick)) != 0)
			note("heartbeat %ld failed: %s", tick, strerror(err));
		print_tick(spa, seconds_now() - start, layout_ok);
		dbg_flush();
		tick++;
		next = start + (double)tick;
		if (o.seconds > 0 && next > start + (double)o.seconds)
			next = start + (double)o.seconds;
		while ((left = next - seconds_now()) > 0) {
			struct timespec ts;

			ts.tv_sec = (time_t)left;
			ts.tv_nsec = (long)((left - (double)ts.tv_sec) * 1e9);
			sig = sigtimedwait(sigs, NULL, &ts);
			if (sig > 0)
				break;
		}
		if (sig > 0) {
			note("signal %d (%s)", sig, strsignal(sig));
			break;
		}
		if (o.seconds > 0 && seconds_now() >= start + (double)o.seconds)
			break;
	}
	spa_close(spa, FTAG);

	if (o.no_export)
		crash_exit(name);
	if ((err = export_pool(name)) != 0) {
		free(name);
		return (result_error(err, "spa_export: %s", strerror(err)));
	}
	free(name);
	(void) fprintf(results, "RESULT ok\n");
	(void) fflush(results);
	return (XIT_OK);
}

/* ------------------------------------------------------------------ */
/* create                                                              */
/* ------------------------------------------------------------------ */

static int
group_keyword(const char *s, const char **type, uint64_t *nparity)
{
	if (strcmp(s, "mirror") == 0) {
		*type = VDEV_TYPE_MIRROR;
		*nparity = 0;
		return (1);
	}
	if (strcmp(s, "raidz") == 0 || strcmp(s, "raidz1") == 0 ||
	    strcmp(s, "raidz2") == 0 || strcmp(s, "raidz3") == 0) {
		*type = VDEV_TYPE_RAIDZ;
		*nparity = s[5] == '\0' ? 1 : (uint64_t)(s[5] - '0');
		return (1);
	}
	return (0);
}

typedef enum { SEC_DATA, SEC_LOG, SEC_CACHE, SEC_SPARE } section_t;

static int
section_keyword(const char *s, section_t *sec)
{
	if (strcmp(s, "log") == 0)
		*sec = SEC_LOG;
	else if (strcmp(s, "cache") == 0)
		*sec = SEC_CACHE;
	else if (strcmp(s, "spare") == 0)
		*sec = SEC_SPARE;
	else
		return (0);
	return (1);
}

static int
is_keyword(const char *s)
{
	const char *t;
	uint64_t p;
	section_t sec;

	return (group_keyword(s, &t, &p) || section_keyword(s, &sec));
}

/* Checks the whole spec before any file is touched; returns 0 if valid. */
static int
check_spec(int argc, char **argv)
{
	section_t sec = SEC_DATA;
	int i = 0, data_tops = 0;

	while (i < argc) {
		const char *type;
		uint64_t nparity;

		if (section_keyword(argv[i], &sec)) {
			i++;
			continue;
		}
		if (group_keyword(argv[i], &type, &nparity)) {
			const char *kw = argv[i++];
			int kids = 0, need = nparity == 0 ? 2 :
			    (int)nparity + 1;

			if (sec == SEC_CACHE || sec == SEC_SPARE) {
				note("'%s' is not allowed among cache or spare "
				    "devices", kw);
				return (-1);
			}
			while (i < argc && !is_keyword(argv[i])) {
				kids++;
				i++;
			}
			if (kids < need || kids > 255) {
				note("%s needs at least %d files, got %d", kw,
				    need, kids);
				return (-1);
			}
			if (sec == SEC_DATA)
				data_tops++;
			continue;
		}
		if (sec == SEC_DATA)
			data_tops++;
		i++;
	}
	if (data_tops == 0) {
		note("no data vdevs given");
		return (-1);
	}
	return (0);
}

/* Absolute path of a vdev file: relative names go under the first -d. */
static char *
vdev_file_path(const char *arg)
{
	char base[PATH_MAX], *path = NULL;

	if (arg[0] == '/')
		return (strdup(arg));
	if (realpath(o.ndirs > 0 ? o.dirs[0] : ".", base) == NULL)
		return (NULL);
	if (asprintf(&path, "%s/%s", base, arg) < 0)
		return (NULL);
	return (path);
}

/* Creates (or truncates) a sparse file of --size bytes. */
static int
make_sparse_file(const char *path)
{
	struct stat st;
	int fd;

	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
		note("%s exists and is not a regular file", path);
		return (-1);
	}
	if ((fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0644)) < 0) {
		note("%s: %s", path, strerror(errno));
		return (-1);
	}
	if (ftruncate(fd, (off_t)o.size) != 0) {
		note("%s: ftruncate: %s", path, strerror(errno));
		(void) close(fd);
		return (-1);
	}
	(void) close(fd);
	return (0);
}

static nvlist_t *
leaf_nv(const char *arg)
{
	char *path = vdev_file_path(arg);
	nvlist_t *nv;

	if (path == NULL || make_sparse_file(path) != 0) {
		free(path);
		return (NULL);
	}
	nv = fnvlist_alloc();
	fnvlist_add_string(nv, ZPOOL_CONFIG_TYPE, VDEV_TYPE_FILE);
	fnvlist_add_string(nv, ZPOOL_CONFIG_PATH, path);
	if (o.ashift > 0)
		fnvlist_add_uint64(nv, ZPOOL_CONFIG_ASHIFT, o.ashift);
	free(path);
	return (nv);
}

typedef struct nvarray {
	nvlist_t	**v;
	uint_t		n;
} nvarray_t;

static void
nva_add(nvarray_t *a, nvlist_t *nv)
{
	a->v = realloc(a->v, (a->n + 1) * sizeof (nvlist_t *));
	a->v[a->n++] = nv;
}

static void
nva_free(nvarray_t *a)
{
	for (uint_t i = 0; i < a->n; i++)
		fnvlist_free(a->v[i]);
	free(a->v);
	a->v = NULL;
	a->n = 0;
}

/* Builds the root vdev nvlist (creating the files) from a checked spec. */
static nvlist_t *
build_root(int argc, char **argv)
{
	nvarray_t tops = { 0 }, cache = { 0 }, spares = { 0 }, kids = { 0 };
	nvlist_t *root = NULL, *nv;
	section_t sec = SEC_DATA;
	int i = 0;

	while (i < argc) {
		const char *type;
		uint64_t nparity;

		if (section_keyword(argv[i], &sec)) {
			i++;
			continue;
		}
		if (group_keyword(argv[i], &type, &nparity)) {
			i++;
			while (i < argc && !is_keyword(argv[i])) {
				if ((nv = leaf_nv(argv[i++])) == NULL)
					goto out;
				nva_add(&kids, nv);
			}
			nv = fnvlist_alloc();
			fnvlist_add_string(nv, ZPOOL_CONFIG_TYPE, type);
			if (nparity != 0)
				fnvlist_add_uint64(nv, ZPOOL_CONFIG_NPARITY,
				    nparity);
			fnvlist_add_uint64(nv, ZPOOL_CONFIG_IS_LOG,
			    sec == SEC_LOG);
			fnvlist_add_nvlist_array(nv, ZPOOL_CONFIG_CHILDREN,
			    kids.v, kids.n);
			nva_free(&kids);
			nva_add(&tops, nv);
			continue;
		}
		if ((nv = leaf_nv(argv[i++])) == NULL)
			goto out;
		if (sec == SEC_CACHE) {
			nva_add(&cache, nv);
		} else if (sec == SEC_SPARE) {
			nva_add(&spares, nv);
		} else {
			fnvlist_add_uint64(nv, ZPOOL_CONFIG_IS_LOG,
			    sec == SEC_LOG);
			nva_add(&tops, nv);
		}
	}
	root = fnvlist_alloc();
	fnvlist_add_string(root, ZPOOL_CONFIG_TYPE, VDEV_TYPE_ROOT);
	fnvlist_add_nvlist_array(root, ZPOOL_CONFIG_CHILDREN, tops.v, tops.n);
	if (cache.n > 0)
		fnvlist_add_nvlist_array(root, ZPOOL_CONFIG_L2CACHE, cache.v,
		    cache.n);
	if (spares.n > 0)
		fnvlist_add_nvlist_array(root, ZPOOL_CONFIG_SPARES, spares.v,
		    spares.n);
out:
	nva_free(&kids);
	nva_free(&tops);
	nva_free(&cache);
	nva_free(&spares);
	return (root);
}

static int
cmd_create(const char *name, int nspec, char **spec)
{
	namecheck_err_t why;
	char what;
	nvlist_t *root, *props;
	spa_t *spa;
	int err;
	double t0 = seconds_now();

	if (pool_namecheck(name, &why, &what) != 0)
		return (result_error(EINVAL, "invalid pool name '%s'", name));
	if (check_spec(nspec, spec) != 0)
		return (result_error(EINVAL, "bad vdev specification"));
	if (o.multihost == 1 && my_hostid() == 0)
		return (result_error(ENOTSUP, "multihost=on needs a non-zero "
		    "host id"));
	if ((root = build_root(nspec, spec)) == NULL)
		return (result_error(EIO, "cannot create the vdev files"));

	props = fnvlist_alloc();
	fnvlist_add_string(props, zpool_prop_to_name(ZPOOL_PROP_CACHEFILE),
	    "none");
	fnvlist_add_uint64(props, zpool_prop_to_name(ZPOOL_PROP_MULTIHOST),
	    o.multihost == 1);
	if (!o.no_features) {
		/* As `zpool create` without -d: every known feature enabled. */
		for (int i = 0; i < SPA_FEATURES; i++) {
			char prop[256];

			if (!spa_feature_table[i].fi_zfs_mod_supported)
				continue;
			(void) snprintf(prop, sizeof (prop), "feature@%s",
			    spa_feature_table[i].fi_uname);
			fnvlist_add_uint64(props, prop, 0);
		}
	}
	err = spa_create(name, root, props, NULL, NULL);
	fnvlist_free(props);
	fnvlist_free(root);
	if (err != 0)
		return (result_error(err, "spa_create: %s", strerror(err)));

	if ((err = spa_open(name, &spa, FTAG)) == 0) {
		print_imported("CREATED", spa);
		spa_close(spa, FTAG);
	}
	if ((err = export_pool(name)) != 0)
		return (result_error(err, "spa_export: %s", strerror(err)));
	note("create + export: %.3f s", seconds_now() - t0);
	(void) fprintf(results, "RESULT ok\n");
	(void) fflush(results);
	return (XIT_OK);
}

/* ------------------------------------------------------------------ */
/* main                                                                */
/* ------------------------------------------------------------------ */

static void
usage(FILE *f)
{
	(void) fprintf(f,
	    "usage:\n"
	    "  " ORACLE " tryimport -d DIR [-d DIR]...\n"
	    "  " ORACLE " create POOL -d DIR [--multihost on|off] [--size 128M]"
	    " [--ashift N]\n"
	    "        [--no-features] VDEVSPEC...\n"
	    "  " ORACLE " import POOL|GUID -d DIR [--force] [--no-export]\n"
	    "  " ORACLE " hold POOL|GUID -d DIR --seconds N [--multihost on|off]"
	    " [--force]\n"
	    "        [--interval-ms MS] [--fail-intervals K]"
	    " [--import-intervals K] [--no-export]\n"
	    "options for every verb:\n"
	    "  --hostid HEX      host id this process claims (0: none)\n"
	    "  --hostname NAME   host name written into labels\n"
	    "  --interval-ms MS, --fail-intervals K, --import-intervals K\n"
	    "                    zfs_multihost_* tunables of this process\n"
	    "  --debug           copy libzpool's whole debug log to stderr\n"
	    "VDEVSPEC: files, 'mirror F F..', 'raidz[1-3] F F F..', then\n"
	    "optionally 'log ...', 'cache F..', 'spare F..'.  Relative file\n"
	    "names go under the first -d; files are made sparse at --size.\n"
	    "stdout: result lines, the last one 'RESULT ok|active|error ...'.\n"
	    "exit: 0 ok, 1 error, 2 usage, 3 pool active on another host.\n");
}

static int
parse_number(const char *s, long long *v)
{
	char *end;

	errno = 0;
	*v = strtoll(s, &end, 0);
	return (errno != 0 || end == s || *end != '\0' || *v < 0 ? -1 : 0);
}

static int
parse_size(const char *s, uint64_t *v)
{
	char *end;
	unsigned long long n;
	int shift = 0;

	errno = 0;
	n = strtoull(s, &end, 10);
	if (errno != 0 || end == s)
		return (-1);
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	default: break;
	}
	if (*end == 'b' || *end == 'B')
		end++;
	if (*end != '\0' || (shift > 0 && n > (UINT64_MAX >> shift)))
		return (-1);
	*v = (uint64_t)n << shift;
	return (0);
}

enum {
	OPT_HOSTID = 1000, OPT_HOSTNAME, OPT_FORCE, OPT_NOEXPORT, OPT_DEBUG,
	OPT_MULTIHOST, OPT_SECONDS, OPT_INTERVAL, OPT_FAIL, OPT_IMPORTINT,
	OPT_SIZE, OPT_ASHIFT, OPT_NOFEATURES,
};

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "hostid", required_argument, NULL, OPT_HOSTID },
		{ "hostname", required_argument, NULL, OPT_HOSTNAME },
		{ "force", no_argument, NULL, OPT_FORCE },
		{ "no-export", no_argument, NULL, OPT_NOEXPORT },
		{ "debug", no_argument, NULL, OPT_DEBUG },
		{ "multihost", required_argument, NULL, OPT_MULTIHOST },
		{ "seconds", required_argument, NULL, OPT_SECONDS },
		{ "interval-ms", required_argument, NULL, OPT_INTERVAL },
		{ "fail-intervals", required_argument, NULL, OPT_FAIL },
		{ "import-intervals", required_argument, NULL, OPT_IMPORTINT },
		{ "size", required_argument, NULL, OPT_SIZE },
		{ "ashift", required_argument, NULL, OPT_ASHIFT },
		{ "no-features", no_argument, NULL, OPT_NOFEATURES },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char **args;
	const char *verb;
	int nargs = 0, c, rc, fd;
	long long v;
	sigset_t sigs;

	/*
	 * Keep stdout for results only: results go to a private copy of the
	 * original descriptor 1, and descriptor 1 itself now points at
	 * stderr, so anything the libraries print lands there.
	 */
	if ((fd = dup(STDOUT_FILENO)) < 0 ||
	    (results = fdopen(fd, "w")) == NULL ||
	    dup2(STDERR_FILENO, STDOUT_FILENO) < 0) {
		perror(ORACLE ": setting up stdout");
		return (XIT_ERROR);
	}
	(void) fcntl(fd, F_SETFD, FD_CLOEXEC);

	if (argc < 2) {
		usage(stderr);
		return (XIT_USAGE);
	}
	verb = argv[1];
	if (strcmp(verb, "-h") == 0 || strcmp(verb, "--help") == 0 ||
	    strcmp(verb, "help") == 0) {
		usage(results);
		return (XIT_OK);
	}
	argc--;
	argv++;
	args = calloc(argc + 1, sizeof (char *));

	/* Leading '-': positional arguments are returned in order as 1. */
	while ((c = getopt_long(argc, argv, "-d:fh", longopts, NULL)) != -1) {
		switch (c) {
		case 1:
			args[nargs++] = optarg;
			break;
		case 'd':
			if (o.ndirs == MAXDIRS) {
				note("too many -d options");
				return (XIT_USAGE);
			}
			o.dirs[o.ndirs++] = optarg;
			break;
		case 'f':
		case OPT_FORCE:
			o.force = 1;
			break;
		case OPT_HOSTID: {
			char *end;
			unsigned long long h;

			errno = 0;
			h = strtoull(optarg, &end, 16);
			if (errno != 0 || end == optarg || *end != '\0' ||
			    h > UINT32_MAX) {
				note("--hostid takes a 32-bit hex number");
				return (XIT_USAGE);
			}
			o.have_hostid = 1;
			o.hostid = (uint32_t)h;
			break;
		}
		case OPT_HOSTNAME:
			if (optarg[0] == '\0' ||
			    strlen(optarg) >= sizeof (hw_utsname.nodename)) {
				note("--hostname: 1 to %zu characters",
				    sizeof (hw_utsname.nodename) - 1);
				return (XIT_USAGE);
			}
			o.hostname = optarg;
			break;
		case OPT_NOEXPORT:
			o.no_export = 1;
			break;
		case OPT_DEBUG:
			o.debug = 1;
			break;
		case OPT_MULTIHOST:
			if (strcmp(optarg, "on") == 0) {
				o.multihost = 1;
			} else if (strcmp(optarg, "off") == 0) {
				o.multihost = 0;
			} else {
				note("--multihost takes on or off");
				return (XIT_USAGE);
			}
			break;
		case OPT_SECONDS:
			if (parse_number(optarg, &v) != 0) {
				note("bad --seconds '%s'", optarg);
				return (XIT_USAGE);
			}
			o.seconds = (long)v;
			break;
		case OPT_INTERVAL:
		case OPT_FAIL:
		case OPT_IMPORTINT:
			if (parse_number(optarg, &v) != 0 || v > UINT_MAX) {
				note("bad number '%s'", optarg);
				return (XIT_USAGE);
			}
			if (c == OPT_INTERVAL)
				o.interval_ms = v;
			else if (c == OPT_FAIL)
				o.fail_intervals = v;
			else
				o.import_intervals = v;
			break;
		case OPT_SIZE:
			if (parse_size(optarg, &o.size) != 0 ||
			    o.size < SPA_MINDEVSIZE) {
				note("bad --size '%s' (at least 64M)", optarg);
				return (XIT_USAGE);
			}
			break;
		case OPT_ASHIFT:
			if (parse_number(optarg, &v) != 0 || v < ASHIFT_MIN ||
			    v > ASHIFT_MAX) {
				note("--ashift takes %d..%d", ASHIFT_MIN,
				    ASHIFT_MAX);
				return (XIT_USAGE);
			}
			o.ashift = (int)v;
			break;
		case OPT_NOFEATURES:
			o.no_features = 1;
			break;
		case 'h':
			usage(results);
			return (XIT_OK);
		default:
			usage(stderr);
			return (XIT_USAGE);
		}
	}

	int is_try = strcmp(verb, "tryimport") == 0;
	int is_create = strcmp(verb, "create") == 0;
	int is_import = strcmp(verb, "import") == 0;
	int is_hold = strcmp(verb, "hold") == 0;

	if (!is_try && !is_create && !is_import && !is_hold) {
		note("unknown verb '%s'", verb);
		usage(stderr);
		return (XIT_USAGE);
	}
	if ((is_try && nargs != 0) || (is_create && nargs < 2) ||
	    ((is_import || is_hold) && nargs != 1)) {
		note("wrong number of arguments for %s", verb);
		usage(stderr);
		return (XIT_USAGE);
	}
	if (o.ndirs == 0) {
		note("%s needs -d DIR", verb);
		return (XIT_USAGE);
	}
	if (is_hold && o.seconds < 0) {
		note("hold needs --seconds N (0: until SIGTERM/SIGINT)");
		return (XIT_USAGE);
	}

	/*
	 * Host identity.  kernel_init() stores the host id as a decimal
	 * string in hw_serial (read back by zone_get_hostid(), which every
	 * pool takes its spa_hostid from), taking it from $ZFS_HOSTID, the
	 * SPL module parameter or /etc/hostid -- but only when the mode
	 * includes SPA_MODE_WRITE, and a $ZFS_HOSTID of 0 falls through to
	 * /etc/hostid.  So the claimed id is also written into hw_serial
	 * after kernel_init(); that is the only way to claim "no host id".
	 * The host name comes from hw_utsname (uname(2) at kernel_init()).
	 */
	if (o.have_hostid) {
		char env[16];

		(void) snprintf(env, sizeof (env), "0x%x", o.hostid);
		(void) setenv("ZFS_HOSTID", env, 1);
	}

	/*
	 * Never read or write the machine's /etc/zfs/zpool.cache:
	 * spa_init() (inside kernel_init()) loads every pool listed in
	 * spa_config_path, and pools created or imported here use
	 * cachefile=none.  A path below /dev/null cannot exist.
	 */
	spa_config_path = "/dev/null/" ORACLE "/zpool.cache";

	if (o.interval_ms >= 0)
		zfs_multihost_interval = (ulong_t)o.interval_ms;
	if (o.fail_intervals >= 0)
		zfs_multihost_fail_intervals = (uint_t)o.fail_intervals;
	if (o.import_intervals >= 0)
		zfs_multihost_import_intervals = (uint_t)o.import_intervals;

	/*
	 * hold waits for SIGINT/SIGTERM/SIGHUP with sigtimedwait(); block
	 * them before libzpool starts threads, which inherit the mask.
	 */
	(void) sigemptyset(&sigs);
	(void) sigaddset(&sigs, SIGINT);
	(void) sigaddset(&sigs, SIGTERM);
	(void) sigaddset(&sigs, SIGHUP);
	if (is_hold)
		(void) pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	kernel_init(SPA_MODE_READ | SPA_MODE_WRITE);

	if (o.have_hostid)
		(void) snprintf(hw_serial, HW_HOSTID_LEN, "%u", o.hostid);
	if (o.hostname != NULL)
		(void) strlcpy(hw_utsname.nodename, o.hostname,
		    sizeof (hw_utsname.nodename));
	note("hostid 0x%x hostname %s; multihost interval %lu ms, "
	    "fail_intervals %u, import_intervals %u", my_hostid(),
	    utsname()->nodename, (unsigned long)zfs_multihost_interval,
	    zfs_multihost_fail_intervals, zfs_multihost_import_intervals);

	if (is_try)
		rc = cmd_tryimport();
	else if (is_create)
		rc = cmd_create(args[0], nargs - 1, args + 1);
	else if (is_import)
		rc = cmd_import(args[0]);
	else
		rc = cmd_hold(args[0], &sigs);

	dbg_flush();
	/*
	 * No kernel_fini(): every pool this process touched is exported (or
	 * deliberately left behind by --no-export), and kernel_fini() costs
	 * about a second waiting for libzpool's background threads.
	 */
	(void) fflush(results);
	(void) fflush(stderr);
	free(args);
	return (rc);
}
