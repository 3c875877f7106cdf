"""Antibody numbering (anarcism, IMGT) and CDR slicing under several definitions."""
