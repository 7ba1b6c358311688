"""Datasets: the procedural SynthFaces and prepared CelebAMask-HQ folders, one loading path."""
