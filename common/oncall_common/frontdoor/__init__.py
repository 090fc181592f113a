"""Front doors generated from the registry: the knack CLI (``oncall``, ``kubectl oncall``) and az."""
