"""Templates, channels and the message store: how a journey talks to a guest."""
