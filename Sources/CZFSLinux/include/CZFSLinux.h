// Linux calls that Swift's Glibc module does not expose, as small C wrappers.
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
//
// This header defines no feature macro and includes only standard headers: the GNU extensions
// are reached in CZFSLinux.c, which defines _GNU_SOURCE for itself. A header that defined it
// would declare glibc's types (`fd_set`, through <spawn.h>) differently from Swift's Glibc
// module, and a clean build fails with "'__fds_bits' ... is not present in definition of
// 'fd_set' in module 'CZFSLinux'".

#ifndef CZFSLINUX_H
#define CZFSLINUX_H

#include <spawn.h>
#include <stdint.h>

/// A timer on CLOCK_MONOTONIC whose `read` blocks until it expires; -1 and errno on failure.
int czfs_timerfd_create_monotonic(void);

/// Arms `fd` to expire once, `nanoseconds` from now (0 disarms it); -1 and errno on failure.
int czfs_timerfd_set_relative(int fd, int64_t nanoseconds);

/// Names the calling thread; `name` must fit in 15 bytes. 0 or an errno value.
int czfs_set_current_thread_name(const char *name);

/// Sets the calling thread's timer slack (how late the kernel may end its timed waits to
/// coalesce wake-ups); 0, or -1 and errno.
int czfs_set_current_thread_timer_slack(unsigned long nanoseconds);

/// Adds to `actions` the closing, in the child, of every descriptor from 3 up: the child keeps
/// only the standard input, output and error the other actions set up. 0 or an errno value.
int czfs_spawn_file_actions_close_inherited(posix_spawn_file_actions_t *actions);

#endif
