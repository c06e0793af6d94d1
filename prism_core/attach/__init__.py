"""Reaching an LLM server that is already running (`prism attach`): the target process, injection with
`sys.remote_exec` on Python 3.14+, and, from outside, its metrics endpoint and py-spy stack samples."""
