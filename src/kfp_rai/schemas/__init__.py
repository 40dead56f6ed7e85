"""JSON Schemas of the files kfp-rai writes (run.json)."""
