// Deadline-bounded loops over libnbd's asynchronous API (see include/CZPKNBD.h).

#define _GNU_SOURCE

#include "CZPKNBD.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t zpk_nbd_monotonic_ns(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

/// Milliseconds left until `deadline_ns`, rounded up so a poll never ends just short of it;
/// -1 when the deadline has passed.
static int remaining_ms(int64_t deadline_ns) {
    int64_t left = deadline_ns - zpk_nbd_monotonic_ns();
    if (left <= 0) return -1;
    int64_t ms = (left + 999999) / 1000000;
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

/// Handles what the server has already sent, without waiting for more: the last look before a
/// deadline is declared missed. Our own thread may have been descheduled past the deadline while
/// the server's reply waited in the socket; that is not the server's lateness. Bounded: each
/// step handles one socket event and a reply is a few of them.
static void handle_what_is_ready(struct nbd_handle *h) {
    for (int step = 0; step < 64; step++) {
        if (nbd_poll(h, 0) != 1) return;
    }
}

int zpk_nbd_await(struct nbd_handle *h, int64_t cookie, int64_t deadline_ns) {
    for (;;) {
        int done = nbd_aio_command_completed(h, (uint64_t)cookie);
        if (done == 1) return ZPK_NBD_DONE;
        if (done == -1) return ZPK_NBD_FAILED;
        int ms = remaining_ms(deadline_ns);
        if (ms < 0) {
            handle_what_is_ready(h);
            done = nbd_aio_command_completed(h, (uint64_t)cookie);
            if (done == 1) return ZPK_NBD_DONE;
            return done == -1 ? ZPK_NBD_FAILED : ZPK_NBD_TIMED_OUT;
        }
        if (nbd_poll(h, ms) == -1) {
            // The connection died (or the state machine failed): the command is retired with
            // an error, unless it completed just before.
            done = nbd_aio_command_completed(h, (uint64_t)cookie);
            return done == 1 ? ZPK_NBD_DONE : ZPK_NBD_FAILED;
        }
    }
}

/// Whether `h` reached the state the caller waits for: ready for commands, or (option mode)
/// negotiating.
static bool connected(struct nbd_handle *h, bool option_mode) {
    return option_mode ? nbd_aio_is_negotiating(h) == 1 : nbd_aio_is_ready(h) == 1;
}

static int drive_until(struct nbd_handle *h, bool option_mode, int64_t deadline_ns) {
    for (;;) {
        if (connected(h, option_mode)) return ZPK_NBD_DONE;
        if (nbd_aio_is_dead(h) == 1 || nbd_aio_is_closed(h) == 1) return ZPK_NBD_FAILED;
        int ms = remaining_ms(deadline_ns);
        if (ms < 0) {
            handle_what_is_ready(h);
            return connected(h, option_mode) ? ZPK_NBD_DONE : ZPK_NBD_TIMED_OUT;
        }
        if (nbd_poll(h, ms) == -1) return connected(h, option_mode) ? ZPK_NBD_DONE : ZPK_NBD_FAILED;
    }
}

int zpk_nbd_connect(struct nbd_handle *h, const char *uri, int64_t deadline_ns) {
    if (nbd_aio_connect_uri(h, uri) == -1) return ZPK_NBD_FAILED;
    return drive_until(h, nbd_get_opt_mode(h) == 1, deadline_ns);
}

typedef struct {
    zpk_nbd_export *items;
    size_t count;
    size_t capacity;
    bool out_of_memory;
} export_list;

static int collect_export(void *user_data, const char *name, const char *description) {
    export_list *list = user_data;
    if (list->out_of_memory) return 0;
    if (list->count == list->capacity) {
        size_t capacity = list->capacity ? list->capacity * 2 : 8;
        zpk_nbd_export *grown = realloc(list->items, capacity * sizeof *grown);
        if (!grown) {
            list->out_of_memory = true;
            return 0;
        }
        list->items = grown;
        list->capacity = capacity;
    }
    char *n = strdup(name ? name : "");
    char *d = strdup(description ? description : "");
    if (!n || !d) {
        free(n);
        free(d);
        list->out_of_memory = true;
        return 0;
    }
    list->items[list->count].name = n;
    list->items[list->count].description = d;
    list->count++;
    return 0;
}

typedef struct {
    bool done;
    int error;
} completion;

static int note_completion(void *user_data, int *error) {
    completion *c = user_data;
    c->done = true;
    c->error = *error;
    return 1;
}

static char *message(const char *what) {
    const char *detail = nbd_get_error();
    char *text = NULL;
    if (asprintf(&text, "%s%s%s", what, detail ? ": " : "", detail ? detail : "") < 0) return NULL;
    return text;
}

int zpk_nbd_list_exports(const char *uri, int64_t deadline_ns, zpk_nbd_export **exports, size_t *count, char **error) {
    *exports = NULL;
    *count = 0;
    *error = NULL;
    struct nbd_handle *h = nbd_create();
    if (!h) {
        *error = message("cannot create a libnbd handle");
        return ZPK_NBD_FAILED;
    }
    export_list list = {0};
    completion done = {0};
    int result = ZPK_NBD_FAILED;
    if (nbd_set_opt_mode(h, true) == -1) {
        *error = message("cannot enter option mode");
        goto out;
    }
    result = zpk_nbd_connect(h, uri, deadline_ns);
    if (result != ZPK_NBD_DONE) {
        *error = result == ZPK_NBD_TIMED_OUT ? strdup("the server did not answer in time") : message("cannot connect");
        goto out;
    }
    nbd_list_callback on_export = {.callback = collect_export, .user_data = &list};
    nbd_completion_callback on_done = {.callback = note_completion, .user_data = &done};
    if (nbd_aio_opt_list(h, on_export, on_done) == -1) {
        *error = message("cannot ask for the export list");
        result = ZPK_NBD_FAILED;
        goto out;
    }
    for (;;) {
        if (done.done) break;
        if (nbd_aio_is_dead(h) == 1 || nbd_aio_is_closed(h) == 1) break;
        int ms = remaining_ms(deadline_ns);
        if (ms < 0) {
            result = ZPK_NBD_TIMED_OUT;
            *error = strdup("the server did not answer NBD_OPT_LIST in time");
            goto out;
        }
        if (nbd_poll(h, ms) == -1) break;
    }
    if (!done.done || done.error != 0) {
        result = ZPK_NBD_FAILED;
        if (done.done) {
            errno = done.error;
            char *text = NULL;
            if (asprintf(&text, "the server refused NBD_OPT_LIST (%s)", strerror(done.error)) >= 0) *error = text;
        } else {
            *error = message("the connection ended during NBD_OPT_LIST");
        }
        goto out;
    }
    if (list.out_of_memory) {
        result = ZPK_NBD_FAILED;
        *error = strdup("out of memory listing exports");
        goto out;
    }
    nbd_aio_opt_abort(h);
    *exports = list.items;
    *count = list.count;
    list.items = NULL;
    list.count = 0;
    result = ZPK_NBD_DONE;
out:
    zpk_nbd_free_exports(list.items, list.count);
    nbd_close(h);
    return result;
}

void zpk_nbd_free_exports(zpk_nbd_export *exports, size_t count) {
    for (size_t i = 0; i < count; i++) {
        free(exports[i].name);
        free(exports[i].description);
    }
    free(exports);
}

const char *zpk_nbd_error_message(void) {
    const char *text = nbd_get_error();
    return text ? text : "unknown libnbd error";
}
