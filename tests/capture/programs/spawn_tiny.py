"""A user's program that generates in a spawned child, as SGLang runs its scheduler: the parent never imports
transformers. The child prints generate_tiny.py's tokens; the parent exits with the child's exit code."""

import multiprocessing
import runpy
import sys
from pathlib import Path


def child() -> None:
    runpy.run_path(str(Path(__file__).with_name("generate_tiny.py")), run_name="__main__")


if __name__ == "__main__":
    proc = multiprocessing.get_context("spawn").Process(target=child)
    proc.start()
    proc.join()
    print("transformers" in sys.modules)
    sys.exit(proc.exitcode)
