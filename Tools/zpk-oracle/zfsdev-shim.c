/*
 * libzpk-zfsdev.so: lets the real, unmodified /usr/sbin/zpool list pools
 * ("zpool import -d DIR") on a machine without the zfs kernel module.
 *
 * zpool talks to the kernel only through open("/dev/zfs") and ioctl() on
 * that descriptor.  Preloaded into zpool, this library pretends the module is
 * loaded and answers the three requests a listing makes:
 *
 *   ZFS_IOC_POOL_TRYIMPORT  the kernel's spa_tryimport() on the config the
 *                           label scan assembled.  We hand the packed config
 *                           to `zpk-oracle tryimport-packed`, a separate
 *                           process that runs libzpool's spa_tryimport (the
 *                           same code the kernel module runs), and give its
 *                           packed answer back to libzfs.
 *   ZFS_IOC_POOL_STATS      "is this pool imported here?": never (ENOENT).
 *   ZFS_IOC_POOL_CONFIGS    the imported pools: none.
 *   ZFS_IOC_LOG_HISTORY     zpool's "remember this command line for the
 *                           pool history": accepted and dropped.
 *
 * Anything else fails with ENOTSUP and is logged to stderr, so a listing that
 * needs more than we answer is visible rather than silently wrong.
 *
 * libzpool is deliberately not linked here: libzfs and libzpool export
 * clashing symbols and cannot share a process.
 *
 * Environment:
 *   ZPK_ORACLE        path of the zpk-oracle binary (required).
 *   ZPK_ORACLE_ARGS   extra arguments for it, space separated (optional),
 *                     e.g. "--hostid 22222222 --interval-ms 100".
 *   ZPK_ZFSDEV_TRACE  when set, every /dev/zfs request is logged to stderr.
 *   ZPK_HIDE_HOSTID   when set, /etc/hostid and the spl hostid file read as
 *                     absent in this process, so that ZFS_HOSTID (or nothing:
 *                     host id 0) is zpool's whole idea of the host id.
 */

#define	_GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define	FAKE_DEVICE	"/dev/zfs"
#define	FAKE_MODULE	"/sys/module/zfs"

/* The request numbers of include/sys/fs/zfs.h ('Z' << 8 onwards). */
#define	REQ_POOL_CONFIGS	0x5a04
#define	REQ_POOL_STATS		0x5a05
#define	REQ_POOL_TRYIMPORT	0x5a06
#define	REQ_LOG_HISTORY		0x5a3f

/*
 * The head of zfs_cmd_t (include/sys/zfs_ioctl.h, not installed by Debian):
 * the fields these three requests use, at their ABI offsets.  The struct is
 * larger; we never touch what follows zc_nvlist_conf_size.
 */
struct zfs_cmd_head {
	char		name[4096];		/* zc_name[MAXPATHLEN] */
	uint64_t	src, src_size;		/* zc_nvlist_src */
	uint64_t	dst, dst_size;		/* zc_nvlist_dst */
	int32_t		dst_filled, pad2;
	uint64_t	history;
	char		value[8192];		/* zc_value[MAXPATHLEN * 2] */
	char		string[256];		/* zc_string[MAXNAMELEN] */
	uint64_t	guid;
	uint64_t	conf, conf_size;	/* zc_nvlist_conf */
};
_Static_assert(__builtin_offsetof(struct zfs_cmd_head, conf) == 12600,
    "zfs_cmd_t layout of OpenZFS 2.1");

/* The descriptor we handed out for /dev/zfs (one per open; -1 none). */
static int fake_fds[8] = { -1, -1, -1, -1, -1, -1, -1, -1 };

static void
shim_log(const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	(void) vsnprintf(buf, sizeof (buf), fmt, ap);
	va_end(ap);
	(void) dprintf(2, "libzpk-zfsdev: %s\n", buf);
}

static int
is_fake_fd(int fd)
{
	for (size_t i = 0; i < sizeof (fake_fds) / sizeof (fake_fds[0]); i++)
		if (fd >= 0 && fake_fds[i] == fd)
			return (1);
	return (0);
}

static int
hidden_path(const char *path)
{
	return (getenv("ZPK_HIDE_HOSTID") != NULL && path != NULL &&
	    (strcmp(path, "/etc/hostid") == 0 ||
	    strcmp(path, "/proc/sys/kernel/spl/hostid") == 0));
}

