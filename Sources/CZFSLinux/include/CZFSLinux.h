// Linux calls that Swift's Glibc module does not expose, as small inline wrappers.
//
// - `timerfd`: the heartbeat's loop rescue (ZFSMultihost, `LoopRescue`) arms a kernel timer
//   before each heartbeat write, so that a thread is woken only when a write is still under way
//   at the next heartbeat instant.
// - `pthread_setname_np` (a GNU extension): names the heartbeat's threads for `top -H` and `perf`.
// - `prctl(PR_SET_TIMERSLACK)` (variadic in C, so not callable from Swift): the heartbeat's loop
//   thread asks for its timed waits to end on time, not up to 50 µs later (the default slack).
// - `posix_spawn_file_actions_addclosefrom_np` (a GNU extension, glibc 2.34): the test harness
//   and the fault-trial runner start servers that outlive the test that started them; without it
//   they inherit every descriptor the process had open without FD_CLOEXEC (Foundation's `Pipe`
//   sets none), such as the write end of another test's pipe, whose reader then waits for EOF
//   until the server exits.

#ifndef CZFSLINUX_H
#define CZFSLINUX_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <spawn.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/timerfd.h>
#include <time.h>

/// A timer on CLOCK_MONOTONIC whose `read` blocks until it expires; -1 and errno on failure.
static inline int czfs_timerfd_create_monotonic(void) {
    return timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
}

/// Arms `fd` to expire once, `nanoseconds` from now (0 disarms it); -1 and errno on failure.
static inline int czfs_timerfd_set_relative(int fd, int64_t nanoseconds) {
    struct itimerspec spec = {0};
    if (nanoseconds > 0) {
        spec.it_value.tv_sec = (time_t)(nanoseconds / 1000000000);
        spec.it_value.tv_nsec = (long)(nanoseconds % 1000000000);
    }
    return timerfd_settime(fd, 0, &spec, NULL);
}

/// Names the calling thread; `name` must fit in 15 bytes. 0 or an errno value.
static inline int czfs_set_current_thread_name(const char *name) {
    return pthread_setname_np(pthread_self(), name);
}

/// Sets the calling thread's timer slack (how late the kernel may end its timed waits to
/// coalesce wake-ups); 0, or -1 and errno.
static inline int czfs_set_current_thread_timer_slack(unsigned long nanoseconds) {
    return prctl(PR_SET_TIMERSLACK, nanoseconds, 0, 0, 0);
}

/// Adds to `actions` the closing, in the child, of every descriptor from 3 up: the child keeps
/// only the standard input, output and error the other actions set up. 0 or an errno value.
static inline int czfs_spawn_file_actions_close_inherited(posix_spawn_file_actions_t *actions) {
    return posix_spawn_file_actions_addclosefrom_np(actions, 3);
}

#endif
