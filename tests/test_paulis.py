"""PauliString <-> stim.PauliString conversions: letters, signs, identity and padding."""

from __future__ import annotations

import pytest
import stim
from hypothesis import given, settings
from hypothesis import strategies as st

from shadowlab.errors import QubitCountMismatchError
from shadowlab.paulis import PauliString


@st.composite
def pauli_and_size(draw: st.DrawFn) -> tuple[PauliString, int]:
    n = draw(st.integers(1, 40))
    letters = draw(st.lists(st.sampled_from("IXYZ"), min_size=n, max_size=n))
    return PauliString.from_label("".join(letters)), n


def test_letter_codes_match_stim() -> None:
    # stim: 0 = I, 1 = X, 2 = Y, 3 = Z; shadowlab: 0 = X, 1 = Y, 2 = Z (qubit q = stim qubit q).
    p = PauliString.from_label("XYZI")
    s = p.to_stim(4)
    assert [s[q] for q in range(4)] == [1, 2, 3, 0]
    assert s.sign == 1 and str(s) == "+XYZ_"
    assert PauliString.from_stim(stim.PauliString("+XYZ_")) == p


def test_from_stim_drops_the_sign() -> None:
    for text in ("+X_Z", "-X_Z", "iX_Z", "-iX_Z"):
        assert PauliString.from_stim(stim.PauliString(text)) == PauliString.from_label("X0 Z2")


def test_identity_round_trips() -> None:
    ident = PauliString((), ())
    assert ident.to_stim(3) == stim.PauliString(3)
    assert PauliString.from_stim(stim.PauliString(5)) == ident
    assert PauliString.from_stim(stim.PauliString(0)) == ident
    assert ident.to_stim(0) == stim.PauliString(0)


def test_to_stim_pads_with_identities_and_refuses_too_few_qubits() -> None:
    p = PauliString.from_label("Y1 X3")
    assert str(p.to_stim(4)) == "+_Y_X"
    assert str(p.to_stim(7)) == "+_Y_X___"
    # stim's length is not part of a PauliString: trailing identities are dropped, any length back.
    assert PauliString.from_stim(stim.PauliString("_Y_X___")) == p
    with pytest.raises(QubitCountMismatchError, match="acts on qubit 3"):
        p.to_stim(3)


def test_products_agree_with_stim_up_to_phase() -> None:
    a, b = PauliString.from_label("XYZI"), PauliString.from_label("ZZXY")
    product = a.to_stim(4) * b.to_stim(4)  # X Z = -iY, Y Z = iX, Z X = iY, I Y = Y
    assert PauliString.from_stim(product) == PauliString.from_label("YXYY")


@settings(max_examples=200, deadline=None)
@given(pauli_and_size(), st.integers(0, 5), st.sampled_from([1, -1, 1j, -1j]))
def test_round_trips(pn: tuple[PauliString, int], pad: int, sign: complex) -> None:
    p, n = pn
    s = p.to_stim(n + pad)
    assert len(s) == n + pad and s.sign == 1 and s.weight == p.weight
    assert s == stim.PauliString(p.to_dense(n + pad))
    assert PauliString.from_stim(s) == p
    assert PauliString.from_stim(sign * s) == p  # the sign is dropped
    assert PauliString.from_stim(s).to_stim(n + pad) == s
