/*
 * zpk-oracle: OpenZFS 2.1.11 (libzpool) acting as a second host on pools made
 * of plain files, for ZPoolKit's interop tests.  README.md describes the
 * verbs, the output and why each OpenZFS call is made.
 *
 * Shape of the program: main() parses the command line into `cfg`, sets up
 * the process (host identity, where libzpool's stdout goes, kernel_init) and
 * runs one verb.  Each verb reports through the JSON-lines writer below and
 * ends with exactly one "result" record.
 */

#include <sys/sysmacros.h>	/* before zfs_context.h: avoids a _NOTE clash */
#include <sys/zfs_context.h>
#include <sys/spa.h>
#include <sys/systeminfo.h>
#include <sys/spa_impl.h>
#include <sys/dmu.h>
#include <sys/dsl_pool.h>
#include <sys/fs/zfs.h>
#include <zfeature_common.h>
#include <zfs_namecheck.h>
#include <libzutil.h>
#include <libnvpair.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Exit statuses (also in ZFSTestSupport/Oracle.swift). */
#define	EXIT_ERROR	1
#define	EXIT_USAGE	2
#define	EXIT_BUSY	3	/* the pool is in use by another host */

/* Not declared by any installed header. */
extern struct utsname hw_utsname;

/* ------------------------------------------------------------------ */
/* The command line                                                    */
/* ------------------------------------------------------------------ */

static struct {
	char		*search[16];	/* -d */
	int		nsearch;
	int		hostid_given;
	uint32_t	hostid;
	const char	*hostname;
	int		force;
	int		crash;		/* --no-export */
	int		multihost;	/* -1: leave as is */
	long		seconds;
	uint64_t	file_size;
	int		verbose_log;	/* --debug */
	const char	*helper_dir;	/* where zpk-import-status lives */
	const char	*cachefile;	/* --cachefile: create's cachefile property */
} cfg = { .multihost = -1, .file_size = 128ULL << 20 };

/* ------------------------------------------------------------------ */
/* Output: one JSON object per line on the original stdout             */
/* ------------------------------------------------------------------ */

/*
 * Every value is a JSON string, numbers included: pool and vdev guids use
 * all 64 bits, more than a JSON number carries through most parsers.
 */

static FILE *report;		/* the original stdout */
static int log_fd = -1;		/* libzpool's stdout: a scratch file */

typedef struct {
	char	*buf;
	size_t	len, cap;
	int	fields;		/* in the innermost open object */
} json_t;

static void
j_raw(json_t *j, const char *s, size_t n)
{
	if (j->len + n + 1 > j->cap) {
		j->cap = (j->len + n + 1) * 2;
		j->buf = realloc(j->buf, j->cap);
		if (j->buf == NULL)
			abort();
	}
	memcpy(j->buf + j->len, s, n);
	j->len += n;
	j->buf[j->len] = '\0';
}

static void
j_lit(json_t *j, const char *s)
{
	j_raw(j, s, strlen(s));
}

static void
j_quoted(json_t *j, const char *s)
{
	j_lit(j, "\"");
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		char esc[8];
		if (*p == '"' || *p == '\\') {
			esc[0] = '\\';
			esc[1] = (char)*p;
			j_raw(j, esc, 2);
		} else if (*p < 0x20) {
			(void) snprintf(esc, sizeof (esc), "\\u%04x", *p);
			j_lit(j, esc);
		} else {
			j_raw(j, (const char *)p, 1);
		}
	}
	j_lit(j, "\"");
}

static void
j_key(json_t *j, const char *key)
{
	if (j->fields++ > 0)
		j_lit(j, ",");
	j_quoted(j, key);
	j_lit(j, ":");
}

static void
j_str(json_t *j, const char *key, const char *value)
{
	if (value == NULL)
		return;
	j_key(j, key);
	j_quoted(j, value);
}

static void
j_u64(json_t *j, const char *key, uint64_t value)
{
	char text[24];
	(void) snprintf(text, sizeof (text), "%llu", (u_longlong_t)value);
	j_str(j, key, text);
}

static void
j_hex(json_t *j, const char *key, uint64_t value)
{
	char text[24];
	(void) snprintf(text, sizeof (text), "0x%llx", (u_longlong_t)value);
	j_str(j, key, text);
}

/* Starts a record: {"event":KIND */
static json_t
record(const char *event)
{
	json_t j = { 0 };
	j_lit(&j, "{");
	j_str(&j, "event", event);
	return (j);
}

static void
publish(json_t *j)
{
	j_lit(j, "}\n");
	(void) fputs(j->buf, report);
	(void) fflush(report);
	free(j->buf);
	j->buf = NULL;
}

static void
say(const char *fmt, ...)
{
	va_list ap;
	(void) fputs("zpk-oracle: ", stderr);
	va_start(ap, fmt);
	(void) vfprintf(stderr, fmt, ap);
	va_end(ap);
	(void) fputc('\n', stderr);
}

static const char *
errno_name(int err)
{
	switch (err) {
	case EINVAL: return ("EINVAL");
	case ENOENT: return ("ENOENT");
	case EEXIST: return ("EEXIST");
	case EBUSY: return ("EBUSY");
	case EIO: return ("EIO");
	case ENXIO: return ("ENXIO");
	case ENOTSUP: return ("ENOTSUP");
	case EREMOTEIO: return ("EREMOTEIO");
	case ECKSUM: return ("ECKSUM");
	case EROFS: return ("EROFS");
	case ENOSPC: return ("ENOSPC");
	case EACCES: return ("EACCES");
	case EPERM: return ("EPERM");
	default: return ("EOTHER");
	}
}

static int
result_ok(void)
{
	json_t j = record("result");
	j_str(&j, "outcome", "ok");
	publish(&j);
	return (0);
}

static int
result_error(int err, const char *fmt, ...)
{
	char text[512];
	va_list ap;
	va_start(ap, fmt);
	(void) vsnprintf(text, sizeof (text), fmt, ap);
	va_end(ap);
	json_t j = record("result");
	j_str(&j, "outcome", "error");
	j_str(&j, "errno", errno_name(err));
	j_str(&j, "message", text);
	publish(&j);
	return (EXIT_ERROR);
}

/* The pool is in use by the host named in load_info. */
static int
result_busy(uint64_t hostid, const char *hostname)
{
	json_t j = record("result");
	j_str(&j, "outcome", "active");
	j_hex(&j, "hostid", hostid);
	j_str(&j, "hostname", hostname != NULL ? hostname : "");
	publish(&j);
	return (EXIT_BUSY);
}

/* ------------------------------------------------------------------ */
/* libzpool's debug log                                                */
/* ------------------------------------------------------------------ */

/*
 * libzpool keeps zfs_dbgmsg() lines in memory and prints them only through
 * zfs_dbgmsg_print(), to file descriptor 1 -- which is our scratch log.  To
 * read what one operation logged, we log a numbered mark first, then dump
 * the whole log and look only at what follows the last copy of the mark.
 */
static unsigned marks;

