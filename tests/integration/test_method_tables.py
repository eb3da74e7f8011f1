#!/usr/bin/env python3
"""The socket's methods are one list: every method in daemon/methods.c's
methods[] table has a typed wrapper in the C library (client/hitlclient.h,
defined in hitlclient.c, exported in debian/libhitlclient0.symbols and named
in PROTOCOL.md §9), is documented in docs/PROTOCOL.md §5, and has a method of
the Python client (python/hitld, METHOD_NAMES, on Client and AsyncClient).
Three methods added in one session once got no C wrapper (a C programmer had
to build their JSON by hand): this makes such drift fail `make check`. No
daemon is started (the shape of test_error_codes.py).

The C wrapper of method "a.b_c" is hitl_a_b_c(HitlClient *c, …). A method
that deliberately has none goes into WITHOUT_C_WRAPPER with the reason.
"""
import inspect
import os
import re
import sys
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "python"))
import hitld  # noqa: E402

# method → why libhitlclient has no typed wrapper for it (hitl_client_call() reaches it).
WITHOUT_C_WRAPPER = {}


def read(*path):
    with open(os.path.join(ROOT, *path), encoding="utf-8") as f:
        return f.read()


def daemon_methods():
    """{name: admin_only} of daemon/methods.c's methods[] table, in its order."""
    text = read("daemon", "methods.c")
    m = re.search(r"static const Method methods\[\] = \{\n(.*?)\n\};", text, re.S)
    assert m, "daemon/methods.c has no methods[] table"
    rows = re.findall(r'^\s*\{\s*"([^"]+)",\s*(true|false),', m.group(1), re.M)
    return {name: admin == "true" for name, admin in rows}


def c_wrapper(method):
    return "hitl_" + method.replace(".", "_")


def c_function_body(source, name):
    """The text of `int name(…) { … }` in source, or None."""
    m = re.search(r"^int %s\([^)]*\)\s*\{\n(.*?)^\}" % re.escape(name), source, re.S | re.M)
    return m and m.group(1)


def protocol_section(text, heading, next_heading):
    return text.split(heading, 1)[1].split(next_heading, 1)[0]


class MethodTables(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.methods = daemon_methods()

    def test_the_table_is_read(self):
        # The parser must see the table, or every check below passes on nothing.
        self.assertGreaterEqual(len(self.methods), 20, self.methods)
        for name, admin in (("hello", False), ("request.submit", False), ("key.rotate", True)):
            self.assertEqual(self.methods.get(name), admin, name)

    def test_every_method_has_a_c_wrapper_that_calls_it(self):
        header, source = read("client", "hitlclient.h"), read("client", "hitlclient.c")
        missing, wrong = [], []
        for method in self.methods:
            if method in WITHOUT_C_WRAPPER:
                self.assertTrue(WITHOUT_C_WRAPPER[method], "%s: say why it has no wrapper" % method)
                continue
            fn = c_wrapper(method)
            if not re.search(r"^int %s\(HitlClient \*c\b" % re.escape(fn), header, re.M):
                missing.append("%s (%s)" % (fn, method))
                continue
            body = c_function_body(source, fn)
            if body is None or '"%s"' % method not in body:
                wrong.append("%s does not call %s" % (fn, method))
        self.assertEqual(missing, [], "methods without a typed wrapper in client/hitlclient.h")
        self.assertEqual(wrong, [])
        self.assertEqual(sorted(set(WITHOUT_C_WRAPPER) - set(self.methods)), [],
                         "WITHOUT_C_WRAPPER names methods the daemon does not have")

    def test_every_exported_function_is_in_the_debian_symbols_file(self):
        declared = set(re.findall(r"^[A-Za-z][\w ]*[ *](hitl_\w+)\(", read("client", "hitlclient.h"), re.M))
        listed = set(re.findall(r"^ (hitl_\w+)@Base ", read("debian", "libhitlclient0.symbols"), re.M))
        self.assertIn("hitl_client_call", declared)
        self.assertEqual(sorted(declared - listed), [], "declared in hitlclient.h, missing from the symbols file")
        self.assertEqual(sorted(listed - declared), [], "in the symbols file, not declared in hitlclient.h")

    def test_every_method_is_documented_in_protocol_md(self):
        text = read("docs", "PROTOCOL.md")
        section = protocol_section(text, "\n## 5. Methods\n", "\n## 6. ")
        documented = set(re.findall(r"^### 5\.\d+ `([^`]+)`", section, re.M))
        # Tables whose first column is "method" (loops, admin methods).
        for table in re.findall(r"^\| method \|.*?\n((?:\|.*\n)+)", section, re.M):
            documented |= set(re.findall(r"^\| `([^`]+)` \|", table, re.M))
        self.assertEqual(sorted(set(self.methods) - documented), [], "methods not documented in PROTOCOL.md §5")
        self.assertEqual(sorted(documented - set(self.methods)), [], "PROTOCOL.md §5 documents unknown methods")

    def test_protocol_md_names_every_c_wrapper(self):
        section = protocol_section(read("docs", "PROTOCOL.md"), "\n## 9. The C library\n", "\n**Versions")
        named = set(re.findall(r"`(hitl_\w+)`", section))
        prefixes = [p for p in re.findall(r"`(hitl_\w+_)\*`", section)]
        unnamed = [c_wrapper(m) for m in self.methods if m not in WITHOUT_C_WRAPPER
                   and c_wrapper(m) not in named and not any(c_wrapper(m).startswith(p) for p in prefixes)]
        self.assertEqual(unnamed, [], "wrappers PROTOCOL.md §9 does not list")

    def test_every_method_has_a_python_method(self):
        self.assertEqual(sorted(set(self.methods) - set(hitld.METHOD_NAMES)), [],
                         "methods missing from hitld.METHOD_NAMES")
        self.assertEqual(sorted(set(hitld.METHOD_NAMES) - set(self.methods)), [],
                         "hitld.METHOD_NAMES names methods the daemon does not have")
        for method, attr in hitld.METHOD_NAMES.items():
            for cls in (hitld.Client, hitld.AsyncClient):
                self.assertTrue(callable(getattr(cls, attr, None)), "%s.%s (%s)" % (cls.__name__, attr, method))
            if attr != "watch":   # Client.watch returns a Watch; the others are their method's call
                self.assertIn('"%s"' % method, inspect.getsource(getattr(hitld.Client, attr)),
                              "Client.%s does not call %s" % (attr, method))


if __name__ == "__main__":
    unittest.main(argv=sys.argv)
