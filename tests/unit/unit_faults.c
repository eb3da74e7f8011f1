/* unit_faults.c — see unit_faults.h. */
#include "unit_faults.h"

const char *const unit_op_names[_OP_MAX] = { "unlinkat", "openat", "write", "fsync", "renameat", "syncfs" };
