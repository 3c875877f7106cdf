"""Pure-NumPy backbone geometry: dihedrals, NeRF rebuild, superposition."""
