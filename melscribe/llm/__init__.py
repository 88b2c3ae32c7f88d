"""Requests written by a language model through the ``openai`` client (``melscribe rephrase``).

:mod:`.client` talks to the endpoint (retries, resumable cache), :mod:`.jobs` holds the two jobs (captions →
requests, descriptor sets → requests), :mod:`.local` runs llama.cpp's server with a small local model,
:mod:`.commands` is the command line.
"""

from melscribe.llm.client import LLMError, LLMFatalError, LLMSettings, ResultCache, complete_all  # noqa: F401
