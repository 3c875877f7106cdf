"""Evaluation: metrics, baselines, the error model's fit, scores of a run on a split part and the
HTML report; beside :mod:`loopfold.train`, above the prediction pipeline."""