static unsigned
log_mark(void)
{
	char text[64];
	(void) snprintf(text, sizeof (text), "zpk-oracle mark %u", ++marks);
	__zfs_dbgmsg(text);
	return (marks);
}

/*
 * Calls fn(line, arg) for each log line after mark `since`; copies the lines
 * about loading and MMP (or, with --debug, all of them) to stderr.
 */
static void
log_since(unsigned since, void (*fn)(const char *, void *), void *arg)
{
	static const char *const worth_copying[] = { "spa_load", "mmp",
	    "MMP", "activity", "import", "hostid", "uberblock", NULL };
	char mark[64], *line = NULL;
	size_t cap = 0;
	ssize_t n;
	FILE *f;
	off_t start = 0, pos = 0;

	(void) fflush(stdout);
	if (ftruncate(log_fd, 0) != 0 || lseek(log_fd, 0, SEEK_SET) != 0)
		return;
	zfs_dbgmsg_print("zpk-oracle");
	(void) snprintf(mark, sizeof (mark), "zpk-oracle mark %u", since);
	if ((f = fdopen(dup(log_fd), "r")) == NULL)
		return;
	rewind(f);
	while ((n = getline(&line, &cap, f)) > 0) {
		pos += n;
		if (strstr(line, mark) != NULL)
			start = pos;
	}
	(void) fseeko(f, start, SEEK_SET);
	while ((n = getline(&line, &cap, f)) > 0) {
		if (line[n - 1] == '\n')
			line[n - 1] = '\0';
		if (fn != NULL)
			fn(line, arg);
		int copy = cfg.verbose_log;
		for (int i = 0; !copy && worth_copying[i] != NULL; i++)
			copy = strstr(line, worth_copying[i]) != NULL;
		if (copy)
			(void) fprintf(stderr, "  log: %s\n", line);
	}
	free(line);
	(void) fclose(f);
}

/* spa_load logs "using uberblock with txg=N" for the uberblock it chose. */
static void
find_chosen_txg(const char *line, void *arg)
{
	const char *p = strstr(line, "using uberblock with txg=");
	if (p != NULL)
		*(uint64_t *)arg = strtoull(p + strlen("using uberblock with "
		    "txg="), NULL, 10);
}

/* ------------------------------------------------------------------ */
/* Finding pools: libzutil's label scan + spa_tryimport                */
/* ------------------------------------------------------------------ */

#define	CHOSEN_TXG_KEY	"org.zpoolkit.oracle:chosen_txg"

/*
 * The scanner's refresh hook: the kernel's ZFS_IOC_POOL_TRYIMPORT is
 * spa_tryimport(), which we call directly.  The txg of the uberblock the
 * load chose is not in the returned config, so it is added from the log.
 */
static nvlist_t *
refresh_with_tryimport(void *unused, nvlist_t *candidate)
{
	uint64_t txg = 0;
	(void) unused;
	unsigned mark = log_mark();
	nvlist_t *config = spa_tryimport(candidate);
	log_since(mark, find_chosen_txg, &txg);
	if (config != NULL && txg != 0)
		fnvlist_add_uint64(config, CHOSEN_TXG_KEY, txg);
	return (config);
}

/* Only a pool this process has imported counts as active. */
static int
imported_here(void *unused, const char *name, uint64_t guid,
    boolean_t *active)
{
	(void) unused;
	mutex_enter(&spa_namespace_lock);
	spa_t *spa = spa_lookup(name);
	*active = spa != NULL && spa_guid(spa) == guid;
	mutex_exit(&spa_namespace_lock);
	return (0);
}

static const pool_config_ops_t scan_hooks = {
	.pco_refresh_config = refresh_with_tryimport,
	.pco_pool_active = imported_here,
};

/* name -> config for every pool in the -d directories (or just one). */
static nvlist_t *
find_pools(const char *name, uint64_t guid)
{
	importargs_t args = { 0 };
	args.path = cfg.search;
	args.paths = cfg.nsearch;
	args.poolname = (char *)name;
	args.guid = guid;
	args.scan = B_TRUE;
	return (zpool_search_import(NULL, &args, &scan_hooks));
}

/* ------------------------------------------------------------------ */
/* Describing a tryimport config                                       */
/* ------------------------------------------------------------------ */

/*
 * What libzfs says about one tryimport config (zpk-import-status): the
 * status, message id and errata of zpool_import_status(), the pool state
 * word, and zpool_state_to_name() for each vdev in j_vdev()'s order.
 */
typedef struct {
	char	status[64], msgid[64], errata[64], pool_state[64];
	char	**vdev_states;
	size_t	nvdevs, next;
} libzfs_view_t;

static const char *
next_vdev_state(libzfs_view_t *view)
{
	return (view->next < view->nvdevs ? view->vdev_states[view->next++] :
	    "UNKNOWN");
}

static void
view_free(libzfs_view_t *view)
{
	for (size_t i = 0; i < view->nvdevs; i++)
		free(view->vdev_states[i]);
	free(view->vdev_states);
}

/* vdev_aux_t in lower case, without the VDEV_AUX_ prefix. */
static const char *
aux_text(uint64_t aux)
{
	static const char *const names[] = { "none", "open_failed",
	    "corrupt_data", "no_replicas", "bad_guid_sum", "too_small",
	    "bad_label", "version_newer", "version_older", "unsup_feat",
	    "spared", "err_exceeded", "io_failure", "bad_log", "external",
	    "split_pool", "bad_ashift", "external_persist", "active",
	    "children_offline", "ashift_too_big" };
	return (aux < ARRAY_SIZE(names) ? names[aux] : "unknown");
}

static const char *
mmp_state_text(uint64_t state)
{
	switch (state) {
	case MMP_STATE_ACTIVE: return ("ACTIVE");
	case MMP_STATE_INACTIVE: return ("INACTIVE");
	case MMP_STATE_NO_HOSTID: return ("NO_HOSTID");
	default: return ("UNKNOWN");
	}
}

