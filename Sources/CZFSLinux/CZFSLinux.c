// Everything is inline in include/CZFSLinux.h; SwiftPM needs one source file per C target.
#include "CZFSLinux.h"
