"""Runs the XLA suite: writes the op cases and the examples' HLO into a fresh work
directory, then runs pytest over test_conformance.py and test_examples.py.

Usage: run_suite.py --work DIR --gen GEN_CASES [--example EXE ...] [pytest args]
"""
import argparse
import os
import shutil
import subprocess
import sys

here = os.path.dirname(os.path.abspath(__file__))
p = argparse.ArgumentParser()
p.add_argument("--work", required=True)
p.add_argument("--gen", required=True)
p.add_argument("--example", action="append", default=[])
args, pytest_args = p.parse_known_args()

shutil.rmtree(args.work, ignore_errors=True)
cases = os.path.join(args.work, "cases")
examples = os.path.join(args.work, "examples")
os.makedirs(examples)
subprocess.run([args.gen, cases], check=True)
for exe in args.example:
    subprocess.run([exe, examples], check=True)

env = dict(os.environ, SCRIBE_CASES=cases, SCRIBE_EXAMPLES=examples, SCRIBE_GEN=args.gen)
sys.exit(subprocess.call([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", here] + pytest_args,
                         cwd=here, env=env))
