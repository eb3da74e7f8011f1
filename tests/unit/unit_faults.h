/* unit_faults.h — the store.c calls (StoreOps) a unit test's fault seam can
 * fail, named once for test_store.c and test_outbox_faults.c; each test keeps
 * its own fault plan, since what they track around a failure differs. */
#pragma once

typedef enum Op {
	OP_UNLINKAT,
	OP_OPENAT,
	OP_WRITE,
	OP_FSYNC,
	OP_RENAMEAT,
	OP_SYNCFS,
	_OP_MAX,
} Op;

/* "unlinkat", "openat", …, indexed by Op. */
extern const char *const unit_op_names[_OP_MAX];
