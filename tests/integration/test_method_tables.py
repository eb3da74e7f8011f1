#!/usr/bin/env python3
"""The socket's methods are one list: every method in daemon/methods.c's
methods[] table has a typed wrapper in the C library (client/hitlclient.h,
defined in hitlclient_calls.c, exported in debian/libhitlclient0.symbols and named
in PROTOCOL.md §9), is documented in docs/PROTOCOL.md §5, and has a method of
the Python client (python/hitld, METHOD_NAMES, on Client and AsyncClient).
Three methods added in one session once got no C wrapper (a C programmer had
to build their JSON by hand): this makes such drift fail `make check`. No
daemon is started (the shape of test_error_codes.py).

The library's man page, docs/hitlclient.3, is held to the header the same
way (ManPage below): its SYNOPSIS gives every function hitlclient.h declares,
with the header's prototype, and nothing else; each is described below the
SYNOPSIS; every hitl_*, HITL_* and Hitl* name on the page exists; ERRORS
lists every code of hitlerrors.h with its number and hitl_error_code_name();
and the page renders without a warning (lintian checks that in the package).

The C wrapper of method "a.b_c" is hitl_a_b_c(HitlClient *c, …). A method
that deliberately has none goes into WITHOUT_C_WRAPPER with the reason.
"""
import inspect
import os
import re
import shutil
import subprocess
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
        header, source = read("client", "hitlclient.h"), read("client", "hitlclient_calls.c")
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


def c_tokens(text):
    """A C declaration as tokens, so that spacing and line breaks do not count."""
    return " ".join(re.findall(r"\w+|[^\s\w]", text))


def header_prototypes():
    """{name: tokens of its prototype} of every function hitlclient.h declares."""
    text = re.sub(r"/\*.*?\*/", "", read("client", "hitlclient.h"), flags=re.S)
    protos = {}
    for m in re.finditer(r"^([A-Za-z][\w ]*[ *](hitl_\w+)\([^;]*\);)", text, re.M):
        assert m.group(2) not in protos, "%s declared twice" % m.group(2)
        protos[m.group(2)] = c_tokens(m.group(1))
    return protos


def groff_plain(text):
    """Text of groff source without the escapes a man page uses."""
    text = re.sub(r"\\f[BIRP]|\\&|\\c", "", text)
    return text.replace("\\-", "-").replace("\\e", "\\").replace("\\(aq", "'").replace("\\(sc", "§")


def macro_args(line):
    """The arguments of a one-line groff request such as .BI, quotes removed."""
    return [q if a == "" else a for q, a in re.findall(r'"([^"]*)"|(\S+)', line.split(None, 1)[1])]


def man_synopsis_prototypes(page):
    """{name: tokens} of the prototypes in the SYNOPSIS's .nf block: .BI lines,
    a prototype running on until its ';'."""
    synopsis = page.split("\n.SH SYNOPSIS\n", 1)[1].split("\n.fi\n", 1)[0]
    protos, pending = {}, ""
    for line in synopsis.splitlines():
        if not line.startswith(".BI "):
            assert not pending, "a prototype in the SYNOPSIS is cut by %r: %s" % (line, pending)
            continue
        pending += " " + "".join(groff_plain(a) for a in macro_args(line))
        if pending.rstrip().endswith(";"):
            m = re.search(r"\b(hitl_\w+)\(", pending)
            assert m, "a SYNOPSIS prototype without a hitl_ function: %s" % pending
            assert m.group(1) not in protos, "%s twice in the SYNOPSIS" % m.group(1)
            protos[m.group(1)] = c_tokens(pending)
            pending = ""
    assert not pending, "the SYNOPSIS ends inside a prototype: %s" % pending
    return protos


