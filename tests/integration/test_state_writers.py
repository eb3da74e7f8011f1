#!/usr/bin/env python3
"""A request's state and outcome fields change only through the transitions
of daemon/record_state.c (record.h, "The state machine"): no other daemon
source assigns them. A source check, no daemon started."""
import os
import re
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DAEMON = os.path.join(ROOT, "daemon")
OWNERS = {"record.c", "record_state.c"}
FIELDS = r"(?:state|result|result_source|error|response|submitted_at)"
ASSIGN = re.compile(r"(\w+)\s*(?:->|\.)\s*" + FIELDS + r"\s*=(?!=)")
# Other structs with a field of the same name: a connection's state in the
# socket server (rpc*.c), an outbox index entry's in the outbox (outbox*.c).
ALLOWED = {(f, "c") for f in ("rpc.c", "rpc_conn.c", "rpc_input.c")} | \
          {(f, "e") for f in ("outbox.c", "outbox_index.c", "outbox_load.c")}


def offenders():
    found = []
    for name in sorted(os.listdir(DAEMON)):
        if not name.endswith(".c") or name in OWNERS:
            continue
        with open(os.path.join(DAEMON, name), encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                for m in ASSIGN.finditer(line):
                    if (name, m.group(1)) not in ALLOWED:
                        found.append("daemon/%s:%d: %s" % (name, n, line.strip()))
    return found


class StateWriters(unittest.TestCase):
    def test_only_the_transitions_write_state_and_outcome(self):
        self.assertEqual(offenders(), [], "use a record_* transition (record.h) instead")

    def test_the_check_sees_an_assignment(self):
        self.assertTrue(ASSIGN.search("\tr->state = REQUEST_QUEUED;"))
        self.assertTrue(ASSIGN.search("\tx->result_source = RESULT_UNSENT;"))
        self.assertFalse(ASSIGN.search("\tif (r->state == REQUEST_QUEUED)"))


if __name__ == "__main__":
    unittest.main()
