"""A user's server: the tiny random Llama on transformers' continuous batching, fed a steady stream of requests
for argv[1] seconds. Prints READY when the first request has finished, then `DONE <finished>` at the end."""

import sys
import threading
import time

import torch

from prism_core.demo.engine import serve
from prism_core.demo.replay import TraceRequest
from prism_plugins.frameworks.transformers.tiny import tiny_llama

seconds = float(sys.argv[1])
torch.set_num_threads(1)
model = tiny_llama()
trace = [TraceRequest(at_s=i * 0.05, input_tokens=24, output_tokens=24) for i in range(int(seconds / 0.05))]
ready = threading.Event()


def progress(finished: int, total: int) -> None:
    if finished and not ready.is_set():
        ready.set()
        print("READY", flush=True)


print("DONE", serve(model, trace, on_progress=progress, timeout_s=seconds + 60), flush=True)
time.sleep(0.1)
