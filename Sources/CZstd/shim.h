// libzstd, for zstd-compressed ZFS blocks (ZFSFormat's Zstd). Debian: libzstd-dev.
#include <zstd.h>
