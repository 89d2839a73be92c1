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

#endif
