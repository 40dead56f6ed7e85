"""Data shipped with kfp-rai: UCI Adult (CC BY 4.0), reference populations, the default policy."""
