"""Noise models for simulated experiments: gate noise, measurement-layer noise, asymmetric readout.

Model
-----
A :class:`NoiseModel` describes a device in four numbers (per-qubit arrays for readout):

``depolarizing``
    A one-qubit depolarizing channel of probability ``p`` (``rho -> (1 - p) rho + p/3 (X rho X
    + Y rho Y + Z rho Z)``, stim's ``DEPOLARIZE1``) after every one-qubit gate, of the state
    preparation *and* of the measurement layer (see below).
``two_qubit_depolarizing``
    A two-qubit depolarizing channel (stim's ``DEPOLARIZE2``: each of the 15 non-identity Pauli
    pairs with probability ``p / 15``) after every two-qubit gate; default: ``depolarizing``.
``readout_p01``, ``readout_p10``
    Readout flips: a qubit whose measured bit is 0 reads 1 with probability ``p01``, a 1 reads 0
    with probability ``p10`` (per qubit, or one value for all).

The *measurement layer* is one basis-rotation gate on every qubit, for every basis (``H`` for
X, ``S^dagger H`` for Y, an identity-like gate for Z), then readout. Giving every basis the same
noisy gate is what a device that always plays a rotation pulse does, and it is the assumption
under which robust shadows are unbiased (noise independent of the measured basis, Chen et al.,
PRX Quantum 2, 030348 (2021)). A depolarizing channel just before a Pauli measurement flips its
outcome with probability ``2p/3`` whatever the basis, so the measurement layer is sampled
exactly as a classical flip; the state preparation's gate noise enters the stim circuit as
``DEPOLARIZE1``/``DEPOLARIZE2`` after each gate (:func:`add_circuit_noise`).

Readout twirling
----------------
With ``readout_twirl=True`` every snapshot draws a uniformly random X-flip mask ``t``: the device
applies ``X`` to the qubits in ``t`` just before measuring, the raw bits are read (with their
asymmetric flips), and ``t`` is XORed back out. The stored outcome is the corrected bit and the
mask is kept per snapshot (``ShadowData.twirl``). Because the raw bit is then uniformly
random whatever the state, each qubit's flip probability becomes ``(p01 + p10) / 2``
independently of the state: asymmetric readout becomes a symmetric channel, which a calibration
on ``|0...0>`` measures without bias. Without twirling, asymmetric readout adds a
state-dependent offset that no multiplicative calibration can remove.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import stim

from shadowlab.errors import ShadowlabError

__all__ = ["NoiseModel", "add_circuit_noise", "apply_measurement_noise", "parse_noise_spec"]

#: Keys of a noise specification (CLI ``--noise``, :meth:`NoiseModel.from_spec`).
NOISE_KEYS = ("depolarizing", "two_qubit_depolarizing", "readout", "readout_p01", "readout_p10")
_ALIASES = {"p01": "readout_p01", "p10": "readout_p10", "depolarizing2": "two_qubit_depolarizing"}


@dataclass(frozen=True)
class NoiseModel:
    """Gate and readout noise of a simulated device (see the module documentation).

    Parameters
    ----------
    depolarizing:
        One-qubit depolarizing probability after every one-qubit gate (state preparation and
        measurement layer), in [0, 3/4].
    two_qubit_depolarizing:
        Two-qubit depolarizing probability after every two-qubit gate, in [0, 15/16]; ``None``
        means the same as ``depolarizing``.
    readout_p01, readout_p10:
        Probability that a measured 0 reads as 1 (resp. 1 as 0): one float, or one per qubit.
    """

    depolarizing: float = 0.0
    two_qubit_depolarizing: float | None = None
    readout_p01: float | tuple[float, ...] = 0.0
    readout_p10: float | tuple[float, ...] = 0.0

    def __post_init__(self) -> None:
        _check_probability("depolarizing", self.depolarizing, 0.75)
        object.__setattr__(self, "depolarizing", float(self.depolarizing))
        if self.two_qubit_depolarizing is None:
            object.__setattr__(self, "two_qubit_depolarizing", self.depolarizing)
        _check_probability("two_qubit_depolarizing", self.two_qubit_depolarizing, 15 / 16)
        object.__setattr__(self, "two_qubit_depolarizing", float(self.two_qubit_depolarizing))
        for name in ("readout_p01", "readout_p10"):
            value = getattr(self, name)
            if isinstance(value, list | tuple | np.ndarray):
                values = tuple(float(v) for v in value)
                for v in values:
                    _check_probability(name, v, 1.0)
                object.__setattr__(self, name, values)
            else:
                _check_probability(name, value, 1.0)
                object.__setattr__(self, name, float(value))

    @property
    def p2(self) -> float:
        """The two-qubit depolarizing probability (``depolarizing`` unless given)."""
        return float(self.two_qubit_depolarizing)  # type: ignore[arg-type]  # set in __post_init__

    @property
    def is_noiseless(self) -> bool:
        """True when no channel acts."""
        return (self.depolarizing == 0 and self.p2 == 0 and not np.any(self.readout_p01)
                and not np.any(self.readout_p10))

    def readout(self, n_qubits: int) -> tuple[np.ndarray, np.ndarray]:
        """``(p01, p10)`` as ``(n_qubits,)`` float arrays (a per-qubit list must have ``n_qubits`` entries)."""
        out = []
        for name in ("readout_p01", "readout_p10"):
            value = getattr(self, name)
            if isinstance(value, tuple):
                if len(value) != n_qubits:
                    raise ShadowlabError(f"{name} lists {len(value)} per-qubit values but the data have {n_qubits} "
                                         "qubits")
                out.append(np.asarray(value, dtype=np.float64))
            else:
                out.append(np.full(n_qubits, float(value)))
        return out[0], out[1]

    @property
    def measurement_flip(self) -> float:
        """Probability that the measurement layer's depolarizing gate flips an outcome: ``2p/3``."""
        return 2.0 * self.depolarizing / 3.0

    def state_circuit(self, circuit: stim.Circuit) -> stim.Circuit:
        """``circuit`` with this model's gate noise after each gate (:func:`add_circuit_noise`)."""
        return add_circuit_noise(circuit, self.depolarizing, self.p2)

    def record(self) -> dict[str, Any]:
        """JSON-serializable description, stored in provenance (inverse: :meth:`from_spec`)."""
        def plain(v: float | tuple[float, ...]) -> float | list[float]:
            return list(v) if isinstance(v, tuple) else float(v)

        return {
            "model": "shadowlab.NoiseModel",
            "depolarizing": float(self.depolarizing),
            "two_qubit_depolarizing": self.p2,
            "readout_p01": plain(self.readout_p01),
            "readout_p10": plain(self.readout_p10),
            "measurement_layer": "one depolarizing rotation gate per qubit and basis, then readout",
        }

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any] | None) -> NoiseModel:
        """From ``{'depolarizing': p, 'readout_p01': a, 'readout_p10': b, ...}`` (or a :meth:`record`).

        ``readout`` sets a symmetric flip (both directions) and cannot be combined with
        ``readout_p01``/``readout_p10``; ``p01``/``p10`` are accepted as short names.
        """
        if spec is None:
            return cls()
        values = {_ALIASES.get(k, k): v for k, v in dict(spec).items() if k not in ("model", "measurement_layer")}
        unknown = sorted(set(values) - set(NOISE_KEYS))
        if unknown:
            raise ShadowlabError(f"unknown noise parameter(s) {', '.join(unknown)}; expected some of "
                                 f"{', '.join(NOISE_KEYS)} (or p01/p10)")
        if "readout" in values:
            if "readout_p01" in values or "readout_p10" in values:
                raise ShadowlabError("give either a symmetric 'readout' flip or 'readout_p01'/'readout_p10', not both")
            values["readout_p01"] = values["readout_p10"] = values.pop("readout")
        return cls(**values)


