"""Voice activity detection and endpointing: :class:`Vad` and its :class:`VadEvent`.

Framing, the start/end state machine and the pre-roll ring run in Rust for every backend.
The ``"native"`` backend also scores frames in Rust (a perceptron and a GRU, averaged, on
cheap spectral features of 10 ms frames); ``"silero"`` scores 32 ms frames with the Silero VAD model
through onnxruntime (``pip install 'voicecore[silero]'``, then ``pip install --no-deps
silero-vad`` for the model file: that package declares torch, which is not needed).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from voicecore._core import Endpointer, NativeVad, VadEvent
from voicecore.errors import AudioFormatError, ConfigError

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = ["SileroScorer", "Vad", "VadEvent"]

Backend = Literal["native", "silero"]

#: Silero scores 512 samples at 16 kHz and 256 at 8 kHz: 32 ms either way.
SILERO_FRAME_MS = 32


def silero_model_path() -> Path:
    """Path of ``silero_vad.onnx`` inside the installed ``silero-vad`` package.

    The package is located without importing it (its ``__init__`` imports torch).

    Raises:
        ImportError: silero-vad is not installed.
    """
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("silero-vad is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "silero_vad.onnx"


class SileroScorer:
    """Speech probability of consecutive 32 ms frames from the Silero VAD ONNX model.

    The model file comes from the ``silero-vad`` package (installed with ``--no-deps``
    it needs no torch); it runs on one onnxruntime thread, keeping the model's recurrent
    state and 64-sample (32 at 8 kHz) context between frames like ``silero_vad.OnnxWrapper``.

    Args:
        sample_rate: 8000 or 16000.

    Raises:
        ConfigError: onnxruntime or silero-vad is not installed, or the rate is unsupported.
    """

    def __init__(self, sample_rate: int = 16000) -> None:
        if sample_rate not in (8000, 16000):
            raise ConfigError(f"Vad supports sample_rate 8000 or 16000 Hz, got {sample_rate}")
        try:
            import numpy as np
            import onnxruntime  # type: ignore[import-untyped,import-not-found,unused-ignore]
        except ImportError as exc:
            raise ConfigError(
                "backend='silero' needs onnxruntime and numpy: pip install 'voicecore[silero]'"
            ) from exc
        try:
            model_bytes = silero_model_path().read_bytes()
        except (ImportError, OSError) as exc:
            raise ConfigError(
                "backend='silero' needs the ONNX model from the silero-vad package: "
                "pip install --no-deps silero-vad (its torch dependency is not needed)"
            ) from exc
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._np = np
        self._session = onnxruntime.InferenceSession(
            model_bytes, sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._rate = np.array(sample_rate, dtype=np.int64)
        self._context_size = 64 if sample_rate == 16000 else 32
        self.reset()

    def reset(self) -> None:
        """Forget the stream: zero recurrent state and context."""
        np = self._np
        self._state: Any = np.zeros((2, 1, 128), dtype=np.float32)
        self._context: Any = np.zeros((1, self._context_size), dtype=np.float32)

    def __call__(self, frame: bytes) -> float:
        """Return the speech probability of the next 32 ms PCM16 frame."""
        np = self._np
        samples = np.frombuffer(frame, dtype="<i2").astype(np.float32) * (1.0 / 32768.0)
        x = np.concatenate([self._context, samples[None, :]], axis=1)
        out, self._state = self._session.run(None, {"input": x, "state": self._state, "sr": self._rate})
        self._context = x[:, -self._context_size :]
        return float(out[0, 0])


class Vad:
    """Streaming voice activity detector and endpointer over PCM16 mono audio.

    Push chunks of any length; each push returns the :class:`VadEvent` s decided by the
    frames it completes (never later). ``"start"`` is decided once ``start_ms`` of speech
    has accumulated and reports where the speech began; ``"end"`` is decided after
    ``stop_ms`` without speech and reports where it stopped. Times are milliseconds of
    audio since the first pushed sample (or :meth:`reset`). A start event's ``audio`` holds
    the PCM from ``preroll_ms`` before ``at_ms`` up to ``decided_ms``: send it to the STT,
    then every sample after ``decided_ms``, and the first syllable is never lost.

    Args:
        sample_rate: 8000 or 16000 Hz.
        threshold: Speech probability at which a quiet frame counts as speech; while
            speaking, a frame counts as silence below ``threshold - 0.15``.
        start_ms: Speech needed before a start is decided (rounded up to whole frames).
        stop_ms: Silence needed before an end is decided (rounded up to whole frames).
            Pauses shorter than this never end a turn. The native backend holds up to
            400 ms longer in a turn that began out of noise it half-believed is speech
            (noise buries the soft ends of words around a pause).
        preroll_ms: Audio kept before the onset and returned with a start event.
        backend: ``"native"`` (Rust, 10 ms frames) or ``"silero"`` (onnxruntime, 32 ms
            frames; needs the ``silero`` extra).

    Raises:
        ConfigError: A setting is out of range (the message says how to fix it), or the
            silero backend's packages are missing.
    """

    __slots__ = ("_backend", "_core", "_scorer")

    def __init__(
        self,
        sample_rate: int = 16000,
        *,
        threshold: float = 0.5,
        start_ms: int = 200,
        stop_ms: int = 500,
        preroll_ms: int = 300,
        backend: Backend = "native",
    ) -> None:
        self._backend: Backend = backend
        self._core: NativeVad | Endpointer
        self._scorer: SileroScorer | None = None
        if backend == "native":
            self._core = NativeVad(
                sample_rate, threshold=threshold, start_ms=start_ms, stop_ms=stop_ms, preroll_ms=preroll_ms
            )
        elif backend == "silero":
            self._core = Endpointer(
                sample_rate,
                SILERO_FRAME_MS,
                threshold=threshold,
                start_ms=start_ms,
                stop_ms=stop_ms,
                preroll_ms=preroll_ms,
            )
            self._scorer = SileroScorer(sample_rate)
        else:
            raise ConfigError(f"unknown Vad backend {backend!r}; choose 'native' (default) or 'silero'")

    def push(self, pcm: Buffer) -> list[VadEvent]:
        """Push PCM16 little-endian audio of any even length; return the events it decides.

        Raises:
            AudioFormatError: ``pcm`` has an odd byte length or an unsupported item format
                (nothing is consumed).
        """
        core, scorer = self._core, self._scorer
        if isinstance(core, NativeVad):
            return core.push(pcm)
        assert scorer is not None
        try:
            return core.push(pcm, scorer)
        except AudioFormatError:
            raise  # rejected before any frame was scored
        except BaseException:
            # A failed scoring resets the endpointer's stream; keep the model in step.
            scorer.reset()
            raise

    def reset(self) -> None:
        """Forget the stream: quiet state, stream time zero."""
        self._core.reset()
        if self._scorer is not None:
            self._scorer.reset()

    @property
    def backend(self) -> Backend:
        """``"native"`` or ``"silero"``."""
        return self._backend

    @property
    def in_speech(self) -> bool:
        """Whether the endpointed state is "speaking" after the last push."""
        return self._core.in_speech

    @property
    def probability(self) -> float:
        """Speech probability (0..1) of the last complete frame; 0.0 before the first."""
        return self._core.probability

    @property
    def sample_rate(self) -> int:
        """The sample rate in Hz."""
        return self._core.sample_rate

    @property
    def frame_ms(self) -> int:
        """The scoring frame: 10 ms (native) or 32 ms (silero)."""
        return self._core.frame_ms

    @property
    def threshold(self) -> float:
        """The activation threshold."""
        return self._core.threshold

    @property
    def start_ms(self) -> int:
        """Speech needed before a start is decided."""
        return self._core.start_ms

    @property
    def stop_ms(self) -> int:
        """Silence needed before an end is decided."""
        return self._core.stop_ms

    @property
    def preroll_ms(self) -> int:
        """Audio kept before a start's onset."""
        return self._core.preroll_ms

    def __repr__(self) -> str:
        return (
            f"Vad(sample_rate={self.sample_rate}, threshold={self.threshold:g}, start_ms={self.start_ms}, "
            f"stop_ms={self.stop_ms}, preroll_ms={self.preroll_ms}, backend={self._backend!r})"
        )