static void
j_vdev(json_t *j, nvlist_t *nv, const char *class, libzfs_view_t *view)
{
	char *type = "?", *path = NULL, *bias = NULL;
	uint64_t guid = 0, id, nparity, flag;
	uint_t nstats = 0, nkids = 0;
	vdev_stat_t *vs = NULL;
	nvlist_t **kids;

	(void) nvlist_lookup_string(nv, ZPOOL_CONFIG_TYPE, &type);
	(void) nvlist_lookup_uint64(nv, ZPOOL_CONFIG_GUID, &guid);
	(void) nvlist_lookup_string(nv, ZPOOL_CONFIG_PATH, &path);
	(void) nvlist_lookup_uint64_array(nv, ZPOOL_CONFIG_VDEV_STATS,
	    (uint64_t **)&vs, &nstats);

	j_lit(j, "{");
	j->fields = 0;
	j_str(j, "type", type);
	j_u64(j, "guid", guid);
	j_str(j, "path", path);
	j_str(j, "state", next_vdev_state(view));
	j_str(j, "aux", vs ? aux_text(vs->vs_aux) : "none");
	if (nvlist_lookup_uint64(nv, ZPOOL_CONFIG_ID, &id) == 0)
		j_u64(j, "id", id);
	if (nvlist_lookup_uint64(nv, ZPOOL_CONFIG_NPARITY, &nparity) == 0)
		j_u64(j, "nparity", nparity);
	if (nvlist_lookup_uint64(nv, ZPOOL_CONFIG_IS_LOG, &flag) == 0 && flag)
		class = "log";
	if (nvlist_lookup_string(nv, ZPOOL_CONFIG_ALLOCATION_BIAS,
	    &bias) == 0)
		class = bias;
	j_str(j, "class", class);
	if (nvlist_lookup_uint64(nv, ZPOOL_CONFIG_NOT_PRESENT, &flag) == 0)
		j_str(j, "not_present", "1");

	/* Children, then the pool-level cache and spare lists. */
	static const struct { const char *key, *class; } lists[] = {
		{ ZPOOL_CONFIG_CHILDREN, NULL },
		{ ZPOOL_CONFIG_L2CACHE, "cache" },
		{ ZPOOL_CONFIG_SPARES, "spare" },
	};
	j_key(j, "children");
	j_lit(j, "[");
	int written = 0;
	for (size_t l = 0; l < ARRAY_SIZE(lists); l++) {
		if (nvlist_lookup_nvlist_array(nv, lists[l].key, &kids,
		    &nkids) != 0)
			continue;
		for (uint_t c = 0; c < nkids; c++) {
			if (written++ > 0)
				j_lit(j, ",");
			j_vdev(j, kids[c], lists[l].class, view);
		}
	}
	j_lit(j, "]}");
	j->fields = 1;
}

/*
 * What `zpool import` says about the config, from libzfs itself: runs
 * zpk-import-status (libzfs cannot share this process with libzpool) on the
 * packed config.  Returns 0 with *view filled, or an errno.
 */
static int
ask_libzfs(nvlist_t *config, libzfs_view_t *view)
{
	char dir[] = "/tmp/zpk-oracle-status.XXXXXX", in[80], out[80];
	char *packed = NULL, helper[4096], hostid[24], *line = NULL;
	size_t packed_len = 0, cap = 0;
	int fd, err = 0, wstatus;
	FILE *f;

	if (mkdtemp(dir) == NULL)
		return (errno);
	(void) snprintf(in, sizeof (in), "%s/config", dir);
	(void) snprintf(out, sizeof (out), "%s/status", dir);
	(void) snprintf(helper, sizeof (helper), "%s/zpk-import-status",
	    cfg.helper_dir);
	(void) snprintf(hostid, sizeof (hostid), "0x%x",
	    (unsigned)zone_get_hostid(NULL));
	if ((err = nvlist_pack(config, &packed, &packed_len,
	    NV_ENCODE_NATIVE, 0)) != 0)
		goto done;
	if ((fd = open(in, O_WRONLY | O_CREAT | O_EXCL, 0600)) < 0 ||
	    write(fd, packed, packed_len) != (ssize_t)packed_len) {
		err = errno ? errno : EIO;
		if (fd >= 0)
			(void) close(fd);
		goto done;
	}
	(void) close(fd);

	/*
	 * posix_spawn, not fork + setenv: libzpool's threads are running.
	 * The preloaded library hides /etc/hostid, so that host id 0 is 0.
	 */
	char preload[4200];
	(void) snprintf(preload, sizeof (preload),
	    "LD_PRELOAD=%s/libzpk-zfsdev.so", cfg.helper_dir);
	char *env[] = { preload, (char *)"ZPK_HIDE_HOSTID=1",
	    (char *)"LC_ALL=C", NULL };
	char *argv[] = { helper, (char *)"--hostid", hostid, in, NULL };
	posix_spawn_file_actions_t actions;
	pid_t pid;
	(void) posix_spawn_file_actions_init(&actions);
	(void) posix_spawn_file_actions_addopen(&actions, 1, out,
	    O_WRONLY | O_CREAT | O_TRUNC, 0600);
	err = posix_spawn(&pid, helper, &actions, NULL, argv, env);
	(void) posix_spawn_file_actions_destroy(&actions);
	if (err != 0 || waitpid(pid, &wstatus, 0) != pid ||
	    !WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) {
		say("%s failed (%s)", helper, err ? strerror(err) :
		    "non-zero exit");
		err = EIO;
		goto done;
	}
	if ((f = fopen(out, "r")) == NULL) {
		err = errno;
		goto done;
	}
	/* STATUS MSGID ERRATA POOLSTATE, then one vdev state per line. */
	if (getline(&line, &cap, f) <= 0 || sscanf(line, "%63s %63s %63s %63s",
	    view->status, view->msgid, view->errata, view->pool_state) != 4)
		err = EIO;
	for (ssize_t n; err == 0 && (n = getline(&line, &cap, f)) > 0; ) {
		line[strcspn(line, "\n")] = '\0';
		view->vdev_states = realloc(view->vdev_states,
		    (view->nvdevs + 1) * sizeof (char *));
		if (view->vdev_states == NULL)
			abort();
		view->vdev_states[view->nvdevs++] = strdup(line);
	}
	(void) fclose(f);
done:
	free(line);
	if (packed != NULL)
		fnvlist_pack_free(packed, packed_len);
	(void) unlink(in);
	(void) unlink(out);
	(void) rmdir(dir);
	return (err);
}

/*
 * What `import` would do with this config: the rule of zpool's do_import()
 * for when -f is needed, and libzpool's verdicts for the rest.
 */
static const char *
import_verdict(nvlist_t *config, vdev_stat_t *root)
{
	uint64_t state = 0, hostid = 0, version = 0, mmp = MMP_STATE_INACTIVE;
	nvlist_t *info;

	(void) nvlist_lookup_uint64(config, ZPOOL_CONFIG_POOL_STATE, &state);
	(void) nvlist_lookup_uint64(config, ZPOOL_CONFIG_HOSTID, &hostid);
	(void) nvlist_lookup_uint64(config, ZPOOL_CONFIG_VERSION, &version);
	int checked = nvlist_lookup_nvlist(config, ZPOOL_CONFIG_LOAD_INFO,
	    &info) == 0 && nvlist_lookup_uint64(info, ZPOOL_CONFIG_MMP_STATE,
	    &mmp) == 0;

	if (checked && mmp == MMP_STATE_ACTIVE)
		return ("blocked-active");
	if (checked && mmp == MMP_STATE_NO_HOSTID)
		return ("blocked-no-hostid");
	if (!SPA_VERSION_IS_SUPPORTED(version) || (root != NULL &&
	    (root->vs_state == VDEV_STATE_CANT_OPEN ||
	    root->vs_state == VDEV_STATE_FAULTED)))
		return ("unavailable");
	if (state != POOL_STATE_EXPORTED &&
	    hostid != zone_get_hostid(NULL))
		return ("needs-force");
	return ("import");
}

