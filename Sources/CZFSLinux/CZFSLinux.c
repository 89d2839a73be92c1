// The GNU extensions behind include/CZFSLinux.h. _GNU_SOURCE is defined here, before any
// include, and nowhere in the header (the header says why).
#define _GNU_SOURCE
#include <pthread.h>
#include <spawn.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/timerfd.h>
#include <time.h>

#include "CZFSLinux.h"

int czfs_timerfd_create_monotonic(void) {
    return timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
}

int czfs_timerfd_set_relative(int fd, int64_t nanoseconds) {
    struct itimerspec spec = {0};
    if (nanoseconds > 0) {
        spec.it_value.tv_sec = (time_t)(nanoseconds / 1000000000);
        spec.it_value.tv_nsec = (long)(nanoseconds % 1000000000);
    }
    return timerfd_settime(fd, 0, &spec, NULL);
}

int czfs_set_current_thread_name(const char *name) {
    return pthread_setname_np(pthread_self(), name);
}

int czfs_set_current_thread_timer_slack(unsigned long nanoseconds) {
    return prctl(PR_SET_TIMERSLACK, nanoseconds, 0, 0, 0);
}

int czfs_spawn_file_actions_close_inherited(posix_spawn_file_actions_t *actions) {
    return posix_spawn_file_actions_addclosefrom_np(actions, 3);
}
