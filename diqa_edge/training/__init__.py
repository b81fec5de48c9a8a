"""training layer of diqa-edge (see ../shared/DESIGN.md)."""
