"""Reading a request: what it asks for and what it rejects, matched to a catalog's descriptor vocabulary.
Shared by serving and evaluation. :mod:`.words` (tokens, stems, synonyms) → :mod:`.rejections` (negation cues
and their scope) → :mod:`.matching` (phrases to descriptors) → :mod:`.parser` (:class:`~.parser.IntentParser`,
the :class:`~.parser.Intent` of a request)."""
