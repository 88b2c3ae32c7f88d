"""musicnn's log-mel front end in numpy: waveform (16 kHz mono) → log-mel frames → 3-second patches.

The original (``musicnn.extractor.batch_data``) calls ``librosa.feature.melspectrogram`` with its
defaults of the time (librosa 0.7): a 512-point STFT with a periodic Hann window, hop 256, frames
centred by reflect-padding 256 samples at both ends, the power spectrum, and 96 Slaney mel bands
(``htk=False``, area-normalised ``norm='slaney'``) from 0 Hz to 8 kHz; then ``log10(10000·x + 1)``.

This module computes the same with numpy alone rather than librosa: librosa is not a dependency
of melscribe (it pulls in numba and llvmlite), and today's librosa (0.10 and later) pads the
centred frames with zeros instead of reflecting, which would silently change the first and last
frames. The filterbank here is checked against librosa's in ``experiments/musicnn_faithful.py``.

One departure, on purpose: musicnn casts the mel power to float16 before ``10000·x``, so any mel
power above 65504 / 10000 ≈ 6.55 overflows to ``inf`` (loud, bass-heavy recordings routinely
exceed it) and the network then yields nearly the same tags for every such track. This front end
computes in float32 throughout. On quiet audio that moves the log-mel values by about 1e-3 (the
float16 rounding) and the tag probabilities by under 4e-4; on loud audio the original's tags are
the same for every clip and the port's are not (``experiments/results/musicnn_faithful.md``).
"""

from __future__ import annotations

import numpy as np

from melscribe.errors import InvalidRequestError

SAMPLE_RATE = 16000
N_FFT = 512
HOP = 256
N_MELS = 96
#: Frames per patch: ``librosa.time_to_frames(3 s) + 1`` as in musicnn's extractor (~3 s).
PATCH_FRAMES = 187


def mel_filterbank(sr: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS) -> np.ndarray:
    """Slaney-style mel filterbank ``(n_mels, 1 + n_fft // 2)``, float32, as ``librosa.filters.mel``
    with ``htk=False, norm='slaney'``, ``fmin=0``, ``fmax=sr/2``."""
    fft_freqs = np.linspace(0.0, sr / 2, 1 + n_fft // 2)
    mel_edges = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sr / 2), n_mels + 2))
    widths = np.diff(mel_edges)
    ramps = mel_edges[:, None] - fft_freqs[None, :]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights *= (2.0 / (mel_edges[2:] - mel_edges[:-2]))[:, None]
    return weights.astype(np.float32)


def _hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz (200/3 Hz per mel), logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / (200.0 / 3)
    log = 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(hz >= 1000.0, log, linear)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    """Inverse of :func:`_hz_to_mel`."""
    linear = mel * (200.0 / 3)
    log = 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0))
    return np.where(mel >= 15.0, log, linear)


_MEL_BASIS = mel_filterbank()
_WINDOW = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)  # periodic Hann


def log_mel(waveform: np.ndarray) -> np.ndarray:
    """Log-mel frames ``(1 + len // 256, 96)`` float32 of a 16 kHz mono waveform.

    Raises :class:`InvalidRequestError` on an empty, multi-channel or non-finite waveform.
    """
    y = _checked(waveform)
    padded = np.pad(y, N_FFT // 2, mode="reflect")
    n_frames = 1 + (len(padded) - N_FFT) // HOP
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[:: HOP][:n_frames]
    spectrum = np.fft.rfft(frames * _WINDOW, axis=1)
    power = (spectrum.real**2 + spectrum.imag**2).astype(np.float32)
    mel = power @ _MEL_BASIS.T
    return np.log10(np.float32(10000) * mel + np.float32(1))


def _checked(waveform: np.ndarray) -> np.ndarray:
    """The waveform as 1-D float32, or an InvalidRequestError saying what is wrong with it."""
    y = np.asarray(waveform)
    if y.ndim != 1:
        raise InvalidRequestError(f"a waveform must be 1-D (mono, {SAMPLE_RATE} Hz); got shape {y.shape}")
    if y.size == 0:
        raise InvalidRequestError("the waveform is empty")
    y = y.astype(np.float32, copy=False)
    if not np.isfinite(y).all():
        raise InvalidRequestError("the waveform holds NaN or infinite samples")
    return y


def patches(frames: np.ndarray, n_frames: int = PATCH_FRAMES) -> np.ndarray:
    """Cut log-mel frames ``(T, 96)`` into non-overlapping patches ``(n, n_frames, 96)``.

    As musicnn's extractor (hop between patches = ``n_frames``), trailing frames that do not fill a
    patch are dropped. A clip shorter than one patch is repeated end to end until it fills one —
    the "repeat-pad" the models were trained with (``pad_short`` in each model's ``config.json``) —
    where the original extractor would fail.
    """
    if len(frames) == 0:
        raise InvalidRequestError("no log-mel frames to cut into patches")
    if len(frames) < n_frames:
        frames = np.tile(frames, (-(-n_frames // len(frames)), 1))[:n_frames]
    count = len(frames) // n_frames
    return np.ascontiguousarray(frames[: count * n_frames].reshape(count, n_frames, frames.shape[1]))
