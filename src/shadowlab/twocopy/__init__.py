"""Two-copy (Bell-basis) measurements: learning with quantum memory.

Convention used throughout: qubit ``k`` of copy A is paired with qubit ``k`` of copy B; a pair is
measured by CNOT(A_k -> B_k), then H(A_k), then both qubits in the computational basis. The bit
read from A_k is ``a_k`` and the bit from B_k is ``c_k``. On that shot

* ``X (x) X`` has eigenvalue ``(-1)**a_k``,
* ``Z (x) Z`` has eigenvalue ``(-1)**c_k``,
* ``Y (x) Y`` has eigenvalue ``-(-1)**(a_k + c_k)``,
* ``SWAP`` has eigenvalue ``(-1)**(a_k * c_k)`` (the singlet is ``a_k = c_k = 1``),

so a Pauli ``P`` with symplectic bits ``(x, z)`` has ``P (x) P`` eigenvalue
``(-1)**(#Y(P) + x.a + z.c)`` on every shot, for every ``P`` at once.
"""
