"""Exact Pauli expectation values of the mixed state a noisy stim circuit prepares.

Method
------
Let the circuit's noiseless version prepare the stabilizer state with group ``S``, and let its
Pauli noise channels be independent error mechanisms ``k`` that each apply a Pauli error with
probability ``p_k``. For a Pauli ``P``:

* ``P`` not in ``+-S``: every Pauli error maps the noiseless state to another stabilizer state
  ``E|psi>`` with ``<psi|E P E|psi> = +-<psi|P|psi> = 0``, so ``<P> = 0`` exactly.
* ``P = s Q`` with ``Q`` in ``S`` (``s = +-1``, the noiseless value): an error ``E`` either
  commutes with ``P`` (no change) or anticommutes (sign flip). Appending ``MPP P`` and a
  ``DETECTOR`` on it, stim's detector error model lists independent mechanisms with their
  probabilities and the detectors they flip (stim rewrites ``DEPOLARIZE1``/``DEPOLARIZE2`` and
  the ``*_ERROR`` channels exactly as independent mechanisms, and merges mechanisms with equal
  symptoms exactly). Then ``<P> = s * prod_k (1 - 2 p_k)`` over the mechanisms that flip ``P``'s
  detector, because ``E[(-1)^(sum of independent flips)] = prod (1 - 2 p_k)``.

All Paulis of one call share one detector error model (they commute, being in ``+-S``; measuring
one does not disturb the others). Channels whose disjoint cases stim cannot turn into independent
mechanisms exactly (some ``PAULI_CHANNEL_1/2`` parameters) are refused: stim would only
approximate them (``approximate_disjoint_errors``), and this function promises exact values.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import stim

from shadowlab.acquire.clifford_states import stabilizer_expectations
from shadowlab.acquire.stim_sampler import check_state_circuit
from shadowlab.errors import QubitCountMismatchError, ShadowlabError
from shadowlab.paulis import PauliString, PauliSum

__all__ = ["exact_noisy_pauli_expectations"]


def exact_noisy_pauli_expectations(
    circuit: stim.Circuit,
    paulis: PauliSum | Sequence[PauliString],
    *,
    n_qubits: int | None = None,
) -> np.ndarray:
    """Exact ``<P>`` on the state ``circuit`` prepares from ``|0...0>``, Pauli noise included.

    Parameters
    ----------
    circuit:
        Clifford state-preparation circuit: unitary gates, Pauli noise channels, ``REPEAT``
        blocks and ``TICK``/coordinate annotations (no measurements or resets; see
        :func:`shadowlab.acquire.stim_sampler.check_state_circuit`).
    paulis:
        The Pauli strings (coefficients of a :class:`PauliSum` are ignored); qubit ``i`` is stim
        qubit ``i``.
    n_qubits:
        Size of the system (default: the ``PauliSum``'s, else ``circuit.num_qubits``); qubits the
        circuit does not touch are ``|0>``.

    Returns
    -------
    numpy.ndarray
        ``(M,)`` float64 expectation values, exact up to floating-point rounding (``1e-15``
        relative): ``+-prod_k (1 - 2 p_k)`` for Paulis in the noiseless state's stabilizer group up
        to sign (the identity gives 1), and exactly ``0.0`` for all others.

    Raises
    ------
    StateError
        If the circuit measures, resets or uses detectors (see ``check_state_circuit``).
    QubitCountMismatchError
        If a Pauli or the circuit acts beyond ``n_qubits``.
    ShadowlabError
        If a noise channel cannot be written exactly as independent error mechanisms.

    Examples
    --------
    >>> c = stim.Circuit("H 0\\nCX 0 1\\nDEPOLARIZE1(0.03) 0\\nX_ERROR(0.1) 1")
    >>> exact_noisy_pauli_expectations(c, [PauliString.from_label("XX"), PauliString.from_label("ZZ"),
    ...                                    PauliString.from_label("Z0")]).round(12).tolist()
    [0.96, 0.768, 0.0]
    """
    check_state_circuit(circuit)
    terms = list(paulis.terms) if isinstance(paulis, PauliSum) else list(paulis)
    if n_qubits is None:
        n_qubits = paulis.n_qubits if isinstance(paulis, PauliSum) else circuit.num_qubits
    n = int(n_qubits)
    if circuit.num_qubits > n:
        raise QubitCountMismatchError(
            f"the circuit acts on {circuit.num_qubits} qubits but the Paulis are on {n}; pass n_qubits >= "
            f"{circuit.num_qubits}"
        )
    # The noiseless values (+1, -1 or 0; the identity gives 1) are the signs s.
    signs = stabilizer_expectations(circuit.without_noise(), terms, n_qubits=n)
    out = signs.copy()
    tracked = [i for i, t in enumerate(terms) if t.weight and signs[i] != 0]
    if not tracked:
        return out
    probe = circuit.copy()
    for i in tracked:
        probe.append("MPP", stim.target_combined_paulis(terms[i].to_stim(n)))
        probe.append("DETECTOR", [stim.target_rec(-1)])
    try:
        dem = probe.detector_error_model(decompose_errors=False, approximate_disjoint_errors=False)
    except ValueError as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ShadowlabError(
            "stim cannot write this circuit's noise as independent error mechanisms exactly "
            f"({message}); exact expectation values need channels such as DEPOLARIZE1/2, X/Y/Z_ERROR "
            "or PAULI_CHANNEL parameters stim decomposes exactly"
        ) from None
    factor = np.ones(len(tracked))
    for inst in dem.flattened():
        if inst.type != "error":
            continue
        keep = 1.0 - 2.0 * float(inst.args_copy()[0])
        for t in inst.targets_copy():
            if t.is_relative_detector_id():
                factor[t.val] *= keep
    out[tracked] = signs[tracked] * factor
    return out
