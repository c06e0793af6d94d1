"""Framework plugins: adapters that instrument serving frameworks in-process, with no change to their code."""
