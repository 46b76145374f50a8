# Puts this checkout's Python SDK on the path, so that `pytest` needs no PYTHONPATH.
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "sdk", "python"))
