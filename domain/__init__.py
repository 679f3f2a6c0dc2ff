"""Models and pure rules of the case process: no I/O and no Temporal here."""
