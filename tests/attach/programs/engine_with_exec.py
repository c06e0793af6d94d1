"""A user's server (tiny Llama, continuous batching, requests every 50 ms) whose main thread runs the script files
named on stdin, as `sys.remote_exec` would at a safe point, so the injected scripts run in a real engine here.
Commands: `EXEC <path>` (answers OK), `PATCHED` (answers whether the scheduler step is wrapped now), `QUIT`."""

import sys
import threading

import torch
from transformers.generation.continuous_batching.continuous_api import ContinuousBatchProcessor

from prism_core.demo.engine import serve
from prism_core.demo.replay import TraceRequest
from prism_plugins.frameworks.transformers.tiny import tiny_llama

torch.set_num_threads(1)
original = ContinuousBatchProcessor.prepare_next_batch
trace = [TraceRequest(at_s=i * 0.05, input_tokens=16, output_tokens=8) for i in range(2400)]
threading.Thread(target=serve, args=(tiny_llama(), trace), kwargs={"timeout_s": 120}, daemon=True).start()
print("READY", flush=True)
for line in sys.stdin:
    command, _, arg = line.strip().partition(" ")
    if command == "EXEC":
        with open(arg) as f:
            exec(compile(f.read(), arg, "exec"), {"__name__": "__main__"})
        print("OK", flush=True)
    elif command == "PATCHED":
        print(ContinuousBatchProcessor.prepare_next_batch is not original, flush=True)
    elif command == "QUIT":
        break
