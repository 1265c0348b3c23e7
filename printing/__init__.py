"""Slips: one model (printing.slip.Slip) and its renderers (PDF, ESC/POS) and
printer backends. Knows nothing of the database or of Flask."""
