"""The annotation loop: which utterances are worth a person's time (uncertainty,
selection), pre-annotations in Label Studio's and doccano's formats, and a Label Studio
ML backend that predicts and retrains (see docs/tutorials/label-studio.md)."""
