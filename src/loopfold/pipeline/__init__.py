"""Orchestration: sequences or a structure -> numbered loop queries -> the predictor -> placement
and closure in an Fv or a structure -> results; batches, ``--structure`` grafting, samples and Ray
runs. The API (:mod:`loopfold.api`) is its one caller outside evaluation and training."""
