"""Built-in Clifford states as stim circuits, and their exact Pauli expectation values.

Every circuit prepares its state from ``|0...0>`` with unitary Clifford gates only, so that it
can be sampled at any size by :func:`shadowlab.acquire.stim_sampler.sample_stim`.

Qubit layouts
-------------
* ``ghz_circuit(n)``: qubits ``0..n-1``; ``(|0...0> + |1...1>) / sqrt(2)``.
* ``cluster_circuit(n)``: open chain, ``H`` on every qubit then ``CZ`` on neighbours; stabilized by
  ``Z_{i-1} X_i Z_{i+1}`` (the ``Z`` factors that fall off the chain are dropped).
* ``cluster_2d_circuit(rows, cols)``: qubit ``r * cols + c``; ``CZ`` on grid neighbours (open).
* ``toric_code_circuit(L)``: the ``L x L`` torus has vertices ``(r, c)`` with index ``r L + c``
  and ``2 L^2`` edge qubits: the horizontal edge from ``(r, c)`` to ``(r, c + 1)`` is qubit
  ``2 (r L + c)``, the vertical edge from ``(r, c)`` to ``(r + 1, c)`` is qubit
  ``2 (r L + c) + 1`` (indices mod ``L``). The state is stabilized by every star
  ``A_v = X X X X`` on the four edges at a vertex, every plaquette ``B_p = Z Z Z Z`` on the four
  edges of a face, and both ``Z``-type logical loops (:func:`toric_code_stabilizers`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import numpy as np
import stim

from shadowlab.acquire.stim_sampler import check_state_circuit
from shadowlab.errors import ShadowlabError
from shadowlab.paulis import PauliString, PauliSum

CLIFFORD_SPECS = ("ghz:N", "cluster:N", "cluster2d:RxC", "toric:L", "surface:D")


def ghz_circuit(n: int) -> stim.Circuit:
    """GHZ state on ``n >= 1`` qubits: ``H 0`` then a chain of ``CNOT``s."""
    _check_size("ghz", n, 1)
    c = stim.Circuit()
    c.append("H", [0])
    for q in range(n - 1):
        c.append("CNOT", [q, q + 1])
    if n == 1:
        c.append("I", [0])
    return c


def cluster_circuit(n: int) -> stim.Circuit:
    """1D cluster state on an open chain of ``n >= 2`` qubits."""
    _check_size("cluster", n, 2)
    c = stim.Circuit()
    c.append("H", range(n))
    c.append("CZ", [q for i in range(n - 1) for q in (i, i + 1)])
    return c


def cluster_2d_circuit(rows: int, cols: int) -> stim.Circuit:
    """2D cluster state on an open ``rows x cols`` grid (qubit ``r * cols + c``)."""
    _check_size("cluster2d rows", rows, 1)
    _check_size("cluster2d cols", cols, 1)
    if rows * cols < 2:
        raise ShadowlabError("cluster2d needs at least 2 qubits")
    c = stim.Circuit()
    c.append("H", range(rows * cols))
    pairs = []
    for r in range(rows):
        for col in range(cols):
            q = r * cols + col
            if col + 1 < cols:
                pairs += [q, q + 1]
            if r + 1 < rows:
                pairs += [q, q + cols]
    c.append("CZ", pairs)
    return c


def _h(r: int, c: int, size: int) -> int:
    return 2 * ((r % size) * size + (c % size))


def _v(r: int, c: int, size: int) -> int:
    return 2 * ((r % size) * size + (c % size)) + 1


def _star(r: int, c: int, size: int) -> list[int]:
    return [_h(r, c, size), _h(r, c - 1, size), _v(r, c, size), _v(r - 1, c, size)]


def toric_code_circuit(size: int) -> stim.Circuit:
    """A toric-code ground state on the ``size x size`` torus (``2 size^2`` qubits).

    ``|0...0>`` already satisfies every plaquette; each star but one (they multiply to the
    identity) is then projected in with ``H`` on a *pivot* edge and ``CNOT``s to the star's other
    edges. The pivot of vertex ``v`` is its edge towards ``v``'s parent in a breadth-first
    spanning tree, and children are processed before parents, so each pivot is still ``|0>``
    when its star is applied: the step is exactly ``(1 + A_v) / sqrt(2)``.
    """
    _check_size("toric", size, 2)
    parent: dict[tuple[int, int], tuple[tuple[int, int], int]] = {}
    order = [(0, 0)]
    queue = deque([(0, 0)])
    seen = {(0, 0)}
    while queue:
        r, c = queue.popleft()
        for nr, nc, edge in ((r, c + 1, _h(r, c, size)), (r, c - 1, _h(r, c - 1, size)),
                             (r + 1, c, _v(r, c, size)), (r - 1, c, _v(r - 1, c, size))):
            node = (nr % size, nc % size)
            if node not in seen:
                seen.add(node)
                parent[node] = ((r, c), edge)
                order.append(node)
                queue.append(node)
    circuit = stim.Circuit()
    for node in reversed(order[1:]):  # leaves first; the root's star is implied by the others
        pivot = parent[node][1]
        circuit.append("H", [pivot])
        for edge in _star(*node, size):
            if edge != pivot:
                circuit.append("CNOT", [pivot, edge])
    return circuit


def toric_code_stabilizers(size: int) -> PauliSum:
    """Every star, every plaquette and the two ``Z`` logical loops of :func:`toric_code_circuit`."""
    n = 2 * size * size
    labels = []
    for r in range(size):
        for c in range(size):
            labels.append(PauliString.from_pairs(("X", q) for q in _star(r, c, size)).to_sparse())
    for r in range(size):
        for c in range(size):
            plaquette = [_h(r, c, size), _h(r + 1, c, size), _v(r, c, size), _v(r, c + 1, size)]
            labels.append(PauliString.from_pairs(("Z", q) for q in plaquette).to_sparse())
    labels.append(PauliString.from_pairs(("Z", _h(0, c, size)) for c in range(size)).to_sparse())
    labels.append(PauliString.from_pairs(("Z", _v(r, 0, size)) for r in range(size)).to_sparse())
    return PauliSum.from_labels(labels, n_qubits=n)


def builtin_clifford(spec: str) -> stim.Circuit:
    """Circuit for a spec ``ghz:N``, ``cluster:N``, ``cluster2d:RxC``, ``toric:L`` or ``surface:D``
    (the rotated surface code's ``|0_L>``, odd distance ``D``, :mod:`shadowlab.acquire.codes`).

    Examples
    --------
    >>> builtin_clifford("ghz:3").num_qubits
    3
    >>> builtin_clifford("toric:3").num_qubits
    18
    """
    name, _, arg = spec.strip().partition(":")
    name = name.lower()
    try:
        sizes = [int(x) for x in arg.lower().split("x")]
    except ValueError:
        raise ShadowlabError(f"cannot read the size in {spec!r}; expected one of {', '.join(CLIFFORD_SPECS)}"
                             ) from None
    builders = {"ghz": ghz_circuit, "cluster": cluster_circuit, "cluster2d": cluster_2d_circuit,
                "toric": toric_code_circuit, "surface": _surface_code_circuit}
    if name not in builders:
        raise ShadowlabError(f"unknown Clifford state {spec!r}; expected one of {', '.join(CLIFFORD_SPECS)}")
    if len(sizes) != (2 if name == "cluster2d" else 1):
        raise ShadowlabError(f"cannot read the size in {spec!r}; expected one of {', '.join(CLIFFORD_SPECS)}")
    return builders[name](*sizes)


def _surface_code_circuit(distance: int) -> stim.Circuit:
    from shadowlab.acquire.codes import rotated_surface_code  # the codes module builds on this one

    return rotated_surface_code(distance).state_circuit("0")


def stabilizer_expectations(
    circuit: stim.Circuit, paulis: PauliSum | Sequence[PauliString], *, n_qubits: int | None = None
) -> np.ndarray:
    """Exact ``<P>`` (+1, -1 or 0) for each Pauli string, by stabilizer simulation (stim).

    Coefficients of a :class:`PauliSum` are ignored. The circuit must be unitary Clifford
    (noise channels would make the state mixed; stim's tableau simulator would sample them:
    pass ``circuit.without_noise()`` for the noiseless state's values, as
    :func:`shadowlab.acquire.stim_exact.exact_noisy_pauli_expectations` does for its signs).

    Parameters
    ----------
    circuit:
        Noiseless, measurement-free Clifford circuit (qubits it does not touch stay ``|0>``).
    paulis:
        The Pauli strings; qubit ``i`` is stim qubit ``i``. The identity gives 1.
    n_qubits:
        Size of the system (default: the ``PauliSum``'s, else ``circuit.num_qubits``).

    Returns
    -------
    numpy.ndarray
        ``(M,)`` float64 values, each +1, -1 or 0.

    Raises
    ------
    StateError
        If the circuit measures, resets or contains noise (see
        :func:`shadowlab.acquire.stim_sampler.check_state_circuit`).

    Examples
    --------
    >>> stabilizer_expectations(ghz_circuit(2), PauliSum.from_labels(["XX", "ZI", "YY"])).tolist()
    [1.0, 0.0, -1.0]
    """
    terms = paulis.terms if isinstance(paulis, PauliSum) else tuple(paulis)
    if n_qubits is None:
        n_qubits = paulis.n_qubits if isinstance(paulis, PauliSum) else circuit.num_qubits
    return _expectations(circuit, terms, int(n_qubits))


def stabilizer_expectation(circuit: stim.Circuit, pauli: PauliString | str, n: int) -> float:
    """Exact ``<P>`` of one Pauli string on the ``n``-qubit state ``circuit|0...0>``: +1, -1 or 0.

    Parameters
    ----------
    circuit:
        Noiseless, measurement-free Clifford circuit (qubits ``>= circuit.num_qubits`` stay ``|0>``).
    pauli:
        A :class:`PauliString` or a label (``"XXI"``, ``"Z0 Z2"``); qubit ``i`` is stim qubit ``i``.
    n:
        Number of qubits of the system (``>= circuit.num_qubits``).

    Examples
    --------
    >>> c = ghz_circuit(3)
    >>> [stabilizer_expectation(c, p, 3) for p in ("XXX", "Z0 Z2", "Z1", "XYY")]
    [1.0, 1.0, 0.0, -1.0]
    """
    p = PauliString.from_label(pauli) if isinstance(pauli, str) else pauli
    return float(_expectations(circuit, (p,), n)[0])


def _expectations(circuit: stim.Circuit, terms: Sequence[PauliString], n: int) -> np.ndarray:
    # A noisy circuit would be *sampled* by the tableau simulator (one random noise draw), which
    # would silently give a wrong "exact" value: refuse it.
    check_state_circuit(circuit, allow_noise=False)
    if circuit.num_qubits > n:
        raise ShadowlabError(f"the circuit acts on {circuit.num_qubits} qubits but the observables on {n}")
    sim = stim.TableauSimulator()
    sim.set_num_qubits(n)
    sim.do_circuit(circuit)
    out = np.empty(len(terms))
    for i, t in enumerate(terms):
        # peek_observable_expectation gives +1/-1 for (minus) a stabilizer, else 0 (identity: 1).
        out[i] = sim.peek_observable_expectation(t.to_stim(n))
    return out


def _check_size(what: str, value: int, minimum: int) -> None:
    if value < minimum:
        raise ShadowlabError(f"{what} needs a size >= {minimum}, got {value}")


def local_stabilizer_elements(
    circuit: stim.Circuit, n: int, count: int, rng: np.random.Generator, *, min_weight: int = 2,
    max_weight: int = 4, window: int = 4, attempts: int = 200,
) -> list[PauliString]:
    """Up to ``count`` distinct stabilizer-group elements of weight ``min_weight..max_weight``.

    Each is the product of 1 to 3 of the generators ``C Z_k C^dagger`` with indices within
    ``window`` of each other, which for states whose circuit keeps them local (GHZ: ``Z_k Z_{k+1}``;
    cluster: ``Z X Z``) are low-weight Paulis with expectation ``+-1`` in the noiseless state (the
    sign is dropped here: use :func:`stabilizer_expectations` for it). Noise channels in
    ``circuit`` are ignored. Stops after ``attempts * count`` draws.
    """
    tableau = circuit.without_noise().to_tableau()
    k_max = len(tableau)
    generators = [tableau.z_output(k) for k in range(k_max)]
    padded = [stim.PauliString(n) for _ in range(k_max)]
    for k, g in enumerate(generators):
        padded[k] = g + stim.PauliString(n - len(g)) if len(g) < n else g
    found: dict[str, PauliString] = {}
    for _ in range(attempts * count):
        if len(found) >= count:
            break
        first = int(rng.integers(k_max))
        others = rng.integers(first, min(first + window, k_max), size=int(rng.integers(0, 3)))
        product = padded[first].copy()
        for k in set(int(o) for o in others) - {first}:
            product *= padded[k]
        if not min_weight <= product.weight <= max_weight:
            continue
        pauli = PauliString.from_stim(product)
        found.setdefault(pauli.to_sparse(), pauli)
    return list(found.values())