static int
describe_pool(nvlist_t *config)
{
	char *name = "", *hostname = NULL;
	uint64_t guid = 0, hostid = 0, txg, ts, version = 0, v;
	nvlist_t *root, *info;
	vdev_stat_t *vs = NULL;
	uint_t n;
	libzfs_view_t view = { 0 };

	(void) nvlist_lookup_string(config, ZPOOL_CONFIG_POOL_NAME, &name);
	(void) nvlist_lookup_uint64(config, ZPOOL_CONFIG_POOL_GUID, &guid);
	(void) nvlist_lookup_uint64(config, ZPOOL_CONFIG_HOSTID, &hostid);
	(void) nvlist_lookup_string(config, ZPOOL_CONFIG_HOSTNAME, &hostname);
	(void) nvlist_lookup_uint64(config, ZPOOL_CONFIG_VERSION, &version);
	root = fnvlist_lookup_nvlist(config, ZPOOL_CONFIG_VDEV_TREE);
	(void) nvlist_lookup_uint64_array(root, ZPOOL_CONFIG_VDEV_STATS,
	    (uint64_t **)&vs, &n);

	int err = ask_libzfs(config, &view);
	if (err != 0 || view.nvdevs == 0) {
		view_free(&view);
		return (result_error(err ? err : EIO, "zpk-import-status "
		    "could not judge pool %s", name));
	}

	json_t j = record("pool");
	j_str(&j, "name", name);
	j_u64(&j, "guid", guid);
	j_str(&j, "state", view.pool_state);
	j_str(&j, "health", view.vdev_states[0]);
	j_hex(&j, "hostid", hostid);
	j_str(&j, "hostname", hostname);
	j_u64(&j, "version", version);
	if (nvlist_lookup_uint64(config, CHOSEN_TXG_KEY, &txg) == 0)
		j_u64(&j, "txg", txg);
	if (nvlist_lookup_uint64(config, ZPOOL_CONFIG_TIMESTAMP, &ts) == 0)
		j_u64(&j, "timestamp", ts);
	if (nvlist_lookup_nvlist(config, ZPOOL_CONFIG_LOAD_INFO, &info) == 0 &&
	    nvlist_lookup_uint64(info, ZPOOL_CONFIG_MMP_STATE, &v) == 0) {
		char *who = NULL;
		j_str(&j, "mmp_state", mmp_state_text(v));
		if (nvlist_lookup_uint64(info, ZPOOL_CONFIG_MMP_TXG, &v) == 0)
			j_u64(&j, "mmp_txg", v);
		if (nvlist_lookup_uint64(info, ZPOOL_CONFIG_MMP_SEQ, &v) == 0)
			j_u64(&j, "mmp_seq", v);
		if (nvlist_lookup_uint64(info, ZPOOL_CONFIG_MMP_HOSTID,
		    &v) == 0)
			j_hex(&j, "mmp_hostid", v);
		if (nvlist_lookup_string(info, ZPOOL_CONFIG_MMP_HOSTNAME,
		    &who) == 0)
			j_str(&j, "mmp_hostname", who);
	} else {
		j_str(&j, "mmp_state", "none");
	}
	j_str(&j, "status", view.status);
	if (strcmp(view.msgid, "-") != 0)
		j_str(&j, "msgid", view.msgid);
	j_str(&j, "errata", view.errata);
	j_str(&j, "action", import_verdict(config, vs));
	j_key(&j, "root");
	j_vdev(&j, root, NULL, &view);
	publish(&j);
	view_free(&view);
	return (0);
}

static int
verb_tryimport(void)
{
	nvlist_t *pools = find_pools(NULL, 0);
	nvpair_t *pair = NULL;
	uint64_t count = 0;
	int rc = 0;

	while (pools != NULL && rc == 0 &&
	    (pair = nvlist_next_nvpair(pools, pair)) != NULL) {
		rc = describe_pool(fnvpair_value_nvlist(pair));
		count++;
	}
	fnvlist_free(pools);
	if (rc != 0)
		return (rc);
	json_t j = record("result");
	j_str(&j, "outcome", "ok");
	j_u64(&j, "pools", count);
	publish(&j);
	return (0);
}

/*
 * tryimport-packed IN OUT: the kernel's half of ZFS_IOC_POOL_TRYIMPORT for
 * libzpk-zfsdev.so.  IN holds the packed config the label scan assembled;
 * OUT gets the packed spa_tryimport() answer.  Exit 1: no answer (EINVAL).
 */
static int
verb_tryimport_packed(const char *in, const char *out)
{
	char *buf = NULL, *packed = NULL;
	size_t len = 0, cap = 0, packed_len = 0;
	nvlist_t *candidate = NULL, *config;
	int fd = open(in, O_RDONLY);
	ssize_t n;

	while (fd >= 0) {
		if (len == cap && (buf = realloc(buf, cap = cap * 2 + 65536))
		    == NULL)
			abort();
		if ((n = read(fd, buf + len, cap - len)) <= 0)
			break;
		len += (size_t)n;
	}
	if (fd < 0 || nvlist_unpack(buf, len, &candidate, 0) != 0) {
		say("cannot read a packed config from %s", in);
		return (EXIT_USAGE);
	}
	(void) close(fd);
	free(buf);
	unsigned mark = log_mark();
	config = spa_tryimport(candidate);
	log_since(mark, NULL, NULL);
	fnvlist_free(candidate);
	if (config == NULL)
		return (EXIT_ERROR);
	packed = fnvlist_pack(config, &packed_len);
	fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, packed, packed_len) != (ssize_t)packed_len) {
		say("cannot write %s: %s", out, strerror(errno));
		return (EXIT_USAGE);
	}
	(void) close(fd);
	fnvlist_pack_free(packed, packed_len);
	fnvlist_free(config);
	return (0);
}

/* ------------------------------------------------------------------ */
/* Importing                                                           */
/* ------------------------------------------------------------------ */

static void
j_pool_facts(json_t *j, spa_t *spa)
{
	j_str(j, "pool", spa_name(spa));
	j_u64(j, "guid", spa_guid(spa));
	j_hex(j, "hostid", zone_get_hostid(NULL));
	j_str(j, "hostname", utsname()->nodename);
	j_str(j, "multihost", spa_multihost(spa) ? "on" : "off");
	j_u64(j, "txg", spa_last_synced_txg(spa));
}

/* If load_info carries an MMP verdict that forbids the import, report it. */
static int
refused_by_mmp(nvlist_t *config)
{
	nvlist_t *info;
	uint64_t mmp, hostid = 0;
	char *hostname = NULL;

	if (nvlist_lookup_nvlist(config, ZPOOL_CONFIG_LOAD_INFO, &info) != 0 ||
	    nvlist_lookup_uint64(info, ZPOOL_CONFIG_MMP_STATE, &mmp) != 0)
		return (0);
	if (mmp == MMP_STATE_ACTIVE) {
		(void) nvlist_lookup_uint64(info, ZPOOL_CONFIG_MMP_HOSTID,
		    &hostid);
		(void) nvlist_lookup_string(info, ZPOOL_CONFIG_MMP_HOSTNAME,
		    &hostname);
		return (result_busy(hostid, hostname));
	}
	if (mmp == MMP_STATE_NO_HOSTID)
		return (result_error(EREMOTEIO, "multihost is on and this "
		    "host has no host id"));
	return (0);
}