/* A /dev/null descriptor stands in for the device: close() just works. */
static int
open_fake_device(void)
{
	static int (*real_open)(const char *, int, ...);
	if (real_open == NULL)
		real_open = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT,
		    "open64");
	int fd = real_open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return (-1);
	for (size_t i = 0; i < sizeof (fake_fds) / sizeof (fake_fds[0]); i++) {
		if (fake_fds[i] < 0 || fcntl(fake_fds[i], F_GETFD) < 0) {
			fake_fds[i] = fd;
			return (fd);
		}
	}
	(void) close(fd);
	errno = EMFILE;
	return (-1);
}

static int
forward_open(const char *symbol, const char *path, int flags, mode_t mode)
{
	int (*real)(const char *, int, ...) =
	    (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, symbol);
	return (real(path, flags, mode));
}

static int
shim_open(const char *symbol, const char *path, int flags, mode_t mode)
{
	if (path != NULL && strcmp(path, FAKE_DEVICE) == 0)
		return (open_fake_device());
	if (hidden_path(path)) {
		errno = ENOENT;
		return (-1);
	}
	return (forward_open(symbol, path, flags, mode));
}

static mode_t
mode_arg(int flags, va_list ap)
{
	return ((flags & (O_CREAT | O_TMPFILE)) ? va_arg(ap, mode_t) : 0);
}

int
open(const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	mode_t mode = mode_arg(flags, ap);
	va_end(ap);
	return (shim_open("open", path, flags, mode));
}

int
open64(const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	mode_t mode = mode_arg(flags, ap);
	va_end(ap);
	return (shim_open("open64", path, flags, mode));
}

FILE *
fopen(const char *path, const char *how)
{
	static FILE *(*real)(const char *, const char *);
	if (hidden_path(path)) {
		errno = ENOENT;
		return (NULL);
	}
	if (real == NULL)
		real = (FILE *(*)(const char *, const char *))dlsym(RTLD_NEXT,
		    "fopen");
	return (real(path, how));
}

FILE *
fopen64(const char *path, const char *how)
{
	static FILE *(*real)(const char *, const char *);
	if (hidden_path(path)) {
		errno = ENOENT;
		return (NULL);
	}
	if (real == NULL)
		real = (FILE *(*)(const char *, const char *))dlsym(RTLD_NEXT,
		    "fopen64");
	return (real(path, how));
}

int
access(const char *path, int how)
{
	static int (*real)(const char *, int);
	if ((strcmp(path, FAKE_MODULE) == 0 ||
	    strcmp(path, FAKE_DEVICE) == 0))
		return (0);
	if (hidden_path(path)) {
		errno = ENOENT;
		return (-1);
	}
	if (real == NULL)
		real = (int (*)(const char *, int))dlsym(RTLD_NEXT, "access");
	return (real(path, how));
}

/* Writes all of buf to a new file; 0 or an errno. */
static int
write_file(const char *path, const void *buf, size_t len)
{
	int fd = forward_open("open64", path, O_WRONLY | O_CREAT | O_TRUNC |
	    O_CLOEXEC, 0600);
	if (fd < 0)
		return (errno);
	const char *p = buf;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int e = errno ? errno : EIO;
			(void) close(fd);
			return (e);
		}
		p += n;
		len -= (size_t)n;
	}
	return (close(fd) == 0 ? 0 : errno);
}

