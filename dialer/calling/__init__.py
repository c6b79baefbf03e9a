"""Agent-queue calling: pacing (progressive, power, predictive), virtual time, a simulated world."""
