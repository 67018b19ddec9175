"""Search spaces: genotypes, validation, canonical forms and their Flax networks."""
