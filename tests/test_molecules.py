"""Real Hamiltonians end to end: a molecule file, its exact ground state, snapshots, the energy.

Reference energies are the lowest eigenvalues quoted in ``shared/data/molecules/README.md``.
"""

from pathlib import Path

import pytest

from shadowlab.acquire.simulate import PreparedState, simulate
from shadowlab.acquire.states import ground_state
from shadowlab.estimate.pauli import estimate_sum
from shadowlab.observables import read_observables

MOLECULES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "molecules"
pytestmark = pytest.mark.skipif(not MOLECULES.is_dir(), reason=f"shared molecule data not found at {MOLECULES}")


@pytest.mark.parametrize(("folder", "encoding", "energy"), [
    ("H2_STO3g_4qubits", "jw", -1.8572750302),
    ("H2_STO3g_4qubits", "bk", -1.8572750302),
    ("H2_6-31G_8qubits", "parity", -1.8608605555),
])
def test_energy_from_snapshots_of_the_ground_state(folder, encoding, energy):
    h = read_observables(MOLECULES / folder / f"{encoding}.txt")
    exact, psi = ground_state(h)
    assert exact == pytest.approx(energy, abs=1e-8)
    data = simulate(PreparedState(f"{folder}/{encoding} ground state", h.n_qubits, statevector=psi), 20000, seed=3)
    for estimator in ("mean", "matched", "mom"):
        r = estimate_sum(data, h, estimator=estimator)
        assert abs(r.estimate[0] - energy) <= 5 * r.stderr[0], (estimator, r.estimate[0], r.stderr[0])
