"""The analyzer version, in a module of its own so the daemon can read it at start-up without
importing the analysis stack (numpy/scipy/Essentia). Bump it when results change meaning:
files analysed by another version are analysed again."""

ANALYZER_VERSION = "1.0.0"
