"""File formats: structures (through gemmi), FASTA, atomic writes."""