/*
 * Imports POOL (a name, or a guid if all digits) into this process: scan,
 * spa_tryimport (which runs the MMP activity check), zpool's -f rule, then
 * spa_import.  Returns 0 with *imported set, or the exit status of the
 * result record it wrote.
 */
static int
import_one(const char *which, char **imported)
{
	char *end, *name = NULL;
	uint64_t guid = 0;
	int found = 0, rc = 0;
	nvlist_t *pools, *config = NULL;
	nvpair_t *pair = NULL;

	if (which[0] >= '0' && which[0] <= '9') {
		guid = strtoull(which, &end, 10);
		if (*end != '\0' || guid == 0)
			return (result_error(EINVAL, "'%s' is neither a pool "
			    "name nor a guid", which));
	}
	pools = find_pools(guid ? NULL : which, guid);
	while (pools != NULL && (pair = nvlist_next_nvpair(pools, pair))) {
		if (found++ == 0)
			config = fnvlist_dup(fnvpair_value_nvlist(pair));
	}
	fnvlist_free(pools);
	if (found == 0)
		return (result_error(ENOENT, "no pool '%s' in the search "
		    "directories", which));
	if (found > 1) {
		fnvlist_free(config);
		return (result_error(EEXIST, "%d pools are called '%s'; name "
		    "one by its guid", found, which));
	}

	vdev_stat_t *vs = NULL;
	uint_t n;
	(void) nvlist_lookup_uint64_array(fnvlist_lookup_nvlist(config,
	    ZPOOL_CONFIG_VDEV_TREE), ZPOOL_CONFIG_VDEV_STATS,
	    (uint64_t **)&vs, &n);
	const char *verdict = import_verdict(config, vs);
	uint64_t version = 0;
	(void) nvlist_lookup_uint64(config, ZPOOL_CONFIG_VERSION, &version);
	name = strdup(fnvlist_lookup_string(config, ZPOOL_CONFIG_POOL_NAME));

	if (!SPA_VERSION_IS_SUPPORTED(version)) {
		rc = result_error(ENOTSUP, "pool %s has on-disk version %llu, "
		    "which OpenZFS 2.1.11 does not support", name,
		    (u_longlong_t)version);
	} else if ((rc = refused_by_mmp(config)) != 0) {
		/* reported */
	} else if (strcmp(verdict, "needs-force") == 0 && !cfg.force) {
		uint64_t hostid = 0;
		char *hostname = "";
		(void) nvlist_lookup_uint64(config, ZPOOL_CONFIG_HOSTID,
		    &hostid);
		(void) nvlist_lookup_string(config, ZPOOL_CONFIG_HOSTNAME,
		    &hostname);
		rc = result_error(EBUSY, "pool %s was last used by host %s "
		    "(hostid 0x%llx) and not exported; pass --force", name,
		    hostname, (u_longlong_t)hostid);
	} else {
		nvlist_t *props = fnvlist_alloc();
		fnvlist_add_string(props,
		    zpool_prop_to_name(ZPOOL_PROP_CACHEFILE), "none");
		unsigned mark = log_mark();
		int err = spa_import(name, config, props, cfg.force ?
		    ZFS_IMPORT_ANY_HOST : ZFS_IMPORT_NORMAL);
		log_since(mark, NULL, NULL);
		fnvlist_free(props);
		/* A failed spa_import leaves its load_info in the config. */
		if (err != 0 && (rc = refused_by_mmp(config)) == 0)
			rc = result_error(err, "spa_import(%s): %s", name,
			    strerror(err));
	}
	fnvlist_free(config);
	if (rc != 0) {
		free(name);
		return (rc);
	}
	*imported = name;
	return (0);
}

/* Export, or with --no-export leave the pool imported and die. */
static int
finish(const char *name)
{
	json_t j;

	if (cfg.crash) {
		/* A host crash: labels stay ACTIVE, heartbeats stop. */
		j = record("crashed");
		j_str(&j, "pool", name);
		publish(&j);
		(void) result_ok();
		_exit(0);
	}
	int err = spa_export((char *)name, NULL, B_FALSE, B_FALSE);
	if (err != 0)
		return (result_error(err, "spa_export(%s): %s", name,
		    strerror(err)));
	j = record("exported");
	j_str(&j, "pool", name);
	publish(&j);
	return (result_ok());
}

static int
verb_import(const char *which)
{
	char *name = NULL;
	spa_t *spa;
	int rc = import_one(which, &name);

	if (rc != 0)
		return (rc);
	if (spa_open(name, &spa, FTAG) == 0) {
		json_t j = record("imported");
		j_pool_facts(&j, spa);
		publish(&j);
		spa_close(spa, FTAG);
	}
	rc = finish(name);
	free(name);
	return (rc);
}

/* `zpool destroy`: import, then mark every label DESTROYED. */
static int
verb_destroy(const char *which)
{
	char *name = NULL;
	int rc = import_one(which, &name);

	if (rc != 0)
		return (rc);
	int err = spa_destroy(name);
	if (err != 0) {
		rc = result_error(err, "spa_destroy(%s): %s", name,
		    strerror(err));
		free(name);
		return (rc);
	}
	json_t j = record("destroyed");
	j_str(&j, "pool", name);
	publish(&j);
	free(name);
	return (result_ok());
}

/* ------------------------------------------------------------------ */
/* Holding a pool                                                      */
/* ------------------------------------------------------------------ */

/*
 * A pool nobody writes to syncs empty txgs and writes no uberblock, so
 * its on-disk txg stands still.  Each tick therefore logs one pool history
 * record in a txg of its own and waits for that txg to reach the disk.
 */
static int
write_tick(spa_t *spa, long n)
{
	dsl_pool_t *dp = spa_get_dsl(spa);
	dmu_tx_t *tx = dmu_tx_create_dd(dp->dp_mos_dir);
	int err = dmu_tx_assign(tx, TXG_WAIT);
	if (err != 0) {
		dmu_tx_abort(tx);
		return (err);
	}
	uint64_t txg = dmu_tx_get_txg(tx);
	spa_history_log_internal(spa, "zpk-oracle", tx, "tick %ld", n);
	dmu_tx_commit(tx);
	txg_wait_synced(dp, txg);
	return (0);
}

static double
now(void)
{
	struct timespec ts;
	(void) clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
}

