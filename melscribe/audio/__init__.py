"""Audio: decoding and caching audio files, music taggers, and joint audio–text models.

Shared by serving, evaluation and the command line; imports nothing from ``serve/`` or ``train/``.
"""
