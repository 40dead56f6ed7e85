"""Statistics every stage uses: intervals of proportions, bootstrap of confusion counts, drift
statistics. Import the modules directly (``kfp_rai.stats.bootstrap``)."""
