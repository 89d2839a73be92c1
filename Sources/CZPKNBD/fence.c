// Aborting a libnbd handle's connection from outside libnbd (see include/CZPKNBD.h).

#define _GNU_SOURCE

#include "CZPKNBD.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int zpk_nbd_dup_socket(struct nbd_handle *h) {
    int64_t fd = nbd_aio_get_fd(h);
    if (fd < 0 || fd > INT32_MAX) return -1;
    return fcntl((int)fd, F_DUPFD_CLOEXEC, 0);
}

int zpk_nbd_abort_socket(int fd) {
    if (fd < 0) return -1;
    // Whoever closes the descriptor later (libnbd's nbd_close) then resets rather than lingers.
    struct linger hard = {.l_onoff = 1, .l_linger = 0};
    (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
    struct sockaddr_storage local;
    socklen_t length = sizeof local;
    memset(&local, 0, sizeof local);
    int family = getsockname(fd, (struct sockaddr *)&local, &length) == 0 ? local.ss_family : AF_UNSPEC;
    int result = 0;
    if (family == AF_INET || family == AF_INET6) {
        // connect(AF_UNSPEC) on a TCP socket is Linux's tcp_disconnect: the ABORT of RFC 793. It
        // sends a reset, empties the send queue (bytes written but not yet acknowledged by the
        // peer are never sent again) and closes the socket, and it wakes a thread polling it —
        // all while the descriptor stays open, so libnbd's own later close stays correct.
        struct sockaddr unspecified;
        memset(&unspecified, 0, sizeof unspecified);
        unspecified.sa_family = AF_UNSPEC;
        if (connect(fd, &unspecified, sizeof unspecified) == -1) result = -1;
    }
    // Either way, no byte is sent on the descriptor again, and a poll on it returns. (On a Unix
    // socket a write is already in the peer's receive queue when it returns: nothing to discard.)
    if (shutdown(fd, SHUT_RDWR) == -1 && errno != ENOTCONN) result = -1;
    return result;
}
