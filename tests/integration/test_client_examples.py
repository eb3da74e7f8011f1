#!/usr/bin/env python3
"""The C examples a programmer copies (issue 12 item 17) compile against
libhitlclient and do what they say against a running hitld: the "Minimal use"
example in client/hitlclient.h, the one in docs/PROTOCOL.md §8 and the one in
hitlclient(3) EXAMPLES (docs/hitlclient.3, read from its groff source). A request
hitld refuses must be explained by the field and the reason (HitlError.data),
not only by "Invalid parameters."; an accepted one is answered.
"""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import HitldTestCase, compile_client_program, main  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLE_LOOP = "65f1234567890abcdef12345"


def header_example():
    """The indented code of the header's "Minimal use" comment, in a main()."""
    with open(os.path.join(ROOT, "client", "hitlclient.h")) as f:
        text = f.read()
    block = text.split("Minimal use", 1)[1].split("Link with", 1)[0]
    code = [l[len(" *     "):] for l in block.splitlines() if l.startswith(" *     ")]
    return ("#include <errno.h>\n#include <stdio.h>\n#include <string.h>\n#include <hitlclient.h>\n\n"
            "int main(void) {\n" + "\n".join("\t" + l for l in code) + "\n\treturn r < 0;\n}\n")


def protocol_example():
    with open(os.path.join(ROOT, "docs", "PROTOCOL.md")) as f:
        text = f.read()
    section = text.split("### From C, with libhitlclient", 1)[1]
    return re.search(r"```c\n(.*?)```", section, re.S).group(1)


def man_page_example():
    """The first .EX block of hitlclient(3)'s EXAMPLES, as C: the groff escapes
    the page uses in code undone (\\e is a backslash, \\- a minus)."""
    with open(os.path.join(ROOT, "docs", "hitlclient.3")) as f:
        text = f.read()
    section = text.split("\n.SH EXAMPLES\n", 1)[1]
    code = re.search(r"^\.EX\n(.*?)^\.EE$", section, re.S | re.M).group(1)
    assert not re.search(r"^[.']", code, re.M), "a line of the example would be read as a request"
    code = code.replace("\\e", "\x00").replace("\\-", "-").replace("\\(aq", "'").replace("\\&", "")
    assert "\\" not in code, "a groff escape the test does not undo: %r" % code
    return code.replace("\x00", "\\")


class ClientExamples(HitldTestCase):
    def build(self, name, source, loop_id, default):
        self.assertIn(EXAMPLE_LOOP, source)
        source = source.replace(EXAMPLE_LOOP, loop_id)
        source = re.sub(r'(\\"default_response\\": ?\\")[a-z]+', r"\g<1>%s" % default, source)
        src = os.path.join(self.tmp, name + ".c")
        exe = os.path.join(self.tmp, name)
        with open(src, "w") as f:
            f.write(source)
        error = compile_client_program(src, exe)
        self.assertIsNone(error, "%s does not compile:\n%s\n%s" % (name, error, source))
        return exe

    def run_example(self, exe):
        env = dict(os.environ, HITLD_SOCKET=self.hitld.socket)
        return subprocess.run([exe], capture_output=True, text=True, timeout=60, env=env,
                              stdin=subprocess.DEVNULL)

    def assert_explains_the_refusal(self, p):
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("default_response", p.stderr)           # the field
        self.assertRegex(p.stderr, r"must be one of|option")    # the reason
        self.assertEqual(self.c.call("request.list", {})["requests"], [])

    def test_the_header_example_says_which_field_and_why(self):
        exe = self.build("header_refused", header_example(), self.loop_id, "maybe")
        self.assert_explains_the_refusal(self.run_example(exe))
        exe = self.build("header_ok", header_example(), self.loop_id, "no")
        p = self.run_example(exe)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"r_[0-9A-Z]{26}")

    def test_the_protocol_example_says_which_field_and_why_and_gets_the_answer(self):
        exe = self.build("protocol_refused", protocol_example(), self.loop_id, "maybe")
        self.assert_explains_the_refusal(self.run_example(exe))
        self.emu.ctl("POST", "/_emu/auto-review", {"delay_s": 0, "default": "none",
                                                   "rules": [{"match": "4812", "response_data":
                                                              {"selected_value": "approve"}}]})
        exe = self.build("protocol_ok", protocol_example(), self.loop_id, "reject")
        p = self.run_example(exe)
        self.assertEqual((p.returncode, p.stdout), (0, "approve\n"), p.stderr)

    def test_the_man_page_example_says_which_field_and_why_and_gets_the_answer(self):
        exe = self.build("man_refused", man_page_example(), self.loop_id, "maybe")
        self.assert_explains_the_refusal(self.run_example(exe))
        self.emu.ctl("POST", "/_emu/auto-review", {"delay_s": 0, "default": "none",
                                                   "rules": [{"match": "4812", "response_data":
                                                              {"selected_value": "approve"}}]})
        exe = self.build("man_ok", man_page_example(), self.loop_id, "reject")
        p = self.run_example(exe)
        self.assertEqual((p.returncode, p.stdout), (0, "approve\n"), p.stderr)


if __name__ == "__main__":
    main()
