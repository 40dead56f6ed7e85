"""Shared plumbing every stage uses: files and tables, bundled data, model directories, verdict
types, reports and charts, evidence. Import the modules directly (``kfp_rai.core.verdict``)."""