static int
verb_hold(const char *which, const sigset_t *stop)
{
	char *name = NULL;
	spa_t *spa;
	int err, rc = import_one(which, &name);

	if (rc != 0)
		return (rc);
	if ((err = spa_open(name, &spa, FTAG)) != 0) {
		free(name);
		return (result_error(err, "spa_open(%s): %s", which,
		    strerror(err)));
	}
	if (cfg.multihost >= 0 && (int)spa_multihost(spa) != cfg.multihost) {
		nvlist_t *props = fnvlist_alloc();
		fnvlist_add_uint64(props,
		    zpool_prop_to_name(ZPOOL_PROP_MULTIHOST), cfg.multihost);
		err = spa_prop_set(spa, props);
		fnvlist_free(props);
		if (err == 0)
			txg_wait_synced(spa_get_dsl(spa), 0);
		if (err != 0) {
			spa_close(spa, FTAG);
			(void) spa_export(name, NULL, B_FALSE, B_FALSE);
			rc = result_error(err, "setting multihost on %s: %s%s",
			    name, strerror(err), zone_get_hostid(NULL) == 0 ?
			    " (multihost needs a host id)" : "");
			free(name);
			return (rc);
		}
	}

	json_t j = record("ready");
	j_pool_facts(&j, spa);
	j_u64(&j, "interval_ms", zfs_multihost_interval);
	j_u64(&j, "fail_intervals", zfs_multihost_fail_intervals);
	j_u64(&j, "import_intervals", zfs_multihost_import_intervals);
	publish(&j);

	double start = now();
	for (long n = 0; ; n++) {
		if (!spa_suspended(spa) && (err = write_tick(spa, n)) != 0)
			say("tick %ld: %s", n, strerror(err));
		j = record("tick");
		j_u64(&j, "n", (uint64_t)n);
		j_u64(&j, "txg", spa_last_synced_txg(spa));
		j_str(&j, "suspended", spa_suspended(spa) ? "yes" : "no");
		publish(&j);

		/* Sleep to the next whole second, or stop. */
		double wake = start + (double)(n + 1);
		if (cfg.seconds > 0 && wake > start + (double)cfg.seconds)
			wake = start + (double)cfg.seconds;
		int sig = 0;
		for (double left; sig <= 0 && (left = wake - now()) > 0; ) {
			struct timespec ts = { (time_t)left,
			    (long)((left - (double)(time_t)left) * 1e9) };
			sig = sigtimedwait(stop, NULL, &ts);
		}
		if (sig > 0) {
			say("stopping on signal %d", sig);
			break;
		}
		if (cfg.seconds > 0 && now() - start >= (double)cfg.seconds)
			break;
	}
	spa_close(spa, FTAG);
	rc = finish(name);
	free(name);
	return (rc);
}

/* ------------------------------------------------------------------ */
/* Creating a pool                                                     */
/* ------------------------------------------------------------------ */

/*
 * The layout is zpool's vdev syntax: files (a stripe), "mirror F F...",
 * "raidz[1-3] F F...", then optionally "log ...", "cache F...",
 * "spare F...".  build_tree() checks everything before it creates a file.
 */

typedef struct {
	nvlist_t	**v;
	uint_t		n;
} nvl_list_t;

static void
push(nvl_list_t *l, nvlist_t *nv)
{
	l->v = realloc(l->v, (l->n + 1) * sizeof (nvlist_t *));
	if (l->v == NULL)
		abort();
	l->v[l->n++] = nv;
}

