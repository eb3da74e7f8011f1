#!/usr/bin/env python3
"""The error codes are one list: client/hitlerrors.h (which hitlclient.h and
the daemon's rpc.h include) and the Python client's python/hitld/errors.py
must name the same codes with the same numbers. No daemon is started."""
import os
import re
import sys
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# The Python client's names for HITL_ERROR_* where they differ.
PYTHON_NAMES = {"PARSE": "PARSE_ERROR", "INTERNAL": "INTERNAL_ERROR", "PERMISSION": "PERMISSION_DENIED",
                "QUOTA": "QUOTA_EXCEEDED", "BUDGET": "BUDGET_EXHAUSTED", "STORAGE": "STORAGE_ERROR",
                "REMOTE": "REMOTE_ERROR"}


def read(*path):
    with open(os.path.join(ROOT, *path)) as f:
        return f.read()


class ErrorCodes(unittest.TestCase):
    def test_one_definition_for_client_and_daemon(self):
        for path in (("client", "hitlclient.h"), ("daemon", "rpc.h")):
            self.assertTrue('#include "hitlerrors.h"' in read(*path), "%s does not include hitlerrors.h" % os.path.join(*path))
            self.assertIsNone(re.search(r"#define \w+_ERROR_\w+\s+\(-32\d\d\d\)", read(*path)),
                              "%s defines an error number of its own" % os.path.join(*path))

    def test_python_client_has_the_same_codes(self):
        c = {m.group(1): int(m.group(2))
             for m in re.finditer(r"#define HITL_ERROR_(\w+)\s+\((-\d+)\)", read("client", "hitlerrors.h"))}
        py = {m.group(1): int(m.group(2))
              for m in re.finditer(r"^([A-Z_]+) = (-32\d\d\d)$", read("python", "hitld", "errors.py"), re.M)}
        self.assertEqual(len(c), 15, c)
        self.assertEqual({PYTHON_NAMES.get(name, name): code for name, code in c.items()}, py)


if __name__ == "__main__":
    unittest.main(argv=sys.argv)
