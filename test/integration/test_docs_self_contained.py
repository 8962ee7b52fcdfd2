"""What ships is self-contained: the docs, the READMEs, the example
configurations, the SDK headers and every help text the host prints
(`--help`, `--help-plugin KIND` for every plugin, `CMD --help` for every
client command) cite no internal specification file and no "§" section
number. Users and plugin authors do not have the specifications; what they
need must be said in the text itself (or in a docs/*.md file).

Run: cd test/integration && MOAT_BUILD_DIR=../../build MOAT_SOURCE_DIR=../.. python3 -m unittest -v test_docs_self_contained
"""

import glob
import os
import re
import unittest

from moattest import BUILD_DIR, SOURCE_DIR, run_host

# A spec file by name, the specs directory (or a path into the folder beside
# the repository that holds it), a section sign, or the internal design notes.
# `meters.md` is our own doc only as `docs/meters.md`; `moat-bms.md` as
# `docs/moat-bms.md` or as a Markdown link between the docs.
CITATION = re.compile(
    r"§"
    r"|\bspecs/"
    r"|\.\./shared/"  # reads as our internal folder beside the repository: name a repository path
    r"|\b(?:inverter-control|venus-dbus|statusline|patches|deployment|TOOLCHAIN|bench-contract)\.md\b"
    r"|(?<!docs/)(?<!\[)(?<!\]\()\bmoat-bms\.md\b"
    r"|\bTOOLCHAIN\b"
    r"|(?<!docs/)\bmeters\.md\b"
    r"|\bthe spec\b"
    r"|\b(?:DESIGN|STYLE)\.md\b"  # the internal design notes, a plugin's own included
)

SHIPPED = [
    "README.md",
    "docs/*.md",
    "plugins/*/README.md",
    "plugins/*/*/README.md",
    "plugins/meters/DESIGN.md",
    "patches/README.md",
    "config/*.toml",
    "core/include/moat/*.hpp",
]


def citations(text):
    """(line number, line) of every line that cites a spec."""
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1) if CITATION.search(line)]


class PatternTest(unittest.TestCase):
    """The pattern itself: it must catch what it is meant to, and not our own docs."""

    def test_pattern(self):
        for bad in ["see §18.3", "(venus-dbus.md §8.2)", "shared/specs/meters.md", "the spec `meters.md`",
                    "see `TOOLCHAIN.md`", "inverter-control.md", "patches.md describes", "the spec has none", "`plugins/meters/DESIGN.md` argues it",
                    "| `../shared/modbus/` | library", "moat-bms.md §6.3", "see moat-bms.md"]:
            with self.subTest(bad):
                self.assertTrue(CITATION.search(bad), bad)
        for good in ["`docs/meters.md` — Modbus energy meters", "plugins/meters/README.md", "plugins/shared/modbus",
                     "`docs/moat-bms.md` — the MoaT BMS", "are in [moat-bms.md](moat-bms.md).",
                     "the bus spec (\"system\")", "MOAT_FAULT spec"]:
            with self.subTest(good):
                self.assertFalse(CITATION.search(good), good)


class ShippedFilesTest(unittest.TestCase):

    def test_files_cite_no_spec(self):
        files = sorted({f for pattern in SHIPPED for f in glob.glob(os.path.join(SOURCE_DIR, pattern))})
        self.assertTrue(any(f.endswith("docs/plugin-sdk.md") for f in files), files)
        self.assertTrue(any(f.endswith("moat/service.hpp") for f in files), files)
        found = []
        for f in files:
            with open(f, encoding="utf-8") as fh:
                found += [f"{os.path.relpath(f, SOURCE_DIR)}:{n}: {line}" for n, line in citations(fh.read())]
        self.assertEqual(found, [], "shipped files cite internal specs:\n" + "\n".join(found))


class HelpTextTest(unittest.TestCase):

    def listed(self):
        """The built-in plugins' kinds and the client commands they bring."""
        rc, out, err = run_host(["--list-plugins"])
        self.assertEqual(rc, 0, f"stdout: {out}\nstderr: {err}")
        kinds = re.findall(r"(?m)^  (\S+)\s", out)
        commands = re.findall(r"\[command: ([^\]]+)\]", out)
        commands = [c.strip() for group in commands for c in group.split(",")]
        return kinds, commands

    def check(self, args):
        rc, out, err = run_host(args)
        self.assertEqual(rc, 0, f"{args}: stdout: {out}\nstderr: {err}")
        self.assertTrue(out.strip(), f"{args} printed nothing")
        found = citations(out + err)
        self.assertEqual(found, [], f"moat-victron {' '.join(args)} cites internal specs:\n"
                         + "\n".join(f"{n}: {line}" for n, line in found))

    def test_help_plugin_of_every_plugin(self):
        kinds, _ = self.listed()
        for kind in ["inverter", "meters", "sim", "statusline", "dummy"]:
            self.assertIn(kind, kinds)
        for kind in ["host"] + kinds:
            with self.subTest(kind):
                self.check(["--help-plugin", kind])

    def test_usage_and_client_commands(self):
        _, commands = self.listed()
        self.assertIn("status", commands)
        self.assertIn("inverter", commands)
        with self.subTest("--help"):
            self.check(["--help"])
        for command in commands:
            with self.subTest(command):
                self.check([command, "--help"])


if __name__ == "__main__":
    unittest.main()