static void
clear(nvl_list_t *l)
{
	for (uint_t i = 0; i < l->n; i++)
		fnvlist_free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* "raidz2" -> type raidz, parity 2; "mirror" -> parity 0; else NULL. */
static const char *
group_type(const char *word, uint64_t *parity)
{
	*parity = 0;
	if (strcmp(word, "mirror") == 0)
		return (VDEV_TYPE_MIRROR);
	if (strncmp(word, "raidz", 5) == 0 && (word[5] == '\0' ||
	    (word[5] >= '1' && word[5] <= '3' && word[6] == '\0'))) {
		*parity = word[5] ? (uint64_t)(word[5] - '0') : 1;
		return (VDEV_TYPE_RAIDZ);
	}
	return (NULL);
}

static int
is_section(const char *word)
{
	return (strcmp(word, "log") == 0 || strcmp(word, "cache") == 0 ||
	    strcmp(word, "spare") == 0);
}

static nvlist_t *
file_leaf(const char *word, int create)
{
	char path[4096];
	if (word[0] == '/')
		(void) snprintf(path, sizeof (path), "%s", word);
	else
		(void) snprintf(path, sizeof (path), "%s/%s", cfg.search[0],
		    word);
	if (create) {
		int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
		if (fd < 0 || ftruncate(fd, (off_t)cfg.file_size) != 0) {
			say("cannot make %s: %s", path, strerror(errno));
			if (fd >= 0)
				(void) close(fd);
			return (NULL);
		}
		(void) close(fd);
	}
	nvlist_t *nv = fnvlist_alloc();
	fnvlist_add_string(nv, ZPOOL_CONFIG_TYPE, VDEV_TYPE_FILE);
	fnvlist_add_string(nv, ZPOOL_CONFIG_PATH, path);
	return (nv);
}

/*
 * Two passes over the words: the first (create = 0) only checks, the
 * second makes the files and the tree.  NULL on a bad layout.  A pool needs
 * a data vdev; an addition (aux_only_ok) may be only cache or spare devices,
 * as in `zpool add POOL spare F`.
 */
static nvlist_t *
build_tree(int argc, char **argv, int create, int aux_only_ok)
{
	nvl_list_t tops = { 0 }, cache = { 0 }, spares = { 0 };
	const char *section = "data";
	nvlist_t *root = NULL;
	uint64_t parity;
	int i = 0;

	while (i < argc) {
		if (is_section(argv[i])) {
			section = argv[i++];
			continue;
		}
		nvlist_t *nv;
		const char *type = group_type(argv[i], &parity);
		if (type != NULL) {
			nvl_list_t kids = { 0 };
			uint64_t group_parity = parity, ignored;
			for (i++; i < argc && !is_section(argv[i]) &&
			    group_type(argv[i], &ignored) == NULL; i++) {
				if ((nv = file_leaf(argv[i], create)) == NULL)
					goto bad;
				push(&kids, nv);
			}
			parity = group_parity;
			uint_t need = strcmp(type, VDEV_TYPE_MIRROR) == 0 ? 2 :
			    (uint_t)parity + 2;
			if (kids.n < need || (strcmp(section, "data") != 0 &&
			    strcmp(section, "log") != 0)) {
				say("%s needs at least %u files in a data or "
				    "log section", type, need);
				clear(&kids);
				goto bad;
			}
			nv = fnvlist_alloc();
			fnvlist_add_string(nv, ZPOOL_CONFIG_TYPE, type);
			if (parity != 0 && strcmp(type, VDEV_TYPE_RAIDZ) == 0)
				fnvlist_add_uint64(nv, ZPOOL_CONFIG_NPARITY,
				    parity);
			fnvlist_add_nvlist_array(nv, ZPOOL_CONFIG_CHILDREN,
			    kids.v, kids.n);
			clear(&kids);
		} else if ((nv = file_leaf(argv[i++], create)) == NULL) {
			goto bad;
		}
		if (strcmp(section, "cache") == 0) {
			push(&cache, nv);
		} else if (strcmp(section, "spare") == 0) {
			push(&spares, nv);
		} else {
			fnvlist_add_uint64(nv, ZPOOL_CONFIG_IS_LOG,
			    strcmp(section, "log") == 0);
			push(&tops, nv);
		}
	}
	if (tops.n == 0 && !(aux_only_ok && cache.n + spares.n > 0)) {
		say(aux_only_ok ? "the layout adds no device" :
		    "the layout has no data vdev");
		goto bad;
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
bad:
	clear(&tops);
	clear(&cache);
	clear(&spares);
	return (root);
}

static int
verb_create(const char *name, int argc, char **argv)
{
	namecheck_err_t why;
	char what;
	nvlist_t *root;
	spa_t *spa;
	int err;

	if (pool_namecheck(name, &why, &what) != 0)
		return (result_error(EINVAL, "'%s' is not a valid pool name",
		    name));
	if (cfg.multihost == 1 && zone_get_hostid(NULL) == 0)
		return (result_error(ENOTSUP, "multihost on needs a host id"));
	if ((root = build_tree(argc, argv, 0, 0)) == NULL)
		return (result_error(EINVAL, "bad vdev layout"));
	fnvlist_free(root);
	if ((root = build_tree(argc, argv, 1, 0)) == NULL)
		return (result_error(EIO, "could not make the vdev files"));

	/*
	 * Like `zpool create -o cachefile=none` (or `-o cachefile=PATH` with
	 * --cachefile: spa_create writes the pool's entry there, and an export
	 * takes it out again, so keep it with --no-export): every feature
	 * enabled.
	 */
	nvlist_t *props = fnvlist_alloc();
	fnvlist_add_string(props, zpool_prop_to_name(ZPOOL_PROP_CACHEFILE),
	    cfg.cachefile != NULL ? cfg.cachefile : "none");
	fnvlist_add_uint64(props, zpool_prop_to_name(ZPOOL_PROP_MULTIHOST),
	    cfg.multihost == 1);
	for (int f = 0; f < SPA_FEATURES; f++) {
		char prop[128];
		if (!spa_feature_table[f].fi_zfs_mod_supported)
			continue;
		(void) snprintf(prop, sizeof (prop), "feature@%s",
		    spa_feature_table[f].fi_uname);
		fnvlist_add_uint64(props, prop, 0);
	}
	err = spa_create(name, root, props, NULL, NULL);
	fnvlist_free(props);
	fnvlist_free(root);
	if (err != 0)
		return (result_error(err, "spa_create(%s): %s", name,
		    strerror(err)));
	if (spa_open(name, &spa, FTAG) == 0) {
		json_t j = record("created");
		j_pool_facts(&j, spa);
		publish(&j);
		spa_close(spa, FTAG);
	}
	/* --no-export keeps the cache file's entry (an export removes it). */
	if (cfg.cachefile == NULL)
		cfg.crash = 0;
	return (finish(name));
}

/*
 * `zpool add`: import the pool (cachefile=none, so no cache file hears of
 * it), add the layout's top-level vdevs with spa_vdev_add, then export (or
 * crash with --no-export).  The layout takes create's syntax.
 */
static int
verb_add(const char *which, int argc, char **argv)
{
	nvlist_t *root;
	char *name = NULL;
	spa_t *spa;
	int rc, err;

	if ((root = build_tree(argc, argv, 0, 1)) == NULL)
		return (result_error(EINVAL, "bad vdev layout"));
	fnvlist_free(root);
	if ((rc = import_one(which, &name)) != 0)
		return (rc);
	if ((root = build_tree(argc, argv, 1, 1)) == NULL) {
		free(name);
		return (result_error(EIO, "could not make the vdev files"));
	}
	if ((err = spa_open(name, &spa, FTAG)) != 0) {
		fnvlist_free(root);
		rc = result_error(err, "spa_open(%s): %s", name, strerror(err));
		free(name);
		return (rc);
	}
	err = spa_vdev_add(spa, root);
	fnvlist_free(root);
	if (err == 0) {
		json_t j = record("added");
		j_pool_facts(&j, spa);
		publish(&j);
	}
	spa_close(spa, FTAG);
	if (err != 0) {
		rc = result_error(err, "spa_vdev_add(%s): %s", name,
		    strerror(err));
		free(name);
		return (rc);
	}
	rc = finish(name);
	free(name);
	return (rc);
}

/* ------------------------------------------------------------------ */
/* main                                                                */
/* ------------------------------------------------------------------ */

static int
usage(void)
{
	(void) fprintf(stderr,
	    "usage: zpk-oracle VERB [options] [args]\n"
	    "  tryimport -d DIR...              what `zpool import -d` lists\n"
	    "  create POOL -d DIR LAYOUT...     make a pool on files, export\n"
	    "  import POOL|GUID -d DIR...       import (MMP check), export\n"
	    "  hold POOL|GUID -d DIR... --seconds N   import and keep it\n"
	    "  destroy POOL|GUID -d DIR...      import, then destroy\n"
	    "  add POOL|GUID -d DIR LAYOUT...   import, add vdevs, export\n"
	    "  tryimport-packed IN OUT          (for libzpk-zfsdev.so)\n"
	    "options: --hostid HEX --hostname NAME --force --no-export\n"
	    "  --multihost on|off --size BYTES[K|M|G] --interval-ms MS\n"
	    "  --fail-intervals K --import-intervals K --debug\n"
	    "  --cachefile PATH (create: the pool's cachefile property)\n"
	    "Output: JSON lines on stdout; see README.md.\n");
	return (EXIT_USAGE);
}

static int
number(const char *text, uint64_t *value, int base)
{
	char *end;
	errno = 0;
	*value = strtoull(text, &end, base);
	if (errno != 0 || end == text)
		return (-1);
	switch (*end) {
	case 'G': *value <<= 10; /* FALLTHROUGH */
	case 'M': *value <<= 10; /* FALLTHROUGH */
	case 'K': *value <<= 10; end++; break;
	default: break;
	}
	return (*end == '\0' ? 0 : -1);
}

int
main(int argc, char **argv)
{
	enum { O_HOSTID = 256, O_HOSTNAME, O_FORCE, O_CRASH, O_MULTIHOST,
	    O_SECONDS, O_SIZE, O_INTERVAL, O_FAIL, O_IMPORT, O_DEBUG,
	    O_CACHEFILE };
	static const struct option longs[] = {
		{ "hostid", required_argument, NULL, O_HOSTID },
		{ "hostname", required_argument, NULL, O_HOSTNAME },
		{ "force", no_argument, NULL, O_FORCE },
		{ "no-export", no_argument, NULL, O_CRASH },
		{ "multihost", required_argument, NULL, O_MULTIHOST },
		{ "seconds", required_argument, NULL, O_SECONDS },
		{ "size", required_argument, NULL, O_SIZE },
		{ "interval-ms", required_argument, NULL, O_INTERVAL },
		{ "fail-intervals", required_argument, NULL, O_FAIL },
		{ "import-intervals", required_argument, NULL, O_IMPORT },
		{ "debug", no_argument, NULL, O_DEBUG },
		{ "cachefile", required_argument, NULL, O_CACHEFILE },
		{ NULL, 0, NULL, 0 },
	};
	int64_t interval = -1, fail = -1, import = -1;
	uint64_t v;
	int c;

	/* Results get the real stdout; fd 1 becomes libzpool's scratch log. */
	int fd = dup(STDOUT_FILENO);
	char scratch[] = "/tmp/zpk-oracle-log.XXXXXX";
	log_fd = mkstemp(scratch);
	if (fd < 0 || log_fd < 0 || (report = fdopen(fd, "w")) == NULL ||
	    dup2(log_fd, STDOUT_FILENO) < 0) {
		perror("zpk-oracle: setting up output");
		return (EXIT_ERROR);
	}
	(void) unlink(scratch);

	if (argc < 2)
		return (usage());
	const char *verb = argv[1];
	optind = 2;
	while ((c = getopt_long(argc, argv, "d:", longs, NULL)) != -1) {
		switch (c) {
		case 'd':
			if (cfg.nsearch == (int)ARRAY_SIZE(cfg.search))
				return (usage());
			cfg.search[cfg.nsearch++] = optarg;
			break;
		case O_HOSTID:
			if (number(optarg, &v, 16) != 0 || v > UINT32_MAX)
				return (usage());
			cfg.hostid_given = 1;
			cfg.hostid = (uint32_t)v;
			break;
		case O_HOSTNAME:
			if (strlen(optarg) >= sizeof (hw_utsname.nodename))
				return (usage());
			cfg.hostname = optarg;
			break;
		case O_FORCE: cfg.force = 1; break;
		case O_CRASH: cfg.crash = 1; break;
		case O_DEBUG: cfg.verbose_log = 1; break;
		case O_CACHEFILE:
			if (optarg[0] != '/')
				return (usage());
			cfg.cachefile = optarg;
			break;
		case O_MULTIHOST:
			if (strcmp(optarg, "on") != 0 &&
			    strcmp(optarg, "off") != 0)
				return (usage());
			cfg.multihost = strcmp(optarg, "on") == 0;
			break;
		case O_SECONDS:
			if (number(optarg, &v, 10) != 0)
				return (usage());
			cfg.seconds = (long)v;
			break;
		case O_SIZE:
			if (number(optarg, &v, 10) != 0 || v < (64ULL << 20))
				return (usage());
			cfg.file_size = v;
			break;
		case O_INTERVAL:
		case O_FAIL:
		case O_IMPORT:
			if (number(optarg, &v, 10) != 0)
				return (usage());
			*(c == O_INTERVAL ? &interval : c == O_FAIL ? &fail :
			    &import) = (int64_t)v;
			break;
		default:
			return (usage());
		}
	}
	char **args = argv + optind;
	int nargs = argc - optind;

	/* zpk-import-status is built next to us. */
	static char self[4096];
	ssize_t len = readlink("/proc/self/exe", self, sizeof (self) - 1);
	if (len > 0) {
		self[len] = '\0';
		*strrchr(self, '/') = '\0';
		cfg.helper_dir = self;
	} else {
		cfg.helper_dir = ".";
	}

	int packed = strcmp(verb, "tryimport-packed") == 0;
	if (packed ? nargs != 2 :
	    strcmp(verb, "tryimport") == 0 ? nargs != 0 || cfg.nsearch == 0 :
	    strcmp(verb, "create") == 0 || strcmp(verb, "add") == 0 ?
	    nargs < 2 || cfg.nsearch == 0 :
	    strcmp(verb, "import") == 0 || strcmp(verb, "hold") == 0 ||
	    strcmp(verb, "destroy") == 0 ? nargs != 1 || cfg.nsearch == 0 :
	    -1) {
		if (strcmp(verb, "import") != 0 && strcmp(verb, "hold") != 0 &&
		    strcmp(verb, "create") != 0 && strcmp(verb, "tryimport") != 0 &&
		    strcmp(verb, "destroy") != 0 && strcmp(verb, "add") != 0 &&
		    !packed)
			say("unknown verb '%s'", verb);
		return (usage());
	}

	/*
	 * Signals that end `hold` are taken synchronously (sigtimedwait), so
	 * they are blocked before libzpool starts its threads.
	 */
	sigset_t stop;
	(void) sigemptyset(&stop);
	(void) sigaddset(&stop, SIGTERM);
	(void) sigaddset(&stop, SIGINT);
	(void) sigaddset(&stop, SIGHUP);
	(void) pthread_sigmask(SIG_BLOCK, &stop, NULL);

	/*
	 * Host identity.  kernel_init() reads the host id (ZFS_HOSTID, the spl
	 * module parameter, /etc/hostid) into hw_serial, which every new pool
	 * copies; a ZFS_HOSTID of 0 means "look further", so the claimed id
	 * is also written into hw_serial afterwards.
	 */
	if (cfg.hostid_given) {
		char text[16];
		/* strtoull(, 0): without "0x" it would be read as decimal. */
		(void) snprintf(text, sizeof (text), "0x%x", cfg.hostid);
		(void) setenv("ZFS_HOSTID", text, 1);
	}
	/* kernel_init() loads every pool named in this cache file: none. */
	spa_config_path = "/nonexistent/zpk-oracle/zpool.cache";
	if (interval >= 0)
		zfs_multihost_interval = (uint64_t)interval;
	if (fail >= 0)
		zfs_multihost_fail_intervals = (uint_t)fail;
	if (import >= 0)
		zfs_multihost_import_intervals = (uint_t)import;
	zfs_dbgmsg_enable = 1;

	kernel_init(SPA_MODE_READ | SPA_MODE_WRITE);
	if (cfg.hostid_given)
		(void) snprintf(hw_serial, HW_HOSTID_LEN, "%u", cfg.hostid);
	if (cfg.hostname != NULL)
		(void) strlcpy(hw_utsname.nodename, cfg.hostname,
		    sizeof (hw_utsname.nodename));
	say("%s as host 0x%x (%s)", verb, (unsigned)zone_get_hostid(NULL),
	    utsname()->nodename);

	int rc;
	if (packed)
		rc = verb_tryimport_packed(args[0], args[1]);
	else if (strcmp(verb, "tryimport") == 0)
		rc = verb_tryimport();
	else if (strcmp(verb, "create") == 0)
		rc = verb_create(args[0], nargs - 1, args + 1);
	else if (strcmp(verb, "import") == 0)
		rc = verb_import(args[0]);
	else if (strcmp(verb, "destroy") == 0)
		rc = verb_destroy(args[0]);
	else if (strcmp(verb, "add") == 0)
		rc = verb_add(args[0], nargs - 1, args + 1);
	else
		rc = verb_hold(args[0], &stop);
	/* Whatever is still imported (nothing, normally) is not exported. */
	(void) fflush(report);
	_exit(rc);
}
