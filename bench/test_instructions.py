"""bench/instructions reads the total a callgrind dump counted, and refuses a dump
without one."""

import importlib.machinery
import importlib.util
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
loader = importlib.machinery.SourceFileLoader("bench_instructions", str(HERE / "instructions"))
spec = importlib.util.spec_from_loader("bench_instructions", loader)
instructions = importlib.util.module_from_spec(spec)
loader.exec_module(instructions)

# The head and tail of a dump callgrind 3.19 wrote (`callgrind_control --dump`).
DUMP = """# callgrind format
version: 1
creator: callgrind-3.19.0
pid: 30253
cmd:  /tmp/gw-dec
part: 1

desc: Trigger: Client Request: dump

positions: line
events: Ir
summary: 828374359

fl=(1) ???
fn=(1) 0x0000000000001100
0 3
totals: 828374359
"""


class TotalInstructions(unittest.TestCase):
    def test_the_dumps_total_is_read(self):
        self.assertEqual(instructions.total_instructions(DUMP), 828_374_359)

    def test_an_older_dump_with_a_summary_only_is_read(self):
        self.assertEqual(instructions.total_instructions("events: Ir\nsummary: 42\n"), 42)

    def test_a_dump_without_a_total_is_refused(self):
        with self.assertRaises(ValueError):
            instructions.total_instructions("events: Ir\nfn=(1) main\n0 3\n")


if __name__ == "__main__":
    unittest.main()