class ManPage(unittest.TestCase):
    """docs/hitlclient.3 against client/hitlclient.h and hitlerrors.h."""

    @classmethod
    def setUpClass(cls):
        cls.page = read("docs", "hitlclient.3")
        cls.plain = groff_plain(cls.page)
        cls.declared = header_prototypes()

    def test_the_header_is_read(self):
        self.assertGreaterEqual(len(self.declared), 40, sorted(self.declared))
        for fn in ("hitl_client_connect", "hitl_request_wait", "hitl_watch_next", "hitl_duration_parse"):
            self.assertIn(fn, self.declared)

    def test_the_synopsis_gives_every_function_with_the_headers_prototype(self):
        listed = man_synopsis_prototypes(self.page)
        self.assertEqual(sorted(set(self.declared) - set(listed)), [],
                         "declared in client/hitlclient.h, missing from the SYNOPSIS of docs/hitlclient.3")
        self.assertEqual(sorted(set(listed) - set(self.declared)), [],
                         "in the SYNOPSIS of docs/hitlclient.3, not declared in client/hitlclient.h")
        for fn in sorted(self.declared):
            self.assertEqual(listed[fn], self.declared[fn], "%s: the page's prototype is not the header's" % fn)

    def test_every_function_is_described(self):
        body = self.plain.split("\n.SH DESCRIPTION\n", 1)[1]
        undescribed = [fn for fn in sorted(self.declared) if not re.search(r"\b%s\b" % fn, body)]
        self.assertEqual(undescribed, [], "functions docs/hitlclient.3 names only in its SYNOPSIS")

    def test_every_name_on_the_page_exists(self):
        header = read("client", "hitlclient.h") + read("client", "hitlerrors.h")
        macros = set(re.findall(r"^#define (HITL_\w+)", header, re.M))
        types = set(re.findall(r"\}\s*(Hitl\w+);|typedef struct \w+ (Hitl\w+);", header))
        types = {a or b for a, b in types}
        self.assertIn("HitlError", types)
        self.assertEqual(sorted(set(re.findall(r"\bhitl_\w+", self.plain)) - set(self.declared)), [],
                         "hitl_* names on the page that hitlclient.h does not declare")
        self.assertEqual(sorted(set(re.findall(r"\bHITL_[A-Z_]+\b", self.plain)) - macros), [],
                         "HITL_* names on the page that the headers do not define")
        self.assertEqual(sorted(set(re.findall(r"\bHitl[A-Z]\w*", self.plain)) - types), [],
                         "Hitl* types on the page that hitlclient.h does not define")

    def test_errors_lists_every_code_with_its_number_and_name(self):
        codes = dict(re.findall(r"^#define (HITL_ERROR_\w+)\s+\((-\d+)\)", read("client", "hitlerrors.h"), re.M))
        names = dict(re.findall(r"case (HITL_ERROR_\w+):\s+return \"(\w+)\";", read("client", "hitlclient.c")))
        self.assertGreaterEqual(len(codes), 15)
        self.assertEqual(set(names), set(codes), "hitl_error_code_name() and hitlerrors.h disagree")
        errors = self.plain.split("\n.SH ERRORS\n", 1)[1].split("\n.SH ", 1)[0]
        rows = dict((m[0], (m[1], m[2])) for m in
                    re.findall(r'^\.BR (HITL_ERROR_\w+) " \((-\d+)\) " (\w+)$', errors, re.M))
        self.assertEqual(rows, {c: (codes[c], names[c]) for c in codes},
                         "ERRORS of docs/hitlclient.3: a code, its number and its name per row")

    @unittest.skipUnless(shutil.which("man"), "man is not installed")
    def test_the_page_renders_without_warnings(self):
        # What lintian runs on the package's pages (groff-message).
        p = subprocess.run(["man", "--warnings", "-E", "UTF-8", "-l", "-Tutf8", "-Z",
                            os.path.join(ROOT, "docs", "hitlclient.3")],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual((p.returncode, p.stderr), (0, ""))
        self.assertGreater(len(p.stdout), 1000)
        # A macro argument that starts with a quote loses it: .B {"a", "b"} shows {"a", b"}.
        p = subprocess.run(["man", "-l", os.path.join(ROOT, "docs", "hitlclient.3")], capture_output=True,
                           text=True, timeout=60, env=dict(os.environ, MANWIDTH="1000", MANPAGER="cat", PAGER="cat"))
        self.assertEqual(p.returncode, 0, p.stderr)
        odd = [m for m in re.findall(r"\{[^{}\n]*\}", p.stdout) if m.count('"') % 2]
        self.assertEqual(odd, [], "JSON on the rendered page with a quote lost")


if __name__ == "__main__":
    unittest.main(argv=sys.argv)
