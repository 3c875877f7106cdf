"""loopfold: predict antibody CDR loop backbones from sequence."""

__version__ = "0.1.0"
