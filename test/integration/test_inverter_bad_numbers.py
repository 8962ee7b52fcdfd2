"""Numbers from the bus that no integer can hold (NaN, infinities, 1e300) or
that are no integer at all (2.5) where the inverter needs an integer: each is
reported as an input problem, never converted first (undefined behaviour).

Run: cd test/integration && MOAT_BUILD_DIR=../../build MOAT_SOURCE_DIR=../.. python3 -m unittest -v test_inverter_bad_numbers
"""

import unittest

from test_inverter import SYSTEM, InverterTestCase

PATH = "/Ac/ActiveIn/NumberOfPhases"


class TestPhaseCount(InverterTestCase):
    def test_bad_phase_counts_are_input_problems(self):
        self.start("p_grid")
        self.wait_for_setpoints([-300.0] * 3)
        cases = [(1e300, f"{PATH}: 1e+300 is not 1..3"), (-1e300, f"{PATH}: -1e+300 is not 1..3"),
                 (2.5, f"{PATH}: 2.5 is not 1..3"), (float("nan"), f"{PATH}: invalid"),
                 (float("inf"), f"{PATH}: invalid"), (float("-inf"), f"{PATH}: invalid")]
        for value, problem in cases:
            with self.subTest(value=value):
                self.client.set(SYSTEM, PATH, value)
                self.wait_until(f"the input problem for {value}",
                                lambda: problem in (self.client.state().get("input_problem") or ""), 5, self.host)
                # back to a good value: the problem goes away again
                self.client.set(SYSTEM, PATH, 3)
                self.wait_until("no input problem", lambda: self.client.state().get("input_problem") is None, 5,
                                self.host)
        self.assertTrue(self.host.running(), self.host.describe())


if __name__ == "__main__":
    unittest.main()
