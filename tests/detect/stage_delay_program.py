"""A user program for the online-detection test: tiny Llama generate() calls, then the real cpu.stage_delay.

Run under `prism run --detect --stage-faults`: `python stage_delay_program.py NORMAL_CALLS FAULT_CALLS ONSET_FILE`.
It writes the fault's ground-truth onset and end (ns) to ONSET_FILE as JSON.
"""

from __future__ import annotations

import json
import sys


def main() -> None:
    import torch

    from prism_core.plugins import host
    from prism_plugins.frameworks.transformers.tiny import tiny_llama

    normal_calls, fault_calls, onset_file = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    torch.set_num_threads(1)
    model = tiny_llama()
    gen = torch.Generator().manual_seed(0)

    def call(i: int) -> None:
        batch = (2, 4, 6)[i % 3]
        ids = torch.randint(3, 4096, (batch, 16 + 8 * (i % 2)), generator=gen)
        model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=24, do_sample=False)

    with torch.inference_mode():
        for i in range(normal_calls):
            call(i)
        fault = host().fault_injectors()["cpu.stage_delay"]
        onset = fault.start(0.4)  # 20 ms slept inside every `forward` stage
        try:
            for i in range(fault_calls):
                call(i)
        finally:
            end = fault.stop()
    with open(onset_file, "w") as f:
        json.dump({"onset_ns": onset, "end_ns": end}, f)


if __name__ == "__main__":
    main()
