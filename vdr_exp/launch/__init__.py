"""Hydra around the jobs: the entry point every CLI shares, sweep parents and reports, the seed sweeper, secret
masking in Hydra's files, one GPU per job. The top of the layer order below the command modules."""
