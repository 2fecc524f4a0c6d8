"""Regurgitation: generated samples checked against their nearest training images."""
