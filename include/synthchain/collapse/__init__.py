"""Model collapse: the monitor contract and registry (`monitors`; each modality registers its own),
the theory checks (`theory`) and the multi-generation experiment (`experiment`). Core: imports no
modality package (monitors are loaded through synthchain/modalities.py)."""
