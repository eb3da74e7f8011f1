/* uidshare.h — what one local uid may take of the control socket server
 * (issue 15; hitld(8) LIMITS): a share of the event loop's time, as a token
 * bucket of microseconds spent dispatching that uid's calls, and the bytes of
 * output and of unhandled input buffered for all its connections together. Owns nothing but the
 * struct; pure decision logic, the clock is passed in (unit-tested in
 * tests/unit/test_uidshare.c). rpc.c keeps one UidShare per uid with an open
 * connection. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "timeutil.h"

typedef struct UidShare {
	uid_t uid;
	unsigned n_conns;
	size_t out_bytes;        /* unsent output and held-back replies of all its connections */
	size_t in_bytes;         /* input received and not yet handled (partial lines, lines
	                          * waiting their turn) of all its connections */
	int64_t credit;          /* usec of dispatch time it may still spend; may go negative */
	usec_t updated;          /* CLOCK_MONOTONIC of the last refill */
	bool waiting;            /* its connections wait for the bucket to refill */
	struct UidShare *prev, *next;
} UidShare;

/* The bucket: refills at percent/100 usec per usec of wall time, holds at most
 * burst usec. percent 100 (or more) means no limit. */
typedef struct ShareRate {
	unsigned percent;
	usec_t burst;
} ShareRate;

/* A new uid starts with a full bucket. */
void uidshare_init(UidShare *u, uid_t uid, const ShareRate *rate, usec_t now);
void uidshare_refill(UidShare *u, const ShareRate *rate, usec_t now);
/* Refills, then: may a call of u be dispatched now? */
bool uidshare_may_dispatch(UidShare *u, const ShareRate *rate, usec_t now);
/* Charges spent usec of dispatch time. */
void uidshare_charge(UidShare *u, const ShareRate *rate, usec_t spent);
/* When u may dispatch again (now if it may now). */
usec_t uidshare_ready_at(const UidShare *u, const ShareRate *rate, usec_t now);
