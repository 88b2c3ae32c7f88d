"""Reading a request's rejections with an LLM, when an endpoint is configured (opt-in; the default is the rules
of :mod:`melscribe.intent.rejections`).

Set ``MELSCRIBE_INTENT_LLM`` to a model name (and ``OPENAI_BASE_URL``/``OPENAI_API_KEY`` as for
:mod:`melscribe.llm.client`) and :class:`~melscribe.intent.parser.IntentParser` asks that model which phrases of
the request it rejects. The answer is kept only where it is grounded: each phrase must occur in the request,
word for word; an answer that is not JSON, or a failed call, falls back to the rules for that request. The
phrases found go through the same matching to descriptors as the rules' phrases.
"""

from __future__ import annotations

import json
import os
import re

from melscribe.intent.rejections import RejectedPhrase

#: The environment variable naming the model; unset (the default): no LLM reader.
MODEL_ENV = "MELSCRIBE_INTENT_LLM"
SYSTEM_PROMPT = (
    "You read music recommendation requests and list what each request REJECTS: genres, instruments, moods or "
    "sounds the person does not want ('but not jazz', 'sick of EDM', 'non-vocal', 'minus the growling', 'less "
    "distortion'). Copy each rejected thing word for word from the request. Names of bands, songs and genres "
    "that merely contain a negative word reject nothing ('no wave', 'Nothing But Thieves', 'no doubt', "
    "'anti-folk'). Answer with JSON only: {\"rejects\": [\"...\"]}, an empty list if nothing is rejected.")


def parse_answer(text: str) -> list[str] | None:
    """The ``rejects`` list of the first JSON object in a model's answer (chatty preambles allowed), or
    ``None`` when there is none."""
    decoder = json.JSONDecoder()
    for m in re.finditer(r"\{", text):
        try:
            obj, _ = decoder.raw_decode(text, m.start())
        except ValueError:
            continue
        if isinstance(obj, dict) and isinstance(obj.get("rejects"), list):
            return [str(x).strip() for x in obj["rejects"] if str(x).strip()]
    return None


def grounded(request: str, phrases: list[str]) -> list[RejectedPhrase]:
    """The phrases that occur in ``request`` (case-insensitive, whole words), each with its span."""
    text = request.lower().replace("’", "'")
    out = []
    for p in phrases:
        m = re.search(r"(?<![a-z0-9])" + re.escape(p.lower()) + r"(?![a-z0-9])", text)
        if m:
            out.append(RejectedPhrase("llm", p.lower(), m.start(), m.end()))
    return out


class LLMRejectionReader:
    """Asks a chat-completions endpoint (``settings``: :class:`melscribe.llm.client.LLMSettings`) for the
    rejected phrases of a request. :attr:`failures` counts the requests it could not read."""

    def __init__(self, settings):
        self.settings = settings
        self._client = settings.make_client()
        self.failures = 0
        #: the text of the last answer (``None`` when the call failed)
        self.last_answer: str | None = None

    def read(self, request: str) -> list[RejectedPhrase] | None:
        """The grounded rejected phrases, or ``None`` when the call fails or the answer is not JSON."""
        import openai

        self.last_answer = None
        try:
            reply = self._client.chat.completions.create(
                model=self.settings.model, temperature=self.settings.temperature,
                max_tokens=self.settings.max_tokens,
                messages=[{"role": "system", "content": SYSTEM_PROMPT},
                          {"role": "user", "content": f"Description: {request}"}])
            self.last_answer = reply.choices[0].message.content or ""
            phrases = parse_answer(self.last_answer)
        except (openai.OpenAIError, AttributeError, IndexError, TypeError):  # the rules read this request
            phrases = None
        if phrases is None:
            self.failures += 1
            return None
        return grounded(request, phrases)


def reader_from_env() -> LLMRejectionReader | None:
    """An :class:`LLMRejectionReader` for the model named by ``$MELSCRIBE_INTENT_LLM``, else ``None``."""
    model = os.environ.get(MODEL_ENV, "").strip()
    if not model:
        return None
    from melscribe.llm.client import LLMSettings

    return LLMRejectionReader(LLMSettings(model=model, max_retries=0, timeout=20.0))
