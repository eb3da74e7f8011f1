/* unit_outbox.h — records and outboxes for the unit tests of the outbox
 * (test_outbox.c, test_outbox_faults.c): one way to make a plausible queued
 * request record and to open an outbox as hitld does, instead of a copy in
 * each test file. */
#pragma once

#include "outbox.h"
#include "record.h"
#include "timeutil.h"

#define UNIT_LOOP_ID "65f1234567890abcdef12345"
#define UNIT_T0 ((usec_t) 1795874531000000ULL)

/* The tests' clock: each unit_make_record() moves it on by a millisecond, so
 * ids (which hold the time) come in order. Starts at UNIT_T0. */
extern usec_t unit_clock_now;

/* A new queued text request of uid (client_ref may be NULL) for
 * UNIT_LOOP_ID, asking request_text, created now; fails the test on ENOMEM. */
Record *unit_make_record(uid_t uid, const char *client_ref, const char *request_text);

/* Opens the outbox in state_dir (the test fails if it cannot) and, as hitld
 * does once it has dealt with the records that damage concerns, releases the
 * damaged segments. */
Outbox *unit_open_outbox(const char *state_dir);
