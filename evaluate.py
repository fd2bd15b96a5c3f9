"""python evaluate.py task=erc — placeholder until the evaluation milestone lands."""

import sys

if __name__ == "__main__":
    sys.exit("evaluate.py: evaluation is not implemented yet (see the project's issues).")
