// zlib, for gzip-compressed ZFS blocks (ZFSFormat's Gzip). Debian: zlib1g-dev.
#include <zlib.h>