def parse_noise_spec(text: str, *, option: str = "--noise") -> NoiseModel:
    """``'p01=0.05,p10=0.15,depolarizing=0.01'`` -> :class:`NoiseModel` (errors name ``option``)."""
    spec: dict[str, float] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        key = _ALIASES.get(key.strip(), key.strip())
        if not sep or key not in NOISE_KEYS:
            raise ShadowlabError(f"{option}: expected 'name=probability' with name in "
                                 f"{', '.join((*NOISE_KEYS, 'p01', 'p10'))}, got {part!r}")
        if key in spec:
            raise ShadowlabError(f"{option}: {key} is given twice (in {text!r})")
        try:
            spec[key] = float(value)
        except ValueError:
            raise ShadowlabError(f"{option}: {value.strip()!r} is not a number (in {part!r})") from None
    try:
        return NoiseModel.from_spec(spec)
    except ShadowlabError as exc:
        raise ShadowlabError(f"{option}: {exc}") from None


def _check_probability(name: str, value: Any, upper: float) -> None:
    try:
        p = float(value)
    except (TypeError, ValueError):
        raise ShadowlabError(f"{name} must be a probability, got {value!r}") from None
    if not (0.0 <= p <= upper) or math.isnan(p):
        raise ShadowlabError(f"{name} must lie in [0, {upper:g}], got {value!r}")