/* Reads a whole file into a malloc'd buffer; 0 or an errno. */
static int
read_file(const char *path, char **bufp, size_t *lenp)
{
	int fd = forward_open("open64", path, O_RDONLY | O_CLOEXEC, 0);
	struct stat st;
	if (fd < 0)
		return (errno);
	if (fstat(fd, &st) != 0) {
		int e = errno;
		(void) close(fd);
		return (e);
	}
	char *buf = malloc(st.st_size > 0 ? (size_t)st.st_size : 1);
	size_t got = 0;
	while (buf != NULL && got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	(void) close(fd);
	if (buf == NULL || got != (size_t)st.st_size) {
		free(buf);
		return (EIO);
	}
	*bufp = buf;
	*lenp = got;
	return (0);
}

/*
 * Runs `$ZPK_ORACLE tryimport-packed [$ZPK_ORACLE_ARGS] IN OUT` and waits.
 * Returns 0 (OUT holds the answer), EINVAL (spa_tryimport found nothing, as
 * the kernel says) or another errno.
 */
static int
run_oracle(const char *in, const char *out)
{
	const char *oracle = getenv("ZPK_ORACLE");
	if (oracle == NULL || *oracle == '\0') {
		shim_log("ZPK_ORACLE is not set; cannot answer TRYIMPORT");
		return (ENXIO);
	}
	char *extra = strdup(getenv("ZPK_ORACLE_ARGS") ?
	    getenv("ZPK_ORACLE_ARGS") : "");
	char *argv[40];
	int argc = 0;
	argv[argc++] = (char *)oracle;
	argv[argc++] = (char *)"tryimport-packed";
	for (char *save = NULL, *w = strtok_r(extra, " ", &save);
	    w != NULL && argc < 34; w = strtok_r(NULL, " ", &save))
		argv[argc++] = w;
	argv[argc++] = (char *)in;
	argv[argc++] = (char *)out;
	argv[argc] = NULL;

	/* Our environment without LD_PRELOAD: zpk-oracle needs no shim. */
	extern char **environ;
	size_t nenv = 0;
	while (environ[nenv] != NULL)
		nenv++;
	char **env = calloc(nenv + 1, sizeof (char *));
	for (size_t i = 0, j = 0; env != NULL && i < nenv; i++)
		if (strncmp(environ[i], "LD_PRELOAD=", 11) != 0)
			env[j++] = environ[i];

	/* The oracle's notes go to our stderr; its stdout too. */
	posix_spawn_file_actions_t actions;
	pid_t pid;
	(void) posix_spawn_file_actions_init(&actions);
	(void) posix_spawn_file_actions_adddup2(&actions, 2, 1);
	int err = env == NULL ? ENOMEM :
	    posix_spawn(&pid, oracle, &actions, NULL, argv, env);
	(void) posix_spawn_file_actions_destroy(&actions);
	free(env);
	free(extra);
	if (err != 0) {
		shim_log("cannot run %s: %s", oracle, strerror(err));
		return (err);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return (errno);
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return (0);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 1)
		return (EINVAL);
	shim_log("%s tryimport-packed failed (status 0x%x)", oracle, status);
	return (EIO);
}

static int
answer_tryimport(struct zfs_cmd_head *zc)
{
	char dir[] = "/tmp/zpk-zfsdev.XXXXXX";
	char in[64], out[64];
	char *answer = NULL;
	size_t len = 0;
	int err;

	if (mkdtemp(dir) == NULL)
		return (errno);
	(void) snprintf(in, sizeof (in), "%s/config", dir);
	(void) snprintf(out, sizeof (out), "%s/answer", dir);
	err = write_file(in, (const void *)(uintptr_t)zc->conf,
	    (size_t)zc->conf_size);
	if (err == 0)
		err = run_oracle(in, out);
	if (err == 0)
		err = read_file(out, &answer, &len);
	(void) unlink(in);
	(void) unlink(out);
	(void) rmdir(dir);
	if (err != 0)
		return (err);

	/* The kernel's put_nvlist(): too small a buffer is ENOMEM + size. */
	if (len > zc->dst_size) {
		zc->dst_size = len;
		free(answer);
		return (ENOMEM);
	}
	memcpy((void *)(uintptr_t)zc->dst, answer, len);
	zc->dst_size = len;
	zc->dst_filled = 1;
	free(answer);
	return (0);
}

int
ioctl(int fd, unsigned long request, ...)
{
	va_list ap;
	va_start(ap, request);
	void *arg = va_arg(ap, void *);
	va_end(ap);

	if (!is_fake_fd(fd)) {
		static int (*real)(int, unsigned long, ...);
		if (real == NULL)
			real = (int (*)(int, unsigned long, ...))dlsym(
			    RTLD_NEXT, "ioctl");
		return (real(fd, request, arg));
	}

	int err;
	if (getenv("ZPK_ZFSDEV_TRACE") != NULL)
		shim_log("request 0x%lx", request);
	switch (request) {
	case REQ_POOL_TRYIMPORT:
		err = answer_tryimport(arg);
		break;
	case REQ_POOL_STATS:
		err = ENOENT;
		break;
	case REQ_POOL_CONFIGS:
		/*
		 * libzfs passes the generation of the namespace it holds
		 * (initially empty); EEXIST means "unchanged since then".
		 */
		err = EEXIST;
		break;
	case REQ_LOG_HISTORY:
		err = 0;
		break;
	default:
		shim_log("unanswered /dev/zfs request 0x%lx", request);
		err = ENOTSUP;
		break;
	}
	if (err != 0) {
		errno = err;
		return (-1);
	}
	return (0);
}
