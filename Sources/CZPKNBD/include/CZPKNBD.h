// libnbd, plus the few helpers ZFSDevice's `NBDBlockDevice` needs to give every request a
// deadline: libnbd's synchronous calls block without one, so each request is issued with the
// asynchronous API and driven with `nbd_poll` until it completes or its deadline passes.
//
// No NBD protocol is written here: libnbd speaks it. These helpers only loop.

#ifndef CZPKNBD_H
#define CZPKNBD_H

#include <libnbd.h>
#include <stddef.h>
#include <stdint.h>

// What a deadline-bounded helper did.
/// Done: the command completed successfully, or the handle is connected.
#define ZPK_NBD_DONE 0
/// The command or connection failed; `nbd_get_error()` / `nbd_get_errno()` say why.
#define ZPK_NBD_FAILED (-1)
/// The deadline passed first. The command may still be in flight: close the handle before
/// reusing (or freeing) the buffer it was given.
#define ZPK_NBD_TIMED_OUT (-2)

/// Nanoseconds on CLOCK_MONOTONIC (the clock every deadline here is on).
int64_t zpk_nbd_monotonic_ns(void);

/// Drives `h` until the command `cookie` completes or `deadline_ns` passes.
int zpk_nbd_await(struct nbd_handle *h, int64_t cookie, int64_t deadline_ns);

/// Connects `h` to `uri` (`nbd://`, `nbd+unix://`, …) and negotiates, until ready or
/// `deadline_ns`. With option mode set on `h`, stops when negotiation begins.
int zpk_nbd_connect(struct nbd_handle *h, const char *uri, int64_t deadline_ns);

/// One export a server listed.
typedef struct {
    char *name;
    char *description;
} zpk_nbd_export;

/// Lists the exports of the server `uri` names (its export name is ignored) with NBD_OPT_LIST.
/// On success `*exports` is a malloc'd array of `*count` entries; free it with
/// `zpk_nbd_free_exports`. On failure, `*error` is a malloc'd message (free it).
int zpk_nbd_list_exports(const char *uri, int64_t deadline_ns, zpk_nbd_export **exports, size_t *count, char **error);

void zpk_nbd_free_exports(zpk_nbd_export *exports, size_t count);

/// The message and errno of the last libnbd error on this thread (`nbd_get_error` may be NULL).
const char *zpk_nbd_error_message(void);

// Fencing (fence.c): ending a connection so that nothing already handed to libnbd reaches the
// server any more. libnbd holds a handle's lock for the whole of `nbd_poll`, so neither
// `nbd_shutdown` nor `nbd_close` can act on a handle another thread is driving; and both let the
// kernel deliver what is already in the socket's send queue. These act on the socket itself.

/// A descriptor of its own (close-on-exec) for the socket of the connected handle `h`
/// (`nbd_aio_get_fd`, duplicated), or -1 with errno. libnbd closes its descriptor whenever the
/// connection dies, inside any call on the handle; this one stays open, and names the same
/// socket, until its caller closes it — so aborting through it never hits a reused number.
int zpk_nbd_dup_socket(struct nbd_handle *h);

/// Aborts the connection on socket `fd` without closing the descriptor (its owner still does):
/// a TCP socket is reset and its unsent bytes discarded (`connect(AF_UNSPEC)`); every socket is
/// shut down both ways, which wakes a thread polling it. Safe while another thread polls or
/// writes `fd`; the caller must make sure `fd` is still open. Returns 0, or -1 with errno.
int zpk_nbd_abort_socket(int fd);

#endif