# --------------------------------------------------------------------------------------------
# Gate noise in stim circuits
# --------------------------------------------------------------------------------------------


def add_circuit_noise(circuit: stim.Circuit, p1: float, p2: float | None = None) -> stim.Circuit:
    """A copy of ``circuit`` with ``DEPOLARIZE1(p1)`` after every one-qubit gate and
    ``DEPOLARIZE2(p2)`` after every two-qubit gate (``p2`` defaults to ``p1``).

    Gates inside ``REPEAT`` blocks get the same treatment; existing noise channels and
    annotations are kept as they are. Noise follows each gate instruction on the qubits it
    targets (a layer ``H 0 1 2`` gets ``DEPOLARIZE1(p1) 0 1 2``), so each qubit of a gate gets one
    channel per gate application.
    """
    p2 = p1 if p2 is None else p2
    _check_probability("p1", p1, 0.75)
    _check_probability("p2", p2, 15 / 16)
    out = stim.Circuit()
    for op in circuit:
        if isinstance(op, stim.CircuitRepeatBlock):
            out.append(stim.CircuitRepeatBlock(op.repeat_count, add_circuit_noise(op.body_copy(), p1, p2)))
            continue
        out.append(op)
        data = stim.gate_data(op.name)
        if not data.is_unitary:
            continue
        qubits = [t.value for t in op.targets_copy()]
        if data.is_single_qubit_gate and p1 > 0:
            out.append("DEPOLARIZE1", qubits, p1)
        elif data.is_two_qubit_gate and p2 > 0:
            out.append("DEPOLARIZE2", qubits, p2)
    return out


# --------------------------------------------------------------------------------------------
# Measurement layer and readout, applied to ideal outcomes
# --------------------------------------------------------------------------------------------


def apply_measurement_noise(
    outcomes: np.ndarray,
    noise: NoiseModel,
    rng: np.random.Generator,
    *,
    readout_twirl: bool | np.ndarray,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Turn ideal outcomes into what the noisy measurement layer and readout return.

    Parameters
    ----------
    outcomes:
        ``(S, n)`` uint8 outcome bits of ideal measurements of the (possibly noisy) state in the
        snapshots' bases (0 = eigenvalue +1).
    noise:
        The measurement-layer depolarizing gate flips each bit with probability ``2p/3``; then
        readout flips a raw 0 with ``p01`` and a raw 1 with ``p10``.
    rng:
        Source of every random draw (twirl masks first, then flips).
    readout_twirl:
        ``True``: draw a uniform X-flip mask per snapshot and qubit, apply it before readout and
        undo it after (see the module documentation); an ``(S, n)`` 0/1 array: use these masks.

    Returns
    -------
    outcomes, twirl:
        The corrected ``(S, n)`` uint8 outcomes, and the ``(S, n)`` uint8 twirl masks (``None``
        without twirling).
    """
    bits = np.asarray(outcomes, dtype=np.uint8)
    n_snap, n = bits.shape
    if isinstance(readout_twirl, np.ndarray):
        if readout_twirl.shape != bits.shape:
            raise ShadowlabError(f"twirl masks have shape {readout_twirl.shape}, the outcomes {bits.shape}")
        twirl: np.ndarray | None = np.asarray(readout_twirl, dtype=np.uint8)
    else:
        twirl = rng.integers(0, 2, size=(n_snap, n), dtype=np.uint8) if readout_twirl else None
    raw = bits.copy()
    if noise.measurement_flip > 0:
        raw ^= (rng.random((n_snap, n)) < noise.measurement_flip).astype(np.uint8)
    if twirl is not None:
        raw ^= twirl
    p01, p10 = noise.readout(n)
    if np.any(p01) or np.any(p10):
        flip_probability = np.where(raw == 1, p10[None, :], p01[None, :])
        raw ^= (rng.random((n_snap, n)) < flip_probability).astype(np.uint8)
    if twirl is not None:
        raw ^= twirl
    return raw, twirl
